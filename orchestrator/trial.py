"""One trial's state and the steps that move it through its lifecycle.

The Prefect flow is a thin shell around these steps; keeping them here lets the CLI, the
API and tests share one implementation. A :class:`TrialContext` holds the live objects of a
running trial (sandbox, gateway, MLflow streamer); everything that must survive a crash is
found again from labels and the trial's work directory instead.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from orchestrator.errors import InjectedFaultError
from orchestrator.records import JurisdictionAssessment, TrialEvent, Verdict, utcnow
from orchestrator.settings import Settings
from orchestrator.spec import TrialSpec

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from monitors.base import Monitor, MonitorResult
    from orchestrator.backends import (
        Attestation,
        Endpoint,
        IsolationControl,
        Sandbox,
        SandboxBackend,
    )
    from orchestrator.backends.base import TeardownResult
    from orchestrator.data.prepare import PreparedData
    from orchestrator.gateway import Gateway
    from orchestrator.model_artifacts import ModelArtifact
    from orchestrator.reports import ReportPaths
    from orchestrator.resources import ResourceSampler
    from orchestrator.slots import Slot
    from orchestrator.tracking import MetricStreamer
    from orchestrator.workload import TrafficSink

logger = logging.getLogger("regsandbox.trial")
EXPERIMENT = "sandbox-trials"


def trial_id_for(name: str, run_id: str) -> str:
    """Trial ids derive from the flow run id, so crash hooks can recompute them."""
    return f"{name[:40]}-{run_id.replace('-', '')[:8]}"


class TrialContext:
    """Everything a running trial holds; filled in step by step."""

    def __init__(
        self,
        trial_id: str,
        spec: TrialSpec,
        settings: Settings,
        backend_name: str | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.trial_id = trial_id
        self.spec = spec
        self.settings = settings
        self.backend_name = backend_name or settings.backend
        self.workdir: Path = settings.trials_dir / trial_id
        self.started_at = utcnow()
        self.events: list[TrialEvent] = []
        self._log = log or logger.info
        self.state = "submitted"
        # Filled in by the steps:
        self.client: MlflowClient | None = None
        self.experiment_id: str | None = None
        self.run_id: str | None = None
        self.streamer: MetricStreamer | None = None
        self.model: ModelArtifact | None = None
        self.data: pd.DataFrame | None = None
        self.data_digest: str | None = None
        self.prepared: PreparedData | None = None
        self.backend: SandboxBackend | None = None
        self.sandbox: Sandbox | None = None
        self.slot: Slot | None = None
        self.attestation: Attestation | None = None
        self.refused_baseline: dict[str, int] | None = None
        self.processes_at_deploy: list[str] | None = None
        self.sampler: ResourceSampler | None = None
        self.endpoint: Endpoint | None = None
        self.gateway: Gateway | None = None
        self.developer_token: str | None = None
        self.evaluation_token: str = ""
        self.sink: TrafficSink | None = None
        self.monitors: list[Monitor] = []
        self.results: list[MonitorResult] = []
        self.values: dict[str, float | None] = {}
        self.intervals: dict[str, tuple[float, float]] = {}
        self.controls: list[IsolationControl] = []
        self.assessments: dict[str, JurisdictionAssessment] = {}
        self.teardown_result: TeardownResult | None = None
        self.error: dict[str, str] | None = None
        self.report: ReportPaths | None = None
        self.finished_at: dt.datetime | None = None

    def log(self, message: str) -> None:
        self._log(f"[{self.trial_id}] {message}")

    def event(self, kind: str, **detail: Any) -> None:
        self.events.append(TrialEvent(trial_id=self.trial_id, kind=kind, detail=detail))

    def enter(self, state: str, **detail: Any) -> None:
        """Record a lifecycle transition (an audit event) and fail here if a drill asks to."""
        self.state = state
        self.event(state, **detail)
        self.log(f"{state}" + (f": {detail}" if detail else ""))

    def checkpoint(self, step: str) -> None:
        if self.settings.fail_at == step:
            raise InjectedFaultError(
                f"trial {self.trial_id}: failure injected at step {step!r} (REGSANDBOX_FAIL_AT)"
            )

    def fail(self, step: str, exc: BaseException) -> None:
        self.error = {"step": step, "type": type(exc).__name__, "message": str(exc)[:4000]}
        self.event("error", **self.error)
        self.log(f"failed at {step}: {type(exc).__name__}: {exc}")

    @property
    def status(self) -> str:
        return "failed" if self.error else "completed"

    @property
    def verdicts(self) -> dict[str, Verdict]:
        return {code: a.verdict for code, a in self.assessments.items()}


class TrialOutcome(BaseModel):
    """What ``regsandbox trial run --json`` prints (the command-line contract)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trial_id: str
    status: str
    endpoint: str | None
    mlflow_run_id: str | None
    report: dict[str, str | None]
    verdicts: dict[str, Verdict]
    teardown_verified: bool
    error: str | None = None

    @classmethod
    def of(cls, ctx: TrialContext) -> TrialOutcome:
        paths = ctx.report
        return cls(
            trial_id=ctx.trial_id,
            status=ctx.status,
            endpoint=ctx.gateway.url if ctx.gateway and ctx.gateway.url else None,
            mlflow_run_id=ctx.run_id,
            report={
                "json": paths.json_ if paths else None,
                "html": paths.html if paths else None,
                "pdf": paths.pdf if paths else None,
                "signature": paths.signature if paths else None,
            },
            verdicts=ctx.verdicts,
            teardown_verified=bool(ctx.teardown_result and ctx.teardown_result.verified),
            error=f"{ctx.error['type']} at {ctx.error['step']}: {ctx.error['message']}"
            if ctx.error
            else None,
        )

    def save(self, workdir: Path) -> Path:
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / "outcome.json"
        path.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        return path
