"""What several commands share: messages, the environment a trial runs in, a checked spec."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.errors import SpecError

if TYPE_CHECKING:
    from orchestrator.spec import TrialSpec

SpecPath = Annotated[Path, typer.Argument(help="Trial spec (YAML).", show_default=False)]


def err(message: str) -> None:
    typer.echo(message, err=True)


def prepare_environment(quiet_prefect: bool = False) -> None:
    """Keep Prefect's local state under the platform home and its telemetry off."""
    from orchestrator.settings import get_settings

    settings = get_settings()
    settings.ensure_dirs()
    os.environ.setdefault("PREFECT_HOME", str(settings.home / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    os.environ.setdefault("MLFLOW_TRACKING_URI", settings.tracking_uri)
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    if quiet_prefect:
        # The terminal shows the trial's own progress; Prefect's console lines (and the
        # tracebacks it prints for a refused trial) go to the log file instead.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # its store set-up chatter


def use_running_stack() -> None:
    """With no servers named, a stack that ``regsandbox up`` serves from this home is used."""
    if os.environ.get("PREFECT_API_URL"):
        return
    from orchestrator.settings import get_settings
    from orchestrator.stack import running_stack

    found = running_stack(get_settings())
    if found is not None:
        os.environ["PREFECT_API_URL"] = found["prefect_api_url"]
        os.environ.setdefault("MLFLOW_TRACKING_URI", found["mlflow_tracking_uri"])


def start_temporary_prefect() -> threading.Thread:
    """Start Prefect's temporary server in the background; the flow's first call reuses it.

    It takes seconds to start, as do the imports a trial needs: side by side, not one after the
    other. Prefect keeps one temporary server per process, so the flow finds this one running.
    """

    def start() -> None:
        from prefect.server.api.server import SubprocessASGIServer

        SubprocessASGIServer().start()

    thread = threading.Thread(target=start, name="prefect-temporary-server", daemon=True)
    thread.start()
    return thread


def log_to_file(path: Path) -> None:
    import logging

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s | %(message)s"))
    for name in ("prefect", "regsandbox"):
        logging.getLogger(name).addHandler(handler)
    # Tracebacks of refused trials are logged at debug level, for this file only.
    regsandbox = logging.getLogger("regsandbox")
    regsandbox.setLevel(logging.DEBUG)
    regsandbox.propagate = False


def load_checked(spec: Path) -> TrialSpec:
    """The spec, loaded and preflighted; on any problem, one line each and exit 2."""
    from orchestrator.preflight import preflight
    from orchestrator.spec import load_spec

    try:
        loaded = load_spec(spec)
        preflight(loaded, str(spec))
    except SpecError as exc:
        for problem in exc.problems:
            err(f"{exc.source}: {problem}")
        raise typer.Exit(2) from exc
    return loaded
