"""Decisions from the portal: only with the session's CSRF token, only by a regulator, signed, shown
on the page and on the trial's Prefect run. Recording them (and two at once) is the API's
:mod:`orchestrator.api.decisions`, tested in tests/api/test_decisions_api.py."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.api.decisions import verification_problem
from orchestrator.reports.signing import PUBLIC_KEY_NAME
from orchestrator.reports.writer import JSON_NAME
from orchestrator.settings import Settings
from orchestrator.store import AuditEvent, Decision, Trial, session_scope
from tests.api.fakes import FakeRuns
from tests.portal.conftest import report_file
from tests.portal.seed import ACME_PENDING, form_value, sign_in

Open = Callable[[str], TestClient]


def _problem(settings: Settings, row: Decision) -> str | None:
    with session_scope(settings) as db:
        return verification_problem(db, settings, row)


def _decisions(settings: Settings, trial_id: str) -> list[Decision]:
    with session_scope(settings) as db:
        return list(db.scalars(select(Decision).where(Decision.trial_id == trial_id).order_by(Decision.id)))


def _post(browser: TestClient, trial_id: str, csrf: str | None, decision: str, comment: str = ""):  # type: ignore[no-untyped-def]
    data = {"decision": decision, "comment": comment}
    if csrf is not None:
        data["csrf"] = csrf
    return browser.post(f"/portal/trials/{trial_id}/decision", data=data, follow_redirects=False)


@pytest.mark.parametrize("csrf", [None, "", "a-token-from-another-session"], ids=["none", "empty", "wrong"])
def test_a_decision_without_the_sessions_csrf_token_is_refused(
    signed_in: Open, settings: Settings, trial_id: str, csrf: str | None
) -> None:
    before = len(_decisions(settings, trial_id))
    response = _post(signed_in("th-reg"), trial_id, csrf, "approve")
    assert response.status_code == 403
    assert "This decision was not recorded" in response.text and 'role="alert"' in response.text
    assert len(_decisions(settings, trial_id)) == before
    with session_scope(settings) as db:
        refused = db.scalars(select(AuditEvent).where(AuditEvent.action == "csrf_refused")).all()
    assert any(e.target == f"trial:{trial_id}" and e.detail["form"] == "decision" for e in refused)


def test_another_sessions_token_does_not_carry_over(
    signed_in: Open, settings: Settings, trial_id: str
) -> None:
    other_token = form_value(signed_in("sg-reg").get("/portal/").text, "csrf")
    before = len(_decisions(settings, trial_id))
    assert _post(signed_in("th-reg"), trial_id, other_token, "approve").status_code == 403
    assert len(_decisions(settings, trial_id)) == before


COMMENT = "Recalibrate on the Thai population; re-submit AUROC by ethnicity <b>within 6 months</b>."


@pytest.fixture(scope="module")
def recorded(app: FastAPI, settings: Settings, trial_id: str) -> tuple[Decision, str]:
    """A TH regulator's decision, recorded through the form; the row and the page it led to."""
    with TestClient(app) as browser:
        assert sign_in(browser, "th-reg").status_code == 303
        page = browser.get(f"/portal/trials/{trial_id}").text
        assert "Record a decision for Thailand" in page
        response = _post(browser, trial_id, form_value(page, "csrf"), "approve_with_conditions", COMMENT)
        assert response.status_code == 303, response.text
        assert response.headers["location"].startswith(f"/portal/trials/{trial_id}?recorded=")
        shown = browser.get(response.headers["location"]).text
    return [d for d in _decisions(settings, trial_id) if d.jurisdiction == "TH"][-1], shown


def test_a_decision_is_recorded_signed_and_shown(
    recorded: tuple[Decision, str], settings: Settings, trial_id: str
) -> None:
    row, shown = recorded
    assert "was recorded and signed" in shown and "Approve with conditions" in shown
    assert "&lt;b&gt;within 6 months&lt;/b&gt;" in shown  # the comment is text, never markup
    assert "Signature verifies" in shown
    stored = report_file(settings, trial_id, JSON_NAME).read_bytes()
    assert (row.decision, row.comment) == ("approve_with_conditions", COMMENT)
    assert row.report_sha256 == hashlib.sha256(stored).hexdigest()
    # Anyone with the public key can check the record, with nothing of regsandbox but the key file.
    key = load_pem_public_key((settings.keys_dir / PUBLIC_KEY_NAME).read_bytes())
    key.verify(base64.b64decode(row.signature), row.payload.encode())  # type: ignore[union-attr]
    payload = json.loads(row.payload)
    assert payload["regulator"] == "th-reg" and payload["report_sha256"] == row.report_sha256
    assert payload["schema"] == "regsandbox/decision/v1" and payload["seq"] == row.seq
    assert _problem(settings, row) is None
    with session_scope(settings) as db:
        events = db.scalars(select(AuditEvent).where(AuditEvent.action == "decision_recorded")).all()
    assert any(
        (e.actor, e.detail["decision"], e.detail["seq"]) == ("th-reg", row.decision, row.seq) for e in events
    )


def test_each_new_decision_takes_the_next_number(
    recorded: tuple[Decision, str], signed_in: Open, settings: Settings, trial_id: str
) -> None:
    browser = signed_in("th-reg")
    last = max(d.seq for d in _decisions(settings, trial_id) if d.jurisdiction == "TH")
    page = browser.get(f"/portal/trials/{trial_id}").text
    assert _post(browser, trial_id, form_value(page, "csrf"), "approve").status_code == 303
    assert max(d.seq for d in _decisions(settings, trial_id) if d.jurisdiction == "TH") == last + 1


