"""What each step of a trial established, as frozen records, and the trial's outcome.

Every step returns one record; the lifecycle collects them in :class:`TrialRecords`, replacing
the whole collection rather than changing it, so a record once made never changes. The exit
report is built from these records alone (with the trial's event journal), which is what lets
a report be rebuilt, or a trial re-assessed, from what was stored.
"""

from __future__ import annotations

import datetime as dt
import enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.backends.attestation import Attestation
from orchestrator.backends.base import Endpoint, IsolationControl, Sandbox, TeardownResult
from orchestrator.coverage import EvidenceCoverage
from orchestrator.data.prepare import PreparedData
from orchestrator.data.reference import Reference
from orchestrator.evaluation.packs import PackData
from orchestrator.model_artifacts import ModelArtifact
from orchestrator.policy_models import PolicyProfile
from orchestrator.records import JurisdictionAssessment, Verdict
from orchestrator.reports.sections import FailureCase
from orchestrator.templates import Template

if TYPE_CHECKING:
    from monitors.base import MonitorResult


class TrialStatus(enum.StrEnum):
    """How a trial ended; :func:`status_of` is the one place that decides it."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class MlflowRun(_Record):
    tracking_uri: str = Field(description="Tracking server or store holding the run.")
    experiment_id: str
    run_id: str


class Admission(_Record):
    """The trial may run: its template, evaluation kind, profiles and backend are known."""

    template: Template = Field(description="The sandbox template that serves the model, loaded once.")
    kind: str = Field(description="Evaluation kind the template serves (tabular, chat ...).")
    profiles: dict[str, PolicyProfile] = Field(description="Jurisdiction code -> its policy profile.")
    backend: str = Field(description="Isolation backend actually used (auto resolved).")
    mlflow: MlflowRun | None = Field(default=None, description="The trial's MLflow run, once opened.")


class DataReady(_Record):
    """The data as used and what its checks found; the model fetched and fingerprinted."""

    prepared: PreparedData | None = Field(default=None, description="Tabular data (synthetic or approved).")
    packs: PackData | None = Field(default=None, description="Evaluation packs (chat trials).")
    model: ModelArtifact | None = Field(
        default=None, description="None when the data stopped the trial before the model was fetched."
    )
    reference: Reference | None = Field(
        default=None, description="The population drift is measured against, or why there is none."
    )

    @property
    def cases(self) -> int:
        if self.packs is not None:
            return self.packs.cases
        return self.prepared.rows if self.prepared is not None else 0

    @property
    def sha256(self) -> str | None:
        if self.packs is not None:
            return self.packs.sha256
        return self.prepared.sha256 if self.prepared is not None else None


class Provisioned(_Record):
    sandbox: Sandbox
    slot: int = Field(description="Host sandbox slot the trial holds.")
    seconds: float
    queued_s: float = Field(default=0.0, description="Seconds the trial waited for a free sandbox slot.")


class Attested(_Record):
    attestation: Attestation
    refused_baseline: dict[str, int] | None = Field(
        default=None, description="Refused connections counted by the probes themselves, subtracted later."
    )


class Deployment(_Record):
    endpoint: Endpoint = Field(description="Where the model answers inside the sandbox.")
    controls: list[IsolationControl] = Field(description="Protections read back from the engine.")
    processes_at_deploy: list[str] | None = Field(description="The healthy server's processes.")
    gateway_url: str = Field(description="The developer endpoint.")
    token_hint: str = Field(description="Last characters of the developer token (never the token).")


class Workload(_Record):
    requests: int = Field(description="Evaluation requests sent.")
    steps: int = Field(description="Monitor update steps streamed.")
    points: int = Field(description="Metric points produced by the monitors.")
    failure_cases: list[FailureCase] = Field(description="The worst misses, verbatim.")
    coverage: EvidenceCoverage | None = Field(
        default=None, description="Cases answered, each distinct error, and what that means for verdicts."
    )


class Observation(_Record):
    results: list[Any] = Field(description="Each monitor's final result (monitors.base.MonitorResult).")
    values: dict[str, float | None]
    intervals: dict[str, tuple[float, float]]
    streamed: dict[str, Any] = Field(description="The metric streamer's final counts.")


class Assessment(_Record):
    assessments: dict[str, JurisdictionAssessment]

    @property
    def verdicts(self) -> dict[str, Verdict]:
        return {code: a.verdict for code, a in self.assessments.items()}


class Teardown(_Record):
    result: TeardownResult
    traffic: dict[str, int] = Field(description="Requests by origin, and errors.")
    refused_connections: float | None = Field(description="Connections refused after attestation.")
    resources: dict[str, float | None] | None = Field(description="Peak resource use, when sampled.")


class StepError(_Record):
    step: str
    type: str
    message: str


class TrialRecords(_Record):
    """Everything the trial established so far, one record per step."""

    admission: Admission | None = None
    data: DataReady | None = None
    provisioned: Provisioned | None = None
    attested: Attested | None = None
    deployment: Deployment | None = None
    workload: Workload | None = None
    observation: Observation | None = None
    assessment: Assessment | None = None
    teardown: Teardown | None = None
    error: StepError | None = None
    cancelled: bool = False

    def need(self, name: str) -> Any:
        """The record a step relies on; its absence is a bug in the step order, said plainly."""
        found = getattr(self, name)
        if found is None:
            raise RuntimeError(f"step order broken: no {name} record yet")
        return found

    def monitor_results(self) -> list[MonitorResult]:
        return list(self.observation.results) if self.observation else []


def with_record(exc: Exception, record: _Record) -> Exception:
    """Attach what a step established before it failed; the lifecycle keeps it for the report."""
    exc.record = record  # type: ignore[attr-defined]
    return exc


def status_of(records: TrialRecords) -> TrialStatus:
    if records.cancelled:
        return TrialStatus.CANCELLED
    return TrialStatus.FAILED if records.error else TrialStatus.COMPLETED


class TrialOutcome(BaseModel):
    """What ``regsandbox trial run --json`` prints (the command-line contract)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trial_id: str
    status: TrialStatus
    endpoint: str | None
    mlflow_run_id: str | None
    report: dict[str, str | None]
    verdicts: dict[str, Verdict]
    teardown_verified: bool
    error: str | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    def save(self, workdir: Path) -> Path:
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / "outcome.json"
        path.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        return path
