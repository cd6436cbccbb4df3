"""Records that cross module boundaries: traffic, audit events, assessment outcomes.

They are frozen pydantic models so that what the gateway captured, what the flow did and
what the policy engine concluded cannot be changed after the fact, and so that each one
serialises the same way into MLflow, the platform store and the exit report.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["pass", "fail", "insufficient evidence"]
Verdict = Literal["pass", "conditional", "fail"]
TrialStatus = Literal["completed", "failed", "cancelled"]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TrafficRecord(_Record):
    """One request through the gateway and the model's answer to it."""

    trial_id: str = Field(description="Trial the request belongs to.")
    request_id: str = Field(description="Unique id the gateway gave the request.")
    timestamp: dt.datetime = Field(description="When the gateway received the request (UTC).")
    latency_ms: float = Field(description="Time from receipt to the model's last byte, in ms.")
    status: int = Field(description="HTTP status returned to the caller (502/504 when the model failed).")
    path: str = Field(description="Path requested, e.g. /invocations.")
    origin: Literal["developer", "evaluation"] = Field(description="Who sent the request.")
    case_ids: list[str] | None = Field(
        default=None, description="Evaluation cases carried by the request, linking it to ground truth."
    )
    request: Any = Field(default=None, description="Request payload (or its digest, by capture policy).")
    response: Any = Field(default=None, description="Response payload (or its digest, by capture policy).")
    error: str | None = Field(default=None, description="Why the gateway could not get an answer.")


class TrialEvent(_Record):
    """One audit event in a trial's life: a state transition or a notable fact."""

    trial_id: str
    at: dt.datetime = Field(default_factory=utcnow)
    kind: str = Field(
        description="State entered (admitted, provisioned ...) or event name (error, teardown)."
    )
    detail: dict[str, Any] = Field(default_factory=dict)


class CriterionOutcome(_Record):
    """One policy criterion applied to the observed evidence."""

    criterion_id: str = Field(description="Id of the criterion within its profile.")
    metric: str = Field(description="Metric key, e.g. perf/auroc.")
    comparator: Literal[">=", "<=", ">", "<", "between"]
    threshold: float | tuple[float, float]
    severity: Literal["blocking", "advisory"]
    provenance: Literal["sourced", "convention", "proposed"]
    reference: str = Field(description="Where the criterion or its threshold comes from.")
    observed: float | None = Field(description="Observed value; None when the evidence was insufficient.")
    interval: tuple[float, float] | None = Field(default=None, description="95% CI of the observed value.")
    outcome: Outcome
    inherited_from: str | None = Field(default=None, description="Profile the criterion was inherited from.")


class JurisdictionAssessment(_Record):
    """A jurisdiction's verdict on the trial under its policy profile."""

    jurisdiction: str = Field(description="Jurisdiction code, e.g. SG.")
    profile_id: str
    profile_version: str
    profile_digest: str = Field(description="sha256 of the profile document(s) applied.")
    verdict: Verdict
    rule: str = Field(description="The rule that produced the verdict, in words.")
    criteria: list[CriterionOutcome]
