"""``regsandbox up``: real Prefect and MLflow servers, and a trial started the way the UI starts it.

The administrator's path: the ``sandbox-trial`` deployment is served, a run is created from it
through the Prefect API (what the UI's form submits), the runner executes it, and its metrics
land in the MLflow server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.servers import free_port as _free_port
from tests.e2e.servers import start_up
from tests.integration.models import candidate_model

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


async def _run_from_deployment(api: str, spec: dict) -> tuple[str, str]:  # type: ignore[type-arg]
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    deadline = time.monotonic() + 120
    while True:  # the runner registers the deployments shortly after the servers are up
        try:
            async with get_client() as client:
                await client.read_deployment_by_name("sandbox-trial/sandbox-trial")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)
    run = await run_deployment("sandbox-trial/sandbox-trial", parameters={"spec": spec}, timeout=600)
    return str(run.id), str(run.state.type.value if run.state else "?")


def test_up_serves_the_trial_flow_to_the_prefect_api(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    prefect_port, mlflow_port, api_port = _free_port(), _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "REGSANDBOX_"))}
    env["REGSANDBOX_HOME"] = str(tmp_path / "home")
    output = tmp_path / "up.log"  # shown when the test fails: what the stack itself said
    ports = (prefect_port, mlflow_port, api_port)
    up = start_up([str(Path(sys.executable).parent / "regsandbox")], ports, env, ROOT, output)
    try:
        spec = yaml.safe_load((ROOT / "examples" / "trials" / "diabetes-risk.yaml").read_text())
        spec["model"]["uri"] = str(candidate_model(tmp_path / "model"))
        spec["data"]["synthetic"]["rows"] = 400
        from prefect.settings import PREFECT_API_URL, temporary_settings

        api = f"http://127.0.0.1:{prefect_port}/api"
        # A settings context, not the environment: it also overrides a test harness started earlier
        # in the same session, which would otherwise answer in the stack's place.
        with temporary_settings(updates={PREFECT_API_URL: api}):
            try:
                run_id, state = asyncio.run(_run_from_deployment(api, spec))
            except Exception as exc:
                said = output.read_text()[-4000:]
                raise AssertionError(f"{exc}\n--- regsandbox up said:\n{said}") from exc
        assert state == "COMPLETED"

        from mlflow import MlflowClient

        client = MlflowClient(f"http://127.0.0.1:{mlflow_port}")
        experiment = client.get_experiment_by_name("sandbox-trials")
        runs = client.search_runs([experiment.experiment_id])
        assert len(runs) == 1 and runs[0].info.status == "FINISHED"
        assert runs[0].data.tags["regsandbox.trial_id"].endswith(run_id.replace("-", "")[:8])
        assert len(client.get_metric_history(runs[0].info.run_id, "perf/auroc")) > 1
        artifacts = {a.path for a in client.list_artifacts(runs[0].info.run_id, "exit-report")}
        assert "exit-report/report.json" in artifacts

        # A trial started from the command line with the same home runs on the running stack.
        spec_path = tmp_path / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(spec))
        cli = subprocess.run(
            [str(Path(sys.executable).parent / "regsandbox"), "trial", "run", str(spec_path), "--json"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert cli.returncode == 0, cli.stderr[-3000:]
        assert f"running on the Prefect server at http://127.0.0.1:{prefect_port}/api" in cli.stderr
        assert "temporary Prefect server" not in cli.stderr
        assert len(client.search_runs([experiment.experiment_id])) == 2
    finally:
        os.killpg(up.pid, signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
    said = output.read_text()
    assert f"portal and API http://127.0.0.1:{api_port}/portal/" in said
    assert "administrator  admin / " in said and "shown once" in said
    for port in (prefect_port, mlflow_port, api_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served after stop"