def test_a_changed_decision_record_no_longer_verifies(
    recorded: tuple[Decision, str], settings: Settings
) -> None:
    # A copy read afresh and detached: changing it changes neither the database nor the fixture.
    row = next(d for d in _decisions(settings, recorded[0].trial_id) if d.id == recorded[0].id)
    row.decision = "reject"
    assert _problem(settings, row) == "record differs from its signed payload in: decision"
    row.payload = row.payload.replace('"approve_with_conditions"', '"reject"', 1)
    assert _problem(settings, row) == "signature does not match the payload and the issuer key"


@pytest.mark.parametrize(
    ("decision", "comment", "message"),
    [
        ("reject", "   ", "Write the reasons for rejection in the comment."),
        ("approve_with_conditions", "", "Write the conditions in the comment."),
        ("maybe", "", "Choose approve, approve with conditions, or reject."),
        ("approve", "x" * 4001, "at most 4000 are kept"),
    ],
)
def test_an_incomplete_decision_is_explained_in_words(
    signed_in: Open, settings: Settings, trial_id: str, decision: str, comment: str, message: str
) -> None:
    browser = signed_in("th-reg")
    before = len(_decisions(settings, trial_id))
    response = _post(browser, trial_id, form_value(browser.get("/portal/").text, "csrf"), decision, comment)
    assert response.status_code == 422
    assert 'role="alert"' in response.text and message in response.text
    assert len(_decisions(settings, trial_id)) == before


@pytest.mark.parametrize("person", ["admin1", "acme-dev"])
def test_only_regulators_decide(signed_in: Open, settings: Settings, trial_id: str, person: str) -> None:
    browser = signed_in(person)
    page = browser.get(f"/portal/trials/{trial_id}").text
    assert 'name="decision"' not in page
    before = len(_decisions(settings, trial_id))
    assert _post(browser, trial_id, form_value(page, "csrf"), "approve").status_code == 403
    assert len(_decisions(settings, trial_id)) == before


def test_no_decision_without_a_signed_report(signed_in: Open, settings: Settings) -> None:
    browser = signed_in("th-reg")
    response = _post(browser, ACME_PENDING, form_value(browser.get("/portal/").text, "csrf"), "approve")
    assert response.status_code == 409 and not _decisions(settings, ACME_PENDING)


def test_a_regulator_sees_only_its_own_jurisdictions_decisions(
    recorded: tuple[Decision, str], signed_in: Open, trial_id: str
) -> None:
    th_page = signed_in("th-reg").get(f"/portal/trials/{trial_id}").text
    assert "Thailand · number" in th_page
    sg_page = signed_in("sg-reg").get(f"/portal/trials/{trial_id}").text
    assert (
        "Thailand · number" not in sg_page and "No decision has been recorded for Singapore yet." in sg_page
    )
    assert "Thailand · number" in signed_in("admin1").get(f"/portal/trials/{trial_id}").text


def test_a_decision_recorded_in_the_portal_shows_on_the_trials_flow_run(
    app: FastAPI, signed_in: Open, settings: Settings, trial_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = FakeRuns()
    monkeypatch.setitem(app.state._state, "runs", runs)  # restored as it was, for later tests
    flow_run_id = "00000000-0000-4000-8000-000000000123"
    with session_scope(settings) as db:
        db.scalars(select(Trial).where(Trial.trial_id == trial_id)).one().flow_run_id = flow_run_id
    try:
        browser = signed_in("th-reg")
        page = browser.get(f"/portal/trials/{trial_id}").text
        response = _post(browser, trial_id, form_value(page, "csrf"), "reject", "Subgroup AUROC too low.")
        assert response.status_code == 303, response.text
    finally:
        with session_scope(settings) as db:
            db.scalars(select(Trial).where(Trial.trial_id == trial_id)).one().flow_run_id = None
    row = [d for d in _decisions(settings, trial_id) if d.jurisdiction == "TH"][-1]
    [shown] = runs.artifacts
    assert (shown["flow_run_id"], shown["key"]) == (flow_run_id, f"decision-{trial_id}-th")
    assert row.payload in shown["markdown"] and row.signature in shown["markdown"]


def test_a_form_submitted_twice_records_one_decision(app: FastAPI, settings: Settings, trial_id: str) -> None:
    """The decision form carries the number its decision takes: the same form replayed (a double
    click, a browser resubmitting, a captured request) is refused, audited, and records nothing."""
    with TestClient(app) as browser:
        assert sign_in(browser, "sg-reg").status_code == 303
        page = browser.get(f"/portal/trials/{trial_id}").text
        form = {"csrf": form_value(page, "csrf"), "seq": form_value(page, "seq"), "decision": "approve"}
        first = browser.post(f"/portal/trials/{trial_id}/decision", data=form, follow_redirects=False)
        assert first.status_code == 303, first.text
        before = len(_decisions(settings, trial_id))
        again = browser.post(f"/portal/trials/{trial_id}/decision", data=form, follow_redirects=False)
        assert again.status_code == 422 and "another decision for your jurisdiction" in again.text
        assert len(_decisions(settings, trial_id)) == before
        fresh = browser.get(f"/portal/trials/{trial_id}").text
        assert int(form_value(fresh, "seq")) == int(form["seq"]) + 1  # a new form may decide anew
    with session_scope(settings) as db:
        refused = db.scalars(select(AuditEvent).where(AuditEvent.action == "decision_replay_refused")).all()
    assert any(e.actor == "sg-reg" and e.detail["expected_seq"] == int(form["seq"]) for e in refused)
