"""The canonical exit report (``regsandbox/exit-report/v1``) and its exact byte form.

The JSON produced by :func:`canonical_json` is the artefact regulators receive and the
bytes the issuer signs; HTML and PDF are renderings of it. Sections a trial may never reach
(a failure while provisioning has no metrics, no endpoint, maybe no model digest) are
optional, so that every trial, whatever its fate, ends with a report that says how far it got.
Sections added after v1 was first published (:mod:`orchestrator.reports.sections`) are left out
of the JSON when unset, so earlier reports keep loading back to exactly their signed bytes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitors.base import MonitorResult
from orchestrator.coverage import EvidenceCoverage
from orchestrator.errors import RegSandboxError
from orchestrator.records import JurisdictionAssessment, TrialEvent, TrialStatus, Verdict, utcnow
from orchestrator.reports.sections import (
    ApprovedDataset,
    ContractCheck,
    EvaluationPack,
    FailureCase,
    Incident,
    ModelCard,
    PostMarketSection,
    RepresentativenessRow,
    Section,
    Sha256,
    UtcDatetime,
    as_utc,
    unset,
)

SCHEMA_ID: Final = "regsandbox/exit-report/v1"


class ReportIntegrityError(RegSandboxError, ValueError):
    """A report cannot be represented, written or verified faithfully."""


class TrialSection(Section):
    """What was trialled, for whom and under which spec."""

    name: str = Field(description="Trial name (slug) from the spec.")
    sponsor: str = Field(description="Organisation that submitted the candidate model.")
    intended_use: str = Field(description="Intended use statement, as submitted.")
    risk_class: str = Field(description="Risk class claimed in the spec (ASEAN AMDD A-D).")
    jurisdictions: list[str] = Field(description="Jurisdiction codes whose profiles assess the trial.")
    spec: dict[str, Any] = Field(description="The full trial spec as JSON, exactly as run.")
    imdrf_category: Literal["I", "II", "III", "IV"] | None = Field(
        default=None, exclude_if=unset, description="IMDRF SaMD category (significance x situation)."
    )


class ModelSection(Section):
    """The candidate model and the image it was served from."""

    uri: str = Field(description="Model URI from the spec, e.g. models:/diabetes-risk@candidate.")
    resolved: str | None = Field(default=None, description="Resolved URI, e.g. models:/diabetes-risk/3.")
    digest: Sha256 | None = Field(default=None, description="sha256 over the model files as deployed.")
    template: str = Field(description="Sandbox template that served the model.")
    image: str | None = Field(default=None, description="Image reference (None for the process backend).")
    image_digest: str | None = Field(default=None, description="Content digest of the image, e.g. sha256:...")
    flavors: list[str] = Field(default_factory=list, description="MLflow flavours the model declares.")


class MakeupRow(Section):
    """One group's share of the trial data along one sensitive attribute."""

    attribute: str = Field(description="Sensitive attribute, e.g. country.")
    group: str = Field(description="Group within the attribute, e.g. TH.")
    n: int = Field(ge=0, description="Number of cases in the group.")
    share: float = Field(ge=0.0, le=1.0, description="Fraction of all cases in the group.")


class DataValidation(Section):
    """Outcome of the data-quality suite run on the trial data."""

    suite: str = Field(description="Expectation suite applied, e.g. clinical-tabular.")
    source: str | None = Field(
        default=None,
        exclude_if=unset,
        description="The contract file (path and sha256) the suite was read from; unset when built in.",
    )
    success: bool = Field(description="Whether every expectation held.")
    evaluated: int = Field(ge=0, description="Number of expectations evaluated.")
    failures: list[str] = Field(default_factory=list, description="One line per failed expectation.")
    checks: list[ContractCheck] | None = Field(
        default=None, exclude_if=unset, description="Every expectation of the data contract and its outcome."
    )


class DataSection(Section):
    """Where the evaluation data came from and what it looked like."""

    source: Literal["synthetic", "approved", "packs"] = Field(
        description="Synthetic population, approved dataset, or evaluation packs (chat models)."
    )
    generator: str | None = Field(default=None, description="Synthetic generator name, when synthetic.")
    rows: int = Field(ge=0, description="Number of cases used.")
    seed: int | None = Field(default=None, description="Generator seed, when synthetic.")
    digest: Sha256 = Field(description="sha256 of the data exactly as used.")
    label: str = Field(description="Ground-truth column.")
    sensitive_attributes: list[str] = Field(description="Attributes used for subgroup analysis.")
    makeup: list[MakeupRow] = Field(default_factory=list, description="Demographic make-up of the data.")
    approval_ref: str | None = Field(default=None, description="Ethics/data approval reference, if any.")
    validation: DataValidation | None = Field(default=None, description="Data-quality validation outcome.")
    provenance: ApprovedDataset | None = Field(
        default=None, exclude_if=unset, description="The approved dataset as admitted (approved source only)."
    )
    representativeness: list[RepresentativenessRow] | None = Field(
        default=None, exclude_if=unset, description="Group shares in the trial data vs the target population."
    )
    packs: list[EvaluationPack] | None = Field(
        default=None, exclude_if=unset, description="Evaluation packs run (source: packs)."
    )


