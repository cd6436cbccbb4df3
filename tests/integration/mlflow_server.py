"""A real ``mlflow server`` subprocess for tests and benchmarks: SQLite store, a free local port.

The store (database and artefacts) lives in a directory that outlives the process, so a test
can stop the server and start a new one on the same port and store.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

MLFLOW = Path(sys.executable).with_name("mlflow")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One ``mlflow server`` process over a store that outlives it."""

    def __init__(self, store: Path, port: int) -> None:
        self.store, self.port = store, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 240.0) -> None:
        self.store.mkdir(parents=True, exist_ok=True)
        command = [
            str(MLFLOW), "server",
            "--backend-store-uri", f"sqlite:///{self.store / 'mlflow.db'}",
            "--artifacts-destination", str(self.store / "artifacts"),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]  # fmt: skip
        # A session of its own, so that stopping it reaches the worker processes it spawns.
        with (self.store / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(self.store / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"mlflow server on port {self.port} not healthy after {timeout_s}s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


@contextmanager
def mlflow_server(store: Path) -> Iterator[Server]:
    server = Server(store, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
