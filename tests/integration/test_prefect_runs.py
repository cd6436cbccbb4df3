"""The API's Prefect calls against a real Prefect server: a run of the trial deployment is created
with the spec, cancelled, and annotated with a decision; a missing deployment is a 503, not a 500."""

from __future__ import annotations

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.objects import StateType

from orchestrator.api.runs import DEPLOYMENT, PrefectRuns
from orchestrator.errors import UnavailableError
from orchestrator.settings import Settings
from tests.api.conftest import EXAMPLE_SPEC


@pytest.fixture(scope="module")
def deployment(prefect_harness: None) -> None:
    from flows.sandbox_trial import sandbox_trial

    # Registered only: no worker picks the runs up, so nothing runs and nothing needs Docker.
    sandbox_trial.to_deployment(name=DEPLOYMENT.split("/")[1]).apply()


def test_start_annotate_and_cancel(deployment: None, settings: Settings) -> None:
    spec = yaml.safe_load(EXAMPLE_SPEC.read_text())
    runs = PrefectRuns(settings)
    run_id = runs.start(spec)
    runs.annotate(run_id, "decision-api-test-sg", "### SG decision 1: approve", "SG regulator's decision")
    # No worker took the run, so Prefect cancels it outright; a second cancel is answered the same.
    assert runs.cancel(run_id) == "cancelled"
    assert runs.cancel(run_id) == "cancelled"
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        assert run.parameters["spec"]["name"] == spec["name"]
        assert run.state is not None and run.state.type == StateType.CANCELLED
        keys = ArtifactFilter(key=ArtifactFilterKey(any_=["decision-api-test-sg"]))
        (artifact,) = client.read_artifacts(artifact_filter=keys)
        assert str(artifact.flow_run_id) == run_id
        assert artifact.type == "markdown" and "approve" in str(artifact.data)


def test_a_missing_deployment_is_unavailable(deployment: None, settings: Settings) -> None:
    with pytest.raises(UnavailableError):
        PrefectRuns(settings, deployment="sandbox-trial/no-such-deployment").start({"name": "x"})
