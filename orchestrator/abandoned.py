"""Trials whose orchestrator died: found by the sweep, failed with a report, sandbox removed.

A process killed outright (SIGKILL, a power cut, the OOM killer) runs no hook, so its trial
would stay "running" in the platform database for ever and its sandbox would stay up. While a
trial runs, the lifecycle keeps a marker in its work folder (:func:`mark`) naming the process
that owns it and the step it is in; a normal end removes the marker (:func:`clear`). The sweep
(``regsandbox reap`` and the scheduled ``reap-orphans`` flow) calls :func:`recover_abandoned`:
every marker whose process is gone becomes a failed trial with a signed report saying which
step it died in, its sandbox torn down, and its row in the platform database closed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.records import utcnow
from orchestrator.settings import Settings
from orchestrator.spec import TrialSpec

if TYPE_CHECKING:
    from orchestrator.trial import Trial
    from orchestrator.trial_records import TrialOutcome

MARKER = "running.json"
logger = logging.getLogger("regsandbox.abandoned")


class OwnerMarker(BaseModel):
    """Who runs a trial and where it is; the file exists exactly while the trial is running."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trial_id: str
    pid: int = Field(description="Process running the lifecycle.")
    pid_started: str = Field(description="That process's start time (/proc), so a reused pid is not taken.")
    host: str = Field(description="Host name; another host's trial is never judged from here.")
    step: str = Field(description="Step the trial was in when the marker was last written.")
    started_at: dt.datetime
    spec: TrialSpec


def _process_start(pid: int) -> str:
    try:
        # Field 22 of /proc/<pid>/stat (after the parenthesised command name) is the start time.
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def mark(trial: Trial, step: str) -> None:
    """Write (atomically) that this process runs ``trial`` and is at ``step``."""
    pid = os.getpid()
    marker = OwnerMarker(
        trial_id=trial.trial_id,
        pid=pid,
        pid_started=_process_start(pid),
        host=socket.gethostname(),
        step=step,
        started_at=trial.started_at,
        spec=trial.spec,
    )
    trial.workdir.mkdir(parents=True, exist_ok=True)
    tmp = trial.workdir / f".{MARKER}.{pid}"
    tmp.write_text(marker.model_dump_json(), encoding="utf-8")
    os.replace(tmp, trial.workdir / MARKER)


def clear(trial: Trial) -> None:
    (trial.workdir / MARKER).unlink(missing_ok=True)


def _alive(marker: OwnerMarker) -> bool:
    if marker.host != socket.gethostname():
        return True
    started = _process_start(marker.pid)
    return bool(started) and started == marker.pid_started


def abandoned(settings: Settings) -> list[OwnerMarker]:
    """Markers of trials on this host whose owning process is gone."""
    found = []
    for path in sorted(settings.trials_dir.glob(f"*/{MARKER}")):
        try:
            marker = OwnerMarker.model_validate_json(path.read_bytes())
        except (OSError, ValueError) as exc:
            logger.warning("unreadable trial marker %s: %s", path, exc)
            continue
        if not _alive(marker):
            found.append(marker)
    return found


def recover(settings: Settings, marker: OwnerMarker) -> TrialOutcome:
    """Fail one abandoned trial: tear its sandbox down everywhere, write its report, close its row."""
    from functools import partial

    from orchestrator.backends import TeardownResult, teardown_everywhere
    from orchestrator.lifecycle import final_fields, outcome_of
    from orchestrator.steps import write_report
    from orchestrator.store.trials import publish
    from orchestrator.trial import Trial
    from orchestrator.trial_records import StepError, Teardown

    trial = Trial(
        marker.trial_id,
        marker.spec,
        settings,
        on_publish=partial(publish, settings, marker.trial_id, marker.spec),
    )
    trial.started_at = marker.started_at
    message = (
        f"trial {marker.trial_id}: the orchestrator process (pid {marker.pid} on {marker.host}) ended "
        f"during step {marker.step!r} without finishing the trial; "
        f"the sweep failed it at {utcnow():%Y-%m-%d %H:%M:%SZ}"
    )
    trial.event("orchestrator_lost", pid=marker.pid, host=marker.host, step=marker.step)
    results = teardown_everywhere(marker.trial_id, settings=settings)
    removed = [name for r in results for name in r.removed]
    remaining = [name for r in results for name in r.remaining]
    result = TeardownResult(trial_id=marker.trial_id, removed=removed, remaining=remaining)
    trial.event("teardown", verified=result.verified, removed=removed, remaining=remaining)
    trial.records = trial.records.model_copy(
        update={
            "error": StepError(step=marker.step, type="OrchestratorLostError", message=message),
            "teardown": Teardown(result=result, traffic={}, refused_connections=None, resources=None),
        }
    )
    paths = write_report(trial)
    outcome = outcome_of(trial, paths)
    outcome.save(trial.workdir)
    trial.publish(**final_fields(outcome, paths))
    clear(trial)
    logger.warning("%s", message)
    return outcome


def recover_abandoned(settings: Settings) -> list[TrialOutcome]:
    """Fail every abandoned trial on this host; one that cannot be recovered is logged and kept."""
    outcomes = []
    for marker in abandoned(settings):
        try:
            outcomes.append(recover(settings, marker))
        except Exception:
            logger.exception("trial %s: could not be recovered; the next sweep tries again", marker.trial_id)
    return outcomes


def reconcile_rows(settings: Settings) -> list[str]:
    """Close rows still shown running whose trial did end (its final publish met a database outage).

    The trial's ``outcome.json`` is the truth: written before the final publish, and kept.
    """
    import hashlib

    from sqlalchemy import select

    from orchestrator.store import session_scope
    from orchestrator.store.models import Trial as TrialRow
    from orchestrator.store.trials import TERMINAL
    from orchestrator.trial_records import TrialOutcome

    closed = []
    with session_scope(settings) as db:
        rows = db.scalars(select(TrialRow).where(TrialRow.status.not_in(TERMINAL))).all()
        for row in rows:
            folder = settings.trials_dir / (row.trial_id or "")
            if not row.trial_id or (folder / MARKER).exists() or not (folder / "outcome.json").is_file():
                continue
            outcome = TrialOutcome.model_validate_json((folder / "outcome.json").read_bytes())
            written = outcome.report.get("json")
            report = Path(written) if written else None
            row.status, row.state = outcome.status.value, "reported" if report else "ended"
            row.verdicts, row.error = dict(outcome.verdicts), outcome.error
            row.finished_at, row.open_until = outcome.finished_at, None
            if report is not None and report.is_file():
                row.report_dir = str(report.parent)
                row.report_sha256 = hashlib.sha256(report.read_bytes()).hexdigest()
            closed.append(row.trial_id)
    for trial_id in closed:
        logger.warning("trial %s: row closed from its outcome file after a database outage", trial_id)
    return closed
