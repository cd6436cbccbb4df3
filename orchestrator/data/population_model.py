"""The clinical model behind the synthetic populations: who the people are, and who has diabetes.

A population block is drawn in two steps. First the covariates: sex, age from the published age
bands, ethnicity, urban residence, BMI (log-normal around the published mean, shifted by age,
ethnicity and residence), systolic pressure, smoking and family history. Then the label, from a
logistic model whose BMI term uses an ethnicity-specific offset (type 2 diabetes appears at lower BMI
in Asian groups) and whose intercept is calibrated so that the population's prevalence matches its
published figure. Fasting glucose is drawn last, conditional on the label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from orchestrator.data.population_params import PopulationParamFile, PopulationParams

Array = npt.NDArray[Any]
# Intercepts are calibrated once per population on a fixed sample, so a person's label never
# depends on who else happens to be in the requested frame.
CALIBRATION_ROWS = 200_000
CALIBRATION_SEED = 20240601


@dataclass(frozen=True)
class Cohort:
    """Covariates of one population block, before the label is drawn."""

    female: Array
    age: Array
    ethnicity: Array  # index into the population's ethnicity list
    urban: Array
    bmi: Array
    systolic_bp: Array
    smoking: Array
    family_history: Array
    bmi_risk_offset: Array
    unobserved_risk: Array


def _bmi_age_term(age: Array, params: PopulationParamFile) -> Array:
    profile = params.model.bmi_age_profile.values
    scaled = (age - profile.peak_age) / profile.half_width
    return np.asarray(profile.gain * (1.0 - scaled**2))


def _expected_bmi_age_term(population: PopulationParams, params: PopulationParamFile) -> float:
    # Exact expectation over the band mixture (ages are uniform integers within a band), so that
    # centring keeps the population at its published mean BMI.
    return sum(
        band.share * float(np.mean(_bmi_age_term(np.arange(band.low, band.high + 1, dtype=float), params)))
        for band in population.bands
    )


def _draw_cohort(
    params: PopulationParamFile, population: PopulationParams, n: int, rng: np.random.Generator
) -> Cohort:
    model = params.model
    female = rng.random(n) < population.female_share.value

    bands = population.bands
    band = rng.choice(len(bands), size=n, p=_probabilities([b.share for b in bands]))
    low = np.array([b.low for b in bands])[band]
    high = np.array([b.high for b in bands])[band]
    age = rng.integers(low, high + 1)

    names = list(population.ethnicity.values)
    shares = _probabilities(list(population.ethnicity.values.values()))
    ethnicity = rng.choice(len(names), size=n, p=shares)
    shift = np.array([params.ethnicities[name].bmi_shift.value for name in names])
    offset = np.array([params.ethnicities[name].bmi_risk_offset.value for name in names])

    urban = rng.random(n) < population.urban_share.value

    sex_mean = np.where(female, population.bmi_mean.values.female, population.bmi_mean.values.male)
    # Each shift is centred on its population average so the published mean BMI is preserved.
    centre = (
        sex_mean
        + _bmi_age_term(age.astype(float), params)
        - _expected_bmi_age_term(population, params)
        + shift[ethnicity]
        - float(shift @ shares)
        + model.bmi_urban_shift.value * (urban - population.urban_share.value)
    )
    sigma = math.sqrt(math.log1p(model.bmi_cv.value**2))
    limits = model.bmi_limits.values
    bmi = np.clip(centre * np.exp(sigma * rng.standard_normal(n) - sigma**2 / 2), limits.min, limits.max)

    bp = model.systolic_bp.values
    systolic = np.where(female, bp.female_at_45, bp.male_at_45) + bp.per_year * (age - 45)
    systolic = systolic + bp.per_bmi * (bmi - sex_mean) + bp.sd * rng.standard_normal(n)
    systolic = np.clip(systolic, bp.min, bp.max)

    smoking = rng.random(n) < np.where(
        female, population.smoking.values.female, population.smoking.values.male
    )
    relatives = model.family_history_relatives.value
    family_history = rng.random(n) < 1.0 - (1.0 - population.diabetes_prevalence.value) ** relatives

    spread = model.risk.unobserved_sd.values
    asian = np.array([params.ethnicities[name].asian for name in names])[ethnicity]
    unobserved = np.where(asian, spread.asian, spread.non_asian) * rng.standard_normal(n)

    return Cohort(
        female, age, ethnicity, urban, bmi, systolic, smoking, family_history, offset[ethnicity], unobserved
    )


def _risk_score(params: PopulationParamFile, cohort: Cohort) -> Array:
    """Log-odds of diabetes without the population intercept."""
    risk = params.model.risk
    # The BMI term uses the ethnicity-adjusted BMI: an Asian adult at 27.5 scores like a white adult at 30.
    effective_bmi = cohort.bmi + cohort.bmi_risk_offset
    return np.asarray(
        risk.age_per_decade.value * (cohort.age - 50) / 10.0
        + risk.bmi_per_unit.value * (effective_bmi - risk.bmi_pivot.value)
        + risk.family_history.value * cohort.family_history
        + risk.systolic_per_10_mmhg.value * (cohort.systolic_bp - risk.systolic_pivot.value) / 10.0
        + risk.smoking.value * cohort.smoking
        + risk.male.value * ~cohort.female
        + risk.urban.value * cohort.urban
        + cohort.unobserved_risk
    )


# (id of the parameter file, population code) -> (the file, intercept). Holding the file keeps its id
# from being reused by another object while the entry exists.
_INTERCEPTS: dict[tuple[int, str], tuple[PopulationParamFile, float]] = {}


def calibrated_intercept(params: PopulationParamFile, code: str) -> float:
    """Intercept that makes the population's expected prevalence equal its published figure."""
    key = (id(params), code)
    if key not in _INTERCEPTS:
        _INTERCEPTS[key] = (params, _solve_intercept(params, code))
    return _INTERCEPTS[key][1]