class IsolationControl(Section):
    """One isolation control and whether it was actually in force."""

    control: str = Field(description="Control name, e.g. no-egress network, read-only root filesystem.")
    applied: bool = Field(description="Whether the control was observed in force on the running sandbox.")
    detail: str = Field(default="", description="How it was applied or why it could not be.")


class IsolationSection(Section):
    """The isolation the sandbox actually had, as verified, not as requested."""

    backend: str = Field(description="Isolation backend: docker, kubernetes or process.")
    level: str = Field(description="Isolation level achieved, e.g. container or process.")
    controls: list[IsolationControl] = Field(default_factory=list, description="Controls and their state.")
    verified: bool = Field(description="Whether every control was checked on the running sandbox.")
    notes: list[str] = Field(default_factory=list, description="Caveats, e.g. weaker isolation of process.")


class EndpointSection(Section):
    """The developer endpoint; the token itself never appears in a report."""

    url: str | None = Field(default=None, description="Endpoint URL handed to the developer.")
    token_hint: str | None = Field(
        default=None, max_length=12, description="Last characters of the token, to tell tokens apart."
    )


def _finite_values(values: dict[str, float | None]) -> dict[str, float | None]:
    # JSON has no NaN: a metric that could not be computed is recorded as None.
    return {k: (v if v is None or math.isfinite(v) else None) for k, v in values.items()}


