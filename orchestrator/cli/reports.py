"""``regsandbox report``: verify, compare and import exit reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.common import err

report_app = typer.Typer(help="Verify and compare exit reports.", no_args_is_help=True)


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
        err(f"NOT VERIFIED: {problem}")
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
        err(f"error: {exc}")
        raise typer.Exit(2) from exc
    typer.echo(result.model_dump_json(indent=2) if as_json else result.to_text())
    raise typer.Exit(1 if result.changed else 0)


@report_app.command("import")
def report_import(
    folder: Annotated[Path, typer.Argument(help="Folder of another sandbox's report (report.json + .sig).")],
) -> None:
    """Import a report signed by a trusted sandbox: exit 0 imported, 1 refused (and why)."""
    from orchestrator.errors import TrustError
    from orchestrator.settings import get_settings
    from orchestrator.standard.trust import import_report

    try:
        found = import_report(get_settings(), folder)
    except TrustError as exc:
        err(f"REFUSED: {exc}")
        raise typer.Exit(1) from exc
    verdicts = ", ".join(f"{c}={v}" for c, v in sorted(found.report.verdicts.items()))
    typer.echo(f"imported {found.trial_id} from {found.issuer} ({found.fingerprint})")
    typer.echo(f"  report sha256 {found.sha256}; verdicts as issued: {verdicts or 'none'}")
    typer.echo(f"  stored at {found.folder}; re-assess it with: regsandbox policy reassess PROFILE.yaml")
