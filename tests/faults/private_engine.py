"""A private Docker engine a test may restart: never the shared engine other trials run on.

Its own socket, data root, exec root and pidfile, and no iptables, masquerade or forwarding of
its own, so it never touches the host engine's firewall chains (sandbox networks are
``internal`` and the platform's own per-trial host rules still apply). Its default bridge is a
bridge of its own, created here and removed afterwards: NOT ``--bridge=none``, because a dockerd
started with the default bridge disabled deletes the host's ``docker0``, breaking every
container of the shared engine on its default network. Images are copied in from the shared
engine with ``docker save | docker load``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

FLAGS = [
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
        digest = hashlib.sha256(str(root).encode()).hexdigest()
        self.bridge = "rsd-" + digest[:11]  # interface names are at most 15 characters
        self.address = f"10.213.{int(digest[11:13], 16)}.1/24"

    def _make_bridge(self) -> None:
        if subprocess.run(["ip", "link", "show", self.bridge], capture_output=True, check=False).returncode:
            subprocess.run(["ip", "link", "add", "name", self.bridge, "type", "bridge"], check=True)
            subprocess.run(["ip", "addr", "add", self.address, "dev", self.bridge], check=True)
            subprocess.run(["ip", "link", "set", self.bridge, "up"], check=True)

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
            f"--bridge={self.bridge}",
            *FLAGS,
        ]

    def start(self, timeout: float = 60.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._make_bridge()
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
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