def _finite_intervals(values: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    return {k: v for k, v in values.items() if all(math.isfinite(x) for x in v)}


class MetricsSection(Section):
    """Summary metric values the policy profiles were assessed against."""

    values: dict[str, float | None] = Field(description="Metric key -> value; None means not computable.")
    intervals: dict[str, tuple[float, float]] = Field(default_factory=dict, description="Key -> 95% CI.")

    _clean_values = field_validator("values")(_finite_values)
    _clean_intervals = field_validator("intervals")(_finite_intervals)


class OperationsSection(Section):
    """Traffic counts through the gateway."""

    requests: int = Field(ge=0, description="Requests served during the trial, all origins.")
    errors: int = Field(ge=0, description="Requests that ended in an error status.")
    developer_requests: int = Field(ge=0, description="Requests sent by the developer, not the evaluation.")
    resources: dict[str, float] | None = Field(
        default=None,
        exclude_if=unset,
        description="Resource use of the sandbox, e.g. peak_memory_mb, memory_limit_mb, cpu_seconds.",
    )
    incidents: list[Incident] | None = Field(
        default=None, exclude_if=unset, description="Isolation, availability and security events observed."
    )


class MlflowSection(Section):
    """Where the streamed metrics and artefacts of the trial live."""

    tracking_uri: str = Field(description="MLflow tracking URI.")
    experiment_id: str = Field(description="MLflow experiment id.")
    run_id: str = Field(description="MLflow run id of the trial.")
    # http(s) only: the HTML rendering turns it into a link, and other schemes could run script.
    run_url: str | None = Field(
        default=None, pattern=r"^https?://", description="Link to the run in the MLflow UI, when served."
    )


class TeardownSection(Section):
    """Whether the sandbox and everything labelled with the trial is gone."""

    verified: bool = Field(description="True when a post-teardown sweep found nothing left.")
    detail: dict[str, Any] = Field(default_factory=dict, description="What was removed and what was checked.")


class ErrorSection(Section):
    """Why a trial stopped early."""

    step: str = Field(description="Trial step that failed, e.g. provision.")
    type: str = Field(description="Exception type name.")
    message: str = Field(description="Error message.")


class ReproducibilitySection(Section):
    """What is needed to re-run the trial and obtain the same evidence."""

    versions: dict[str, str] = Field(default_factory=dict, description="Python and package versions.")
    seeds: dict[str, int] = Field(default_factory=dict, description="Every seed used, by purpose.")
    digests: dict[str, str] = Field(default_factory=dict, description="Digests of profiles, packs, data.")


class ExitReport(Section):
    """The exit report of one trial: the evidence, each jurisdiction's verdict and the audit trail."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True)

    schema_: Literal["regsandbox/exit-report/v1"] = Field(
        default=SCHEMA_ID, alias="schema", description="Report format identifier and version."
    )
    trial_id: str = Field(min_length=1, description="Platform id of the trial.")
    status: TrialStatus = Field(description="Terminal state of the trial.")
    created_at: UtcDatetime = Field(default_factory=utcnow, description="When the report was assembled.")
    started_at: UtcDatetime | None = Field(default=None, description="When the trial run started (UTC).")
    finished_at: UtcDatetime | None = Field(default=None, description="When the trial run ended (UTC).")
    trial: TrialSection = Field(description="Trial identity and spec.")
    model: ModelSection | None = Field(default=None, description="Candidate model, once resolved.")
    data: DataSection | None = Field(default=None, description="Evaluation data, once prepared.")
    isolation: IsolationSection | None = Field(default=None, description="Isolation, once provisioned.")
    endpoint: EndpointSection | None = Field(default=None, description="Developer endpoint, once deployed.")
    metrics: MetricsSection | None = Field(default=None, description="Summary metrics, once observed.")
    monitors: list[MonitorResult] = Field(default_factory=list, description="Each monitor's final result.")
    assessments: list[JurisdictionAssessment] = Field(
        default_factory=list, description="Each jurisdiction's assessment under its policy profile."
    )
    verdicts: dict[str, Verdict] = Field(default_factory=dict, description="Jurisdiction code -> verdict.")
    operations: OperationsSection | None = Field(default=None, description="Gateway traffic counts.")
    mlflow: MlflowSection | None = Field(default=None, description="MLflow run holding the streamed metrics.")
    teardown: TeardownSection = Field(description="Teardown outcome; present on every path.")
    events: list[TrialEvent] = Field(default_factory=list, description="Audit events of the trial, in order.")
    error: ErrorSection | None = Field(default=None, description="Why the trial failed, when it did.")
    reproducibility: ReproducibilitySection = Field(
        default_factory=ReproducibilitySection, description="Versions, seeds and digests."
    )
    # Additive v1 sections: absent from reports written before them, and omitted when unset.
    model_card: ModelCard | None = Field(
        default=None, exclude_if=unset, description="Developer's model card (CHAI Applied Model Card fields)."
    )
    failure_cases: list[FailureCase] | None = Field(
        default=None, exclude_if=unset, description="Evaluation cases the model got wrong, verbatim."
    )
    post_market: PostMarketSection | None = Field(
        default=None, exclude_if=unset, description="Post-market monitoring plan and change-control notes."
    )
    evidence: EvidenceCoverage | None = Field(
        default=None,
        exclude_if=unset,
        description="Cases sent and answered, each distinct error with its count, and what that means.",
    )

    @field_validator("monitors")
    @classmethod
    def _finite_monitors(cls, value: list[MonitorResult]) -> list[MonitorResult]:
        clean = [
            {"values": _finite_values(m.values), "intervals": _finite_intervals(m.intervals)} for m in value
        ]
        return [m.model_copy(update=u) for m, u in zip(value, clean, strict=True)]

    @field_validator("events")
    @classmethod
    def _aware_events(cls, value: list[TrialEvent]) -> list[TrialEvent]:
        return [e if e.at.tzinfo == dt.UTC else e.model_copy(update={"at": as_utc(e.at)}) for e in value]

    @model_validator(mode="after")
    def _consistent(self) -> ExitReport:
        if self.status == "failed" and self.error is None:
            raise ValueError("a failed trial's report must say why (error)")
        if self.status == "completed" and self.error is not None:
            raise ValueError("a completed trial cannot carry an error")
        from_assessments = {a.jurisdiction: a.verdict for a in self.assessments}
        if len(from_assessments) != len(self.assessments):
            raise ValueError("each jurisdiction may be assessed only once")
        if self.verdicts != from_assessments:
            raise ValueError("verdicts must equal the assessments' verdicts, jurisdiction by jurisdiction")
        if self.started_at and self.finished_at and self.finished_at < self.started_at:
            raise ValueError("finished_at precedes started_at")
        return self


def _jsonable(value: Any, path: str) -> Any:
    """Plain JSON data with one spelling per value, so that the signed bytes are reproducible."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        # Free-form evidence tables may carry NaN (e.g. AUROC of a one-class subgroup): no value.
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dt.datetime):
        return as_utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return _jsonable(value.model_dump(mode="python", by_alias=True), path)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "dtype") and hasattr(value, "item"):  # numpy scalars and 0-d arrays from monitors
        return _jsonable(value.item(), path)
    raise ReportIntegrityError(f"{path}: {type(value).__name__} has no JSON form in an exit report")


def canonical_json(report: ExitReport) -> bytes:
    """The exact bytes that are stored and signed: sorted keys, no whitespace, UTF-8, UTC ``Z`` times."""
    data = _jsonable(report.model_dump(mode="python", by_alias=True), "report")
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def parse_report(data: bytes) -> ExitReport:
    """Parse report bytes; raises ``ReportIntegrityError`` when they are not a v1 exit report."""
    try:
        return ExitReport.model_validate_json(data)
    except ValueError as exc:
        raise ReportIntegrityError(f"not a valid {SCHEMA_ID} document: {exc}") from exc


def load_report(path: Path | str) -> ExitReport:
    """Read and validate a stored ``report.json``."""
    return parse_report(Path(path).read_bytes())
