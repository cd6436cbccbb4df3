"""``regsandbox policy``: inspect jurisdiction policy profiles."""

from __future__ import annotations

from typing import Annotated

import typer

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
