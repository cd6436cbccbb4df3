"""The data gates a trial: a tampered dataset or a broken contract stops it before any sandbox.

Real flow runs, real Great Expectations validation, real MLflow store; the trial must end
with a report that says why, and no sandbox may have been created.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from orchestrator.data.synthetic import generate
from orchestrator.reports import load_report
from orchestrator.run import run_trial
from orchestrator.settings import Settings
from orchestrator.spec import load_spec
from tests.integration.models import tiny_model

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trials" / "diabetes-risk.yaml"


def _approved_spec(tmp_path: Path, frame_csv: Path, sha256: str) -> Path:
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["model"]["uri"] = str(tiny_model(tmp_path / "model"))
    spec["data"] = {
        "source": "approved",
        "approved": {"path": frame_csv.name, "sha256": sha256, "approval_ref": "IRB-2026-113"},
        "label": "diabetes",
        "sensitive_attributes": ["sex", "age_band", "country"],
        "expectations": "clinical-tabular",
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _sandboxes(docker_client, trial_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    flt = {"label": f"regsandbox.trial_id={trial_id}"}
    return [c.name for c in docker_client.containers.list(all=True, filters=flt)] + [
        n.name for n in docker_client.networks.list(filters=flt)
    ]


def test_hash_mismatch_stops_before_any_sandbox(
    settings: Settings,
    prefect_harness: None,
    docker_client,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    data = tmp_path / "cohort.csv"
    generate("sea-population", {"SG": 1, "MY": 1}, 600, 1).to_csv(data, index=False)
    outcome = run_trial(load_spec(_approved_spec(tmp_path, data, "0" * 64)))

    assert outcome.status == "failed"
    assert outcome.error and "prepare_data" in outcome.error and "cohort.csv" in outcome.error
    assert "sha256" in outcome.error.lower() or "hash" in outcome.error.lower()
    report = load_report(outcome.report["json"])
    kinds = [e.kind for e in report.events]
    assert "provisioned" not in kinds and report.isolation is None
    assert not _sandboxes(docker_client, outcome.trial_id)


def test_blocking_expectation_ends_trial_before_deployment(
    settings: Settings,
    prefect_harness: None,
    docker_client,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from mlflow import MlflowClient

    frame = generate("sea-population", {"SG": 1, "MY": 1, "TH": 1}, 900, 2)
    frame.loc[frame.index[:7], "age"] = 150  # impossible ages: a blocking range expectation
    data = tmp_path / "cohort.csv"
    frame.to_csv(data, index=False)
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    outcome = run_trial(load_spec(_approved_spec(tmp_path, data, digest)))

    assert outcome.status == "failed"
    assert outcome.error and "DataError at prepare_data" in outcome.error and "age" in outcome.error
    assert not _sandboxes(docker_client, outcome.trial_id)
    report = load_report(outcome.report["json"])
    assert report.data is not None and report.data.validation is not None
    assert report.data.validation.success is False
    failures = [f for f in report.data.validation.failures if "age" in f]
    assert failures and any("7" in f for f in failures), report.data.validation.failures
    assert report.data.provenance is not None and report.data.provenance.sha256 == digest
    assert report.data.provenance.approval_ref == "IRB-2026-113"
    assert "deployed" not in [e.kind for e in report.events]

    client = MlflowClient(settings.tracking_uri)
    files = {a.path for a in client.list_artifacts(outcome.mlflow_run_id, "data-contract")}
    assert "data-contract/result.json" in files
    history = client.get_metric_history(outcome.mlflow_run_id, "data/contract_blocking_failures")
    assert history and history[-1].value >= 1
