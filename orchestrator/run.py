"""Run a trial through Prefect from a program (the CLI, tests, the API).

With no ``PREFECT_API_URL`` Prefect starts a temporary local server for the run; with one,
the run appears in that server's UI like any other flow run.
"""

from __future__ import annotations

from orchestrator.errors import TrialFailedError
from orchestrator.settings import get_settings
from orchestrator.spec import TrialSpec
from orchestrator.trial import TrialOutcome, trial_id_for


def run_trial(spec: TrialSpec) -> TrialOutcome:
    """Run the ``sandbox-trial`` flow and return its outcome, whether it completed or failed."""
    from flows.sandbox_trial import sandbox_trial

    state = sandbox_trial.with_options(timeout_seconds=spec.resources.timeout_s + 120)(
        spec, return_state=True
    )
    run_id = state.state_details.flow_run_id
    trial_id = trial_id_for(spec.name, str(run_id))
    path = get_settings().trials_dir / trial_id / "outcome.json"
    if path.is_file():
        return TrialOutcome.model_validate_json(path.read_text(encoding="utf-8"))
    # The flow died before it could write its outcome (crash, timeout): report what is known.
    raise TrialFailedError(
        f"trial {trial_id} ended in state {state.type.value} without an outcome: {state.message}"
    )