def _solve_intercept(params: PopulationParamFile, code: str) -> float:
    population = params.population(code)
    cohort = _draw_cohort(params, population, CALIBRATION_ROWS, np.random.default_rng(CALIBRATION_SEED))
    score = _risk_score(params, cohort)
    target = population.diabetes_prevalence.value
    intercept = math.log(target / (1.0 - target)) - float(np.median(score))
    for _ in range(50):  # Newton on mean(sigmoid(a + score)) = target; converges in a handful of steps
        p = 1.0 / (1.0 + np.exp(-(intercept + score)))
        step = (float(p.mean()) - target) / max(float((p * (1.0 - p)).mean()), 1e-12)
        intercept -= step
        if abs(step) < 1e-10:
            break
    return intercept


@dataclass(frozen=True)
class People:
    """One drawn population block; ``ethnicity`` indexes the parameter file's ethnicity list."""

    female: Array
    age: Array
    ethnicity: Array
    urban: Array
    bmi: Array
    systolic_bp: Array
    smoking: Array
    family_history: Array
    fasting_glucose: Array
    diabetes: Array


def draw_people(params: PopulationParamFile, code: str, n: int, rng: np.random.Generator) -> People:
    """Draw ``n`` adults of population ``code`` (a country code or ``REF``), labels included."""
    population = params.population(code)
    cohort = _draw_cohort(params, population, n, rng)
    probability = 1.0 / (1.0 + np.exp(-(calibrated_intercept(params, code) + _risk_score(params, cohort))))
    diabetes = rng.random(n) < probability

    healthy = params.model.fasting_glucose.non_diabetic.values
    normal = (
        healthy.mean
        + healthy.per_decade * (cohort.age - 45) / 10.0
        + healthy.per_bmi * (cohort.bmi - 24.0)
        + healthy.sd * rng.standard_normal(n)
    )
    sick = params.model.fasting_glucose.diabetic.values
    diabetic = sick.median * np.exp(sick.log_sd * rng.standard_normal(n))
    glucose = np.where(
        diabetes, np.clip(diabetic, sick.min, sick.max), np.clip(normal, healthy.min, healthy.max)
    )

    global_ethnicity = {name: i for i, name in enumerate(params.ethnicities)}
    to_global = np.array([global_ethnicity[name] for name in population.ethnicity.values])
    return People(
        female=cohort.female,
        age=cohort.age,
        ethnicity=to_global[cohort.ethnicity],
        urban=cohort.urban,
        bmi=cohort.bmi,
        systolic_bp=cohort.systolic_bp,
        smoking=cohort.smoking,
        family_history=cohort.family_history,
        fasting_glucose=glucose,
        diabetes=diabetes,
    )


def _probabilities(shares: list[float]) -> Array:
    # Published shares are rounded; renormalise so numpy accepts them as probabilities.
    array = np.asarray(shares, dtype=float)
    return np.asarray(array / array.sum())
