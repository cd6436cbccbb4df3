"""The life of a trial, once, in order: its steps, teardown on every path, then the report.

Each step is a function of the :class:`~orchestrator.trial.Trial` that returns a frozen record;
the lifecycle keeps the records, stops at the first failure or cancellation, always tears the
sandbox down, always writes the exit report, and derives the outcome from what it kept. The
Prefect flow, the command line and the tests all run this same function; the flow only wraps
each step as a Prefect task (``wrap``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator import abandoned
from orchestrator.errors import InjectedFaultError, TrialCancelledError
from orchestrator.settings import Settings
from orchestrator.spec import TrialSpec
from orchestrator.steps import (
    admit,
    assess,
    attest,
    deploy,
    monitor,
    prepare_data,
    provision,
    run_workload,
    teardown,
    write_report,
)
from orchestrator.trial import Trial
from orchestrator.trial_records import StepError, TrialOutcome, TrialStatus, status_of

StepFn = Callable[[Trial], Any]
logger = logging.getLogger("regsandbox.lifecycle")


@dataclass(frozen=True)
class Step:
    name: str  # also the fault-drill point: REGSANDBOX_FAIL_AT=<name> fails the trial here
    task: str  # how the step is named as a Prefect task
    run: StepFn
    record: str  # the field of TrialRecords its result fills


STEPS: tuple[Step, ...] = (
    Step("admit", "admit", admit, "admission"),
    Step("prepare_data", "prepare-data", prepare_data, "data"),
    Step("provision", "provision", provision, "provisioned"),
    Step("attest", "attest-isolation", attest, "attested"),
    Step("deploy", "deploy", deploy, "deployment"),
    Step("run_workload", "run-workload", run_workload, "workload"),
    Step("monitor", "monitor", monitor, "observation"),
    Step("assess", "assess", assess, "assessment"),
)
TEARDOWN = Step("teardown", "teardown", teardown, "teardown")
REPORT = Step("report", "report", write_report, "")
STEP_NAMES = tuple(step.name for step in STEPS)

# Signals that end a trial as cancelled rather than failed: Ctrl-C, and Prefect's cancellation
# (its runner terminates the flow run's process, which Prefect raises as TerminationSignal).
CANCELLATIONS: tuple[type[BaseException], ...] = (KeyboardInterrupt, TrialCancelledError)
try:
    from prefect.exceptions import TerminationSignal

    CANCELLATIONS += (TerminationSignal,)
except ImportError:  # pragma: no cover - prefect is a dependency; kept optional for tools
    pass


def _identity(step: Step) -> StepFn:
    return step.run


def _drill(trial: Trial, step: Step) -> None:
    if trial.settings.fail_at == step.name:
        raise InjectedFaultError(
            f"trial {trial.trial_id}: failure injected at step {step.name!r} (REGSANDBOX_FAIL_AT)"
        )


def _keep(trial: Trial, step: Step, record: Any) -> None:
    if record is not None and step.record:
        trial.records = trial.records.model_copy(update={step.record: record})


def _failed(trial: Trial, step: Step, exc: BaseException, cancelled: bool) -> None:
    _keep(trial, step, getattr(exc, "record", None))
    error = StepError(step=step.name, type=type(exc).__name__, message=str(exc)[:4000] or type(exc).__name__)
    trial.records = trial.records.model_copy(update={"error": error, "cancelled": cancelled})
    trial.event("cancelled" if cancelled else "error", **error.model_dump())
    trial.log(f"{'cancelled' if cancelled else 'failed'} at {step.name}: {error.type}: {error.message}")
    # The traceback is for the log file (and whoever debugs); the terminal shows the line above.
    logger.debug("trial %s: %s at %s", trial.trial_id, error.type, step.name, exc_info=exc)


def run_steps(trial: Trial, wrap: Callable[[Step], StepFn] = _identity) -> TrialOutcome:
    """Run ``trial`` through every step, tear down, report; return the outcome on every path.

    A cancellation signal received during the steps ends the trial as cancelled after its
    teardown and report, then propagates, so the caller (Prefect, the shell) sees it too.
    """
    abandoned.mark(trial, "submitted")  # lets the sweep fail the trial if this process dies
    trial.enter("submitted")
    interrupted: BaseException | None = None
    for step in STEPS:
        try:
            abandoned.mark(trial, step.name)
            trial.check_cancelled()
            _drill(trial, step)
            _keep(trial, step, wrap(step)(trial))
        except CANCELLATIONS as exc:
            _failed(trial, step, exc, cancelled=True)
            interrupted = exc if not isinstance(exc, TrialCancelledError) else None
            break
        except Exception as exc:
            _failed(trial, step, exc, cancelled=False)
            break
    # Teardown and report run on every path; a failure here is recorded, never hides the first.
    try:
        _keep(trial, TEARDOWN, wrap(TEARDOWN)(trial))
    except Exception as exc:
        trial.log(f"teardown failed: {type(exc).__name__}: {exc}")
        trial.event("teardown_error", type=type(exc).__name__, message=str(exc)[:2000])
    abandoned.mark(trial, "report")
    paths = wrap(REPORT)(trial)
    outcome = outcome_of(trial, paths)
    outcome.save(trial.workdir)
    abandoned.clear(trial)
    trial.publish(**final_fields(outcome, paths))
    _close_run(trial, outcome.status)
    if interrupted is not None:
        raise interrupted
    return outcome


def run_lifecycle(
    spec: TrialSpec,
    trial_id: str,
    settings: Settings,
    backend: str | None = None,
    wrap: Callable[[Step], StepFn] = _identity,
    log: Callable[[str], None] | None = None,
    publish: Callable[..., None] | None = None,
) -> TrialOutcome:
    """Run one whole trial of ``spec`` in this process (see :func:`run_steps`).

    ``publish`` receives each change a platform shows (state, endpoint, verdicts, report).
    """
    trial = Trial(trial_id, spec, settings, backend_choice=backend or "", on_log=log, on_publish=publish)
    return run_steps(trial, wrap)


def outcome_of(trial: Trial, paths: Any) -> TrialOutcome:
    records = trial.records
    run = records.admission.mlflow if records.admission else None
    error = records.error
    return TrialOutcome(
        trial_id=trial.trial_id,
        status=status_of(records),
        endpoint=records.deployment.gateway_url if records.deployment else None,
        mlflow_run_id=run.run_id if run else None,
        report={
            "json": paths.json_ if paths else None,
            "html": paths.html if paths else None,
            "pdf": paths.pdf if paths else None,
            "signature": paths.signature if paths else None,
        },
        verdicts=records.assessment.verdicts if records.assessment else {},
        teardown_verified=bool(records.teardown and records.teardown.result.verified),
        error=f"{error.type} at {error.step}: {error.message}" if error else None,
        started_at=trial.started_at,
        finished_at=trial.finished_at,
    )


def final_fields(outcome: TrialOutcome, paths: Any) -> dict[str, Any]:
    import hashlib
    from pathlib import Path

    report = Path(paths.json_) if paths else None
    return {
        "state": "reported" if paths else "ended",
        "status": outcome.status.value,
        "verdicts": dict(outcome.verdicts),
        "error": outcome.error,
        "report_dir": str(report.parent) if report else None,
        "report_sha256": hashlib.sha256(report.read_bytes()).hexdigest() if report else None,
        "finished_at": outcome.finished_at,
        "open_until": None,
    }


def _close_run(trial: Trial, status: TrialStatus) -> None:
    client, admission = trial.live.client, trial.records.admission
    if client is None or admission is None or admission.mlflow is None:
        return
    mlflow_status = {TrialStatus.COMPLETED: "FINISHED", TrialStatus.CANCELLED: "KILLED"}.get(status, "FAILED")
    try:
        client.set_terminated(admission.mlflow.run_id, mlflow_status)
    except Exception as exc:  # the report is written; a tracking outage must not turn it into a crash
        trial.log(f"could not close the MLflow run: {exc}")
