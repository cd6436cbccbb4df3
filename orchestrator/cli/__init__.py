"""The ``regsandbox`` command: one module per command group.

Heavy libraries (Prefect, MLflow, Docker) are imported inside the commands that need them,
so ``--help`` and ``trial validate`` answer instantly.
"""

from __future__ import annotations

import sys

import typer

from orchestrator.cli.common import err
from orchestrator.cli.platform import audit_app, platform_app
from orchestrator.cli.policy import policy_app
from orchestrator.cli.reports import report_app
from orchestrator.cli.trial import trial_app
from orchestrator.cli.trust import trust_app
from orchestrator.errors import RegSandboxError

app = typer.Typer(
    name="regsandbox",
    help="Run health-AI models in isolated regulatory sandbox trials and produce signed exit reports.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(trial_app, name="trial")
app.add_typer(report_app, name="report")
app.add_typer(policy_app, name="policy")
app.add_typer(audit_app, name="audit")
app.add_typer(trust_app, name="trust")
for command in platform_app.registered_commands:
    app.registered_commands.append(command)


def main() -> None:  # the console script
    try:
        app()
    except RegSandboxError as exc:
        err(f"error: {exc}")
        sys.exit(1)
