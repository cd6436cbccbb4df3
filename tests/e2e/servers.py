"""Helpers for the tests that start ``regsandbox up``: a free port, and waiting on a health URL."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Until ``url`` answers 200; fails at once if the process that should serve it has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "regsandbox up exited early"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(url)


def start_up(
    command: list[str], ports: tuple[int, int, int], env: dict[str, str], cwd: Path, output: Path
) -> subprocess.Popen[bytes]:
    """``regsandbox up`` (``command``) on the Prefect, MLflow and platform ``ports``, in a session of
    its own, saying what it says into ``output``; returns once all three servers answer."""
    prefect, mlflow, api = ports
    up = subprocess.Popen(
        [
            *command,
            "up",
            "--prefect-port",
            str(prefect),
            "--mlflow-port",
            str(mlflow),
            "--api-port",
            str(api),
        ],
        env=env,
        cwd=cwd,
        stdout=output.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    for url in (f"{prefect}/api/health", f"{mlflow}/health", f"{api}/api/health"):
        wait_healthy(f"http://127.0.0.1:{url}", up)
    return up
