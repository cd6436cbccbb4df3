"""Run a trial through Prefect from a program (the CLI, tests, the API).

With no ``PREFECT_API_URL`` Prefect starts a temporary local server for the run; with one,
the run appears in that server's UI like any other flow run.
"""

from __future__ import annotations

from orchestrator.errors import TrialFailedError
from orchestrator.spec import TrialSpec
from orchestrator.trial_records import TrialOutcome


def run_trial(spec: TrialSpec, backend: str | None = None) -> TrialOutcome:
    """Run the ``sandbox-trial`` flow and return its outcome, whether it completed or not."""
    from flows.sandbox_trial import sandbox_trial

    state = sandbox_trial.with_options(timeout_seconds=spec.resources.timeout_s + 120)(
        spec, backend, return_state=True
    )
    try:
        data = state.result(raise_on_failure=False)
    except Exception as exc:  # no result at all: the flow itself crashed before the lifecycle ended
        data = exc
    if isinstance(data, dict):
        return TrialOutcome.model_validate(data)
    raise TrialFailedError(
        f"trial flow ended in state {state.type.value} without an outcome: {state.message}"
    )
