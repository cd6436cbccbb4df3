"""The process backend's own rules: what it claims, the limits it sets, and privilege dropping.

The model server needs the platform's interpreter (MLflow, scikit-learn); these tests need only
the standard library, so where the platform's interpreter is out of reach of uid 65534 (a pyenv
under /root) they use the system's ``python3`` to exercise the real drop to that user.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.backends.attestation import ALL_PROBES, PROBE_SCRIPT
from orchestrator.backends.process import SANDBOX_UID, Launch, ProcessBackend, provided_probes
from orchestrator.errors import BackendError
from orchestrator.settings import Settings
from orchestrator.spec import Resources

SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")
RESOURCES = Resources(cpus=1.0, memory_mb=256)
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not SYSTEM_PYTHON, reason="dropping privileges needs root"
)


class SystemPythonBackend(ProcessBackend):
    launch = Launch(str(SYSTEM_PYTHON), SANDBOX_UID, f"privileges dropped from root to uid {SANDBOX_UID}")
    required_probes = provided_probes(launch)


@pytest.fixture()
def reachable_home() -> Iterator[Path]:
    """A platform home uid 65534 can reach (pytest's own tmp_path is private to root)."""
    home = Path(tempfile.mkdtemp(prefix="t-conf-home-", dir="/tmp"))  # noqa: S108
    home.chmod(0o755)
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_a_root_server_claims_nothing() -> None:
    # Root can raise any rlimit and regain anything: no probe would mean what it says.
    assert provided_probes(Launch("python3", 0, "root")) == frozenset()


def test_dropped_privileges_add_the_process_limit() -> None:
    dropped = provided_probes(Launch("python3", SANDBOX_UID, "dropped"))
    assert dropped == {"non-root", "no-capabilities", "no-new-privileges", "memory-limit", "pids-limit"}
    # As the platform's own (non-root) user, RLIMIT_NPROC would count the platform's processes too.
    own = Launch("python3", None, "own user")
    if own.runs_as != 0:
        assert provided_probes(own) == dropped - {"pids-limit"}
    assert not {"no-egress", "no-dns", "no-host-access", "read-only-root", "noexec-tmp"} & dropped


def test_limits_follow_the_spec(tmp_path: Path) -> None:
    backend = ProcessBackend(Settings(home=tmp_path))
    limits = dict(backend.limits(Resources(cpus=0.5, memory_mb=384, timeout_s=600)))
    assert limits[resource.RLIMIT_DATA] == 384 * 2**20
    assert limits[resource.RLIMIT_CORE] == 0
    assert limits[resource.RLIMIT_CPU] == 600  # at least one core's worth of the whole trial
    assert (resource.RLIMIT_NPROC in limits) == (backend.launch.uid is not None)


def test_probe_script_reads_rlimits_when_no_cgroup_limits(tmp_path: Path) -> None:
    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (200 * 2**20, 200 * 2**20))

    skip = [p for p in ALL_PROBES if p != "memory-limit"]
    args = {"skip": skip, "limits": {"memory_bytes": 256 * 2**20, "pids": 256, "cpus": 1}}
    out = subprocess.run(
        [SYSTEM_PYTHON or "python3", str(PROBE_SCRIPT), json.dumps(args)],
        preexec_fn=limited,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    results = json.loads(out)
    assert [r["probe"] for r in results] == ["memory-limit"]  # skipped probes are not reported
    assert results[0]["passed"] and str(200 * 2**20) in results[0]["detail"]


@needs_root
def test_a_home_the_sandbox_user_cannot_reach_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    with pytest.raises(BackendError, match="cannot reach"):
        SystemPythonBackend(Settings(home=home)).provision("t-conf-unit-private", RESOURCES)
    assert not (home / "sandboxes" / "t-conf-unit-private").exists()


@needs_root
def test_dropped_sandbox_passes_its_probes(reachable_home: Path) -> None:
    home = reachable_home
    backend = SystemPythonBackend(Settings(home=home))
    sandbox = backend.provision("t-conf-unit-drop", RESOURCES)
    try:
        sandbox_dir = Path(sandbox.details["dir"])
        assert (sandbox_dir / "home").stat().st_uid == SANDBOX_UID
        assert sandbox_dir.stat().st_uid == 0 and (sandbox_dir / "state.json").stat().st_uid == 0
        attestation = backend.attest(sandbox)
        required = {p.probe: p for p in attestation.probes if p.required}
        assert set(required) == set(SystemPythonBackend.required_probes)
        assert attestation.passed, attestation.failures
        assert "rlimit" in required["memory-limit"].detail and "uid=65534" in required["non-root"].detail
    finally:
        result = backend.teardown("t-conf-unit-drop")
    assert result.verified and not (home / "sandboxes" / "t-conf-unit-drop").exists()


STDLIB_SERVER = """
import http.server, json, os, pathlib

weights = pathlib.Path(os.environ["MODEL_DIR"], "weights.txt").read_text()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"weights": weights, "uid": os.getuid(), "home": os.environ["HOME"]}).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)


http.server.HTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Handler).serve_forever()
"""


@needs_root
def test_dropped_server_reads_its_model_copy_and_reports_its_controls(
    tmp_path: Path, reachable_home: Path
) -> None:
    import httpx

    from orchestrator.templates import Template

    (tmp_path / "template").mkdir()
    (tmp_path / "template" / "server.py").write_text(STDLIB_SERVER)
    template = Template(
        name="stdlib",
        kind="tabular",
        protocol="mlflow-invocations",
        port=8080,
        health_path="/health",
        paths=["/health"],
        folder=tmp_path / "template",
    )
    model = tmp_path / "private" / "model"  # in a directory uid 65534 cannot enter
    model.mkdir(parents=True)
    (tmp_path / "private").chmod(0o700)
    (model / "weights.txt").write_text("w=1")
    (model / "weights.txt").chmod(0o600)
    backend = SystemPythonBackend(Settings(home=reachable_home))
    sandbox = backend.provision("t-conf-unit-serve", RESOURCES)
    try:
        endpoint = backend.deploy(sandbox, template, model)
        served = httpx.get(endpoint.url + "/health", timeout=5).json()
        assert served["weights"] == "w=1" and served["uid"] == SANDBOX_UID
        controls = {c.control: c for c in backend.isolation_controls(sandbox)}
        not_applied = {name for name, c in controls.items() if not c.applied}
        assert not_applied == {"network isolation", "filesystem isolation", "CPU rate limit"}, controls
        assert backend.stats(sandbox).running
    finally:
        result = backend.teardown("t-conf-unit-serve")
    assert result.verified and result.removed


ALLOCATE_AND_FORK = """
import threading, time
try:
    bytearray(400 * 2**20)
    print("allocated")
except MemoryError:
    print("MemoryError")
threads = 0
try:
    for _ in range(1000):
        threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
        threads += 1
except RuntimeError:
    pass
print(threads)
"""


@needs_root
def test_limits_are_enforced_inside_the_sandbox(reachable_home: Path) -> None:
    backend = SystemPythonBackend(Settings(home=reachable_home))
    sandbox = backend.provision("t-conf-unit-limits", RESOURCES)
    try:
        proc = backend._spawn([str(SYSTEM_PYTHON), "-c", ALLOCATE_AND_FORK], sandbox, subprocess.PIPE, {})
        out, err = proc.communicate(timeout=60)
    finally:
        backend.teardown("t-conf-unit-limits")
    memory, threads = out.decode().split()
    assert memory == "MemoryError", err  # 400 MiB past a 256 MiB RLIMIT_DATA
    assert int(threads) < backend.settings.pids_limit  # RLIMIT_NPROC counts threads of uid 65534
