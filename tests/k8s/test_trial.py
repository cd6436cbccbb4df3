"""A whole trial with ``--backend kubernetes``: real Prefect flow, real MLflow store, the model
served by a pod on the local control plane's kubelet, reached through the API server's
port-forward, and a signed exit report that states how far the isolation was proven."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.backends.kubernetes import KubernetesBackend
from orchestrator.reports import load_report
from orchestrator.run import run_trial
from orchestrator.settings import Settings, get_settings
from tests.integration.models import candidate_model
from tests.integration.test_trial_flow import small_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def candidate_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return candidate_model(tmp_path_factory.mktemp("candidate") / "model")


def test_trial_reaches_a_report_on_kubernetes(
    kube: KubernetesBackend,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    prefect_harness: None,
    candidate_dir: Path,
) -> None:
    monkeypatch.setenv("REGSANDBOX_KUBE_ACCEPT_UNENFORCED_NETWORK_POLICY", "true")
    get_settings.cache_clear()  # the flow reads the process-wide settings
    outcome = run_trial(small_spec(candidate_dir, rows=1000), backend="kubernetes")
    assert outcome.status == "completed", outcome.error
    assert outcome.teardown_verified
    assert set(outcome.verdicts) == {"SG", "MY", "TH", "ID", "PH", "VN"}
    assert kube._remaining(outcome.trial_id) == []
    report = load_report(outcome.report["json"])
    assert report.status == "completed" and report.teardown.verified
    assert report.isolation is not None
    text = report.isolation.model_dump_json()
    assert "kubernetes" in text and "NOT proven" in text and "accepted by the operator" in text
