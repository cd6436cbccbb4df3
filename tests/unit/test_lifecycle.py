"""The trial lifecycle on a FAKE backend (tests/unit/fake_backend.py): fast, no Docker.

Everything but the sandbox is real: the MLflow store, the data contract in Great Expectations,
the gateway, the monitors, the policy profiles, the signed report. A failure injected before
each step, a cancellation and an interruption each end in the stated status, a verified
teardown and a report that verifies; isolation is never called verified without read-back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from orchestrator.backends import register_backend
from orchestrator.lifecycle import STEP_NAMES, Step, StepFn, run_steps
from orchestrator.reports import load_report, verify
from orchestrator.settings import Settings, get_settings
from orchestrator.spec import TrialSpec, parse_spec
from orchestrator.trial import Trial
from orchestrator.trial_records import TrialStatus
from tests.unit.fake_backend import FakeBackend

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fake_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow model directory the fake server never loads (it scores by its own rule)."""
    path = tmp_path_factory.mktemp("fake-model")
    inputs = [{"name": c, "type": "double"} for c in ("age", "bmi", "systolic_bp")]
    mlmodel = {
        "flavors": {"python_function": {"loader_module": "fake"}},
        "signature": {"inputs": json.dumps(inputs)},
    }
    (path / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    return path


@pytest.fixture()
def lifecycle_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    register_backend("fake", FakeBackend)
    monkeypatch.setenv("REGSANDBOX_REPORT_PDF", "false")
    get_settings.cache_clear()
    FakeBackend.probes_pass = True
    yield get_settings()
    FakeBackend.probes_pass = True


def spec_for(model: Path) -> TrialSpec:
    data = yaml.safe_load((ROOT / "examples" / "trials" / "diabetes-risk.yaml").read_text())
    data["model"]["uri"] = str(model)
    data["data"]["synthetic"]["rows"] = 400
    data["jurisdictions"] = ["SG", "TH"]
    return parse_spec(data, "test")


def run(model: Path, settings: Settings, trial_id: str, wrap: object = None) -> tuple[Trial, object]:
    trial = Trial(trial_id, spec_for(model), settings, backend_choice="fake")
    outcome = run_steps(trial, wrap) if wrap else run_steps(trial)  # type: ignore[arg-type]
    return trial, outcome


def check_report(settings: Settings, outcome, status: str):  # type: ignore[no-untyped-def]
    assert outcome.status == status, outcome.error
    assert outcome.teardown_verified
    assert outcome.report["json"] and outcome.report["pdf"] is None
    assert verify(
        outcome.report["json"], outcome.report["signature"], settings.keys_dir / "issuer-ed25519.pub.pem"
    )
    report = load_report(outcome.report["json"])
    assert report.status == status and report.teardown.verified
    assert not FakeBackend.sandboxes
    return report


def test_a_trial_completes_with_every_record(lifecycle_settings: Settings, fake_model: Path) -> None:
    trial, outcome = run(fake_model, lifecycle_settings, "t-life-ok")
    report = check_report(lifecycle_settings, outcome, "completed")
    records = trial.records
    assert all(
        getattr(records, field) is not None for field in ("admission", "data", "deployment", "teardown")
    )
    assert records.admission and records.admission.backend == "fake" and records.admission.kind == "tabular"
    assert set(outcome.verdicts) == {"SG", "TH"}
    assert report.isolation is not None and report.isolation.verified
    assert report.metrics is not None and report.metrics.values["perf/auroc"] is not None
    assert report.failure_cases and len(report.failure_cases) == 20
    states = [e.kind for e in report.events]
    assert states[:3] == ["submitted", "admitted", "data_contract"] and "assessed" in states


@pytest.mark.parametrize("step", STEP_NAMES)
def test_a_failure_at_each_step_is_torn_down_and_reported(
    step: str, lifecycle_settings: Settings, fake_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGSANDBOX_FAIL_AT", step)
    get_settings.cache_clear()
    _, outcome = run(fake_model, get_settings(), f"t-life-fail-{step.replace('_', '-')}")
    report = check_report(get_settings(), outcome, "failed")
    assert report.error is not None and report.error.step == step
    assert report.error.type == "InjectedFaultError"
    assert outcome.verdicts == {}
    deployed = STEP_NAMES.index(step) > STEP_NAMES.index("deploy")
    if report.isolation is not None:
        # Verified needs the probes from inside and the engine's read-back after deploy.
        assert report.isolation.verified == deployed


def test_failed_probes_stop_the_trial_and_are_quoted(lifecycle_settings: Settings, fake_model: Path) -> None:
    FakeBackend.probes_pass = False
    _, outcome = run(fake_model, lifecycle_settings, "t-life-probes")
    report = check_report(lifecycle_settings, outcome, "failed")
    assert (
        report.error is not None and report.error.step == "attest" and report.error.type == "IsolationError"
    )
    assert report.isolation is not None and not report.isolation.verified
    assert any("FAILED" in note for note in report.isolation.notes)
    assert report.model is not None and report.endpoint is None


def test_cancellation_during_the_workload(lifecycle_settings: Settings, fake_model: Path) -> None:
    def cancel_in_workload(step: Step) -> StepFn:
        def run_step(trial: Trial):  # type: ignore[no-untyped-def]
            if step.name == "run_workload":
                trial.cancel_requested.set()
            return step.run(trial)

        return run_step

    _, outcome = run(fake_model, lifecycle_settings, "t-life-cancel", cancel_in_workload)
    report = check_report(lifecycle_settings, outcome, "cancelled")
    assert outcome.status == TrialStatus.CANCELLED
    assert report.error is not None and report.error.step == "run_workload"
    assert any(e.kind == "cancelled" for e in report.events)


def test_an_interrupt_is_cancelled_torn_down_reported_and_raised(
    lifecycle_settings: Settings, fake_model: Path
) -> None:
    def interrupt_deploy(step: Step) -> StepFn:
        def run_step(trial: Trial):  # type: ignore[no-untyped-def]
            if step.name == "deploy":
                raise KeyboardInterrupt
            return step.run(trial)

        return run_step

    trial = Trial("t-life-interrupt", spec_for(fake_model), lifecycle_settings, backend_choice="fake")
    with pytest.raises(KeyboardInterrupt):
        run_steps(trial, interrupt_deploy)
    report = load_report(lifecycle_settings.reports_dir / "t-life-interrupt" / "report.json")
    assert report.status == "cancelled" and report.teardown.verified
    assert not FakeBackend.sandboxes


def test_a_data_contract_refusal_keeps_the_data_in_the_report(
    lifecycle_settings: Settings, fake_model: Path, tmp_path: Path
) -> None:
    import hashlib

    from orchestrator.data.synthetic import generate

    frame = generate("sea-population", {"SG": 1.0, "TH": 1.0}, 300, 1)
    frame.loc[0, "age"] = 7  # a child in an adults' screening cohort: a blocking contract failure
    path = tmp_path / "cohort.csv"
    frame.to_csv(path, index=False)
    spec = spec_for(fake_model).model_dump(mode="json")
    spec["data"] = {
        **spec["data"],
        "source": "approved",
        "synthetic": None,
        "approved": {
            "path": str(path),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "approval_ref": "IRB-1",
        },
    }
    trial = Trial("t-life-contract", parse_spec(spec, "test"), lifecycle_settings, backend_choice="fake")
    outcome = run_steps(trial)
    report = check_report(lifecycle_settings, outcome, "failed")
    assert (
        report.error is not None and report.error.step == "prepare_data" and report.error.type == "DataError"
    )
    assert report.data is not None and not report.data.validation.success
    assert report.isolation is None and report.model is None


def test_developer_traffic_in_the_window_is_measured_apart_and_published(
    lifecycle_settings: Settings, fake_model: Path
) -> None:
    import threading
    import time

    import httpx

    published: list[dict] = []  # type: ignore[type-arg]
    spec = spec_for(fake_model).model_copy(deep=True)
    spec = parse_spec(
        {**spec.model_dump(mode="json"), "workload": {**spec.workload.model_dump(), "developer_window_s": 2}},
        "test",
    )

    def developer_calls(step: Step) -> StepFn:
        def run_step(trial: Trial):  # type: ignore[no-untyped-def]
            if step.name == "run_workload":

                def call() -> None:
                    while not any("open_until" in p and p["open_until"] for p in published):
                        time.sleep(0.05)
                    url = trial.records.need("deployment").gateway_url
                    body = {
                        "dataframe_split": {"columns": ["age", "bmi", "systolic_bp"], "data": [[50, 31, 130]]}
                    }
                    for _ in range(5):
                        reply = httpx.post(
                            url + "/invocations",
                            json=body,
                            headers={"Authorization": f"Bearer {trial.live.developer_token}"},
                        )
                        assert reply.status_code == 200, reply.text

                threading.Thread(target=call, daemon=True).start()
            return step.run(trial)

        return run_step

    trial = Trial(
        "t-life-window",
        spec,
        lifecycle_settings,
        backend_choice="fake",
        on_publish=lambda **f: published.append(f),
    )
    outcome = run_steps(trial, developer_calls)
    report = check_report(lifecycle_settings, outcome, "completed")
    assert report.operations is not None and report.operations.developer_requests == 5
    assert report.metrics is not None and report.metrics.values["developer/ops/requests"] == 5.0
    assert report.metrics.values["ops/requests"] == 8.0  # the evaluation's own 400 cases in batches of 50
    states = [p["state"] for p in published if "state" in p]
    assert states[0] == "submitted" and "deployed" in states and states[-1] == "reported"
    assert any(p.get("gateway_url") for p in published)
    final = published[-1]
    assert final["status"] == "completed" and final["verdicts"] == outcome.verdicts and final["report_sha256"]
