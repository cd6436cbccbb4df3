"""``regsandbox trust``: the other sandboxes whose signed reports this one recognises."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

trust_app = typer.Typer(
    help="Trust other sandboxes' issuer keys, list and remove them.", no_args_is_help=True
)


@trust_app.command("add")
def trust_add(
    name: Annotated[str, typer.Argument(help="Local name of the other sandbox, e.g. th-sandbox.")],
    key: Annotated[Path, typer.Argument(help="Its issuer public key (Ed25519, PEM).")],
) -> None:
    """Trust reports signed with KEY as coming from sandbox NAME (check the fingerprint with its operator)."""
    from orchestrator.settings import get_settings
    from orchestrator.standard.trust import add_trusted

    issuer = add_trusted(get_settings(), name, key)
    typer.echo(f"trusted {issuer.name}: {issuer.fingerprint}")


@trust_app.command("list")
def trust_list() -> None:
    """The trusted sandboxes and their key fingerprints."""
    from orchestrator.settings import get_settings
    from orchestrator.standard.trust import trusted

    issuers = trusted(get_settings())
    if not issuers:
        typer.echo("no other sandbox is trusted")
    for issuer in issuers:
        typer.echo(f"{issuer.name}  {issuer.fingerprint}")


@trust_app.command("remove")
def trust_remove(name: Annotated[str, typer.Argument(help="Name given when the key was added.")]) -> None:
    """Stop trusting NAME; the reports imported from it stop verifying here."""
    from orchestrator.settings import get_settings
    from orchestrator.standard.trust import remove_trusted

    issuer = remove_trusted(get_settings(), name)
    typer.echo(f"removed {issuer.name}: {issuer.fingerprint}")
