"""Whole trials through the real Prefect flow, real Docker sandbox and real MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.reports import load_report, verify
from orchestrator.run import run_trial
from orchestrator.settings import Settings, get_settings
from orchestrator.spec import TrialSpec, parse_spec
from tests.integration.models import candidate_model

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trials" / "diabetes-risk.yaml"


@pytest.fixture(scope="module")
def candidate_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return candidate_model(tmp_path_factory.mktemp("candidate") / "model")


def small_spec(model_uri: Path, rows: int = 1500) -> TrialSpec:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["model"]["uri"] = str(model_uri)
    data["data"]["synthetic"]["rows"] = rows
    return parse_spec(data, "test")


def _left_behind(docker_client, trial_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    flt = {"label": f"regsandbox.trial_id={trial_id}"}
    return [c.name for c in docker_client.containers.list(all=True, filters=flt)] + [
        n.name for n in docker_client.networks.list(filters=flt)
    ]


def test_trial_completes_with_evidence_in_mlflow(
    settings: Settings,
    prefect_harness: None,
    docker_client,
    candidate_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    from mlflow import MlflowClient

    outcome = run_trial(small_spec(candidate_dir))
    assert outcome.status == "completed", outcome.error
    assert outcome.teardown_verified
    assert set(outcome.verdicts) == {"SG", "MY", "TH", "ID", "PH", "VN"}
    assert set(outcome.verdicts.values()) <= {"pass", "conditional", "fail"}
    assert outcome.endpoint and outcome.endpoint.startswith("http://127.0.0.1:")
    assert not _left_behind(docker_client, outcome.trial_id)

    client = MlflowClient(settings.tracking_uri)
    run = client.get_run(outcome.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["regsandbox.trial_id"] == outcome.trial_id
    assert run.data.tags["regsandbox.jurisdictions"] == "SG,MY,TH,ID,PH,VN"
    assert run.data.params["name"] == "diabetes-risk-screening"
    assert run.data.params["data.synthetic.rows"] == "1500"
    history = client.get_metric_history(outcome.mlflow_run_id, "perf/auroc")
    assert len({m.step for m in history}) > 1
    assert len(client.get_metric_history(outcome.mlflow_run_id, "latency/p95_ms")) > 1
    artifacts = {a.path for a in client.list_artifacts(outcome.mlflow_run_id, "exit-report")}
    assert "exit-report/report.json" in artifacts

    report = load_report(outcome.report["json"])
    assert report.status == "completed" and report.teardown.verified
    assert report.isolation is not None and report.isolation.verified
    assert report.data is not None and report.data.rows == 1500
    assert verify(
        outcome.report["json"], outcome.report["signature"], settings.keys_dir / "issuer-ed25519.pub.pem"
    )
    html = Path(outcome.report["html"]).read_text()
    assert "verdict-matrix" in html and outcome.trial_id in html


@pytest.mark.parametrize("step", ["deploy", "run_workload"])
def test_failure_mid_trial_tears_down_and_reports(
    step: str,
    settings: Settings,
    prefect_harness: None,
    docker_client,
    candidate_dir: Path,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlflow import MlflowClient

    monkeypatch.setenv("REGSANDBOX_FAIL_AT", step)
    get_settings.cache_clear()
    outcome = run_trial(small_spec(candidate_dir, rows=500))
    assert outcome.status == "failed"
    assert outcome.error and step in outcome.error and "InjectedFaultError" in outcome.error
    assert outcome.teardown_verified
    assert not _left_behind(docker_client, outcome.trial_id)

    report = load_report(outcome.report["json"])
    assert report.status == "failed" and report.error is not None and report.error.step == step
    assert report.teardown.verified
    kinds = [e.kind for e in report.events]
    assert "provisioned" in kinds and "error" in kinds and "teardown" in kinds
    assert MlflowClient(settings.tracking_uri).get_run(outcome.mlflow_run_id).info.status == "FAILED"
