"""A private Docker engine a test may restart: never the shared engine other trials run on.

Its own socket, data root, exec root and pidfile; ``--bridge=none`` and no iptables, masquerade
or forwarding of its own, so it never touches the host engine's ``docker0`` or its firewall
chains (sandbox networks are ``internal`` and the platform's own per-trial host rules still
apply). Images are copied in from the shared engine with ``docker save | docker load``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

FLAGS = [
    "--bridge=none",
    "--iptables=false",
    "--ip-masq=false",
    "--ip-forward=false",
    "--userland-proxy=false",
    "--exec-opt",
    "native.cgroupdriver=cgroupfs",
    "--log-level=warn",
]


class PrivateEngine:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "docker.sock"
        self.url = f"unix://{self.socket}"
        self.process: subprocess.Popen[bytes] | None = None

    def _args(self) -> list[str]:
        return [
            "dockerd",
            "--host",
            self.url,
            "--data-root",
            str(self.root / "data"),
            "--exec-root",
            str(self.root / "exec"),
            "--pidfile",
            str(self.root / "dockerd.pid"),
            *FLAGS,
        ]

    def start(self, timeout: float = 60.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "dockerd.log").open("ab") as log:
            self.process = subprocess.Popen(
                self._args(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"private dockerd exited: {(self.root / 'dockerd.log').read_text()[-2000:]}"
                )
            if self.answers():
                return
            time.sleep(0.25)
        raise RuntimeError(f"private dockerd did not answer in {timeout:.0f}s")

    def answers(self) -> bool:
        env = {**os.environ, "DOCKER_HOST": self.url}
        done = subprocess.run(["docker", "info"], env=env, capture_output=True, timeout=20, check=False)
        return done.returncode == 0

    def stop(self) -> None:
        """Stop the engine as a restart or crash of the service would (it stops its containers)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def load(self, *images: str) -> None:
        """Copy ``images`` from the shared engine into this one."""
        save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
        env = {**os.environ, "DOCKER_HOST": self.url}
        load = subprocess.run(
            ["docker", "load"], stdin=save.stdout, env=env, capture_output=True, check=False
        )
        save.wait(timeout=300)
        if save.returncode or load.returncode:
            raise RuntimeError(f"docker save | docker load failed: {load.stderr[-2000:]!r}")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
