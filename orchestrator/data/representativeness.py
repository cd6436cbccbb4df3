"""Does the trial data look like the population the model is meant for?

:func:`compare_makeup` sets the share of each group (by country, sex, age band, ethnicity ...)
in the trial data beside the share declared for the target population. :func:`default_target`
derives that target from the published figures behind the SEA generator
(``sea_population.yaml``), weighting each country by the trial's country weights, so a trial
whose sponsor declared nothing is still compared with the populations it claims to serve.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.data.population_params import AgeBand, PopulationParamFile, load_population_params
from orchestrator.data.synthetic import AGE_BANDS
from orchestrator.errors import DataError

Target = dict[str, dict[str, float]]
_BAND_LABEL = re.compile(r"^(\d+)(?:-(\d+)|\+)$")


class MakeupComparison(BaseModel):
    """One group's share in the trial data against its share in the target population."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attribute: str = Field(description="Attribute (column), e.g. country.")
    group: str = Field(description="Group within the attribute, e.g. TH.")
    observed_share: float = Field(ge=0.0, le=1.0, description="Fraction of the trial's rows in the group.")
    target_share: float = Field(ge=0.0, le=1.0, description="Fraction of the target population in the group.")
    difference: float = Field(description="observed_share - target_share (positive: over-represented).")


def _normalised(attribute: str, shares: Mapping[str, float]) -> dict[str, float]:
    values = {str(group): float(share) for group, share in shares.items()}
    bad = [group for group, share in values.items() if not math.isfinite(share) or share < 0]
    if bad:
        raise DataError(f"target shares of {attribute} must be finite and >= 0: {', '.join(bad)}")
    total = sum(values.values())
    if total <= 0:
        raise DataError(f"target shares of {attribute} add up to zero")
    return {group: share / total for group, share in values.items()}


def compare_makeup(frame: pd.DataFrame, target: Mapping[str, Mapping[str, float]]) -> list[MakeupComparison]:
    """Observed against target share for every group of every attribute in ``target``.

    Target shares are normalised per attribute. Observed shares are fractions of all rows (rows
    with no value count in the denominator only). Groups appear in target order, then groups seen
    in the data but absent from the target (target share 0).
    """
    missing = [attribute for attribute in target if attribute not in frame.columns]
    if missing:
        raise DataError(f"cannot compare make-up: data has no column(s) {', '.join(missing)}")
    rows: list[MakeupComparison] = []
    total = len(frame)
    for attribute, shares in target.items():
        expected = _normalised(attribute, shares)
        counts = frame[attribute].dropna().astype(str).value_counts()
        unexpected = sorted(group for group in counts.index if group not in expected)
        for group in [*expected, *unexpected]:
            observed = float(counts.get(group, 0)) / total if total else 0.0
            share = expected.get(group, 0.0)
            rows.append(
                MakeupComparison(
                    attribute=attribute,
                    group=group,
                    observed_share=observed,
                    target_share=share,
                    difference=observed - share,
                )
            )
    return rows


def _band_limits(label: str) -> tuple[int, float]:
    match = _BAND_LABEL.match(label)
    if match is None:
        raise DataError(f"age band label {label!r} is neither LOW-HIGH nor LOW+")
    return int(match[1]), float(match[2]) if match[2] else math.inf


def _age_band_shares(bands: Iterable[AgeBand], labels: Iterable[str]) -> dict[str, float]:
    # Ages are uniform integers within a published band, so a band straddling a label's limits is
    # split by the number of ages on each side.
    limits = {label: _band_limits(label) for label in labels}
    shares = dict.fromkeys(limits, 0.0)
    for band in bands:
        ages = band.high - band.low + 1
        for label, (low, high) in limits.items():
            overlap = min(band.high, high) - max(band.low, low) + 1
            if overlap > 0:
                shares[label] += band.share * overlap / ages
    return shares


def default_target(
    countries: Mapping[str, float],
    params: PopulationParamFile | None = None,
    age_bands: Iterable[str] = AGE_BANDS,
) -> Target:
    """Target make-up by country, sex, age band and ethnicity for the weighted mix of ``countries``.

    Each country's published figures (sex ratio, age structure, ethnic mix) are weighted by its
    normalised weight; unknown country codes are a DataError naming the known ones.
    """
    params = params or load_population_params()
    unknown = sorted(code for code in countries if code not in params.populations)
    if unknown:
        known = ", ".join(params.populations)
        raise DataError(f"no population figures for {', '.join(unknown)}; known: {known}")
    weights = _normalised("country", countries)
    labels = list(age_bands)
    target: Target = {
        "country": dict(weights),
        "sex": {},
        "age_band": dict.fromkeys(labels, 0.0),
        "ethnicity": {},
    }
    female = 0.0
    for code, weight in weights.items():
        population = params.population(code)
        female += weight * population.female_share.value
        for label, share in _age_band_shares(population.bands, labels).items():
            target["age_band"][label] += weight * share
        ethnicity = _normalised(f"{code} ethnicity", population.ethnicity.values)
        for group, share in ethnicity.items():
            target["ethnicity"][group] = target["ethnicity"].get(group, 0.0) + weight * share
    target["sex"] = {"female": female, "male": 1.0 - female}
    # Published age shares are rounded; renormalise so the target adds up to one.
    target["age_band"] = _normalised("age_band", target["age_band"])
    return target
