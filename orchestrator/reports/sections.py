"""Report sections added to ``regsandbox/exit-report/v1`` after its first release.

Every field here is optional and left out of the canonical JSON when unset (``exclude_if``),
so a report written before these sections existed still loads back to exactly its signed
bytes, and the schema change stays additive (v1). A failed trial simply lacks them.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

Sha256 = Annotated[str, Field(pattern=r"^(sha256:)?[0-9a-f]{64}$")]
Scalar = str | int | float | bool | None


def unset(value: object) -> bool:
    """Whether an additive field is left out of the stored JSON (``exclude_if``)."""
    return value is None


def as_utc(value: dt.datetime) -> dt.datetime:
    # A naive timestamp is ambiguous evidence; refuse it rather than guess the zone.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamps in an exit report must be timezone-aware")
    return value.astimezone(dt.UTC)


UtcDatetime = Annotated[dt.datetime, AfterValidator(as_utc)]


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelCard(Section):
    """What the developer declares about the model (CHAI Applied Model Card fields).

    Filled from the MLflow registry (registered-model and version descriptions and
    ``model_card.*`` tags) when the model comes from there; the platform did not verify it.
    """

    name: str | None = Field(default=None, description="Registered model name.")
    version: str | None = Field(default=None, description="Registered model version.")
    developer: str | None = Field(default=None, description="Organisation that developed the model.")
    release: str | None = Field(default=None, description="Release date or stage of this version.")
    summary: str | None = Field(default=None, description="What the model does, in the developer's words.")
    inputs: str | None = Field(default=None, description="Inputs the model expects.")
    outputs: str | None = Field(default=None, description="Outputs the model returns and how to read them.")
    training_data: str | None = Field(
        default=None, description="Summary of the data the model was fitted on."
    )
    risks: str | None = Field(default=None, description="Known risks, limitations and out-of-scope uses.")
    bias_mitigation: str | None = Field(default=None, description="Steps taken to find and reduce bias.")
    maintenance: str | None = Field(
        default=None, description="Who maintains the model and how it is updated."
    )
    source: str = Field(description="Where the card was read from, e.g. models:/diabetes-risk/3 (MLflow).")
    other: dict[str, str] = Field(default_factory=dict, description="Further model_card.* tags, verbatim.")


class RepresentativenessRow(Section):
    """How far one group's share of the trial data is from its share of the target population."""

    attribute: str = Field(description="Sensitive attribute, e.g. age_band.")
    group: str = Field(description="Group within the attribute, e.g. 60+.")
    observed_share: float = Field(ge=0.0, le=1.0, description="Share of the group in the trial data.")
    target_share: float = Field(ge=0.0, le=1.0, description="Share of the group in the target population.")
    difference: float = Field(ge=-1.0, le=1.0, description="observed_share - target_share.")

    @model_validator(mode="after")
    def _difference_is_observed_minus_target(self) -> RepresentativenessRow:
        # One sign convention for every producer, so a regulator never has to guess it.
        if not math.isclose(self.difference, self.observed_share - self.target_share, abs_tol=1e-6):
            raise ValueError("difference must equal observed_share - target_share")
        return self


class ApprovedDataset(Section):
    """The approved (non-synthetic) dataset a trial was run on, as admitted."""

    path: str = Field(description="Where the dataset was read from, as named in the spec.")
    sha256: Sha256 = Field(description="sha256 of the dataset file as approved.")
    approval_ref: str = Field(description="Ethics or data-access approval reference, e.g. IRB-2026-113.")
    rows: int = Field(ge=0, description="Number of rows in the approved dataset.")
    format: str = Field(description="File format, e.g. parquet or csv.")
    size_bytes: int | None = Field(default=None, ge=0, description="Size of the file in bytes.")
    columns: list[str] | None = Field(default=None, description="Columns read, in file order.")


class ContractCheck(Section):
    """One expectation of the data contract and its outcome."""

    name: str = Field(description="Expectation, e.g. expect_column_values_to_be_between.")
    column: str | None = Field(default=None, description="Column checked, when the check is per column.")
    success: bool = Field(description="Whether the expectation held.")
    detail: str = Field(default="", description="Observed value or the reason it failed.")
    severity: Literal["blocking", "advisory"] | None = Field(
        default=None, description="blocking stops the trial; advisory is reported only."
    )


class FailureCase(Section):
    """One evaluation case the model got wrong, verbatim (in the local language where relevant)."""

    case_id: str = Field(description="Evaluation case id, linking to the traffic record.")
    expected: Scalar = Field(description="Ground truth or expected answer.")
    predicted: Scalar = Field(description="What the model returned.")
    note: str = Field(default="", description="Why the case matters, e.g. subgroup or error kind.")
    language: str | None = Field(default=None, description="BCP 47 language of the case text, if any.")


class EvaluationPack(Section):
    """One evaluation pack a chat trial ran: what it measures and how it was graded."""

    id: str = Field(description="Pack id, e.g. medical-qa.")
    version: str = Field(description="Version of the pack's items.")
    title: str = Field(description="What the pack is.")
    measures: str = Field(description="What it measures and how a case passes.")
    grader: str = Field(description="Grader that scored its cases.")
    exact: bool = Field(description="False when the grader is a heuristic.")
    languages: list[str] = Field(description="Languages of the cases run.")
    cases: int = Field(ge=0, description="Cases run.")
    licence: str = Field(description="Licence of the items.")
    notice: str = Field(description="Whether the items are samples awaiting clinical review.")
    sha256: Sha256 = Field(description="sha256 over the pack's manifest and items files.")


class Incident(Section):
    """Something notable that happened while the sandbox ran (isolation, availability, security)."""

    kind: str = Field(description="Category, e.g. isolation, availability, resource.")
    description: str = Field(description="What happened and what it affected.")
    at: UtcDatetime | None = Field(default=None, description="When it happened (UTC), if known.")


class MonitoringItem(Section):
    """One post-market monitoring commitment: what is watched, when it triggers, what follows."""

    metric: str = Field(description="Metric key or signal watched in use, e.g. perf/auroc, drift/psi.")
    trigger: str = Field(description="Condition that triggers action, e.g. < 0.80 over 3 months.")
    frequency: str = Field(default="", description="How often it is measured.")
    action: str = Field(default="", description="What happens when it triggers.")


class PlannedChange(Section):
    """A modification the developer plans within a change-control plan (PCCP style)."""

    description: str = Field(description="The planned modification.")
    protocol: str = Field(default="", description="How the modification will be developed and validated.")
    impact: str = Field(default="", description="Impact assessment: benefits, risks and their controls.")
    retrial: bool = Field(default=True, description="Whether the change needs a new sandbox trial.")


class PostMarketSection(Section):
    """Post-market monitoring plan and change-control notes agreed for the model."""

    monitoring: list[MonitoringItem] = Field(default_factory=list, description="Monitoring commitments.")
    planned_changes: list[PlannedChange] = Field(default_factory=list, description="Planned changes.")
    notes: list[str] = Field(default_factory=list, description="Further notes, verbatim.")
