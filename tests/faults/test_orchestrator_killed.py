"""The orchestrator is killed (SIGKILL) mid-trial; the next sweep fails the trial with a report.

No hook runs after SIGKILL. The trial's marker names the dead process and the step it was in,
so ``regsandbox reap`` turns the trial into a failed one: a signed report saying what
happened, its row in the platform database closed as failed (not left "running"), its
sandbox removed. A trial whose process is alive is left alone by the same sweep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.reports import load_report
from orchestrator.reports.signing import PUBLIC_KEY_NAME, verify
from orchestrator.settings import Settings
from orchestrator.store import session_scope
from orchestrator.store.trials import find
from tests.integration.models import candidate_model

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _objects(docker_client, trial_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    flt = {"label": f"regsandbox.trial_id={trial_id}"}
    return [c.name for c in docker_client.containers.list(all=True, filters=flt)] + [
        n.name for n in docker_client.networks.list(filters=flt)
    ]


def _wait_for_model(docker_client, orchestrator: subprocess.Popen, log: Path) -> str:  # type: ignore[no-untyped-def, type-arg]
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        found = docker_client.containers.list(
            filters={"label": f"regsandbox.owner_pid={orchestrator.pid}", "status": "running"}
        )
        model = [c for c in found if not c.name.endswith("-probe")]
        if model:
            return str(model[0].labels["regsandbox.trial_id"])
        assert orchestrator.poll() is None, log.read_text(errors="replace")[-4000:]
        time.sleep(0.5)
    raise TimeoutError(log.read_text(errors="replace")[-4000:])


def test_a_killed_orchestrators_trial_is_failed_reported_and_swept(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    spec = yaml.safe_load((ROOT / "examples" / "trials" / "diabetes-risk.yaml").read_text())
    spec["model"]["uri"] = str(candidate_model(tmp_path / "model"))
    spec["data"]["synthetic"]["rows"] = 300
    spec["workload"] = {"developer_window_s": 600}  # keeps the trial in its workload step
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "REGSANDBOX_"))}
    env["REGSANDBOX_HOME"] = str(home)
    env["PYTHONPATH"] = str(ROOT)
    regsandbox = [sys.executable, "-m", "orchestrator.cli"]
    log = tmp_path / "orchestrator.log"
    with log.open("wb") as out:
        orchestrator = subprocess.Popen(
            [*regsandbox, "trial", "run", str(spec_path)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        trial_id = _wait_for_model(docker_client, orchestrator, log)
        settings = Settings(home=home)
        marker_file = settings.trials_dir / trial_id / "running.json"
        deadline = time.monotonic() + 300
        while json.loads(marker_file.read_text())["step"] != "run_workload":  # in its developer window
            assert time.monotonic() < deadline and orchestrator.poll() is None, log.read_text()[-4000:]
            time.sleep(0.5)
        marker = json.loads(marker_file.read_text())
        assert marker["pid"] == orchestrator.pid
        with session_scope(settings) as db:
            row = find(db, trial_id)
            assert row is not None and row.status == "running"

        os.killpg(orchestrator.pid, signal.SIGKILL)  # the CLI and its temporary Prefect server
        orchestrator.wait(timeout=30)
        assert _objects(docker_client, trial_id), "nothing left to sweep: the kill came too late"

        swept = subprocess.run(
            [*regsandbox, "reap"], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert swept.returncode == 0, swept.stderr[-4000:]
        assert f"{trial_id}: orchestrator gone; trial failed" in swept.stdout, swept.stdout

        assert _objects(docker_client, trial_id) == []
        assert not (settings.trials_dir / trial_id / "running.json").exists()
        outcome = json.loads((settings.trials_dir / trial_id / "outcome.json").read_text())
        assert outcome["status"] == "failed" and outcome["teardown_verified"] is True
        report_path = Path(outcome["report"]["json"])
        report = load_report(report_path)
        assert report.status == "failed" and report.error is not None
        assert report.error.type == "OrchestratorLostError" and report.error.step == "run_workload"
        assert f"pid {orchestrator.pid}" in report.error.message
        assert report.teardown.verified
        assert verify(report_path, outcome["report"]["signature"], settings.keys_dir / PUBLIC_KEY_NAME)
        with session_scope(settings) as db:
            row = find(db, trial_id)
            assert row is not None and row.status == "failed" and row.report_sha256
            assert "OrchestratorLostError" in (row.error or "")

        # A second sweep finds nothing more to do.
        again = subprocess.run(
            [*regsandbox, "reap"], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert again.returncode == 0 and "orchestrator gone" not in again.stdout
    finally:
        if orchestrator.poll() is None:
            os.killpg(orchestrator.pid, signal.SIGKILL)
