"""The ``SandboxBackend`` contract against every backend that runs here (docker, process).

The checks themselves live in :mod:`orchestrator.backends.conformance`, so any backend in the
registry can run them; here each check is one test per backend. A backend may provide less
isolation than another (the process backend provides little), but it must say so: a probe it
does not claim is reported as not provided, never as passed. What only one backend can show (its
controls' meaning, the bystanders a sweep must leave alone, children of a killed server) follows.

Docker cases carry the ``docker`` marker: they skip without an engine, and fail instead under
``REGSANDBOX_REQUIRE_DOCKER=1``. Every trial id here starts with ``t-conf-``, and the orphan
sweep is scoped to those ids, so that a shared engine's other sandboxes are never touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.backends import SandboxBackend, get_backend
from orchestrator.backends.attestation import ALL_PROBES
from orchestrator.backends.conformance import CHECKS, RESOURCES, ROWS, Conformance, run_check
from orchestrator.settings import Settings
from orchestrator.templates import load_template

pytestmark = pytest.mark.slow

TEMPLATE = load_template("mlflow-pyfunc")

# A model that starts two processes on its first prediction and answers with their pids: one
# stays in the server's process group, one leaves it (a new session), as a hostile model would.
SPAWNER = """
import subprocess
import sys

import mlflow
from mlflow.pyfunc import PythonModel


class Spawner(PythonModel):
    children = []

    def predict(self, context, model_input, params=None):
        if not self.children:
            sleep = [sys.executable, "-c", "import time; time.sleep(600)"]
            self.children += [subprocess.Popen(sleep), subprocess.Popen(sleep, start_new_session=True)]
        return [child.pid for child in self.children]


