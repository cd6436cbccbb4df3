"""The synthetic SEA / reference population generator and its parameter file."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from orchestrator.data.population_params import (
    PARAMS_PATH,
    REFERENCE_CODE,
    PopulationParams,
    load_population_params,
)
from orchestrator.data.synthetic import (
    AGE_BANDS,
    COLUMNS,
    GENERATORS,
    available_countries,
    generate,
    generate_reference_population,
    generate_sea_population,
)
from orchestrator.errors import DataError

ROWS_PER_POPULATION = 40_000
# A share estimated from ~40k rows has a standard error below 0.0025; 0.012 is about five of them.
SHARE_TOLERANCE = 0.012
# Calibration targets the published prevalence exactly; the sampling error is about 0.002.
PREVALENCE_TOLERANCE = 0.015
BMI_MEAN_TOLERANCE = 0.3  # kg/m2; clipping the log-normal tails moves the mean a little
ASIAN_BMI_BAND = (23.0, 27.5)  # WHO 2004 action points for Asian populations

PARAMS = load_population_params()
SEA_CODES = list(PARAMS.populations)
ALL_CODES = [*SEA_CODES, REFERENCE_CODE]


@pytest.fixture(scope="module")
def sea() -> pd.DataFrame:
    return generate_sea_population(dict.fromkeys(SEA_CODES, 1), ROWS_PER_POPULATION * len(SEA_CODES), seed=11)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return generate_reference_population(200_000, seed=12)


def _population_rows(code: str, sea: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    frame = reference if code == REFERENCE_CODE else sea[sea["country"] == code]
    assert len(frame) > 30_000
    return frame


def _expected_age_band_shares(population: PopulationParams) -> dict[str, float]:
    shares = dict.fromkeys(AGE_BANDS, 0.0)
    total = sum(band.share for band in population.bands)
    for band in population.bands:
        label = "18-39" if band.high < 40 else "40-59" if band.high < 60 else "60+"
        shares[label] += band.share / total
    return shares


# --- determinism --------------------------------------------------------------------------------


def test_same_seed_gives_identical_frames() -> None:
    countries = {"SG": 1, "VN": 2}
    pd.testing.assert_frame_equal(
        generate_sea_population(countries, 5_000, seed=3), generate_sea_population(countries, 5_000, seed=3)
    )
    pd.testing.assert_frame_equal(
        generate_reference_population(2_000, 5), generate_reference_population(2_000, 5)
    )


_DIGEST_SCRIPT = """
import hashlib, sys
from orchestrator.data.synthetic import generate_sea_population
frame = generate_sea_population({"SG": 1, "ID": 2, "VN": 1}, 3_000, seed=8)
print(hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest())
"""


def test_same_seed_gives_the_same_bytes_in_a_fresh_process() -> None:
    # A regulator re-running a trial gets a new interpreter (and new string hashing): the data,
    # down to its CSV bytes, must not depend on either.
    expected = hashlib.sha256(
        generate_sea_population({"SG": 1, "ID": 2, "VN": 1}, 3_000, seed=8).to_csv(index=False).encode()
    ).hexdigest()
    root = Path(__file__).resolve().parents[2]
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(root)}
        done = subprocess.run(
            [sys.executable, "-c", _DIGEST_SCRIPT],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout.strip() == expected


def test_different_seeds_give_different_frames() -> None:
    first = generate_sea_population({"TH": 1}, 5_000, seed=1)
    second = generate_sea_population({"TH": 1}, 5_000, seed=2)
    assert not first.equals(second)
    assert not np.array_equal(first["bmi"].to_numpy(), second["bmi"].to_numpy())


def test_dispatcher_matches_direct_call() -> None:
    assert "sea-population" in GENERATORS
    direct = generate_sea_population({"MY": 1, "ID": 1}, 3_000, seed=9)
    pd.testing.assert_frame_equal(generate("sea-population", {"MY": 1, "ID": 1}, 3_000, 9), direct)


# --- shape ------------------------------------------------------------------------------------------


def test_columns_dtypes_and_domains(sea: pd.DataFrame) -> None:
    assert tuple(sea.columns) == COLUMNS == (
        "case_id", "country", "sex", "age", "age_band", "ethnicity", "urban", "bmi",
        "systolic_bp", "smoking", "family_history", "fasting_glucose", "diabetes",
    )  # fmt: skip
    for column in ("case_id", "country", "sex", "age_band", "ethnicity"):
        assert pd.api.types.is_string_dtype(sea[column]), column
    for column in ("age", "urban", "smoking", "family_history", "diabetes"):
        assert sea[column].dtype == np.int64, column
    for column in ("bmi", "systolic_bp", "fasting_glucose"):
        assert sea[column].dtype == np.float64, column

    assert sea["case_id"].is_unique
    assert sea["case_id"].str.fullmatch(r"c\d{6,}").all()
    assert sea["case_id"].iloc[0] == "c000001"
    assert set(sea["country"]) == set(SEA_CODES)
    assert set(sea["sex"]) == {"female", "male"}
    assert sea["age"].between(18, 90).all()
    expected_band = np.select([sea["age"] < 40, sea["age"] < 60], ["18-39", "40-59"], "60+")
    assert (sea["age_band"].to_numpy() == expected_band).all()
    assert set(sea["ethnicity"]) <= set(PARAMS.ethnicities)
    for column in ("urban", "smoking", "family_history", "diabetes"):
        assert set(sea[column].unique()) == {0, 1}, column
    assert sea["bmi"].between(14, 60).all()
    assert sea["systolic_bp"].between(80, 230).all()
    assert sea["fasting_glucose"].between(3.5, 25).all()
    assert not sea.isna().any().any()


def test_rows_are_split_exactly_by_weight() -> None:
    frame = generate_sea_population({"SG": 1, "MY": 2}, 7, seed=0)
    assert len(frame) == 7
    assert frame["country"].value_counts().to_dict() == {"MY": 5, "SG": 2}
    assert list(frame["case_id"]) == [f"c{i:06d}" for i in range(1, 8)]


def test_reference_population_is_labelled_ref(reference: pd.DataFrame) -> None:
    assert set(reference["country"]) == {REFERENCE_CODE}
    assert reference["ethnicity"].value_counts(normalize=True)["white"] > 0.7
    pd.testing.assert_frame_equal(
        generate("reference-population", {}, 500, 4), generate_reference_population(500, 4)
    )


# --- marginals match the parameter file ------------------------------------------------------------


@pytest.mark.parametrize("code", ALL_CODES)
def test_marginals_match_parameter_file(code: str, sea: pd.DataFrame, reference: pd.DataFrame) -> None:
    population = PARAMS.population(code)
    rows = _population_rows(code, sea, reference)

    female = rows["sex"] == "female"
    assert female.mean() == pytest.approx(population.female_share.value, abs=SHARE_TOLERANCE)

    observed_bands = rows["age_band"].value_counts(normalize=True)
    for band, share in _expected_age_band_shares(population).items():
        assert observed_bands.get(band, 0.0) == pytest.approx(share, abs=SHARE_TOLERANCE), band

    observed_ethnicity = rows["ethnicity"].value_counts(normalize=True)
    assert set(observed_ethnicity.index) <= set(population.ethnicity.values)
    for ethnicity, share in population.ethnicity.values.items():
        assert observed_ethnicity.get(ethnicity, 0.0) == pytest.approx(share, abs=SHARE_TOLERANCE), ethnicity

    assert rows["urban"].mean() == pytest.approx(population.urban_share.value, abs=SHARE_TOLERANCE)
    for sex, is_sex in (("female", female), ("male", ~female)):
        smoking = getattr(population.smoking.values, sex)
        bmi = getattr(population.bmi_mean.values, sex)
        assert rows.loc[is_sex, "smoking"].mean() == pytest.approx(smoking, abs=SHARE_TOLERANCE), sex
        assert rows.loc[is_sex, "bmi"].mean() == pytest.approx(bmi, abs=BMI_MEAN_TOLERANCE), sex


@pytest.mark.parametrize("code", ALL_CODES)
def test_prevalence_matches_published_figure(code: str, sea: pd.DataFrame, reference: pd.DataFrame) -> None:
    rows = _population_rows(code, sea, reference)
    target = PARAMS.population(code).diabetes_prevalence.value
    assert rows["diabetes"].mean() == pytest.approx(target, abs=PREVALENCE_TOLERANCE)


# --- clinical relationships --------------------------------------------------------------------------


def test_risk_rises_with_age_bmi_family_history_and_blood_pressure(sea: pd.DataFrame) -> None:
    by_age = sea.groupby("age_band")["diabetes"].mean()
    assert by_age["18-39"] < by_age["40-59"] < by_age["60+"]
    by_bmi = sea.groupby(pd.qcut(sea["bmi"], 4, labels=False))["diabetes"].mean()
    assert by_bmi.is_monotonic_increasing
    by_history = sea.groupby("family_history")["diabetes"].mean()
    assert by_history[1] > 1.5 * by_history[0]
    by_pressure = sea.groupby(pd.qcut(sea["systolic_bp"], 4, labels=False))["diabetes"].mean()
    assert by_pressure.is_monotonic_increasing


def test_fasting_glucose_is_higher_in_diabetics(sea: pd.DataFrame) -> None:
    diabetic = sea["diabetes"] == 1
    assert sea.loc[diabetic, "fasting_glucose"].median() >= 7.0
    assert sea.loc[~diabetic, "fasting_glucose"].max() < 7.0
    assert sea.loc[diabetic, "fasting_glucose"].mean() > sea.loc[~diabetic, "fasting_glucose"].mean() + 2


def test_diabetes_appears_at_lower_bmi_in_asian_populations(
    sea: pd.DataFrame, reference: pd.DataFrame
) -> None:
    asian = [name for name, ethnicity in PARAMS.ethnicities.items() if ethnicity.asian]
    sea_asian_diabetics = sea[(sea["diabetes"] == 1) & sea["ethnicity"].isin(asian)]
    reference_diabetics = reference[reference["diabetes"] == 1]
    assert sea_asian_diabetics["bmi"].mean() < reference_diabetics["bmi"].mean() - 2

    low, high = ASIAN_BMI_BAND
    in_band_sea = sea[sea["bmi"].between(low, high, inclusive="left")]
    in_band_reference = reference[reference["bmi"].between(low, high, inclusive="left")]
    assert in_band_sea["diabetes"].mean() > 1.3 * in_band_reference["diabetes"].mean()


def test_asian_risk_is_higher_at_equal_bmi_within_one_population(reference: pd.DataFrame) -> None:
    # Same population, same intercept: only the ethnicity-specific BMI offset differs.
    asian = [name for name, ethnicity in PARAMS.ethnicities.items() if ethnicity.asian]
    low, high = ASIAN_BMI_BAND
    in_band = reference[reference["bmi"].between(low, high, inclusive="left")]
    asian_rate = in_band.loc[in_band["ethnicity"].isin(asian), "diabetes"].mean()
    white_rate = in_band.loc[in_band["ethnicity"] == "white", "diabetes"].mean()
    assert asian_rate > 1.3 * white_rate


# --- bad input ----------------------------------------------------------------------------------------


def test_unknown_country_is_named() -> None:
    with pytest.raises(DataError, match="XX"):
        generate_sea_population({"SG": 1, "XX": 1}, 100, seed=1)
    with pytest.raises(ValueError, match="REF"):  # the reference population is not a SEA country
        generate_sea_population({"REF": 1}, 100, seed=1)


def test_unknown_generator_is_named() -> None:
    with pytest.raises(DataError, match="no-such-generator"):
        generate("no-such-generator", {"SG": 1}, 100, 1)


@pytest.mark.parametrize("rows", [0, -5, 2.5, True])
def test_row_count_must_be_a_positive_integer(rows: Any) -> None:
    with pytest.raises(DataError, match="rows"):
        generate_sea_population({"SG": 1}, rows, seed=1)


@pytest.mark.parametrize("countries", [{}, {"SG": 0}, {"SG": -1}, {"SG": float("nan")}, {"SG": "lots"}])
def test_country_weights_must_be_usable(countries: dict[str, Any]) -> None:
    with pytest.raises(DataError):
        generate_sea_population(countries, 100, seed=1)


def test_country_codes_are_case_insensitive_and_weights_normalised() -> None:
    frame = generate_sea_population({"sg": 0.25, "PH": 0.75}, 1_000, seed=1)
    assert frame["country"].value_counts().to_dict() == {"PH": 750, "SG": 250}


def test_reference_generator_refuses_countries() -> None:
    with pytest.raises(DataError, match="SG"):
        generate("reference-population", {"SG": 1}, 100, 1)


def test_available_countries_cover_the_required_set() -> None:
    assert {"SG", "MY", "TH", "ID", "PH", "VN"} <= set(available_countries())


# --- the parameter file ---------------------------------------------------------------------------------


def _unsourced_numbers(node: Any, path: str = "", covered: bool = False) -> list[str]:
    """Paths of numbers that are not the value(s) of a mapping carrying a ``source``."""
    if isinstance(node, bool) or node is None or isinstance(node, str):
        return []
    if isinstance(node, int | float):
        return [] if covered else [path]
    if isinstance(node, list):
        return [
            hit for i, item in enumerate(node) for hit in _unsourced_numbers(item, f"{path}[{i}]", covered)
        ]
    assert isinstance(node, dict), path
    has_source = "source" in node
    return [
        hit
        for key, value in node.items()
        for hit in _unsourced_numbers(
            value, f"{path}.{key}", covered or (has_source and key in ("value", "values"))
        )
    ]


def _sources(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["source"]] if "source" in node else []
        return own + [source for value in node.values() for source in _sources(value)]
    if isinstance(node, list):
        return [source for item in node for source in _sources(item)]
    return []


def test_every_number_in_the_parameter_file_has_a_source() -> None:
    raw = yaml.safe_load(PARAMS_PATH.read_text(encoding="utf-8"))
    assert _unsourced_numbers(raw) == []
    sources = _sources(raw)
    assert len(sources) > 50
    for source in sources:
        assert isinstance(source, str)
        # A published figure names its year; anything else must say it is a convention.
        assert source.startswith("convention (") or re.search(r"\b(19|20)\d\d\b", source), source


def test_walker_flags_a_number_without_source() -> None:
    assert _unsourced_numbers({"a": {"value": 1.0}}) == [".a.value"]
    assert _unsourced_numbers({"a": {"value": 1.0, "source": "x 2020"}, "b": 2}) == [".b"]


def _write_variant(tmp_path: Path, edit: Any) -> Path:
    raw = yaml.safe_load(PARAMS_PATH.read_text(encoding="utf-8"))
    edit(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_parameter_file_rejects_unknown_keys_and_bad_shares(tmp_path: Path) -> None:
    def extra_key(raw: dict[str, Any]) -> None:
        raw["populations"]["SG"]["mystery"] = {"value": 1, "source": "x 2020"}

    def bad_shares(raw: dict[str, Any]) -> None:
        raw["populations"]["VN"]["ethnicity"]["values"]["kinh"] = 0.5

    def gap_in_ages(raw: dict[str, Any]) -> None:
        bands = raw["populations"]["TH"]["age_bands"]["values"]
        bands["31-39"] = bands.pop("30-39")

    for edit, message in ((extra_key, "mystery"), (bad_shares, "add up"), (gap_in_ages, "tile")):
        with pytest.raises(DataError, match=message):
            load_population_params(_write_variant(tmp_path, edit))
