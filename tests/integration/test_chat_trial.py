"""A chat trial end to end: the rule-based health assistant with its demo weaknesses served by the
mlflow-chat template in a real Docker sandbox, through a real Prefect flow run, metrics streamed to
a real MLflow store, judged on the chat criteria, reported per language with verbatim failures."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from examples.build_health_assistant import DEMO_WEAKNESSES, save_assistant
from orchestrator.reports import load_report, verify
from orchestrator.run import run_trial
from orchestrator.settings import Settings
from orchestrator.spec import parse_spec

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trials" / "health-assistant.yaml"


@pytest.fixture(scope="module")
def assistant_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_assistant(tmp_path_factory.mktemp("assistant") / "model", DEMO_WEAKNESSES)


def test_chat_trial_reports_per_language_results_and_verbatim_failures(
    settings: Settings,
    prefect_harness: None,
    docker_client,  # type: ignore[no-untyped-def]
    assistant_dir: Path,
) -> None:
    from mlflow import MlflowClient

    data = yaml.safe_load(EXAMPLE.read_text())
    data["model"]["uri"] = str(assistant_dir)
    outcome = run_trial(parse_spec(data, "test"))
    assert outcome.status == "completed", outcome.error
    assert outcome.teardown_verified
    # The demo weaknesses fail blocking chat criteria in every jurisdiction.
    assert outcome.verdicts == dict.fromkeys(["SG", "MY", "TH", "ID", "PH", "VN"], "fail")
    flt = {"label": f"regsandbox.trial_id={outcome.trial_id}"}
    assert not docker_client.containers.list(all=True, filters=flt)

    report = load_report(outcome.report["json"])
    assert report.isolation is not None and report.isolation.verified
    assert report.data is not None and report.data.source == "packs" and report.data.packs
    assert report.data.rows == sum(p.cases for p in report.data.packs)
    # Verdicts come from chat criteria only: no tabular criterion was applied.
    for assessment in report.assessments:
        applied = {c.metric.split("/")[0] for c in assessment.criteria}
        assert "chat" in applied and not applied & {"perf", "calibration", "fairness", "drift"}
        failed = {c.criterion_id for c in assessment.criteria if c.outcome == "fail"}
        assert {"chat-canary-leaks", "chat-counterfactual-flips", "chat-crisis-line"} <= failed
    chat = next(m for m in report.monitors if m.monitor == "chat")
    languages = {row["language"]: row for row in chat.tables["chat/languages"]}
    assert len(languages) >= 6 and {"en", "th", "vi", "id", "ms", "fil"} <= set(languages)
    assert languages["vi"]["in_language_rate"] < 0.5  # the assistant answers Vietnamese in English
    # Failure cases quote the reply verbatim with its case id and language.
    cases = {c.case_id: c for c in report.failure_cases or []}
    assert "สมชาย ใจดีมาก" in str(cases["canary-referral-th"].predicted)
    assert cases["canary-referral-th"].language == "th"
    assert "DECISION: ROUTINE" in str(cases["cf-migrant-worker-ms-b"].predicted)
    assert "self-harm-my-ms" in cases
    assert verify(
        outcome.report["json"], outcome.report["signature"], settings.keys_dir / "issuer-ed25519.pub.pem"
    )
    html = Path(outcome.report["html"]).read_text(encoding="utf-8")
    assert 'id="language-table"' in html and 'lang="th"' in html and "สมชาย ใจดีมาก" in html
    assert Path(outcome.report["pdf"]).stat().st_size > 0

    client = MlflowClient(settings.tracking_uri)
    history = client.get_metric_history(outcome.mlflow_run_id, "chat/answer_language_rate")
    assert history and client.get_run(outcome.mlflow_run_id).data.tags["regsandbox.kind"] == "chat"
