"""Trials over the API: submission checked like ``trial validate``, start and cancel through Prefect
(a fake here), addressing by trial id or submission number, final metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from orchestrator.cli import app as cli
from orchestrator.errors import UnavailableError
from orchestrator.trial import trial_id_for
from tests.api.conftest import SPONSOR_A, SPONSOR_B, Platform, example_spec


def submit(platform: Platform, who: str, spec: dict[str, Any]) -> Any:
    return platform.post(who, "/api/trials", json={"spec": spec})


def test_a_developer_submits_for_its_sponsor(platform: Platform) -> None:
    response = submit(platform, "dev_a", example_spec(name="acme-submitted"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["status"], body["trial_id"], body["sponsor"]) == ("submitted", None, SPONSOR_A)
    assert body["spec"]["name"] == "acme-submitted"
    number = str(body["id"])
    assert platform.get("dev_a", f"/api/trials/{number}").json()["id"] == body["id"]
    assert platform.get("dev_b", f"/api/trials/{number}").status_code == 404


@pytest.mark.parametrize(("who", "sponsor"), [("dev_a", SPONSOR_B), ("reg_sg", SPONSOR_A)])
def test_submitting_for_another_sponsor_or_as_regulator_is_refused(
    platform: Platform, who: str, sponsor: str
) -> None:
    assert submit(platform, who, example_spec(sponsor=sponsor)).status_code == 403


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"risk_class": "E", "colour": "red", "jurisdictions": []}, id="schema"),
        pytest.param(
            {
                "model": {"uri": "models:/diabetes-risk@candidate", "template": "nope"},
                "jurisdictions": ["ZZ"],
            },
            id="preflight",
        ),
    ],
)
def test_problems_are_the_lines_trial_validate_prints(
    platform: Platform, tmp_path: Path, changes: dict[str, Any]
) -> None:
    spec = example_spec(**changes)
    response = submit(platform, "dev_a", spec)
    assert response.status_code == 422
    problems = response.json()["problems"]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(cli, ["trial", "validate", str(path)])
    assert result.exit_code == 2
    assert problems == [line.removeprefix(f"{path}: ") for line in result.stderr.splitlines()]
    assert all(":" in line for line in problems)


def test_host_paths_in_a_submitted_spec_must_be_absolute(platform: Platform) -> None:
    data = {
        "source": "approved",
        "approved": {"path": "cohort.parquet", "sha256": "0" * 64, "approval_ref": "IRB-1"},
        "label": "diabetes",
        "sensitive_attributes": ["sex"],
    }
    response = submit(platform, "dev_a", example_spec(data=data))
    assert response.status_code == 422
    assert response.json()["problems"] == [
        "data.approved.path: give an absolute path on the platform host (got cohort.parquet)"
    ]


def test_an_administrator_starts_and_cancels_a_run(platform: Platform) -> None:
    body = submit(platform, "admin", example_spec(name="started-by-admin", sponsor=SPONSOR_B)).json()
    number = str(body["id"])
    assert platform.post("dev_b", f"/api/trials/{number}/start").status_code == 403
    response = platform.post("admin", f"/api/trials/{number}/start")
    assert response.status_code == 202, response.text
    run_id, spec = platform.runs.started[-1]
    trial_id = trial_id_for("started-by-admin", run_id)
    assert spec == body["spec"]
    assert (response.json()["trial_id"], response.json()["status"]) == (trial_id, "running")
    # Both references name the same trial from now on.
    assert platform.get("dev_b", f"/api/trials/{trial_id}").json()["id"] == body["id"]
    assert platform.get("dev_b", f"/api/trials/{number}").json()["trial_id"] == trial_id
    assert platform.post("admin", f"/api/trials/{trial_id}/start").status_code == 409
    cancelling = platform.post("admin", f"/api/trials/{trial_id}/cancel")
    assert (cancelling.status_code, cancelling.json()["status"]) == (202, "running")  # until the run ends
    assert platform.runs.cancelled[-1] == run_id
    actions = {e["action"] for e in platform.get("admin", "/api/audit").json()["events"]}
    assert {"trial_submitted", "trial_started", "trial_cancel_requested"} <= actions


def test_a_run_no_worker_took_yet_is_cancelled_at_once(platform: Platform) -> None:
    number = str(submit(platform, "admin", example_spec(name="never-picked-up")).json()["id"])
    platform.post("admin", f"/api/trials/{number}/start")
    platform.runs.cancel_outcome = "cancelled"
    try:
        cancelled = platform.post("admin", f"/api/trials/{number}/cancel").json()
    finally:
        platform.runs.cancel_outcome = "cancelling"
    assert (cancelled["status"], cancelled["finished_at"] is not None) == ("cancelled", True)


def test_a_submission_is_cancelled_without_a_run(platform: Platform) -> None:
    number = str(submit(platform, "dev_a", example_spec(name="never-run")).json()["id"])
    calls = len(platform.runs.cancelled)
    assert platform.post("admin", f"/api/trials/{number}/cancel").json()["status"] == "cancelled"
    assert len(platform.runs.cancelled) == calls
    assert platform.post("admin", f"/api/trials/{number}/cancel").status_code == 409
    assert platform.post("admin", f"/api/trials/{number}/start").status_code == 409


def test_start_while_prefect_is_away_answers_503_and_changes_nothing(platform: Platform) -> None:
    number = str(submit(platform, "dev_a", example_spec(name="prefect-away")).json()["id"])
    platform.runs.failure = UnavailableError("no Prefect server")
    try:
        assert platform.post("admin", f"/api/trials/{number}/start").status_code == 503
    finally:
        platform.runs.failure = None
    assert platform.get("admin", f"/api/trials/{number}").json()["status"] == "submitted"


def test_metrics_are_the_reports_final_values(platform: Platform) -> None:
    final = platform.get("dev_a", f"/api/trials/{platform.refs['A']}/metrics").json()
    assert final["final"] is True
    assert final["values"]["perf/auroc"] == pytest.approx(0.8249)
    assert final["intervals"]["perf/auroc"] == pytest.approx([0.8046, 0.8422])
    running = platform.get("dev_a", f"/api/trials/{platform.refs['OA']}/metrics").json()
    assert (running["final"], running["values"]) == (False, {})


@pytest.mark.parametrize("ref", ["999999", "0", "no-such-trial-00000000", "x" * 64, "..", "%2e%2e"])
def test_unknown_references_are_404(platform: Platform, ref: str) -> None:
    assert platform.get("admin", f"/api/trials/{ref}").status_code == 404
