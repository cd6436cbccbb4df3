"""The servers ``regsandbox up`` runs as child processes: started, health-checked, and stopped whole.

Each server runs in a session of its own, so stopping it reaches every process it started (the
MLflow and Prefect servers both leave workers behind otherwise).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from orchestrator.backends.procfs import kill_all, proc_stat
from orchestrator.errors import RegSandboxError
from orchestrator.settings import Settings


@dataclass
class Service:
    name: str
    command: list[str]
    health_url: str
    ui_url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None
    _session_start: int | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        leader = proc_stat(self.process.pid)
        self._session_start = leader.start if leader else None

    def wait_healthy(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RegSandboxError(f"{self.name} exited during start (see {self.log_path}):\n{tail}")
            try:
                if httpx.get(self.health_url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RegSandboxError(f"{self.name} not healthy after {timeout_s:.0f}s (see {self.log_path})")

    def stop(self) -> None:
        """End the server and everything it started, not only the process we launched.

        ``mlflow server`` and ``prefect server start`` each run the real server (and job
        consumers) as children that can outlive the command we started, still listening; so
        every member of the session is signalled and waited for, then killed after a grace.
        """
        if self.process is not None:
            kill_all({"pgid": self.process.pid, "start": self._session_start}, grace_s=15.0, kill_s=5.0)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        if self._log is not None:
            self._log.close()


def stop_all(stack: list[Service]) -> None:
    """Stop every service at once: the grace periods overlap instead of adding up."""
    with ThreadPoolExecutor(max(1, len(stack))) as pool:
        list(pool.map(Service.stop, stack))


def _binary(name: str) -> str:
    # The servers come with the platform's own environment, next to this interpreter.
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def services(
    settings: Settings, host: str, prefect_port: int, mlflow_port: int, api_port: int
) -> list[Service]:
    logs = settings.home / "logs"
    prefect_home = settings.home / "prefect"
    db = settings.home / "mlflow.db"
    return [
        Service(
            "prefect",
            [
                _binary("prefect"),
                "server",
                "start",
                "--host",
                host,
                "--port",
                str(prefect_port),
                "--analytics-off",
            ],
            f"http://{host}:{prefect_port}/api/health",
            f"http://{host}:{prefect_port}",
            logs / "prefect-server.log",
            {
                "PREFECT_HOME": str(prefect_home),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                # The UI's pages call the API at this address; without it they call port 4200
                # (whatever --port says), or an inherited PREFECT_API_URL of another server.
                "PREFECT_UI_API_URL": f"http://{host}:{prefect_port}/api",
            },
        ),
        Service(
            "mlflow",
            [
                _binary("mlflow"),
                "server",
                "--host",
                host,
                "--port",
                str(mlflow_port),
                "--backend-store-uri",
                f"sqlite:///{db}",
                "--artifacts-destination",
                str(settings.artifacts_dir),
                "--workers",
                "1",
            ],
            f"http://{host}:{mlflow_port}/health",
            f"http://{host}:{mlflow_port}",
            logs / "mlflow-server.log",
        ),
        Service(
            "platform",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "orchestrator.api.app:create_app",
                "--host",
                host,
                "--port",
                str(api_port),
                "--log-level",
                "warning",
                "--no-access-log",  # calls are audited by the platform; a log line each would cost CPU
            ],
            f"http://{host}:{api_port}/api/health",
            f"http://{host}:{api_port}",
            logs / "platform.log",
            {
                "REGSANDBOX_HOME": str(settings.home),
                "PREFECT_API_URL": f"http://{host}:{prefect_port}/api",
                "MLFLOW_TRACKING_URI": f"http://{host}:{mlflow_port}",
                "REGSANDBOX_PLATFORM_URL": f"http://{host}:{api_port}",
            },
        ),
    ]
