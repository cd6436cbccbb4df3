"""The chart's pods, rendered from the chart and run with the chart's own security contexts on the
real Docker engine (tests/helm/pods_on_docker.py), from the platform image built offline: the
bundled PostgreSQL, Prefect, MLflow and the platform pod (bootstrap, API, runner) all pass their
readiness probes; the runner serves the two deployments on the Prefect server; the first
administrator signs in with the password from the rendered Secret; every container runs as uid
10001 with a read-only root and no capabilities."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.helm.chart import ROOT, objects, render
from tests.helm.pods_on_docker import PodsOnDocker

pytestmark = [pytest.mark.docker, pytest.mark.slow]
IMAGE = "regsandbox/platform:0.1.0"
NAMESPACE = "regsandbox"


@pytest.fixture(scope="module")
def platform_image(docker_client: Any) -> str:
    """The platform image, built offline by the project's script (a no-op when up to date)."""
    done = subprocess.run(
        ["bash", "scripts/build-platform-image.sh", IMAGE],
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        check=False,
        timeout=1500,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return IMAGE


@pytest.fixture(scope="module")
def pods(docker_client: Any, platform_image: str) -> Iterator[tuple[PodsOnDocker, list[dict[str, Any]]]]:
    values = {"persistence": {"enabled": False}, "runner": {"reapIntervalSeconds": 60}}
    objs = objects(render(values, name="rs", namespace=NAMESPACE))
    workloads = {o["metadata"]["name"]: o for o in objs if o["kind"] in ("Deployment", "StatefulSet")}
    runner = PodsOnDocker(docker_client, objs, NAMESPACE)
    try:
        # The kubelet would restart the servers until the database answers; start it first instead.
        runner.start("postgresql", workloads["rs-regsandbox-postgresql"]["spec"]["template"])
        runner.wait_ready(120)
        for name in ("prefect", "mlflow", "platform"):
            runner.start(name, workloads[f"rs-regsandbox-{name}"]["spec"]["template"])
        yield runner, objs
    finally:
        runner.close()


def _address(runner: PodsOnDocker, pod: str, port: int) -> str:
    holder = runner.pod_network[pod]
    holder.reload()
    return f"http://{holder.attrs['NetworkSettings']['Networks'][runner.network.name]['IPAddress']}:{port}"


def test_every_pod_of_the_chart_becomes_ready(pods: tuple[PodsOnDocker, list[dict[str, Any]]]) -> None:
    runner, _ = pods
    ready = runner.wait_ready(300)
    print(f"\nready after (s): {json.dumps(ready)}")
    assert set(ready) == {
        "postgresql/postgresql",
        "prefect/prefect",
        "mlflow/mlflow",
        "platform/api",
        "platform/runner",
    }
    for key, container in runner.containers.items():
        host = container.attrs["HostConfig"]
        assert host["ReadonlyRootfs"] is True, key
        assert host["CapDrop"] == ["ALL"], key
        assert container.attrs["Config"]["User"] == "10001:10001", key


def test_runner_serves_the_flows_and_the_admin_signs_in(
    pods: tuple[PodsOnDocker, list[dict[str, Any]]],
) -> None:
    runner, objs = pods
    runner.wait_ready(300)
    prefect = _address(runner, "prefect", 4200)
    names: list[str] = []
    for _ in range(120):
        found = httpx.post(f"{prefect}/api/deployments/filter", json={}, timeout=10).json()
        names = sorted(d["name"] for d in found)
        if names == ["reap-orphans", "sandbox-trial"]:
            break
        runner.containers["platform/runner"].reload()
        assert runner.containers["platform/runner"].status == "running", runner.logs(
            runner.containers["platform/runner"]
        )
        time.sleep(2)
    assert names == ["reap-orphans", "sandbox-trial"]

    (secret,) = (o for o in objs if o["kind"] == "Secret" and o["metadata"]["name"] == "rs-regsandbox-admin")
    password = base64.b64decode(secret["data"]["password"]).decode()
    platform = _address(runner, "platform", 8080)
    signed_in = httpx.post(
        f"{platform}/api/auth/token",
        json={"username": "admin", "password": password, "label": "chart"},
        timeout=10,
    )
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["role"] == "admin"
    refused = httpx.post(
        f"{platform}/api/auth/token",
        json={"username": "admin", "password": "wrong", "label": "x"},
        timeout=10,
    )
    assert refused.status_code == 401

    # The platform reaches MLflow by its Service name, through MLflow's allowed-hosts check.
    api = runner.containers["platform/api"]
    probe = api.exec_run(
        ["/opt/venv/bin/python", "-c", "import os,httpx; print(httpx.get(os.environ['MLFLOW_TRACKING_URI']"
         " + '/api/2.0/mlflow/experiments/search?max_results=1', timeout=120).status_code)"]
    )  # fmt: skip
    assert probe.output.decode().strip() == "200", probe.output.decode()
