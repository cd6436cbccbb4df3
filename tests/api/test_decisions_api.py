"""Regulators' decisions: signed new records (seq 1, 2 ...), verifiable offline and on the platform,
shown on the trial's Prefect run when Prefect answers and recorded all the same when it does not."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import threading
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import select, text

from orchestrator.api import decisions
from orchestrator.api.decisions import publish_decision_to_prefect
from orchestrator.api.runs import PrefectRuns
from orchestrator.store import Decision, Trial, User, engine, session_scope
from tests.api.conftest import SPONSOR_A, Platform, example_spec
from tests.api.fakes import FakeRuns


def decide(platform: Platform, who: str, key: str, decision: str = "approve", comment: str = "") -> dict:
    response = platform.post(
        who, f"/api/trials/{platform.refs[key]}/decisions", json={"decision": decision, "comment": comment}
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_decisions_are_new_signed_records(platform: Platform) -> None:
    first = decide(platform, "reg_th", "B", "approve_with_conditions", "recalibrate for Thai BMI cut-points")
    second = decide(platform, "reg_th", "B", "reject", "conditions not met")
    assert (first["seq"], second["seq"]) == (1, 2)
    payload = json.loads(second["payload"])
    report = platform.get("reg_th", f"/api/trials/{platform.refs['B']}/report/json").content
    assert payload == {
        "schema": "regsandbox/decision/v1",
        "trial_id": platform.refs["B"],
        "jurisdiction": "TH",
        "seq": 2,
        "decision": "reject",
        "comment": "conditions not met",
        "regulator": "reg_th",
        "report_sha256": hashlib.sha256(report).hexdigest(),
        "at": payload["at"],
    }
    # Anyone with the issuer's public key checks it without the platform.
    issuer = platform.get("reg_th", "/api/reports/issuer-key").json()
    assert second["key_fingerprint"] == issuer["fingerprint"]
    key = load_pem_public_key(issuer["public_key_pem"].encode())
    assert isinstance(key, Ed25519PublicKey)
    key.verify(base64.b64decode(second["signature"]), second["payload"].encode())
    listed = platform.get("admin", f"/api/trials/{platform.refs['B']}/decisions").json()
    assert [(d["jurisdiction"], d["seq"]) for d in listed][-2:] == [("TH", 1), ("TH", 2)]


def test_each_regulator_lists_its_own_decisions(platform: Platform) -> None:
    decide(platform, "reg_sg", "A", "approve")
    assert {
        d["jurisdiction"]
        for d in platform.get("reg_sg", f"/api/trials/{platform.refs['A']}/decisions").json()
    } == {"SG"}
    assert platform.get("dev_a", f"/api/trials/{platform.refs['A']}/decisions").status_code == 200


def test_platform_verification_catches_a_changed_column(platform: Platform) -> None:
    made = decide(platform, "reg_sg", "A", "reject", "subgroup gaps")
    check = platform.get("reg_sg", f"/api/decisions/{made['id']}/verify").json()
    assert (check["intact"], check["problem"]) == (True, None)
    assert platform.get("reg_th", f"/api/decisions/{made['id']}/verify").status_code == 404
    with engine(platform.settings).begin() as conn:
        conn.execute(text("UPDATE decisions SET decision = 'approve' WHERE id = :id"), {"id": made["id"]})
    check = platform.get("admin", f"/api/decisions/{made['id']}/verify").json()
    assert check["intact"] is False
    assert check["problem"] == "record differs from its signed payload in: decision"


def test_no_decision_before_a_report_nor_on_a_report_that_does_not_verify(platform: Platform) -> None:
    refused = platform.post(
        "reg_sg", f"/api/trials/{platform.refs['OA']}/decisions", json={"decision": "approve"}
    )
    assert refused.status_code == 409
    tampered = "tampered-report-3c3c3c3c"
    folder = platform.settings.reports_dir / tampered
    shutil.copytree(platform.settings.reports_dir / platform.refs["A"], folder)
    data = (folder / "report.json").read_bytes()
    (folder / "report.json").write_bytes(data.replace(b'"status":"completed"', b'"status":"completed" ', 1))
    with session_scope(platform.settings) as db:
        db.add(
            Trial(
                trial_id=tampered,
                name="tampered",
                sponsor=SPONSOR_A,
                jurisdictions=["SG"],
                spec=example_spec(),
            )
        )
    refused = platform.post("reg_sg", f"/api/trials/{tampered}/decisions", json={"decision": "approve"})
    assert refused.status_code == 409
    assert "does not verify" in refused.json()["error"]


@pytest.mark.parametrize("body", [{"decision": "maybe"}, {"decision": "approve", "comment": "x" * 4001}, {}])
def test_malformed_decisions_are_422(platform: Platform, body: dict) -> None:
    assert (
        platform.post("reg_sg", f"/api/trials/{platform.refs['A']}/decisions", json=body).status_code == 422
    )


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "reject"},
        {"decision": "reject", "comment": " \n "},
        {"decision": "approve_with_conditions", "comment": ""},
    ],
)
def test_conditions_and_rejection_need_a_comment(platform: Platform, body: dict) -> None:
    ref = platform.refs["A"]
    before = len(platform.get("reg_sg", f"/api/trials/{ref}/decisions").json())
    response = platform.post("reg_sg", f"/api/trials/{ref}/decisions", json=body)
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid decision",
        "problems": [
            "comment: required with approve_with_conditions (the conditions) and reject (the reasons)"
        ],
    }
    assert len(platform.get("reg_sg", f"/api/trials/{ref}/decisions").json()) == before


def test_two_decisions_at_once_take_turns(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    """Numbering locks the trial: on SQLite (which ignores SELECT ... FOR UPDATE) as on PostgreSQL,
    the second decision waits and takes the next seq instead of failing on the unique (trial,
    jurisdiction, seq)."""
    signed = decisions.sign

    def sign_slowly(data: bytes, keys_dir):  # type: ignore[no-untyped-def]
        time.sleep(0.3)  # between numbering and writing: where two unlocked decisions would collide
        return signed(data, keys_dir)

    monkeypatch.setattr(decisions, "sign", sign_slowly)
    start = threading.Barrier(2)
    numbers: list[int] = []
    errors: list[Exception] = []

    def record() -> None:
        try:
            with session_scope(platform.settings) as db:
                user = db.scalars(select(User).where(User.username == "reg_sg")).one()
                trial = db.scalars(select(Trial).where(Trial.trial_id == platform.refs["A"])).one()
                start.wait()
                numbers.append(
                    decisions.record_decision(db, platform.settings, user, trial, "approve", "at once").seq
                )
        except Exception as exc:  # noqa: BLE001 - reported below, with the thread's own error
            errors.append(exc)

    threads = [threading.Thread(target=record) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(numbers) == 2 and max(numbers) == min(numbers) + 1


def test_a_decision_is_shown_on_the_trials_flow_run(platform: Platform) -> None:
    made = decide(platform, "reg_th", "B", "approve", "ok")
    shown = platform.runs.artifacts[-1]
    with session_scope(platform.settings) as db:
        flow_run_id = db.query(Trial).filter_by(trial_id=platform.refs["B"]).one().flow_run_id
    assert shown["flow_run_id"] == flow_run_id
    assert shown["key"] == f"decision-{platform.refs['B']}-th"
    assert made["payload"] in shown["markdown"] and made["signature"] in shown["markdown"]


def test_prefect_being_away_never_fails_a_decision(platform: Platform) -> None:
    platform.runs.failure = ConnectionError("Prefect is away")
    try:
        decide(platform, "reg_th", "B", "approve")
    finally:
        platform.runs.failure = None
    with session_scope(platform.settings) as db:
        trial = db.query(Trial).filter_by(trial_id=platform.refs["B"]).one()
        decision = db.query(Decision).filter_by(trial_id=trial.trial_id).first()
        assert decision is not None
        assert publish_decision_to_prefect(trial, decision, runs=FakeRuns(), settings=platform.settings)
        # The real client, against a port where nothing listens: False, and soon.
        away = PrefectRuns(platform.settings, api_url="http://127.0.0.1:9/api")
        started = time.monotonic()
        assert not publish_decision_to_prefect(trial, decision, runs=away)
        assert time.monotonic() - started < 30
        trial.flow_run_id = None
        assert not publish_decision_to_prefect(trial, decision, runs=FakeRuns(), settings=platform.settings)
        db.rollback()


def test_a_replayed_request_with_its_expected_number_records_once(platform: Platform) -> None:
    url = f"/api/trials/{platform.refs['B']}/decisions"
    listed = platform.get("reg_th", url).json()
    expected = max((d["seq"] for d in listed if d["jurisdiction"] == "TH"), default=0) + 1
    body = {"decision": "approve", "expected_seq": expected}
    first = platform.post("reg_th", url, json=body)
    assert first.status_code == 201 and first.json()["seq"] == expected, first.text
    again = platform.post("reg_th", url, json=body)
    assert again.status_code == 409 and "since this form was made" in again.json()["error"]
    assert len(platform.get("reg_th", url).json()) == len(listed) + 1
    events = platform.get("admin", "/api/audit?action=decision_replay_refused").json()
    assert any(e["actor"] == "reg_th" for e in events["events"])
