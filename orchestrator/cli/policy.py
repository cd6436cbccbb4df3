"""``regsandbox policy``: inspect, compare and re-assess under jurisdiction policy profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.common import err

policy_app = typer.Typer(help="Inspect jurisdiction policy profiles.", no_args_is_help=True)


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


@policy_app.command("compare")
def policy_compare(
    codes: Annotated[list[str], typer.Argument(help="Two or more jurisdiction codes or profile ids.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Criterion by criterion: where profiles agree, where thresholds differ and by how much, the core."""
    from orchestrator.policy import load_profile
    from orchestrator.standard.compare import compare_profiles

    profiles = [load_profile(code) for code in codes]
    result = compare_profiles(profiles, [code.upper() if len(code) <= 3 else code for code in codes])
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    typer.echo(result.to_text())


@policy_app.command("reassess")
def policy_reassess(
    profile: Annotated[Path, typer.Argument(help="Proposed profile document (YAML), e.g. a changed copy.")],
    trials: Annotated[
        list[str] | None,
        typer.Option("--trials", help="Trial ids (default: every stored and imported report)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the re-assessment as JSON.")] = False,
    record: Annotated[
        bool, typer.Option(help="Record each trial's re-assessment as a signed document.")
    ] = True,
) -> None:
    """Verdicts of stored trials under the current and the proposed profile, and every flip."""
    from orchestrator.settings import get_settings
    from orchestrator.standard import reassess, trust

    settings = get_settings()
    try:
        text = profile.read_bytes()
    except OSError as exc:
        err(f"error: cannot read {profile}: {exc.strerror}")
        raise typer.Exit(2) from exc
    reports, refused = trust.stored_reports(settings, trials)
    for trial_id, why in refused.items():
        err(f"skipped {trial_id}: {why}")
    result = reassess.reassess(reports, text, str(profile))
    typer.echo(result.model_dump_json(indent=2) if as_json else result.to_text())
    if record:
        for one in result.trials:
            path = reassess.record(settings, one, result, "cli")
            trust.audit_event(
                settings,
                "reassessment_recorded",
                f"trial:{one.trial_id}",
                report_sha256=one.report_sha256,
                profile=f"{result.proposed_id}@{result.proposed_version}",
                path=str(path),
            )
            err(f"recorded {path}")
    if refused and trials:
        raise typer.Exit(1)


@policy_app.command("verify-reassessment")
def policy_verify_reassessment(
    record: Annotated[Path, typer.Argument(help="A recorded re-assessment (JSON; its .sig beside it).")],
    public_key: Annotated[
        Path | None, typer.Option(help="Issuer's public key (default: this platform's key).")
    ] = None,
) -> None:
    """Exit 0 when the re-assessment is intact and signed by the key, 1 when it is not."""
    from orchestrator.reports.signing import export_public_key
    from orchestrator.settings import get_settings
    from orchestrator.standard.reassess import record_problem

    key = public_key or export_public_key(get_settings().keys_dir)
    try:
        problem = record_problem(record, key)
    except OSError as exc:
        problem = f"cannot read {exc.filename}: {exc.strerror}"
    if problem:
        err(f"NOT VERIFIED: {problem}")
        raise typer.Exit(1)
    typer.echo(f"verified: {record} is intact and signed by {key}")
