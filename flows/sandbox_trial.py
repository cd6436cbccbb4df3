"""Prefect flow ``sandbox-trial``: one whole trial, from admission to a signed exit report.

Thin by design: each task calls one step in ``orchestrator.steps``. Teardown runs on every
path: in the flow's own ``finally`` while the flow is alive, and again from the failure,
crash and cancellation hooks, which find the sandbox by its labels because they may run
after the flow's memory is gone.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run as current_run

from orchestrator import steps
from orchestrator.errors import TrialFailedError
from orchestrator.settings import get_settings
from orchestrator.spec import TrialSpec
from orchestrator.trial import TrialContext, TrialOutcome, trial_id_for
from orchestrator.trial_report import report as write_exit_report


def _task(fn: Any, name: str) -> Any:
    # No caching: every trial must really run every step, even with identical inputs.
    return task(fn, name=name, cache_policy=NO_CACHE, retries=0)


admit = _task(steps.admit, "admit")
prepare_data = _task(steps.prepare_data, "prepare-data")
provision = _task(steps.provision, "provision")
attest = _task(steps.attest, "attest-isolation")
deploy = _task(steps.deploy, "deploy")
run_workload = _task(steps.run_workload, "run-workload")
monitor = _task(steps.monitor, "monitor")
assess = _task(steps.assess, "assess")
teardown = _task(steps.teardown, "teardown")
report = _task(write_exit_report, "report")

PIPELINE = [
    ("admit", admit),
    ("prepare_data", prepare_data),
    ("provision", provision),
    ("attest", attest),
    ("deploy", deploy),
    ("run_workload", run_workload),
    ("monitor", monitor),
    ("assess", assess),
]


def teardown_by_label(flow: Any, flow_run: Any, state: Any) -> None:
    """Hook for failure, crash and cancellation: remove whatever the trial left behind."""
    from orchestrator.backends import get_backend

    spec = flow_run.parameters.get("spec") or {}
    name = spec.get("name") if isinstance(spec, dict) else getattr(spec, "name", None)
    if not name:
        return
    trial_id = trial_id_for(name, str(flow_run.id))
    result = get_backend(settings=get_settings()).teardown(trial_id)
    print(
        f"[{trial_id}] hook teardown after {state.type.value}: removed {len(result.removed)}, "
        f"verified={result.verified}"
    )


@flow(
    name="sandbox-trial",
    description="Provision an isolated sandbox, deploy the candidate, evaluate it, assess it and report.",
    on_failure=[teardown_by_label],
    on_crashed=[teardown_by_label],
    on_cancellation=[teardown_by_label],
)
def sandbox_trial(spec: TrialSpec) -> dict[str, Any]:
    """Run one sandbox trial described by ``spec`` and return the command-line outcome."""
    settings = get_settings()
    logger = get_run_logger()
    trial_id = trial_id_for(spec.name, str(current_run.get_id()))
    ctx = TrialContext(trial_id, spec, settings, log=logger.info)
    ctx.enter("submitted", flow_run_id=str(current_run.get_id()))
    step = "admit"
    try:
        for name, run_step in PIPELINE:
            step = name
            run_step(ctx)
    except Exception as exc:
        ctx.fail(step, exc)
    finally:
        # Runs on KeyboardInterrupt and cancellation too: never leave a sandbox behind.
        teardown(ctx)
    try:
        report(ctx)
    finally:
        if ctx.client and ctx.run_id:
            ctx.client.set_terminated(ctx.run_id, "FAILED" if ctx.error else "FINISHED")
        outcome = TrialOutcome.of(ctx)
        outcome.save(ctx.workdir)
    if ctx.error:
        raise TrialFailedError(f"trial {trial_id} failed at {ctx.error['step']}: {ctx.error['message']}")
    return outcome.model_dump()
