"""A sponsor's own trial end to end: its model, its approved cohort with its own columns and
codes, its contract file and its development cohort as the drift reference.

Real Prefect flow, real Docker sandbox, real MLflow store, real Great Expectations. Nothing in
the data matches the synthetic population (tests/sponsor_cohort.py), so every step that used
to assume it (contract, case ids, drift reference) is exercised on other columns.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.reports import load_report
from orchestrator.run import run_trial
from orchestrator.settings import Settings
from orchestrator.spec import load_spec
from tests.sponsor_cohort import CONTRACT, FEATURES, ckd_cohort, ckd_model, sponsor_spec, write_csv

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_sponsor_trial_uses_its_contract_and_measures_drift_against_its_reference(
    settings: Settings,
    prefect_harness: None,
    docker_client,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    from mlflow import MlflowClient

    folder = tmp_path / "sponsor"
    development = ckd_cohort(600, seed=2, development=True)
    model = ckd_model(tmp_path / "model", development)
    cohort_sha = write_csv(ckd_cohort(400, seed=1), folder / "data" / "cohort.csv")
    reference_sha = write_csv(development, folder / "data" / "development.csv")
    (folder / "ckd-contract.yaml").write_text(CONTRACT)
    data = {
        "source": "approved",
        "approved": {"path": "data/cohort.csv", "sha256": cohort_sha, "approval_ref": "TH-IRB-2026-031"},
        "expectations": "ckd-contract.yaml",
        "reference": {
            "path": "data/development.csv",
            "sha256": reference_sha,
            "approval_ref": "DUA-2025-041",
        },
    }
    (folder / "spec.yaml").write_text(yaml.safe_dump(sponsor_spec(str(model), data)))

    outcome = run_trial(load_spec(folder / "spec.yaml"))
    assert outcome.status == "completed", outcome.error
    assert outcome.teardown_verified
    assert set(outcome.verdicts) == {"TH", "SG"}

    report = load_report(outcome.report["json"])
    assert report.data is not None and report.data.validation is not None
    assert report.data.validation.suite == "ckd-progression-cohort"
    assert report.data.validation.source and "ckd-contract.yaml" in report.data.validation.source
    assert {row.group for row in report.data.makeup if row.attribute == "gender"} == {"M", "F"}

    # Drift on every one of the sponsor's model inputs, against its development cohort.
    assert report.metrics is not None
    values = report.metrics.values
    assert values["drift/assessed"] == 1.0
    for feature in FEATURES:
        assert values[f"drift/psi/{feature}"] is not None, feature
    assert values["drift/psi/egfr"] > 0.1  # the trial cohort's kidneys are worse than the development one's
    drift = next(m for m in report.monitors if m.monitor == "drift")
    named = drift.figures["drift_psi"]["reference"]
    assert "development.csv" in named and reference_sha in named and "DUA-2025-041" in named
    event = next(e for e in report.events if e.kind == "drift_reference")
    assert event.detail["sha256"] == reference_sha and event.detail["features"] == FEATURES
    drift_criteria = [c for a in report.assessments for c in a.criteria if c.metric == "drift/max_psi"]
    assert drift_criteria and all(c.outcome in {"pass", "fail"} for c in drift_criteria)
    assert report.failure_cases and all(case.case_id.startswith("HN-") for case in report.failure_cases)

    html = Path(outcome.report["html"]).read_text()
    assert "Reference population: approved dataset" in html and "development.csv" in html

    client = MlflowClient(settings.tracking_uri)
    assert client.get_metric_history(outcome.mlflow_run_id, "drift/psi/egfr")
    assert client.get_metric_history(outcome.mlflow_run_id, "final/drift/assessed")[-1].value == 1.0
