"""Kill the orchestrator in the middle of a trial; ``regsandbox reap`` cleans up after it.

No hook runs after SIGKILL, so only the label-based sweep can remove the sandbox. It must
remove every object of that trial and nothing else: not an unlabelled container or network,
not the sandbox of a trial whose orchestrator is still alive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.backends import hostfirewall
from orchestrator.backends.docker import DockerBackend
from orchestrator.settings import Settings
from orchestrator.spec import Resources
from tests.integration.models import candidate_model

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _wait_for_sandbox(docker_client, orchestrator: subprocess.Popen, log: Path, timeout: float = 420) -> str:  # type: ignore[no-untyped-def, type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = docker_client.containers.list(
            filters={"label": f"regsandbox.owner_pid={orchestrator.pid}", "status": "running"}
        )
        model = [c for c in found if not c.name.endswith("-probe")]
        if model:
            return str(model[0].labels["regsandbox.trial_id"])
        if orchestrator.poll() is not None:
            tail = log.read_text(errors="replace")[-4000:]
            raise AssertionError(
                f"the trial ended (exit {orchestrator.returncode}) before deploying:\n{tail}"
            )
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-4000:]
    raise TimeoutError(f"the trial never deployed its model in {timeout:.0f}s; its output ends:\n{tail}")


def _objects(docker_client, trial_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    flt = {"label": f"regsandbox.trial_id={trial_id}"}
    found = [f"container {c.name}" for c in docker_client.containers.list(all=True, filters=flt)]
    found += [f"network {n.name}" for n in docker_client.networks.list(filters=flt)]
    found += [f"volume {v.name}" for v in docker_client.volumes.list(filters=flt)]
    return found + [f"rule {r[0]}" for r in hostfirewall.rules_for(trial_id)]


def test_reap_after_the_orchestrator_is_killed(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    spec = yaml.safe_load((ROOT / "examples" / "trials" / "diabetes-risk.yaml").read_text())
    spec["model"]["uri"] = str(candidate_model(tmp_path / "model"))
    spec["data"]["synthetic"]["rows"] = 300
    spec["workload"] = {"developer_window_s": 600}  # keeps the trial alive once deployed
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "REGSANDBOX_"))}
    env["REGSANDBOX_HOME"] = str(home)
    regsandbox = str(Path(sys.executable).parent / "regsandbox")

    # Bystanders: an unlabelled container and network, and a live trial's sandbox.
    bystander_net = docker_client.networks.create("bystander-net", internal=True)
    bystander = docker_client.containers.run(
        "regsandbox/base:bookworm", ["sleep", "600"], detach=True, name="bystander", network="bystander-net"
    )
    live = DockerBackend(Settings(home=home))
    live.provision("t-reap-live", Resources(memory_mb=128))
    log = tmp_path / "orchestrator.log"
    with log.open("wb") as out:
        orchestrator = subprocess.Popen(
            [regsandbox, "trial", "run", str(spec_path)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        trial_id = _wait_for_sandbox(docker_client, orchestrator, log)
        assert _objects(docker_client, trial_id)
        os.killpg(orchestrator.pid, signal.SIGKILL)  # the CLI and its temporary Prefect server
        orchestrator.wait(timeout=30)
        time.sleep(0.5)
        assert _objects(docker_client, trial_id), "nothing to reap: the kill came too late"

        reaped = subprocess.run(
            [regsandbox, "reap"], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert reaped.returncode == 0, reaped.stderr
        assert trial_id in reaped.stdout
        assert _objects(docker_client, trial_id) == []
        # Nothing else was touched.
        bystander.reload()
        assert bystander.status == "running"
        assert docker_client.networks.get(bystander_net.id)
        assert _objects(docker_client, "t-reap-live"), "a live trial's sandbox was removed"
        assert "t-reap-live" not in reaped.stdout
    finally:
        if orchestrator.poll() is None:
            os.killpg(orchestrator.pid, signal.SIGKILL)
        bystander.remove(force=True)
        bystander_net.remove()
        live.teardown("t-reap-live")
