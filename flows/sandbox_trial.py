"""Prefect flow ``sandbox-trial``: one whole trial, from admission to a signed exit report.

The lifecycle (:mod:`orchestrator.lifecycle`) is the trial; this module only makes each of its
steps a Prefect task, so the run shows them in the UI, and adds the hooks that tear a sandbox
down by its labels when the flow run's process is gone (a crash, or a cancellation that killed
it). A run that did not complete ends in the matching Prefect state and still carries the
outcome, so callers read the outcome whatever happened.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run as current_run
from prefect.states import Cancelled, Completed, Failed, State

from flows.artifacts import publish_artifacts
from orchestrator.lifecycle import Step, run_lifecycle
from orchestrator.settings import get_settings
from orchestrator.spec import TrialSpec
from orchestrator.store.trials import publish
from orchestrator.trial import trial_id_for
from orchestrator.trial_records import TrialStatus


def as_task(step: Step) -> Any:
    # No caching and no retries: every trial really runs every step, once.
    run: Any = step.run
    return task(run, name=step.task, cache_policy=NO_CACHE, retries=0)


def teardown_by_label(flow: Any, flow_run: Any, state: Any) -> None:
    """Hook for crash and cancellation: remove whatever the trial left behind."""
    from orchestrator.backends import teardown_everywhere

    spec = flow_run.parameters.get("spec") or {}
    name = spec.get("name") if isinstance(spec, dict) else getattr(spec, "name", None)
    if not name:
        return
    trial_id = trial_id_for(name, str(flow_run.id))
    for result in teardown_everywhere(trial_id):
        print(
            f"[{trial_id}] hook teardown after {state.type.value}: removed {len(result.removed)}, "
            f"verified={result.verified}"
        )


@flow(
    name="sandbox-trial",
    description="Provision an isolated sandbox, deploy the candidate, evaluate it, assess it and report.",
    on_crashed=[teardown_by_label],
    on_cancellation=[teardown_by_label],
)
def sandbox_trial(spec: TrialSpec, backend: str | None = None) -> State:
    """Run one sandbox trial described by ``spec``; the state carries the command-line outcome.

    ``backend`` names the isolation backend (docker, process ...); empty means the platform's
    setting (REGSANDBOX_BACKEND, default auto).
    """
    settings = get_settings()
    flow_run_id = str(current_run.get_id())
    trial_id = trial_id_for(spec.name, flow_run_id)
    outcome = run_lifecycle(
        spec,
        trial_id,
        settings,
        backend,
        wrap=as_task,
        log=get_run_logger().info,
        publish=partial(publish, settings, trial_id, spec, flow_run_id=flow_run_id),
    )
    publish_artifacts(settings, outcome)
    data = outcome.model_dump(mode="json")
    if outcome.status == TrialStatus.COMPLETED:
        return Completed(data=data)
    message = f"trial {trial_id} {outcome.status.value}: {outcome.error}"
    if outcome.status == TrialStatus.CANCELLED:
        return Cancelled(data=data, message=message)
    return Failed(data=data, message=message)
