"""The shape of a jurisdiction policy profile (``policies/<id>.yaml``) and of its criteria.

A profile file is a :class:`ProfileDocument`; :func:`orchestrator.policy.load_profile` resolves
its ``extends`` chain and ``overrides`` into a :class:`PolicyProfile`, whose criteria are the
complete, effective list that :func:`orchestrator.policy.assess` applies.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Comparator = Literal[">=", "<=", ">", "<", "between"]
# core: the shared harmonised profile; jurisdiction: a regulator's own profile;
# reference: a comparator (EU AI Act, IMDRF GMLP) that no participating regulator applies.
ProfileKind = Literal["core", "jurisdiction", "reference"]
Severity = Literal["blocking", "advisory"]
Provenance = Literal["sourced", "convention", "proposed"]
Threshold = float | tuple[float, float]

# Profile and criterion ids double as file names and stable references in reports.
ID_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
# Explicit metric keys only (``fairness/auroc_gap/ethnicity``); ``<attr>`` templates are not expanded.
METRIC_PATTERN = r"^[a-z0-9_]+(/[A-Za-z0-9_.-]+)+$"
SEMVER_PATTERN = r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def format_threshold(value: Threshold) -> str:
    """Render a threshold the way a regulator reads it: 0.80, 500, [0.80, 1.20]."""
    if isinstance(value, tuple):
        return f"[{format_threshold(value[0])}, {format_threshold(value[1])}]"
    if float(value).is_integer() and abs(value) >= 1:
        return str(int(value))
    return f"{value:.2f}" if round(value, 2) == value else f"{value:.4g}"


def _check_threshold_shape(comparator: Comparator, threshold: Threshold) -> None:
    if comparator == "between":
        if not isinstance(threshold, tuple):
            raise ValueError("comparator 'between' needs threshold [lo, hi]")
        if threshold[0] > threshold[1]:
            raise ValueError(f"threshold [lo, hi] has lo > hi: {list(threshold)}")
    elif isinstance(threshold, tuple):
        raise ValueError(f"comparator {comparator!r} needs a single number as threshold")


class Instrument(_Model):
    """A law, regulation or guideline the profile rests on."""

    title: str = Field(
        min_length=1, description="Name of the instrument, e.g. 'Medical Device Act 2012 (Act 737)'."
    )
    reference: str = Field(
        min_length=1, description="Citation or URL, marked '(secondary)' when not primary."
    )


class Criterion(_Model):
    """One requirement on one metric: ``observed <comparator> threshold``."""

    id: str = Field(pattern=ID_PATTERN, description="Id unique within the resolved profile, e.g. perf-auroc.")
    metric: str = Field(
        pattern=METRIC_PATTERN,
        description=(
            "Metric key as the monitors emit it; '<key>_ci_low' / '<key>_ci_high' read the bounds "
            "of that key's 95% CI."
        ),
    )
    comparator: Comparator = Field(description="How the observed value must relate to the threshold.")
    threshold: Threshold = Field(description="A number, or [lo, hi] (inclusive) for 'between'.")
    severity: Severity = Field(
        description="blocking: failing it fails the trial; advisory: makes it conditional."
    )
    provenance: Provenance = Field(
        description=(
            "sourced: set by a cited instrument; convention: industry practice; "
            "proposed: a default for the regional community to negotiate."
        )
    )
    reference: str = Field(min_length=1, description="Where the criterion or its threshold comes from.")
    description: str = Field(min_length=1, description="What the criterion protects against, in plain words.")
    inherited_from: str | None = Field(
        default=None,
        description="Profile that defined the criterion; filled in by the loader, never written in a file.",
    )

    @model_validator(mode="after")
    def _threshold_fits_comparator(self) -> Criterion:
        _check_threshold_shape(self.comparator, self.threshold)
        return self

    def holds(self, observed: float) -> bool:
        """Whether an observed value meets the criterion."""
        t = self.threshold
        if isinstance(t, tuple):
            return t[0] <= observed <= t[1]
        if self.comparator == ">=":
            return observed >= t
        if self.comparator == "<=":
            return observed <= t
        if self.comparator == ">":
            return observed > t
        return observed < t

    def describe(self) -> str:
        """The criterion as one phrase, e.g. ``perf/auroc >= 0.80``."""
        if self.comparator == "between":
            return f"{self.metric} between {format_threshold(self.threshold)}"
        return f"{self.metric} {self.comparator} {format_threshold(self.threshold)}"


class Requirement(_Model):
    """A requirement the sandbox cannot measure: it is listed, never assessed, never passed."""

    id: str = Field(pattern=ID_PATTERN, description="Id unique within the resolved profile.")
    reference: str = Field(min_length=1, description="Article, principle or guideline it comes from.")
    description: str = Field(min_length=1, description="What is required, in plain words.")
    evidence: str = Field(
        min_length=1,
        description="Where a reviewer finds the evidence (documentation, the trial's own record).",
    )


class CriterionOverride(_Model):
    """Tightens an inherited criterion: a stricter threshold, a higher severity, or both."""

    id: str = Field(pattern=ID_PATTERN, description="Id of the inherited criterion to tighten.")
    threshold: Threshold | None = Field(
        default=None, description="Stricter threshold, same shape as the original."
    )
    severity: Severity | None = Field(
        default=None, description="'blocking' to promote an advisory criterion."
    )
    provenance: Provenance | None = Field(default=None, description="Provenance of the tightened value.")
    reference: str = Field(min_length=1, description="Why this jurisdiction tightens the criterion.")
    description: str | None = Field(
        default=None, description="Replacement description, if the meaning shifts."
    )

    @model_validator(mode="after")
    def _changes_something(self) -> CriterionOverride:
        if self.threshold is None and self.severity is None:
            raise ValueError("an override must set threshold, severity or both")
        return self


class ProfileDocument(_Model):
    """One profile file, exactly as written."""

    id: str = Field(pattern=ID_PATTERN, description="Profile id; equals the file name without .yaml.")
    version: str = Field(pattern=SEMVER_PATTERN, description="Semantic version of the profile document.")
    jurisdiction: str = Field(
        pattern=r"^[A-Z]{2,8}$",
        description=(
            "Jurisdiction code (ISO 3166 alpha-2, ASEAN for the shared core, EU or IMDRF for reference "
            "profiles); unique across the policies folder."
        ),
    )
    kind: ProfileKind = Field(
        default="jurisdiction",
        description="core, jurisdiction, or reference (a comparator no participating regulator applies).",
    )
    name: str = Field(min_length=1, description="Human-readable profile name.")
    regulator: str = Field(min_length=1, description="Authority or authorities the profile speaks for.")
    instruments: list[Instrument] = Field(default_factory=list, description="Instruments cited.")
    languages: list[str] = Field(default_factory=list, description="Languages expected (BCP 47 codes).")
    extends: str | None = Field(
        default=None, pattern=ID_PATTERN, description="Id of the profile this one builds on."
    )
    criteria: list[Criterion] = Field(default_factory=list, description="Criteria this profile adds.")
    overrides: list[CriterionOverride] = Field(
        default_factory=list, description="Inherited criteria this profile tightens, by id."
    )
    requirements: list[Requirement] = Field(
        default_factory=list,
        description="Requirements outside the sandbox's measurements, left to documentary review.",
    )
    notes: list[str] = Field(
        default_factory=list, description="Facts that are not metric criteria (data governance)."
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> ProfileDocument:
        for what, ids in (
            ("criterion", [c.id for c in self.criteria]),
            ("override", [o.id for o in self.overrides]),
            ("requirement", [r.id for r in self.requirements]),
        ):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"duplicate {what} id(s): {', '.join(dupes)}")
        return self


class PolicyProfile(ProfileDocument):
    """A resolved profile: inherited criteria included, overrides applied, documents digested."""

    digest: str = Field(description="sha256 (hex) over the raw bytes of every file in the chain, base first.")
    chain: tuple[str, ...] = Field(
        description="Profile ids from this one up to the root of its extends chain."
    )
    source: str = Field(description="Path of this profile's file.")

    def criterion(self, criterion_id: str) -> Criterion:
        """The effective criterion with this id (KeyError when absent)."""
        for c in self.criteria:
            if c.id == criterion_id:
                return c
        raise KeyError(criterion_id)
