"""The platform's own commands: ``up``, ``down``, ``reap`` and ``audit verify``."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from orchestrator.cli.common import err

# Registered on the root command by orchestrator.cli, so they read `regsandbox up`, not a group.
platform_app = typer.Typer()
audit_app = typer.Typer(help="Check the platform's audit log.", no_args_is_help=True)


@platform_app.command("up")
def up(
    prefect_port: Annotated[int, typer.Option(help="Port of the Prefect server and UI.")] = 4200,
    mlflow_port: Annotated[int, typer.Option(help="Port of the MLflow tracking server and UI.")] = 5000,
    api_port: Annotated[int, typer.Option(help="Port of the platform: API, portal and endpoint.")] = 8080,
    host: Annotated[str, typer.Option(help="Address the servers bind to.")] = "127.0.0.1",
    reap_interval: Annotated[float, typer.Option(help="Seconds between scheduled orphan sweeps.")] = 600.0,
) -> None:
    """Start the platform: Prefect server + UI, MLflow server + UI, API + portal, and the flows' runner."""
    from orchestrator.settings import get_settings
    from orchestrator.stack import run_stack

    settings = get_settings()
    os.environ.setdefault("PREFECT_HOME", str(settings.home / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    run_stack(settings, host, prefect_port, mlflow_port, api_port, reap_interval, echo=typer.echo)


@platform_app.command("down")
def down() -> None:
    """Stop the platform that `regsandbox up` runs from this home, and everything it started."""
    from orchestrator.settings import get_settings
    from orchestrator.stack import stop_stack

    pid = stop_stack(get_settings())
    typer.echo(f"stopped the platform (pid {pid})" if pid else "no platform is running from this home")


@platform_app.command("reap")
def reap(
    everything: Annotated[
        bool, typer.Option("--all", help="Remove every platform sandbox, running or not.")
    ] = False,
    backend: Annotated[
        str | None, typer.Option(help="Backend to sweep (default: every one that answers).")
    ] = None,
) -> None:
    """Remove sandboxes whose trial is no longer running; never touches anything else."""
    from orchestrator.abandoned import recover_abandoned
    from orchestrator.backends import SWEPT_BACKENDS, reap_all
    from orchestrator.settings import get_settings

    # Trials whose orchestrator died first: each gets its failed status and report, and its
    # sandbox is torn down on the way; the label sweep then takes whatever is left.
    for outcome in recover_abandoned(get_settings()):
        typer.echo(f"{outcome.trial_id}: orchestrator gone; trial failed, report {outcome.report['json']}")
    for trial_id in _reconciled():
        typer.echo(f"{trial_id}: ended during a platform database outage; its row is now closed")
    results = reap_all((backend,) if backend else SWEPT_BACKENDS, everything=everything)
    for result in results:
        typer.echo(
            f"{result.trial_id}: removed {len(result.removed)} object(s)"
            + ("" if result.verified else f", {len(result.remaining)} remain")
        )
    typer.echo(f"{len(results)} orphaned sandbox(es) removed")


def _reconciled() -> list[str]:
    from orchestrator.abandoned import reconcile_rows
    from orchestrator.settings import get_settings

    try:
        return reconcile_rows(get_settings())
    except Exception as exc:  # the database still away: the sandboxes are swept all the same
        err(f"platform database not reachable, rows not reconciled: {exc}")
        return []


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain: exit 0 when intact, 1 naming the first record that is not.

    Reads the platform database of REGSANDBOX_DATABASE_URL, else platform.db under REGSANDBOX_HOME.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from orchestrator.settings import get_settings
    from orchestrator.store import audit, database_url, session_scope

    settings = get_settings()
    where = make_url(database_url(settings)).render_as_string(hide_password=True)
    try:
        with session_scope(settings) as db:
            check = audit.verify(db)
    except SQLAlchemyError as exc:
        err(f"cannot read the audit log in {where}: {exc}")
        raise typer.Exit(2) from exc
    if not check.intact:
        err(f"NOT INTACT: audit record seq {check.first_bad}: {check.reason} ({where})")
        raise typer.Exit(1)
    typer.echo(f"intact: {check.records} audit record(s), hash chain verified ({where})")
