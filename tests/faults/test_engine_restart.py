"""The Docker engine restarts in the middle of a trial's workload.

Never the shared engine: the trial runs on a PRIVATE engine the test starts itself
(tests/faults/private_engine.py: own socket, data root, exec root, pidfile, no bridge or
firewall of its own), with the sandbox images copied into it, and that engine is stopped and
started again while the workload streams. Everything else is real: the ``sandbox-trial`` flow,
the gateway, the MLflow store. The trial ends ``failed`` at ``run_workload`` saying the
sandbox stopped or could not be inspected; teardown waits for the engine to come back and
removes everything; every point accepted before the restart is in MLflow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from orchestrator.backends.docker import DockerBackend
from orchestrator.run import run_trial
from orchestrator.settings import Settings, get_settings
from orchestrator.templates import ensure_image, load_template
from orchestrator.trial_records import TrialOutcome
from tests.faults.private_engine import PrivateEngine
from tests.faults.test_candidate_faults import Tally, signed_and_clean, spec_for, stored
from tests.faults.test_candidate_faults import tally as tally  # noqa: F401 - the fixture
from tests.integration.models import candidate_model

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def engine(docker_client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateEngine]:  # type: ignore[no-untyped-def]
    settings = Settings(home=tmp_path_factory.mktemp("engine-home"))
    image = ensure_image(load_template("mlflow-pyfunc"), settings, docker_client).tag  # on the shared engine
    private = PrivateEngine(tmp_path_factory.mktemp("engine"))
    private.start()
    try:
        private.load(settings.base_image, image)
        yield private
    finally:
        # Safety net whatever the test saw: the host-side bridge and firewall rules of any trial
        # on this engine go before the engine does (a removed data root would orphan them).
        if private.answers():
            DockerBackend(Settings(home=settings.home, docker_host=private.url)).reap(
                everything=True, prefix="engine-"
            )
        private.remove()


def test_an_engine_restart_mid_workload_is_reported_and_leaves_nothing(
    settings: Settings,
    prefect_harness: None,
    engine: PrivateEngine,
    tally: Tally,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REGSANDBOX_DOCKER_HOST", engine.url)
    get_settings.cache_clear()
    settings = get_settings()
    assert settings.docker_host == engine.url
    private = docker.DockerClient(base_url=engine.url)
    spec = spec_for(
        "engine-restart", candidate_model(tmp_path / "candidate"), rows=3000, batch_size=2, concurrency=1
    )
    # Held in its developer window afterwards, so the restart lands while the sandbox serves,
    # however fast the evaluation went.
    spec = spec.model_copy(update={"workload": spec.workload.model_copy(update={"developer_window_s": 120})})
    result: dict[str, Any] = {}

    def trial() -> None:
        try:
            result["outcome"] = run_trial(spec)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            result["outcome"] = exc

    runner = threading.Thread(target=trial, name="trial")
    runner.start()
    assert tally.workload_started.wait(timeout=600), "the workload never started"
    running = private.containers.list(filters={"label": "regsandbox.trial_id"})
    assert [c for c in running if c.labels["regsandbox.trial_id"].startswith("engine-restart-")], (
        "the sandbox is not on the private engine"
    )
    time.sleep(1.0)
    restarted_at = time.monotonic()
    engine.stop()
    time.sleep(3.0)  # down for a few seconds, as a service restart is
    engine.start()
    runner.join(timeout=600)
    assert not runner.is_alive(), "the trial did not finish"
    outcome = result["outcome"]
    assert isinstance(outcome, TrialOutcome), outcome

    assert outcome.status == "completed", outcome.error
    report = signed_and_clean(outcome, settings, private)
    evidence = report.evidence
    assert evidence is not None and evidence.cases_answered > 0 and not evidence.complete
    stop = evidence.notes[0]
    assert stop.startswith("The model's sandbox") and "during the workload" in stop, evidence.notes
    assert "sandbox_stopped" in [e.kind for e in report.events]

    before = tally.before(restarted_at)
    keys = {p.key for _, p in tally.points}
    held = stored(settings, outcome.mlflow_run_id, keys)
    assert sum(before.values()) > 0 and not (before - held), "points accepted before the restart were lost"
    assert all(n == 1 for n in held.values()), "a point was stored twice"
    print(f"engine restarted mid-workload: {stop} {sum(before.values())} points kept")
