"""The ``SandboxBackend`` contract, checked the same way against every backend that runs here.

One set of tests, parametrized over ``docker`` and ``process``: provision, attest, deploy a real
MLflow model, score through the endpoint, observe, tear down (twice), and sweep orphans. A
backend may provide less isolation than another (the process backend provides little), but it
must say so: a probe it does not claim is reported as not provided, never as passed.

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

from orchestrator.backends import SandboxBackend
from orchestrator.backends.attestation import ALL_PROBES
from orchestrator.settings import Settings
from orchestrator.spec import Resources
from orchestrator.templates import load_template

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# Enough for the MLflow server under the process backend's RLIMIT_DATA, which counts reserved as
# well as resident memory (it needs about 320 MiB), and well inside Docker's cgroup limit.
RESOURCES = Resources(cpus=1.0, memory_mb=512)
ROWS = {"columns": ["a", "b"], "data": [[0.1, 0.2], [0.9, 0.5]]}
TEMPLATE = load_template("mlflow-pyfunc")

# Provisions and deploys, then exits without teardown: an orphan, as after a crash.
ORPHAN = """
import sys
from pathlib import Path
from orchestrator.backends import get_backend
from orchestrator.settings import Settings
from orchestrator.spec import Resources
from orchestrator.templates import load_template
backend = get_backend(sys.argv[1], Settings(home=Path(sys.argv[2])))
sandbox = backend.provision(sys.argv[3], Resources(cpus=1.0, memory_mb=512))
backend.deploy(sandbox, load_template("mlflow-pyfunc"), Path(sys.argv[4]))
"""

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
    settings = Settings(home=platform_home)
    if request.param == "docker":
        request.getfixturevalue("docker_client")  # skips, or fails under REGSANDBOX_REQUIRE_DOCKER=1
        from orchestrator.backends.docker import DockerBackend

        return DockerBackend(settings)
    from orchestrator.backends.process import ProcessBackend

    return ProcessBackend(settings)


@pytest.fixture(scope="module")
def live(backend: SandboxBackend, tiny_model_dir: Path) -> Iterator[dict[str, Any]]:
    """One sandbox per backend, attested before deployment as a trial does, then serving."""
    trial_id = f"t-conf-{backend.name}-live"
    backend.teardown(trial_id)  # what an interrupted earlier run may have left
    sandbox = backend.provision(trial_id, RESOURCES)
    try:
        attestation = backend.attest(sandbox)
        endpoint = backend.deploy(sandbox, TEMPLATE, tiny_model_dir)
        yield {"sandbox": sandbox, "attestation": attestation, "endpoint": endpoint}
    finally:
        backend.teardown(trial_id)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; only its parent's bookkeeping is left


def test_provision_gives_a_labelled_sandbox(backend: SandboxBackend, live: dict[str, Any]) -> None:
    sandbox = live["sandbox"]
    assert sandbox.backend == backend.name and sandbox.resources == RESOURCES
    assert sandbox.labels["regsandbox.trial_id"] == sandbox.trial_id
    assert sandbox.labels["regsandbox.owner_pid"] == str(os.getpid())


def test_attestation_claims_only_what_the_backend_provides(
    backend: SandboxBackend, live: dict[str, Any]
) -> None:
    attestation = live["attestation"]
    assert attestation.backend == backend.name
    assert [p.probe for p in attestation.probes] == list(ALL_PROBES)
    for probe in attestation.probes:
        assert probe.required == (probe.probe in backend.required_probes), probe
        if probe.required:
            assert probe.passed, probe
        else:
            assert not probe.passed and "not provided" in probe.detail, probe
    assert attestation.passed
    if backend.name == "docker":
        assert backend.required_probes == frozenset(ALL_PROBES)
    else:  # no network isolation: the network probes must never run from the host
        assert not {"no-egress", "no-dns", "no-host-access", "canary-untouched"} & backend.required_probes


def test_deploy_gives_a_healthy_endpoint(live: dict[str, Any]) -> None:
    endpoint = live["endpoint"]
    assert httpx.get(endpoint.url + endpoint.health_path, timeout=5).status_code == 200
    assert 0 < endpoint.ready_s < 60


def test_endpoint_scores_dataframe_split(live: dict[str, Any]) -> None:
    reply = httpx.post(live["endpoint"].url + "/invocations", json={"dataframe_split": ROWS}, timeout=30)
    assert reply.status_code == 200, reply.text
    predictions = reply.json()["predictions"]
    assert len(predictions) == 2 and all(abs(sum(p) - 1.0) < 1e-6 for p in predictions)
    assert predictions[0][1] < 0.5 < predictions[1][1]  # the label follows column a


def test_stats_and_logs(backend: SandboxBackend, live: dict[str, Any]) -> None:
    stats = backend.stats(live["sandbox"])
    assert stats.running and not stats.oom_killed
    assert stats.memory_bytes is not None and stats.memory_bytes > 20 * 2**20
    assert stats.memory_limit_bytes == RESOURCES.memory_mb * 2**20
    assert stats.pids is not None and stats.pids >= 1
    assert stats.cpu_seconds is not None and stats.cpu_seconds > 0
    assert isinstance(backend.logs(live["sandbox"]), str)


def test_isolation_controls_are_honest(backend: SandboxBackend, live: dict[str, Any]) -> None:
    controls = {c.control: c for c in backend.isolation_controls(live["sandbox"])}
    assert controls and all(c.detail for c in controls.values())
    if backend.name == "docker":
        assert all(c.applied for c in controls.values()), [c for c in controls.values() if not c.applied]
        return
    assert not controls["network isolation"].applied
    assert not controls["filesystem isolation"].applied
    assert controls["listens on loopback only"].applied
    assert controls["non-root user"].applied == ("non-root" in backend.required_probes)


def test_teardown_is_idempotent_and_verified(backend: SandboxBackend, tiny_model_dir: Path) -> None:
    trial_id = f"t-conf-{backend.name}-teardown"
    backend.teardown(trial_id)
    sandbox = backend.provision(trial_id, RESOURCES)
    backend.deploy(sandbox, TEMPLATE, tiny_model_dir)
    first = backend.teardown(trial_id)
    assert first.verified and first.removed, first
    second = backend.teardown(trial_id)
    assert second.verified and second.removed == [], second
    # Not "the endpoint stops answering": a freed container address or port may be someone else's.
    assert trial_id not in backend._owned() and backend._remaining(trial_id) == []


def test_reap_removes_orphans_and_nothing_else(
    backend: SandboxBackend,
    live: dict[str, Any],
    platform_home: Path,
    tiny_model_dir: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    orphan, owned = f"t-conf-{backend.name}-orphan", f"t-conf-{backend.name}-owned"
    for trial_id in (orphan, owned):
        backend.teardown(trial_id)
    made = subprocess.run(
        [sys.executable, "-c", ORPHAN, backend.name, str(platform_home), orphan, str(tiny_model_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    backend.provision(owned, RESOURCES)
    everything = backend._owned
    assert orphan in everything() and owned in everything()
    monkeypatch.setattr(
        backend, "_owned", lambda: {t: v for t, v in everything().items() if t.startswith("t-conf-")}
    )
    bystanders = _bystanders(backend.name, request, platform_home)
    try:
        orphan_pid = _server_pid(backend.name, platform_home, orphan)
        reaped = {r.trial_id: r for r in backend.reap()}
        assert set(reaped) == {orphan}, reaped
        assert reaped[orphan].verified and reaped[orphan].removed
        assert orphan not in everything()
        assert owned in everything() and live["sandbox"].trial_id in everything()
        if orphan_pid:
            assert not _alive(orphan_pid), "the orphaned model server survived the sweep"
        bystanders["check"]()
    finally:
        bystanders["remove"]()
        backend.teardown(owned)
        backend.teardown(orphan)


def _server_pid(name: str, home: Path, trial_id: str) -> int | None:
    if name != "process":
        return None
    from orchestrator.backends.process import ProcessBackend

    state = ProcessBackend(Settings(home=home))._state(trial_id) or {}
    return int(state["pid"])


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
