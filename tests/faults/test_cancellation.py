"""Trials cancelled while they run: from the Prefect API (as the Prefect UI's button does) and
from the platform's API (as an administrator does in the portal's stack).

Real components throughout: ``regsandbox up`` on free ports in a temporary home (Prefect
server, MLflow server, platform API, the runner serving ``sandbox-trial``), Docker sandboxes,
the candidate model. Two trials are started, one through each door, and held in their
developer window; each is then cancelled through the door it came in by. Each ends
``cancelled`` with a signed report that says so, its metrics up to the cancellation in MLflow,
its row closed as cancelled, and nothing of its sandbox left on the engine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from orchestrator.api.runs import PrefectRuns
from orchestrator.errors import UnavailableError
from orchestrator.reports import load_report
from orchestrator.reports.signing import PUBLIC_KEY_NAME, verify
from orchestrator.settings import Settings
from orchestrator.trial import trial_id_for
from tests.e2e.servers import free_port, start_up
from tests.integration.models import candidate_model

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _objects(docker_client, trial_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    flt = {"label": f"regsandbox.trial_id={trial_id}"}
    return [c.name for c in docker_client.containers.list(all=True, filters=flt)] + [
        n.name for n in docker_client.networks.list(filters=flt)
    ]


def _wait(what: str, check: Any, timeout: float, said: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(1.0)
    raise AssertionError(f"{what} within {timeout:.0f}s; regsandbox up said:\n{said.read_text()[-4000:]}")


def _in_window(settings: Settings, trial_id: str) -> bool:
    """Every evaluation case answered (400 rows in 8 requests): the developer window is open."""
    marker, traffic = (
        settings.trials_dir / trial_id / "running.json",
        settings.trials_dir / trial_id / "traffic.jsonl",
    )
    if (
        not marker.is_file()
        or json.loads(marker.read_text())["step"] != "run_workload"
        or not traffic.is_file()
    ):
        return False
    return len(traffic.read_text().splitlines()) >= 8


def _ended(settings: Settings, trial_id: str) -> dict[str, Any] | None:
    path = settings.trials_dir / trial_id / "outcome.json"
    return json.loads(path.read_text()) if path.is_file() else None


def test_cancelled_from_prefect_and_from_the_platform_api(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ports = (free_port(), free_port(), free_port())
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "REGSANDBOX_"))}
    env |= {"REGSANDBOX_HOME": str(home), "PYTHONPATH": str(ROOT)}
    said = tmp_path / "up.log"
    up = start_up([sys.executable, "-m", "orchestrator.cli"], ports, env, ROOT, said)
    try:
        settings = Settings(home=home)
        prefect_api, api = f"http://127.0.0.1:{ports[0]}/api", f"http://127.0.0.1:{ports[2]}"
        spec = yaml.safe_load((ROOT / "examples" / "trials" / "diabetes-risk.yaml").read_text())
        spec["model"]["uri"] = str(candidate_model(tmp_path / "model"))
        spec["data"]["synthetic"]["rows"] = 400
        spec["workload"] = {"developer_window_s": 600}  # held open until cancelled

        # Door one: the Prefect API, as the Prefect UI's form and cancel button use it.
        runs = PrefectRuns(settings, api_url=prefect_api)

        def start() -> str | None:
            try:  # the runner registers the deployment once the sample candidate is registered
                return runs.start({**spec, "name": "cancel-via-prefect"})
            except UnavailableError:
                return None

        via_prefect = _wait("the sandbox-trial deployment never appeared", start, 240, said)
        prefect_trial = trial_id_for("cancel-via-prefect", via_prefect)

        # Door two: the platform's API, as an administrator.
        password = _wait(
            "no administrator password",
            lambda: next(
                (
                    ln.split(" / ")[1].split()[0]
                    for ln in said.read_text().splitlines()
                    if "administrator  admin / " in ln
                ),
                None,
            ),
            30,
            said,
        )
        with httpx.Client(base_url=api, timeout=60) as http:
            token = http.post("/api/auth/token", json={"username": "admin", "password": password}).json()[
                "token"
            ]
            http.headers["Authorization"] = f"Bearer {token}"
            submitted = http.post("/api/trials", json={"spec": {**spec, "name": "cancel-via-api"}})
            assert submitted.status_code == 201, submitted.text
            started = http.post(f"/api/trials/{submitted.json()['id']}/start")
            assert started.status_code == 202, started.text
            api_trial = started.json()["trial_id"]

            for trial_id in (prefect_trial, api_trial):
                _wait(
                    f"{trial_id} never reached its developer window",
                    lambda t=trial_id: _in_window(settings, t),
                    420,
                    said,
                )
                assert _objects(docker_client, trial_id)

            assert runs.cancel(via_prefect) == "cancelling"
            cancelling = http.post(f"/api/trials/{api_trial}/cancel")
            assert cancelling.status_code == 202, cancelling.text

            for trial_id in (prefect_trial, api_trial):
                outcome = _wait(f"{trial_id} did not end", lambda t=trial_id: _ended(settings, t), 180, said)
                assert outcome["status"] == "cancelled", outcome
                assert outcome["teardown_verified"] is True
                report = load_report(outcome["report"]["json"])
                assert report.status == "cancelled" and report.error is not None
                assert report.error.step == "run_workload" and "cancelled" in [e.kind for e in report.events]
                assert verify(
                    outcome["report"]["json"],
                    outcome["report"]["signature"],
                    settings.keys_dir / PUBLIC_KEY_NAME,
                )
                assert _objects(docker_client, trial_id) == []
                row = _wait(
                    "the row was not closed",
                    lambda t=trial_id: (
                        (r := http.get(f"/api/trials/{t}").json())["status"] == "cancelled" and r
                    ),
                    60,
                    said,
                )
                assert row["trial_id"] == trial_id

                from mlflow import MlflowClient

                client = MlflowClient(f"http://127.0.0.1:{ports[1]}")
                run = client.get_run(outcome["mlflow_run_id"])
                assert run.info.status == "KILLED"
                assert len(client.get_metric_history(run.info.run_id, "perf/auroc")) >= 1
            actions = {e["action"] for e in http.get("/api/audit").json()["events"]}
            assert "trial_cancel_requested" in actions
    finally:
        os.killpg(up.pid, signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
