"""The ``regsandbox`` command.

Heavy libraries (Prefect, MLflow, Docker) are imported inside the commands that need them,
so ``--help`` and ``trial validate`` answer instantly.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.errors import RegSandboxError, SpecError

if TYPE_CHECKING:
    from orchestrator.spec import TrialSpec

app = typer.Typer(
    name="regsandbox",
    help="Run health-AI models in isolated regulatory sandbox trials and produce signed exit reports.",
    no_args_is_help=True,
    add_completion=False,
)
trial_app = typer.Typer(help="Validate and run sandbox trials.", no_args_is_help=True)
report_app = typer.Typer(help="Verify and compare exit reports.", no_args_is_help=True)
policy_app = typer.Typer(help="Inspect jurisdiction policy profiles.", no_args_is_help=True)
audit_app = typer.Typer(help="Check the platform's audit log.", no_args_is_help=True)
app.add_typer(trial_app, name="trial")
app.add_typer(report_app, name="report")
app.add_typer(policy_app, name="policy")
app.add_typer(audit_app, name="audit")

SpecPath = Annotated[Path, typer.Argument(help="Trial spec (YAML).", show_default=False)]


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _prepare_environment(quiet_prefect: bool = False) -> None:
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


def _use_running_stack() -> None:
    """With no servers named, a stack that ``regsandbox up`` serves from this home is used."""
    if os.environ.get("PREFECT_API_URL"):
        return
    from orchestrator.settings import get_settings
    from orchestrator.stack import running_stack

    found = running_stack(get_settings())
    if found is not None:
        os.environ["PREFECT_API_URL"] = found["prefect_api_url"]
        os.environ.setdefault("MLFLOW_TRACKING_URI", found["mlflow_tracking_uri"])


def _start_temporary_prefect() -> threading.Thread:
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


def _log_to_file(path: Path) -> None:
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


def _load_checked(spec: Path) -> TrialSpec:
    """The spec, loaded and preflighted; on any problem, one line each and exit 2."""
    from orchestrator.preflight import preflight
    from orchestrator.spec import load_spec

    try:
        loaded = load_spec(spec)
        preflight(loaded, str(spec))
    except SpecError as exc:
        for problem in exc.problems:
            _err(f"{exc.source}: {problem}")
        raise typer.Exit(2) from exc
    return loaded


@trial_app.command("validate")
def trial_validate(spec: SpecPath) -> None:
    """Check a trial spec and what it names (template, profiles, model URI, data paths).

    Exit 0 when valid, 2 with one line per problem naming the field.
    """
    loaded = _load_checked(spec)
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
        str | None, typer.Option(help="Isolation backend: docker or process (default: REGSANDBOX_BACKEND).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the outcome as one JSON object, last on stdout.")
    ] = False,
    verbose: Annotated[bool, typer.Option(help="Show Prefect's own log lines on the terminal too.")] = False,
) -> None:
    """Run one whole trial: admit, provision, deploy, evaluate, assess, report, tear down."""
    from orchestrator.progress import TerminalReporter, reporting
    from orchestrator.settings import get_settings

    loaded = _load_checked(spec)
    _use_running_stack()
    _prepare_environment(quiet_prefect=not verbose)
    server = None
    if os.environ.get("PREFECT_API_URL"):
        _err(f"running on the Prefect server at {os.environ['PREFECT_API_URL']}")
    else:
        _err(
            "starting a temporary Prefect server (run `regsandbox up`, or set PREFECT_API_URL, to reuse one)"
        )
        server = _start_temporary_prefect()
    from orchestrator.run import run_trial  # the flow's heavy imports, while the server starts

    log_file = get_settings().home / "logs" / "trials.log"
    _log_to_file(log_file)
    if server is not None:
        server.join()
    with reporting(TerminalReporter()):
        outcome = run_trial(loaded, backend)
    if as_json:
        sys.stdout.write(outcome.model_dump_json() + "\n")
    else:
        _print_outcome(outcome)
    if outcome.status != "completed":
        _err(f"full log: {log_file}")
    raise typer.Exit(0 if outcome.status == "completed" else 1)


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


@report_app.command("verify")
def report_verify(
    report: Annotated[Path, typer.Argument(help="report.json of a trial.")],
    signature: Annotated[Path | None, typer.Option(help="Signature file (default: REPORT.sig).")] = None,
    public_key: Annotated[
        Path | None, typer.Option(help="Issuer's public key (default: the local key).")
    ] = None,
    envelope: Annotated[
        Path | None,
        typer.Option(
            help="in-toto attestation (default: report.intoto.jsonl beside REPORT, checked when present)."
        ),
    ] = None,
) -> None:
    """Exit 0 when the report is intact and signed by the key, 1 when it is not."""
    from orchestrator.reports import verification_problem
    from orchestrator.reports.envelope import envelope_problem
    from orchestrator.settings import get_settings

    signature = signature or report.with_name(report.name + ".sig")
    public_key = public_key or get_settings().keys_dir / "issuer-ed25519.pub.pem"
    try:
        problem = verification_problem(report, signature, public_key)
        attestation = envelope or report.with_name("report.intoto.jsonl")
        if problem is None and (envelope is not None or attestation.is_file()):
            found = envelope_problem(attestation, public_key, report)
            problem = f"attestation {attestation}: {found}" if found else None
    except OSError as exc:
        problem = f"cannot read {exc.filename}: {exc.strerror}"
    if problem:
        _err(f"NOT VERIFIED: {problem}")
        raise typer.Exit(1)
    typer.echo(f"verified: {report} is intact and signed by {public_key}")


@report_app.command("diff")
def report_diff(
    before: Annotated[Path, typer.Argument(help="report.json of the earlier trial.")],
    after: Annotated[Path, typer.Argument(help="report.json of the later trial (e.g. a resubmission).")],
    tolerance: Annotated[
        float, typer.Option(help="Smallest metric change shown (absolute within [-1, 1], relative beyond).")
    ] = 0.01,
    as_json: Annotated[bool, typer.Option("--json", help="Print the differences as JSON.")] = False,
) -> None:
    """What changed between two trials of the same product: exit 0 none, 1 some, 2 unreadable input."""
    from orchestrator.reports import load_report
    from orchestrator.reports.diff import diff_reports

    try:
        result = diff_reports(load_report(before), load_report(after), tolerance=tolerance)
    except (OSError, ValueError) as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2) from exc
    typer.echo(result.model_dump_json(indent=2) if as_json else result.to_text())
    raise typer.Exit(1 if result.changed else 0)


@policy_app.command("list")
def policy_list() -> None:
    """List the policy profiles and their criteria counts."""
    from orchestrator.policy import list_profiles

    profiles = list_profiles()
    width = max(len(p.id) for p in profiles)
    typer.echo(f"{'code':<6} {'id':<{width}} {'version':<8} {'kind':<12} {'criteria':>8}  name")
    for profile in profiles:
        typer.echo(
            f"{profile.jurisdiction:<6} {profile.id:<{width}} {profile.version:<8} {profile.kind:<12} "
            f"{len(profile.criteria):>8}  {profile.name}"
        )


@policy_app.command("show")
def policy_show(code: Annotated[str, typer.Argument(help="Jurisdiction code or profile id.")]) -> None:
    """Show one profile with every criterion, threshold and provenance."""
    from orchestrator.policy import load_profile

    profile = load_profile(code)
    typer.echo(f"{profile.name}")
    typer.echo(
        f"  id {profile.id} v{profile.version} ({profile.kind}), builds on: {' -> '.join(profile.chain)}"
    )
    typer.echo(f"  regulator: {profile.regulator}")
    typer.echo(f"  sha256 {profile.digest}")
    for instrument in profile.instruments:
        typer.echo(f"  instrument: {instrument.title}")
    typer.echo("\ncriteria (assessed on the trial's evidence):")
    width = max((len(c.id) for c in profile.criteria), default=10)
    for c in profile.criteria:
        typer.echo(f"  {c.id:<{width}}  {c.describe():<40} {c.severity:<9} {c.provenance}")
    if profile.requirements:
        typer.echo("\nrequirements left to documentary review (never assessed here):")
        for r in profile.requirements:
            typer.echo(f"  {r.id}: {r.description} [{r.reference}]")
    for note in profile.notes:
        typer.echo(f"\nnote: {note}")


@app.command("up")
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


@app.command("down")
def down() -> None:
    """Stop the platform that `regsandbox up` runs from this home, and everything it started."""
    from orchestrator.settings import get_settings
    from orchestrator.stack import stop_stack

    pid = stop_stack(get_settings())
    typer.echo(f"stopped the platform (pid {pid})" if pid else "no platform is running from this home")


@app.command("reap")
def reap(
    everything: Annotated[
        bool, typer.Option("--all", help="Remove every platform sandbox, running or not.")
    ] = False,
    backend: Annotated[
        str | None, typer.Option(help="Backend to sweep (default: every one that answers).")
    ] = None,
) -> None:
    """Remove sandboxes whose trial is no longer running; never touches anything else."""
    from orchestrator.backends import SWEPT_BACKENDS, reap_all

    results = reap_all((backend,) if backend else SWEPT_BACKENDS, everything=everything)
    for result in results:
        typer.echo(
            f"{result.trial_id}: removed {len(result.removed)} object(s)"
            + ("" if result.verified else f", {len(result.remaining)} remain")
        )
    typer.echo(f"{len(results)} orphaned sandbox(es) removed")


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
        _err(f"cannot read the audit log in {where}: {exc}")
        raise typer.Exit(2) from exc
    if not check.intact:
        _err(f"NOT INTACT: audit record seq {check.first_bad}: {check.reason} ({where})")
        raise typer.Exit(1)
    typer.echo(f"intact: {check.records} audit record(s), hash chain verified ({where})")


def main() -> None:  # the console script
    try:
        app()
    except RegSandboxError as exc:
        _err(f"error: {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
