"""Synthetic adult populations for tabular trials: South-East Asian countries and a reference population.

Each record is one adult with the screening features a diabetes-risk model sees and the label it
predicts. Marginals (age, sex, ethnicity, urban share, BMI, smoking, prevalence) come from
``sea_population.yaml``; the clinical relationships are a logistic model in which BMI acts through an
ethnicity-specific offset, so type 2 diabetes appears at lower BMI in Asian populations. A model
fitted on the reference population therefore under-estimates risk in the SEA populations, which is
the population shift a trial is meant to expose.

Everything is vectorised and seeded with ``numpy.random.default_rng(seed)``: the same arguments
always give the same frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa

from orchestrator.data.population_model import Array, People, draw_people
from orchestrator.data.population_params import REFERENCE_CODE, PopulationParamFile, load_population_params
from orchestrator.errors import DataError

COLUMNS = (
    "case_id",
    "country",
    "sex",
    "age",
    "age_band",
    "ethnicity",
    "urban",
    "bmi",
    "systolic_bp",
    "smoking",
    "family_history",
    "fasting_glucose",
    "diabetes",
)
SEXES = ("female", "male")
AGE_BANDS = ("18-39", "40-59", "60+")
# A frame lives in memory (about 150 bytes a row); beyond this a spec is more likely a typo than a plan.
MAX_ROWS = 20_000_000

PopulationGenerator = Callable[[Mapping[str, float], int, int], pd.DataFrame]


def available_countries() -> tuple[str, ...]:
    """Country codes the SEA generator knows."""
    return tuple(load_population_params().populations)


def _labels(names: tuple[str, ...] | list[str], index: Array) -> pd.api.extensions.ExtensionArray:
    # Taking from a small string array is an order of magnitude faster than building a million strings.
    return pd.array(list(names), dtype="str").take(index)


def _case_ids(total: int) -> pd.api.extensions.ExtensionArray:
    """``c000001``, ``c000002``, ... written digit by digit into one Arrow buffer (no Python strings)."""
    width = max(6, len(str(total)))
    numbers = np.arange(1, total + 1, dtype=np.int64)
    chars = np.empty((total, width + 1), dtype=np.uint8)
    chars[:, 0] = ord("c")
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    chars[:, 1:] = (numbers[:, None] // powers) % 10 + ord("0")
    offsets = np.arange(0, (total + 1) * (width + 1), width + 1, dtype=np.int32)
    strings = pa.StringArray.from_buffers(total, pa.py_buffer(offsets), pa.py_buffer(chars))
    return pd.array(strings, dtype="str")


def _frame(
    params: PopulationParamFile, blocks: list[tuple[str, People]], rng: np.random.Generator
) -> pd.DataFrame:
    codes = [code for code, _ in blocks]

    def joined(field: str) -> Array:
        return np.concatenate([getattr(people, field) for _, people in blocks])

    country = np.concatenate([np.full(len(people.age), i) for i, (_, people) in enumerate(blocks)])
    # Shuffle so that countries are interleaved, as cases from several sites would arrive.
    order = rng.permutation(len(country))
    age = joined("age")[order].astype(np.int64)
    return pd.DataFrame(
        {
            "case_id": _case_ids(len(order)),
            "country": _labels(codes, country[order]),
            "sex": _labels(SEXES, (~joined("female")[order]).astype(np.int64)),
            "age": age,
            "age_band": _labels(AGE_BANDS, np.digitize(age, [40, 60])),
            "ethnicity": _labels(list(params.ethnicities), joined("ethnicity")[order]),
            "urban": joined("urban")[order].astype(np.int64),
            "bmi": np.round(joined("bmi")[order], 1),
            "systolic_bp": np.round(joined("systolic_bp")[order], 0),
            "smoking": joined("smoking")[order].astype(np.int64),
            "family_history": joined("family_history")[order].astype(np.int64),
            "fasting_glucose": np.round(joined("fasting_glucose")[order], 1),
            "diabetes": joined("diabetes")[order].astype(np.int64),
        },
        columns=list(COLUMNS),
        copy=False,
    )


def _check_size(rows: int, seed: int) -> None:
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer):
        raise DataError(f"rows must be an integer, got {rows!r}")
    if not 1 <= rows <= MAX_ROWS:
        raise DataError(f"rows must be between 1 and {MAX_ROWS:,}, got {rows}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")


def _allocate(weights: Mapping[str, float], rows: int) -> dict[str, int]:
    """Split rows by weight, exactly (largest remainder), so small frames keep the requested mix."""
    total = sum(weights.values())
    exact = {code: rows * weight / total for code, weight in weights.items()}
    counts = {code: math.floor(value) for code, value in exact.items()}
    by_remainder = sorted(exact, key=lambda code: exact[code] - counts[code], reverse=True)
    for code in by_remainder[: rows - sum(counts.values())]:
        counts[code] += 1
    return counts


def _country_weights(countries: Mapping[str, float], params: PopulationParamFile) -> dict[str, float]:
    if not countries:
        raise DataError("no countries given; name at least one of " + ", ".join(params.populations))
    weights: dict[str, float] = {}
    for raw_code, raw_weight in countries.items():
        code = str(raw_code).strip().upper()
        if code not in params.populations:
            known = ", ".join(params.populations)
            raise DataError(
                f"unknown country code {raw_code!r} for the SEA population generator; known: {known}"
            )
        try:
            weight = float(raw_weight)
        except (TypeError, ValueError):
            raise DataError(f"weight of country {code} must be a number, got {raw_weight!r}") from None
        if not math.isfinite(weight) or weight < 0:
            raise DataError(f"weight of country {code} must be a finite number >= 0, got {raw_weight!r}")
        weights[code] = weights.get(code, 0.0) + weight
    if sum(weights.values()) <= 0:
        raise DataError("country weights add up to zero")
    return {code: weight for code, weight in weights.items() if weight > 0}


def generate_sea_population(countries: Mapping[str, float], rows: int, seed: int) -> pd.DataFrame:
    """Adults from SEA countries; ``countries`` maps country code to a relative weight."""
    params = load_population_params()
    weights = _country_weights(countries, params)
    _check_size(rows, seed)
    rng = np.random.default_rng(seed)
    counts = _allocate(weights, rows)
    blocks = [(code, draw_people(params, code, n, rng)) for code, n in counts.items() if n > 0]
    return _frame(params, blocks, rng)


def generate_reference_population(rows: int, seed: int) -> pd.DataFrame:
    """Adults from the upper-income-like reference population (country ``REF``)."""
    params = load_population_params()
    _check_size(rows, seed)
    rng = np.random.default_rng(seed)
    return _frame(params, [(REFERENCE_CODE, draw_people(params, REFERENCE_CODE, rows, rng))], rng)


def _reference_generator(countries: Mapping[str, float], rows: int, seed: int) -> pd.DataFrame:
    others = sorted({str(code).strip().upper() for code in countries} - {REFERENCE_CODE})
    if others:
        raise DataError(f"the reference-population generator has no countries; got {', '.join(others)}")
    return generate_reference_population(rows, seed)


GENERATORS: dict[str, PopulationGenerator] = {
    "sea-population": generate_sea_population,
    "reference-population": _reference_generator,
}


def generate(generator: str, countries: Mapping[str, float], rows: int, seed: int) -> pd.DataFrame:
    """Run the named generator (a key of ``GENERATORS``)."""
    try:
        function = GENERATORS[generator]
    except KeyError:
        known = ", ".join(sorted(GENERATORS))
        raise DataError(f"unknown synthetic data generator {generator!r}; known: {known}") from None
    return function(countries, rows, seed)
