"""Make-up of the trial data against the target population."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from orchestrator.data.population_params import load_population_params
from orchestrator.data.prepare import prepare_trial_data
from orchestrator.data.representativeness import compare_makeup, default_target
from orchestrator.data.synthetic import AGE_BANDS, generate_sea_population
from orchestrator.errors import DataError
from orchestrator.spec import load_spec

PARAMS = load_population_params()
SEA = list(PARAMS.populations)
# ~60k rows: a share's standard error is below 0.002, so 0.01 is five of them.
TOLERANCE = 0.01
SPEC = Path(__file__).resolve().parents[2] / "examples" / "trials" / "diabetes-risk.yaml"


def test_compare_makeup_is_exact_on_a_small_frame() -> None:
    frame = pd.DataFrame({"sex": ["female"] * 3 + ["male"] * 1, "country": ["SG", "SG", "TH", None]})
    rows = compare_makeup(frame, {"sex": {"female": 1, "male": 1}, "country": {"SG": 0.2, "MY": 0.8}})
    table = [(r.attribute, r.group, r.observed_share, r.target_share, r.difference) for r in rows]
    assert table == [
        ("sex", "female", 0.75, 0.5, 0.25),
        ("sex", "male", 0.25, 0.5, -0.25),
        ("country", "SG", 0.5, 0.2, pytest.approx(0.3)),
        ("country", "MY", 0.0, 0.8, -0.8),  # declared but absent from the data
        ("country", "TH", 0.25, 0.0, 0.25),  # present but not declared: target share 0
    ]


def test_compare_makeup_refuses_bad_input() -> None:
    frame = pd.DataFrame({"sex": ["female"]})
    with pytest.raises(DataError, match="no column\\(s\\) ethnicity"):
        compare_makeup(frame, {"ethnicity": {"thai": 1.0}})
    with pytest.raises(DataError, match="sex"):
        compare_makeup(frame, {"sex": {"female": -1.0, "male": 1.0}})
    with pytest.raises(DataError, match="zero"):
        compare_makeup(frame, {"sex": {"female": 0.0}})
    assert compare_makeup(frame.iloc[:0], {"sex": {"female": 1.0}})[0].observed_share == 0.0


def test_default_target_for_one_country_is_its_published_figures() -> None:
    sg = PARAMS.population("SG")
    target = default_target({"SG": 1})
    assert target["country"] == {"SG": 1.0}
    assert target["sex"] == pytest.approx(
        {"female": sg.female_share.value, "male": 1 - sg.female_share.value}
    )
    assert target["ethnicity"] == pytest.approx(sg.ethnicity.values, abs=1e-3)
    assert list(target["age_band"]) == list(AGE_BANDS)
    young = sum(band.share for band in sg.bands if band.high < 40) / sum(band.share for band in sg.bands)
    assert target["age_band"]["18-39"] == pytest.approx(young)


def test_default_target_weights_countries_and_adds_up() -> None:
    target = default_target({"SG": 1, "TH": 3})
    expected_female = 0.25 * PARAMS.population("SG").female_share.value + 0.75 * (
        PARAMS.population("TH").female_share.value
    )
    assert target["sex"]["female"] == pytest.approx(expected_female)
    assert target["ethnicity"]["thai"] == pytest.approx(
        0.75 * PARAMS.population("TH").ethnicity.values["thai"], rel=0.01
    )
    for attribute, shares in target.items():
        assert sum(shares.values()) == pytest.approx(1.0), attribute
    with pytest.raises(DataError, match="XX"):
        default_target({"SG": 1, "XX": 1})


def test_age_bands_straddling_a_label_are_split_by_age() -> None:
    raw = PARAMS.model_dump(by_alias=True)
    raw["populations"]["SG"]["age_bands"]["values"] = {"18-34": 0.5, "35-44": 0.25, "45-90": 0.25}
    params = type(PARAMS).model_validate(raw)
    shares = default_target({"SG": 1}, params)["age_band"]
    # 35-44 holds ten ages, five of them under 40.
    assert shares == pytest.approx({"18-39": 0.625, "40-59": 0.125 + 0.25 * 15 / 46, "60+": 0.25 * 31 / 46})


def test_generator_matches_its_declared_target() -> None:
    weights = {"SG": 2, "MY": 1, "TH": 1, "ID": 3, "PH": 1, "VN": 2}
    frame = generate_sea_population(weights, 60_000, seed=17)
    rows = compare_makeup(frame, default_target(weights))
    assert {r.attribute for r in rows} == {"country", "sex", "age_band", "ethnicity"}
    worst = max(rows, key=lambda r: abs(r.difference))
    assert abs(worst.difference) < TOLERANCE, worst


def test_prepare_synthetic_compares_with_the_spec_countries(tmp_path: Path) -> None:
    spec = load_spec(SPEC)
    prepared = prepare_trial_data(spec, tmp_path)
    assert prepared.source == "synthetic"
    assert (prepared.generator, prepared.seed) == ("sea-population", 7)
    assert prepared.target_basis == "SEA population figures weighted by data.synthetic.countries"
    assert not prepared.blocking
    assert max(abs(r.difference) for r in prepared.representativeness) < 0.03  # 5,000 rows
    assert prepared.report_provenance() is None

    declared = {"sex": {"female": 0.9, "male": 0.1}}
    skewed = prepare_trial_data(spec, tmp_path / "declared", target=declared)
    assert skewed.target_basis == "declared target population"
    assert [(r.group, round(r.target_share, 2)) for r in skewed.representativeness] == [
        ("female", 0.9),
        ("male", 0.1),
    ]
