"""A running trial: who it is, what it has logged, and the live objects teardown must close.

:class:`Trial` is what every step receives. Its identity (id, spec, settings, work directory)
never changes; its records are replaced only by the lifecycle, one step at a time; the
:class:`LiveHandles` hold what is running (gateway, resource sampler, metric streamer, host slot,
sandbox) so that one ``close`` stops it all on any path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import progress
from orchestrator.errors import TrialCancelledError
from orchestrator.records import TrialEvent, utcnow
from orchestrator.settings import Settings
from orchestrator.spec import TrialSpec
from orchestrator.trial_records import TrialRecords

if TYPE_CHECKING:
    import datetime as dt

    from mlflow import MlflowClient

    from orchestrator.backends import Sandbox, SandboxBackend
    from orchestrator.evaluation import Evaluation
    from orchestrator.gateway import Gateway
    from orchestrator.resources import ResourceSampler
    from orchestrator.slots import Slot
    from orchestrator.tracking import MetricStreamer
    from orchestrator.workload import TrafficSink

logger = logging.getLogger("regsandbox.trial")
EXPERIMENT = "sandbox-trials"


def trial_id_for(name: str, run_id: str) -> str:
    """Trial ids derive from the flow run id, so crash hooks can recompute them."""
    return f"{name[:40]}-{run_id.replace('-', '')[:8]}"


@dataclass
class LiveHandles:
    """What is running for the trial right now; ``close`` stops all of it and is idempotent."""

    backend: SandboxBackend | None = None
    sandbox: Sandbox | None = None
    slot: Slot | None = None
    client: MlflowClient | None = None
    streamer: MetricStreamer | None = None
    gateway: Gateway | None = None
    sink: TrafficSink | None = None
    sampler: ResourceSampler | None = None
    evaluation: Evaluation | None = None
    developer_token: str | None = None
    evaluation_token: str | None = None

    def close(self) -> dict[str, float | None] | None:
        """Stop sampling, serving and streaming; return the sampler's peaks when there was one."""
        peaks = self.sampler.stop() if self.sampler is not None else None
        if self.gateway is not None:
            self.gateway.stop()
        if self.sink is not None:
            self.sink.drain()
        if self.streamer is not None:
            self.streamer.close()
        return peaks


@dataclass
class Trial:
    trial_id: str
    spec: TrialSpec
    settings: Settings
    backend_choice: str = field(default="", repr=False)
    on_log: Callable[[str], None] | None = field(default=None, repr=False)
    records: TrialRecords = field(default_factory=TrialRecords)
    live: LiveHandles = field(default_factory=LiveHandles)
    events: list[TrialEvent] = field(default_factory=list)
    started_at: dt.datetime = field(default_factory=utcnow)
    finished_at: dt.datetime | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event, repr=False)
    _logged_tenth: dict[str, int] = field(default_factory=dict, repr=False)
    on_publish: Callable[..., None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.backend_choice = self.backend_choice or self.settings.backend

    @property
    def workdir(self) -> Path:
        return self.settings.trials_dir / self.trial_id

    def log(self, message: str) -> None:
        (self.on_log or logger.info)(f"[{self.trial_id}] {message}")
        shown = progress.current()
        if shown is not None:
            shown.line(message)

    def progress(self, label: str, done: int, total: int, unit: str) -> None:
        """Long work: a bar on the terminal; in the run log, each tenth and the end only."""
        shown = progress.current()
        if shown is not None:
            shown.bar(label, done, total, unit)
        tenth = 10 * done // total if total else 10
        if tenth != self._logged_tenth.get(label):
            self._logged_tenth[label] = tenth
            (self.on_log or logger.info)(f"[{self.trial_id}] {label} {done}/{total} {unit}")

    def event(self, kind: str, /, **detail: Any) -> None:
        """Append to the trial's journal: it is the audit trail the report carries."""
        self.events.append(TrialEvent(trial_id=self.trial_id, kind=kind, detail=detail))

    def enter(self, state: str, /, **detail: Any) -> None:
        """Record a lifecycle transition, and publish it to the platform."""
        self.event(state, **detail)
        self.log(f"{state}" + (f": {detail}" if detail else ""))
        self.publish(state=state, status="running")

    def publish(self, **fields: Any) -> None:
        """Tell the platform's database (the portal, the API, the gateway) what changed."""
        if self.on_publish is None:
            return
        try:
            self.on_publish(**fields)
        except Exception as exc:  # what the platform shows must never stop the trial itself
            logger.warning("[%s] could not publish %s: %s", self.trial_id, sorted(fields), exc)

    def check_cancelled(self) -> None:
        if self.cancel_requested.is_set():
            raise TrialCancelledError(f"trial {self.trial_id}: cancelled")
