"""Typed, validated view of the population parameter file ``sea_population.yaml``.

The file is the evidence behind every synthetic record, so its shape is strict: each number lives
in a *figure* that names its source, unknown keys are errors, shares add up to one and age bands
tile 18-90 without gaps. A malformed file fails loudly at load time instead of producing a quietly
skewed population.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Annotated, Generic, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.errors import DataError

PARAMS_PATH = Path(__file__).with_name("sea_population.yaml")
REFERENCE_CODE = "REF"
AGE_MIN = 18
AGE_MAX = 90
# Published shares are rounded, so they may add up to 0.999 or 1.001.
SHARE_TOLERANCE = 0.005

Source = Annotated[
    str, Field(min_length=3, description="Publication / agency / year, or 'convention (...)'.")
]
T = TypeVar("T")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Figure(_Frozen):
    """One number and where it comes from."""

    value: float
    source: Source


class Sourced(_Frozen, Generic[T]):
    """A group of numbers that share one source."""

    values: T
    source: Source


class ShareFigure(_Frozen):
    """Shares of a population by category (they add up to one)."""

    values: dict[str, float]
    source: Source

    @field_validator("values")
    @classmethod
    def _shares(cls, values: dict[str, float]) -> dict[str, float]:
        if not values:
            raise ValueError("at least one category is needed")
        bad = [key for key, share in values.items() if not 0.0 <= share <= 1.0]
        if bad:
            raise ValueError(f"shares must lie in [0, 1]: {', '.join(bad)}")
        total = sum(values.values())
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise ValueError(f"shares add up to {total:.4f}, not 1")
        return values


class SexValues(_Frozen):
    female: float
    male: float


class BmiLimits(_Frozen):
    min: float = Field(gt=0)
    max: float = Field(gt=0)


class BmiAgeProfile(_Frozen):
    gain: float
    peak_age: float
    half_width: float = Field(gt=0)


class SystolicValues(_Frozen):
    female_at_45: float
    male_at_45: float
    per_year: float
    per_bmi: float
    sd: float = Field(gt=0)
    min: float
    max: float


class NonDiabeticGlucose(_Frozen):
    mean: float
    per_decade: float
    per_bmi: float
    sd: float = Field(gt=0)
    min: float
    max: float


class DiabeticGlucose(_Frozen):
    median: float = Field(gt=0)
    log_sd: float = Field(gt=0)
    min: float
    max: float


class ByAncestry(_Frozen):
    asian: float = Field(ge=0)
    non_asian: float = Field(ge=0)


class RiskCoefficients(_Frozen):
    """Log-odds terms of the diabetes model (the intercept is calibrated per population)."""

    age_per_decade: Figure
    bmi_per_unit: Figure
    bmi_pivot: Figure
    family_history: Figure
    systolic_per_10_mmhg: Figure
    systolic_pivot: Figure
    smoking: Figure
    male: Figure
    unobserved_sd: Sourced[ByAncestry]
    urban: Figure


class FastingGlucose(_Frozen):
    non_diabetic: Sourced[NonDiabeticGlucose]
    diabetic: Sourced[DiabeticGlucose]


class ModelParams(_Frozen):
    """Relationships shared by every population."""

    bmi_cv: Figure
    bmi_limits: Sourced[BmiLimits]
    bmi_age_profile: Sourced[BmiAgeProfile]
    bmi_urban_shift: Figure
    systolic_bp: Sourced[SystolicValues]
    family_history_relatives: Figure
    risk: RiskCoefficients
    fasting_glucose: FastingGlucose


class EthnicityParams(_Frozen):
    asian: bool
    bmi_risk_offset: Figure
    bmi_shift: Figure


class AgeBand(_Frozen):
    low: int
    high: int
    share: float


_BAND = re.compile(r"^(\d+)-(\d+)$")


def _parse_bands(values: dict[str, float]) -> tuple[AgeBand, ...]:
    bands = []
    for label, share in values.items():
        match = _BAND.match(label)
        if match is None:
            raise ValueError(f"age band {label!r} is not of the form LOW-HIGH")
        bands.append(AgeBand(low=int(match[1]), high=int(match[2]), share=share))
    bands.sort(key=lambda band: band.low)
    expected_low = AGE_MIN
    for band in bands:
        if band.low != expected_low or band.high < band.low:
            raise ValueError(f"age bands must tile {AGE_MIN}-{AGE_MAX} without gaps or overlaps")
        expected_low = band.high + 1
    if expected_low != AGE_MAX + 1:
        raise ValueError(f"age bands must end at {AGE_MAX}")
    return tuple(bands)


class PopulationParams(_Frozen):
    """Published make-up of one adult population."""

    name: str
    age_bands: ShareFigure
    female_share: Figure
    ethnicity: ShareFigure
    bmi_mean: Sourced[SexValues]
    urban_share: Figure
    smoking: Sourced[SexValues]
    diabetes_prevalence: Figure

    @field_validator("age_bands")
    @classmethod
    def _tiled(cls, figure: ShareFigure) -> ShareFigure:
        _parse_bands(figure.values)
        return figure

    @model_validator(mode="after")
    def _probabilities(self) -> PopulationParams:
        checks = {
            "female_share": self.female_share.value,
            "urban_share": self.urban_share.value,
            "smoking.female": self.smoking.values.female,
            "smoking.male": self.smoking.values.male,
        }
        for field, value in checks.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{field} must lie in [0, 1], got {value}")
        if not 0.0 < self.diabetes_prevalence.value < 1.0:
            raise ValueError("diabetes_prevalence must lie strictly between 0 and 1")
        return self

    @property
    def bands(self) -> tuple[AgeBand, ...]:
        """Age bands in ascending order."""
        return _parse_bands(self.age_bands.values)


class PopulationParamFile(_Frozen):
    schema_id: str = Field(alias="schema", pattern=r"^regsandbox/population-params/v\d+$")
    model: ModelParams
    ethnicities: dict[str, EthnicityParams]
    populations: dict[str, PopulationParams]
    reference: PopulationParams

    @model_validator(mode="after")
    def _consistent(self) -> PopulationParamFile:
        for code in self.populations:
            if not re.fullmatch(r"[A-Z]{2}", code):
                raise ValueError(f"population code {code!r} must be two upper-case letters (ISO 3166-1)")
        for code, population in {**self.populations, REFERENCE_CODE: self.reference}.items():
            unknown = sorted(set(population.ethnicity.values) - set(self.ethnicities))
            if unknown:
                raise ValueError(
                    f"{code}: ethnicities {', '.join(unknown)} are not described under ethnicities"
                )
        return self

    def population(self, code: str) -> PopulationParams:
        """The population for a country code, or the reference population for ``REF``."""
        if code == REFERENCE_CODE:
            return self.reference
        try:
            return self.populations[code]
        except KeyError:
            known = ", ".join(sorted(self.populations))
            raise DataError(f"unknown country code {code!r}; known: {known}") from None


@functools.cache
def load_population_params(path: Path = PARAMS_PATH) -> PopulationParamFile:
    """Read and validate the parameter file (cached per path)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"cannot read population parameters {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise DataError(f"{path} is not valid YAML: {exc}") from exc
    try:
        return PopulationParamFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise DataError(f"{path}: {problems}") from exc
