"""The sandbox, provisioned by the real Docker backend, holds against what runs inside it.

Probes run inside the live model-server container (``docker exec``: same namespaces, user,
capabilities and cgroups as the model). Every "blocked" assertion has a positive control
showing that the same target IS reachable from outside the sandbox, so a test can't pass just
because the target was down.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orchestrator.backends.docker import DockerBackend, bridge_name
from orchestrator.spec import Resources
from orchestrator.templates import load_template

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PYTHON = "/opt/venv/bin/python"

CONNECT = """
import json, socket, sys
out = {}
for host, port in json.loads(sys.argv[1]):
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((host, port)); out[f"{host}:{port}"] = "connected"
    except OSError as exc:
        out[f"{host}:{port}"] = type(exc).__name__
    finally:
        s.close()
print(json.dumps(out))
"""


def _exec(container, code: str, *args: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    result = container.exec_run([PYTHON, "-c", code, *args])
    return result.exit_code, result.output.decode(errors="replace")


def _host_addresses() -> list[str]:
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True
    ).stdout
    return [line.split()[3].split("/")[0] for line in out.splitlines() if " lo " not in line]


@pytest.fixture(scope="module")
def host_service() -> Iterator[int]:
    """A TCP service on every host address (0.0.0.0), as a careless host service would be."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 0))  # noqa: S104 - the point is a service listening everywhere
    server.listen(16)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


@pytest.fixture(scope="module")
def sandboxes(docker_client, tiny_model_dir: Path, platform_home: Path) -> Iterator[dict]:  # type: ignore[no-untyped-def]
    from orchestrator.settings import Settings

    settings = Settings(home=platform_home)
    backend = DockerBackend(settings)
    template = load_template("mlflow-pyfunc")
    made = {}
    try:
        for trial in ("iso-a", "iso-b"):
            sandbox = backend.provision(f"t-{trial}", Resources(cpus=0.5, memory_mb=256))
            endpoint = backend.deploy(sandbox, template, tiny_model_dir)
            container = docker_client.containers.get(endpoint.container)
            made[trial] = {"sandbox": sandbox, "endpoint": endpoint, "container": container}
        yield {"backend": backend, **made}
    finally:
        for trial in ("iso-a", "iso-b"):
            backend.teardown(f"t-{trial}")


@pytest.fixture(scope="module")
def outside(docker_client) -> Iterator[dict]:  # type: ignore[no-untyped-def]
    """A stand-in for the internet: a server on Docker's ordinary (routed) bridge network."""
    container = docker_client.containers.run(
        "regsandbox/base:bookworm",
        ["python3", "-m", "http.server", "8000"],
        detach=True,
        labels={"regsandbox.test": "outside"},
    )
    try:
        container.reload()
        address = container.attrs["NetworkSettings"]["IPAddress"]
        yield {"container": container, "address": address}
    finally:
        container.remove(force=True)


def test_no_egress_no_host_no_other_sandbox(sandboxes, host_service: int, outside, docker_client) -> None:  # type: ignore[no-untyped-def]
    a, b = sandboxes["iso-a"], sandboxes["iso-b"]
    gateway_ip = docker_client.networks.get(a["sandbox"].details["network_id"]).attrs["IPAM"]["Config"][0][
        "Gateway"
    ]
    b_url = httpx.URL(b["endpoint"].url)
    targets = [(ip, host_service) for ip in {gateway_ip, *_host_addresses()}]
    targets += [(outside["address"], 8000), (b_url.host, b_url.port), ("1.1.1.1", 443), ("8.8.8.8", 53)]

    # Positive controls: from a container on an ordinary network, the host service and the
    # stand-in outside server answer; the host itself reaches sandbox B's model.
    control = docker_client.containers.run(
        "regsandbox/base:bookworm",
        ["python3", "-c", CONNECT, json.dumps(targets[:-3] + [targets[-4]])],
        remove=True,
    )
    reachable = json.loads(control.decode())
    assert all(v == "connected" for k, v in reachable.items() if not k.startswith(b_url.host)), reachable
    assert httpx.get(b["endpoint"].url + "/health").status_code == 200

    code, out = _exec(a["container"], CONNECT, json.dumps(targets))
    assert code == 0, out
    results = json.loads(out)
    assert results and all(v != "connected" for v in results.values()), results


