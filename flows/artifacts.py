"""What a ``sandbox-trial`` run shows in the Prefect UI: endpoint, verdicts, and where the evidence is.

The endpoint is the platform's address for the trial (never a token); the verdict table has one
row per jurisdiction; links lead to the report in the portal and to the MLflow run; a trial that
did not complete says at which step and why. Publishing artifacts never fails a trial.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from orchestrator.settings import Settings
from orchestrator.trial_records import TrialOutcome, TrialStatus

logger = logging.getLogger("regsandbox.flows")


def _mlflow_link(settings: Settings, outcome: TrialOutcome) -> str | None:
    """The MLflow UI's page of the run, when the tracking store is a server with a UI."""
    uri, report = settings.tracking_uri, outcome.report.get("json")
    if not uri.startswith("http") or not report:
        return None
    try:
        run = json.loads(Path(report).read_text(encoding="utf-8")).get("mlflow") or {}
        return f"{uri.rstrip('/')}/#/experiments/{run['experiment_id']}/runs/{run['run_id']}"
    except (OSError, ValueError, KeyError, TypeError):
        return None


def summary_markdown(settings: Settings, outcome: TrialOutcome) -> str:
    platform = (settings.platform_url or "").rstrip("/")
    lines = [f"# Trial `{outcome.trial_id}`: {outcome.status.value}", ""]
    if outcome.status != TrialStatus.COMPLETED and outcome.error:
        lines += [f"**Stopped:** {outcome.error}", ""]
    if platform:
        portal = f"{platform}/portal/trials/{outcome.trial_id}"
        lines += [
            f"**Developer endpoint:** `{platform}/trials/{outcome.trial_id}/` (token from the platform API)"
        ]
        lines += [f"**Exit report:** [{portal}]({portal})"]
    elif outcome.report.get("html"):
        lines += [f"**Exit report:** `{outcome.report['html']}`"]
    mlflow = _mlflow_link(settings, outcome)
    if mlflow:
        lines += [f"**MLflow run:** [{outcome.mlflow_run_id}]({mlflow})"]
    elif outcome.mlflow_run_id:
        lines += [f"**MLflow run:** `{outcome.mlflow_run_id}` in `{settings.tracking_uri}`"]
    lines += ["", f"Teardown {'verified' if outcome.teardown_verified else 'NOT verified'}.", ""]
    if outcome.verdicts:
        lines += ["| jurisdiction | verdict |", "|---|---|"]
        lines += [f"| {code} | {verdict} |" for code, verdict in outcome.verdicts.items()]
    return "\n".join(lines)


def publish_artifacts(settings: Settings, outcome: TrialOutcome) -> None:
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    try:
        create_markdown_artifact(
            summary_markdown(settings, outcome), key="trial-summary", description="Outcome of the trial"
        )
        if outcome.verdicts:
            rows = [{"jurisdiction": code, "verdict": v} for code, v in outcome.verdicts.items()]
            create_table_artifact(rows, key="verdicts", description="Verdict per jurisdiction")
        platform = (settings.platform_url or "").rstrip("/")
        if platform:
            create_link_artifact(
                f"{platform}/portal/trials/{outcome.trial_id}",
                link_text="exit report in the portal",
                key="exit-report",
            )
        mlflow = _mlflow_link(settings, outcome)
        if mlflow:
            create_link_artifact(mlflow, link_text="MLflow run", key="mlflow-run")
    except Exception as exc:  # the trial is over and reported; the UI's summary is a convenience
        logger.warning("trial %s: could not publish Prefect artifacts: %s", outcome.trial_id, exc)
