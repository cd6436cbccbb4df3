"""The exit report: built from the trial's records, written, signed and attached to its run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.records import utcnow
from orchestrator.trial import Trial

if TYPE_CHECKING:
    from orchestrator.reports import ReportPaths


def write_report(trial: Trial) -> ReportPaths:
    from orchestrator.reports import write_report as write_files
    from orchestrator.trial_report import build_report

    trial.finished_at = trial.finished_at or utcnow()
    report = build_report(trial, trial.records)
    settings = trial.settings
    out = settings.reports_dir / trial.trial_id
    paths = write_files(report, out, settings.keys_dir, pdf=settings.report_pdf)
    admission = trial.records.admission
    client = trial.live.client
    if client is not None and admission is not None and admission.mlflow is not None:
        run_id = admission.mlflow.run_id
        for path in (paths.json_, paths.html, paths.pdf, paths.signature, paths.envelope):
            if path:
                client.log_artifact(run_id, path, artifact_path="exit-report")
        traffic = trial.workdir / "traffic.jsonl"
        if traffic.is_file():
            client.log_artifact(run_id, str(traffic), artifact_path="traffic")
    trial.log(f"report written: {paths.html}")
    return paths