def test_no_default_route_out_of_the_sandbox(sandboxes) -> None:  # type: ignore[no-untyped-def]
    code, out = _exec(sandboxes["iso-a"]["container"], "print(open('/proc/net/route').read())")
    assert code == 0
    network = sandboxes["iso-a"]["sandbox"].details
    assert network["bridge"] == bridge_name("t-iso-a")
    # Packets may name a gateway, but the internal network forwards nothing: checked above.
    # Here: the host firewall rule for this bridge is in place.
    rules = subprocess.run(["iptables", "-S", "INPUT"], capture_output=True, text=True, check=True).stdout
    assert network["bridge"] in rules and "regsandbox:t-iso-a" in rules


def test_filesystem_user_and_capabilities(sandboxes) -> None:  # type: ignore[no-untyped-def]
    probe = """
import json, os, subprocess
out = {"uid": os.getuid(), "gid": os.getgid()}
for path in ("/etc/x", "/usr/x", "/model/x", "/x"):
    try:
        open(path, "w").write("x"); out[path] = "written"
    except OSError as exc:
        out[path] = exc.strerror
open("/tmp/run.sh", "w").write("#!/bin/sh\\necho hi\\n"); os.chmod("/tmp/run.sh", 0o755)
try:
    subprocess.run(["/tmp/run.sh"], check=True); out["tmp_exec"] = "ran"
except OSError as exc:
    out["tmp_exec"] = exc.strerror
status = open("/proc/self/status").read()
out["CapEff"] = [l.split()[1] for l in status.splitlines() if l.startswith("CapEff")][0]
out["NoNewPrivs"] = [l.split()[1] for l in status.splitlines() if l.startswith("NoNewPrivs")][0]
print(json.dumps(out))
"""
    code, out = _exec(sandboxes["iso-a"]["container"], probe)
    assert code == 0, out
    result = json.loads(out)
    assert result["uid"] == 10001 and result["gid"] == 10001
    for path in ("/etc/x", "/usr/x", "/model/x", "/x"):
        assert result[path] == "Read-only file system", result
    assert result["tmp_exec"] == "Permission denied"
    assert int(result["CapEff"], 16) == 0
    assert result["NoNewPrivs"] == "1"


def test_limits_apply(sandboxes) -> None:  # type: ignore[no-untyped-def]
    container = sandboxes["iso-a"]["container"]
    # PIDs: threads beyond the limit cannot be created.
    threads = """
import threading, time
n = 0
try:
    for _ in range(1000):
        threading.Thread(target=time.sleep, args=(5,), daemon=True).start(); n += 1
except RuntimeError:
    pass
print(n)
"""
    code, out = _exec(container, threads)
    assert code == 0, out
    assert int(out.strip().splitlines()[-1]) < 256
    # CPU: the quota the engine enforces is half a core.
    host = container.attrs["HostConfig"]
    assert host["NanoCpus"] == 500_000_000 and host["Memory"] == 256 * 2**20 and host["PidsLimit"] == 256
    stats = sandboxes["backend"].stats(sandboxes["iso-a"]["sandbox"])
    assert stats.memory_limit_bytes == 256 * 2**20
    # Memory, last (the OOM killer may take the model server down with the probe): allocating
    # far past the 256 MiB limit gets killed inside the sandbox; the host carries on.
    code, out = _exec(
        container, "x = bytearray(768 * 2**20); x[::4096] = b'1' * len(x[::4096]); print('survived')"
    )
    assert code == 137 and "survived" not in out, (code, out)


def test_isolation_controls_read_back(sandboxes) -> None:  # type: ignore[no-untyped-def]
    controls = sandboxes["backend"].isolation_controls(sandboxes["iso-a"]["sandbox"])
    assert len(controls) >= 10
    assert all(c.applied for c in controls), [c for c in controls if not c.applied]


def test_teardown_is_idempotent_and_complete(
    docker_client, tiny_model_dir: Path, platform_home: Path
) -> None:  # type: ignore[no-untyped-def]
    from orchestrator.settings import Settings

    backend = DockerBackend(Settings(home=platform_home))
    sandbox = backend.provision("t-iso-teardown", Resources(memory_mb=256))
    backend.deploy(sandbox, load_template("mlflow-pyfunc"), tiny_model_dir)
    first = backend.teardown("t-iso-teardown")
    # The model container, the network, and the two firewall rules (INPUT and DOCKER-USER).
    assert first.verified and len(first.removed) == 4, first.removed
    second = backend.teardown("t-iso-teardown")
    assert second.verified and second.removed == []
    label = {"label": "regsandbox.trial_id=t-iso-teardown"}
    assert not docker_client.containers.list(all=True, filters=label)
    assert not docker_client.networks.list(filters=label)
