"""``regsandbox up`` and ``down``: the whole platform on one machine.

Starts a Prefect server (API + UI), an MLflow tracking server (API + UI, artefacts proxied) and
the platform (API, regulators' portal, developers' endpoint) as child processes keeping their
state under the platform home; creates the first administrator and registers the sample
candidate when they are missing; then serves the ``sandbox-trial`` and ``reap-orphans``
deployments from this process, so an administrator can start trials from the Prefect UI.
Ctrl-C, SIGTERM or ``regsandbox down`` stops the runner first and the servers after it (a runner
whose server is gone would ignore the signal), and leaves no process behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import httpx

from orchestrator.backends.procfs import proc_stat
from orchestrator.errors import RegSandboxError
from orchestrator.package_data import data_dir
from orchestrator.settings import Settings
from orchestrator.stack_services import services, stop_all

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

EXAMPLE_SPEC = data_dir("examples") / "trials" / "diabetes-risk.yaml"
SAMPLE_MODEL, SAMPLE_ALIAS = "diabetes-risk", "candidate"


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


def _bootstrap(settings: Settings, say: Callable[[str], None]) -> None:
    """The first administrator, created once; its password is shown this once only."""
    from orchestrator.api.auth import BOOTSTRAP_ADMIN, ensure_bootstrap_admin
    from orchestrator.store import session_scope

    with session_scope(settings) as db:
        password = ensure_bootstrap_admin(db)
    if password:
        say(f"administrator  {BOOTSTRAP_ADMIN} / {password}   (shown once: keep it)")


def _register_sample(mlflow_url: str, say: Callable[[str], None]) -> None:
    """The prefilled sample trial names models:/diabetes-risk@candidate: register it if missing."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        MlflowClient(mlflow_url).get_model_version_by_alias(SAMPLE_MODEL, SAMPLE_ALIAS)
        return
    except MlflowException:
        pass
    say(f"registering the sample candidate models:/{SAMPLE_MODEL}@{SAMPLE_ALIAS} (about a minute, once)")
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_url}
    done = subprocess.run(
        [sys.executable, "-m", "examples.train_candidate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RegSandboxError(f"could not register the sample candidate:\n{done.stderr[-2000:]}")


def run_stack(
    settings: Settings,
    host: str = "127.0.0.1",
    prefect_port: int = 4200,
    mlflow_port: int = 5000,
    api_port: int = 8080,
    reap_interval_s: float = 600.0,
    echo: Callable[[str], None] = print,
) -> None:
    settings.ensure_dirs()
    ports_free(host, {"--prefect-port": prefect_port, "--mlflow-port": mlflow_port, "--api-port": api_port})
    stack = services(settings, host, prefect_port, mlflow_port, api_port)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        for service in stack:
            service.start()
        for service in stack:
            service.wait_healthy()
        prefect, mlflow, platform = stack
        # Flow runs started by the runner inherit these: they talk to the servers, not to files.
        os.environ["PREFECT_API_URL"] = f"{prefect.ui_url}/api"
        os.environ["MLFLOW_TRACKING_URI"] = mlflow.ui_url
        os.environ["REGSANDBOX_HOME"] = str(settings.home)
        os.environ["REGSANDBOX_PLATFORM_URL"] = platform.ui_url
        _bootstrap(settings, echo)
        _register_sample(mlflow.ui_url, echo)
        found = {
            "prefect_api_url": os.environ["PREFECT_API_URL"],
            "mlflow_tracking_uri": mlflow.ui_url,
            "platform_url": platform.ui_url,
            "pid": os.getpid(),
        }
        _stack_file(settings).write_text(json.dumps(found), encoding="utf-8")
        echo(f"Prefect UI     {prefect.ui_url}   (deployments: sandbox-trial, reap-orphans)")
        echo(f"MLflow UI      {mlflow.ui_url}")
        echo(f"portal and API {platform.ui_url}/portal/   ({platform.ui_url}/docs for the API)")
        echo(f"home           {settings.home}   (logs in {settings.home / 'logs'})")
        echo("serving the flows; Ctrl-C or `regsandbox down` stops everything")
        serve_flows(reap_interval_s)
    except KeyboardInterrupt:
        echo("stopping")
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave servers listening.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stack_file(settings).unlink(missing_ok=True)
        stop_all(stack)


def ports_free(host: str, ports: dict[str, int]) -> None:
    """Refuse to start when a port is taken: a server already there would answer the health
    checks, and the platform would look up while serving another program's pages."""
    taken = []
    for option, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                taken.append(f"{port} ({option})")
    if taken:
        raise RegSandboxError(
            f"port(s) {', '.join(taken)} on {host} already in use, by another program or a "
            "`regsandbox up` of another home: stop it, or choose other ports with those options"
        )


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
    return {
        "prefect_api_url": prefect,
        "mlflow_tracking_uri": mlflow,
        "platform_url": found.get("platform_url", ""),
    }


def _ended(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A stack started by another program (a supervisor, a test) stays a zombie once it has ended,
    # until that program collects its exit status; it has stopped all the same.
    found = proc_stat(pid)
    return found is not None and found.state == "Z"


def stop_stack(settings: Settings, timeout_s: float = 90.0) -> int | None:
    """Stop the stack ``regsandbox up`` runs from this home; return its pid, None if none runs."""
    try:
        pid = int(json.loads(_stack_file(settings).read_text(encoding="utf-8"))["pid"])
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _ended(pid):
            return pid
        time.sleep(0.2)
    raise RegSandboxError(f"the stack (pid {pid}) did not stop within {timeout_s:.0f}s")
