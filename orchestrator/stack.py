"""``regsandbox up``: the local platform stack on one machine.

Starts a Prefect server (API + UI) and an MLflow tracking server (API + UI, artefacts
proxied) as child processes keeping their state under the platform home, then serves the
``sandbox-trial`` and ``reap-orphans`` deployments from this process, so an administrator
can start trials from the Prefect UI. Ctrl-C (or SIGTERM) stops the runner first and the
servers after it (a runner whose server is gone would ignore the signal).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

import httpx

from orchestrator.backends.procfs import kill_all, proc_stat
from orchestrator.errors import RegSandboxError
from orchestrator.package_data import data_dir
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

EXAMPLE_SPEC = data_dir("examples") / "trials" / "diabetes-risk.yaml"


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


def services(settings: Settings, host: str, prefect_port: int, mlflow_port: int) -> list[Service]:
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
            {"PREFECT_HOME": str(prefect_home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
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
    ]


def serve_flows(reap_interval_s: float) -> None:
    """Serve the deployments until interrupted (runs flow runs as subprocesses)."""
    from prefect import serve

    from flows.reap import reap_orphans
    from flows.sandbox_trial import sandbox_trial
    from orchestrator.spec import load_spec

    example = load_spec(EXAMPLE_SPEC).model_dump(mode="json")
    # to_deployment is sync-or-async by context; called from sync code it returns the deployment.
    trial = cast(
        "RunnerDeployment",
        sandbox_trial.to_deployment(
            name="sandbox-trial",
            parameters={"spec": example},
            tags=["regsandbox"],
            description="Run one sandbox trial; the form is prefilled with the sample diabetes-risk trial.",
        ),
    )
    reaper = cast(
        "RunnerDeployment",
        reap_orphans.to_deployment(name="reap-orphans", interval=reap_interval_s, tags=["regsandbox"]),
    )
    serve(trial, reaper, print_starting_message=False)


def run_stack(
    settings: Settings,
    host: str = "127.0.0.1",
    prefect_port: int = 4200,
    mlflow_port: int = 5000,
    reap_interval_s: float = 600.0,
    echo: object = print,
) -> None:
    settings.ensure_dirs()
    stack = services(settings, host, prefect_port, mlflow_port)
    say = echo if callable(echo) else print

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        for service in stack:
            service.start()
        for service in stack:
            service.wait_healthy()
        prefect, mlflow = stack
        # Flow runs started by the runner inherit these: they talk to the servers, not to files.
        os.environ["PREFECT_API_URL"] = f"{prefect.ui_url}/api"
        os.environ["MLFLOW_TRACKING_URI"] = mlflow.ui_url
        os.environ["REGSANDBOX_HOME"] = str(settings.home)
        _stack_file(settings).write_text(
            json.dumps(
                {"prefect_api_url": os.environ["PREFECT_API_URL"], "mlflow_tracking_uri": mlflow.ui_url}
            ),
            encoding="utf-8",
        )
        say(f"Prefect UI   {prefect.ui_url}   (deployments: sandbox-trial, reap-orphans)")
        say(f"MLflow UI    {mlflow.ui_url}")
        say(f"home         {settings.home}   (logs in {settings.home / 'logs'})")
        say("serving the flows; Ctrl-C stops everything")
        serve_flows(reap_interval_s)
    except KeyboardInterrupt:
        say("stopping")
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave servers listening.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stack_file(settings).unlink(missing_ok=True)
        stop_all(stack)


def _stack_file(settings: Settings) -> Path:
    return settings.home / "stack.json"


def running_stack(settings: Settings) -> dict[str, str] | None:
    """The URLs of a stack ``regsandbox up`` serves from this home, if its servers answer.

    A trial started from the command line then runs on that stack: it shows in the Prefect UI and
    streams to the MLflow server instead of starting a temporary Prefect server of its own.
    """
    try:
        found = json.loads(_stack_file(settings).read_text(encoding="utf-8"))
        prefect, mlflow = found["prefect_api_url"], found["mlflow_tracking_uri"]
        if httpx.get(f"{prefect}/health", timeout=2).status_code != 200:
            return None
        if httpx.get(f"{mlflow}/health", timeout=2).status_code != 200:
            return None
    except (OSError, ValueError, KeyError, TypeError, httpx.HTTPError):
        return None
    return {"prefect_api_url": prefect, "mlflow_tracking_uri": mlflow}