mlflow.models.set_model(Spawner())
"""


@pytest.fixture(scope="module", params=[pytest.param("docker", marks=pytest.mark.docker), "process"])
def backend(request: pytest.FixtureRequest, platform_home: Path) -> SandboxBackend:
    if request.param == "docker":
        request.getfixturevalue("docker_client")  # skips, or fails under REGSANDBOX_REQUIRE_DOCKER=1
    return get_backend(request.param, Settings(home=platform_home))


@pytest.fixture(scope="module")
def conformance(backend: SandboxBackend, tiny_model_dir: Path, platform_home: Path) -> Iterator[Conformance]:
    """One sandbox per backend, attested before deployment as a trial does, then serving."""
    c = Conformance(backend, tiny_model_dir, platform_home).open()
    try:
        yield c
    finally:
        c.close()


# The orphan sweep runs in test_reap_leaves_bystanders_alone, with bystanders around it.
@pytest.mark.parametrize("check", [name for name in CHECKS if name != "reap-orphans"])
def test_conformance(check: str, conformance: Conformance) -> None:
    result = run_check(conformance, check)
    assert result.passed, result.detail


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; only its parent's bookkeeping is left


def test_probe_claims_match_the_backend(backend: SandboxBackend) -> None:
    if backend.name == "docker":
        assert backend.required_probes == frozenset(ALL_PROBES)
    else:  # no network isolation: the network probes must never run from the host
        assert not {"no-egress", "no-dns", "no-host-access", "canary-untouched"} & backend.required_probes


def test_isolation_controls_are_honest(backend: SandboxBackend, conformance: Conformance) -> None:
    sandbox, _ = conformance.live()
    controls = {c.control: c for c in backend.isolation_controls(sandbox)}
    stats = backend.stats(sandbox)
    assert stats.memory_limit_bytes == RESOURCES.memory_mb * 2**20
    assert stats.cpu_seconds is not None and stats.cpu_seconds > 0
    if backend.name == "docker":
        assert all(c.applied for c in controls.values()), [c for c in controls.values() if not c.applied]
        return
    assert not controls["network isolation"].applied
    assert not controls["filesystem isolation"].applied
    assert controls["listens on loopback only"].applied
    assert controls["non-root user"].applied == ("non-root" in backend.required_probes)


def test_reap_leaves_bystanders_alone(
    backend: SandboxBackend, conformance: Conformance, platform_home: Path, request: pytest.FixtureRequest
) -> None:
    bystanders = _bystanders(backend.name, request, platform_home)
    orphan = conformance.trial("orphan")
    try:
        result = run_check(conformance, "reap-orphans")
        assert result.passed, result.detail
        bystanders["check"]()
    finally:
        bystanders["remove"]()
        backend.teardown(orphan)


def _bystanders(name: str, request: pytest.FixtureRequest, home: Path) -> dict[str, Any]:
    """Things the sweep must leave alone: unlabelled engine objects, or a stray process and dir."""
    if name == "docker":
        client = request.getfixturevalue("docker_client")
        network = client.networks.create("t-conf-bystander", internal=True)  # no labels
        container = client.containers.run(
            "regsandbox/base:bookworm",
            ["sleep", "600"],
            detach=True,
            name="t-conf-bystander",
            network=network.name,
        )

        def check() -> None:
            container.reload()
            assert container.status == "running"
            assert client.networks.get(network.id)

        def remove() -> None:
            container.remove(force=True)
            network.remove()

        return {"check": check, "remove": remove}
    stray = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    unowned = home / "sandboxes" / "t-conf-unowned"  # no state file: no owner to judge by
    unowned.mkdir(parents=True, exist_ok=True)

    def check_process() -> None:
        assert stray.poll() is None and unowned.is_dir()

    def remove_process() -> None:
        os.killpg(stray.pid, signal.SIGKILL)
        stray.wait()
        unowned.rmdir()

    return {"check": check_process, "remove": remove_process}


def _spawner_model(tmp_path: Path) -> Path:
    import mlflow.pyfunc

    code = tmp_path / "spawner.py"
    code.write_text(textwrap.dedent(SPAWNER))
    mlflow.pyfunc.save_model(str(tmp_path / "model"), python_model=str(code), pip_requirements=["mlflow"])
    return tmp_path / "model"


def test_process_teardown_kills_the_servers_children(platform_home: Path, tmp_path: Path) -> None:
    from orchestrator.backends.process import ProcessBackend

    model = _spawner_model(tmp_path)
    backend = ProcessBackend(Settings(home=platform_home))
    trial_id = "t-conf-process-spawner"
    backend.teardown(trial_id)
    sandbox = backend.provision(trial_id, RESOURCES)
    try:
        endpoint = backend.deploy(sandbox, TEMPLATE, model)
        reply = httpx.post(endpoint.url + "/invocations", json={"dataframe_split": ROWS}, timeout=30)
        assert reply.status_code == 200, reply.text
        children = reply.json()["predictions"]
        assert len(children) == 2 and all(_alive(pid) for pid in children)
        assert os.getsid(children[1]) == children[1]  # the second really left the server's session
        assert backend.stats(sandbox).pids == 3
        result = backend.teardown(trial_id)
        assert result.verified, result
        assert not [pid for pid in children if _alive(pid)]
    finally:
        backend.teardown(trial_id)


def test_processes_show_what_the_model_started_apart_from_the_server(
    backend: SandboxBackend, tmp_path: Path
) -> None:
    """The processes a trial reports at teardown: the spawned and the detached, never the server."""
    from orchestrator.sandbox_evidence import unexpected_processes

    model = _spawner_model(tmp_path)
    trial_id = f"t-conf-{backend.name}-processes"
    backend.teardown(trial_id)
    sandbox = backend.provision(trial_id, RESOURCES)
    try:
        endpoint = backend.deploy(sandbox, TEMPLATE, model)
        at_deploy = backend.processes(sandbox)
        assert at_deploy and all(len(line.split(None, 4)) == 5 for line in at_deploy)
        assert unexpected_processes(at_deploy, at_deploy) == []
        reply = httpx.post(endpoint.url + "/invocations", json={"dataframe_split": ROWS}, timeout=30)
        assert reply.status_code == 200, reply.text
        running = backend.processes(sandbox)
        unexpected = unexpected_processes(running, at_deploy)
        assert len(unexpected) == 2 and all("time.sleep(600)" in line for line in unexpected)
        # One of them left the server's session: flagged even had it been running at deploy.
        assert len(unexpected_processes(running, running)) == 1
        assert not set(at_deploy) & set(unexpected)
    finally:
        assert backend.teardown(trial_id).verified
