"""``regsandbox trial``: validate, print the schema of, and run trial specs."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from orchestrator.cli.common import (
    SpecPath,
    err,
    load_checked,
    log_to_file,
    prepare_environment,
    start_temporary_prefect,
    use_running_stack,
)

trial_app = typer.Typer(help="Validate and run sandbox trials.", no_args_is_help=True)


@trial_app.command("validate")
def trial_validate(spec: SpecPath) -> None:
    """Check a trial spec and what it names (template, profiles, model URI, data paths).

    Exit 0 when valid, 2 with one line per problem naming the field.
    """
    loaded = load_checked(spec)
    typer.echo(f"{spec}: valid trial spec '{loaded.name}' for {', '.join(loaded.jurisdictions)}")


@trial_app.command("schema")
def trial_schema() -> None:
    """Print the JSON Schema of trial specs."""
    from orchestrator.spec import spec_json_schema

    typer.echo(spec_json_schema())


@trial_app.command("run")
def trial_run(
    spec: SpecPath,
    backend: Annotated[
        str | None,
        typer.Option(help="Isolation backend: docker, process or kubernetes (default: REGSANDBOX_BACKEND)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the outcome as one JSON object, last on stdout.")
    ] = False,
    verbose: Annotated[bool, typer.Option(help="Show Prefect's own log lines on the terminal too.")] = False,
) -> None:
    """Run one whole trial: admit, provision, deploy, evaluate, assess, report, tear down."""
    from orchestrator.progress import TerminalReporter, reporting
    from orchestrator.settings import get_settings

    loaded = load_checked(spec)
    _check_backend(backend)
    use_running_stack()
    prepare_environment(quiet_prefect=not verbose)
    server = None
    if os.environ.get("PREFECT_API_URL"):
        err(f"running on the Prefect server at {os.environ['PREFECT_API_URL']}")
    else:
        err("starting a temporary Prefect server (run `regsandbox up`, or set PREFECT_API_URL, to reuse one)")
        server = start_temporary_prefect()
    from orchestrator.run import run_trial  # the flow's heavy imports, while the server starts

    log_file = get_settings().home / "logs" / "trials.log"
    log_to_file(log_file)
    if server is not None:
        server.join()
    with reporting(TerminalReporter()):
        outcome = run_trial(loaded, backend)
    if as_json:
        sys.stdout.write(outcome.model_dump_json() + "\n")
    else:
        _print_outcome(outcome)
    if outcome.status != "completed":
        err(f"full log: {log_file}")
    raise typer.Exit(0 if outcome.status == "completed" else 1)


def _check_backend(name: str | None) -> None:
    """A named backend whose engine or cluster does not answer fails here, in one line, before a
    Prefect server is started for nothing (``auto`` falls back by itself)."""
    from orchestrator.backends import get_backend
    from orchestrator.settings import get_settings

    chosen = name or get_settings().backend
    if chosen != "auto":
        get_backend(chosen).ping()


def _print_outcome(outcome: object) -> None:
    from orchestrator.trial_records import TrialOutcome

    assert isinstance(outcome, TrialOutcome)  # noqa: S101
    typer.echo("")
    rows = [("trial", f"{outcome.trial_id}: {outcome.status.value}")]
    if outcome.error:
        rows.append(("error", outcome.error))
    rows += [
        ("endpoint", f"{outcome.endpoint or '-'} (closed at teardown)"),
        ("mlflow run", outcome.mlflow_run_id or "-"),
    ]
    rows += [
        (f"report {kind}", outcome.report.get(kind) or "-") for kind in ("html", "pdf", "json", "signature")
    ]
    verdicts = "  ".join(f"{code}: {verdict}" for code, verdict in outcome.verdicts.items())
    rows += [
        ("verdicts", verdicts or "-"),
        ("teardown", "verified" if outcome.teardown_verified else "NOT verified"),
    ]
    for label, value in rows:
        typer.echo(f"{label:<18}{value}")
    from orchestrator.settings import get_settings

    uri = get_settings().tracking_uri
    if uri.startswith("sqlite:"):
        typer.echo(f"\nbrowse the metrics: mlflow ui --backend-store-uri {uri}")
