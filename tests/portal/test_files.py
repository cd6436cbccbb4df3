"""Report files in the portal: reads and downloads return the stored bytes and are audited;
verification by upload tells an intact report from one with a changed byte, and garbage from both."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.reports.envelope import ENVELOPE_NAME
from orchestrator.reports.writer import HTML_NAME, JSON_NAME, PDF_NAME, SIGNATURE_NAME
from orchestrator.settings import Settings
from orchestrator.store import AuditEvent, session_scope
from tests.portal.conftest import report_file
from tests.portal.seed import form_value

Open = Callable[[str], TestClient]
KINDS = {
    "json": JSON_NAME,
    "html": HTML_NAME,
    "pdf": PDF_NAME,
    "sig": SIGNATURE_NAME,
    "intoto": ENVELOPE_NAME,
}


def _audited(settings: Settings, action: str, actor: str) -> list[AuditEvent]:
    with session_scope(settings) as db:
        query = select(AuditEvent).where(AuditEvent.action == action, AuditEvent.actor == actor)
        return list(db.scalars(query))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_downloads_return_the_stored_bytes_and_are_audited(
    signed_in: Open, settings: Settings, trial_id: str, kind: str
) -> None:
    stored = report_file(settings, trial_id, KINDS[kind]).read_bytes()
    response = signed_in("th-reg").get(f"/portal/trials/{trial_id}/download/{kind}")
    assert response.status_code == 200
    assert response.content == stored
    disposition = response.headers["content-disposition"]
    assert disposition == f'attachment; filename="{trial_id}.{KINDS[kind]}"'
    if kind == "pdf":
        assert response.headers["content-type"] == "application/pdf" and stored.startswith(b"%PDF")
    events = [e for e in _audited(settings, "report_downloaded", "th-reg") if e.detail["kind"] == kind]
    assert events and events[-1].detail["sha256"] == hashlib.sha256(stored).hexdigest()
    assert events[-1].target == f"trial:{trial_id}"


def test_an_unknown_kind_is_not_found(signed_in: Open, trial_id: str) -> None:
    assert signed_in("th-reg").get(f"/portal/trials/{trial_id}/download/key").status_code == 404


def test_the_full_report_is_served_as_written_in_a_sandbox(
    signed_in: Open, settings: Settings, trial_id: str
) -> None:
    response = signed_in("sg-reg").get(f"/portal/trials/{trial_id}/report")
    assert response.status_code == 200
    assert response.content == report_file(settings, trial_id, HTML_NAME).read_bytes()
    csp = response.headers["content-security-policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp and "script-src" not in csp
    assert _audited(settings, "report_read", "sg-reg")


def _verify(browser: TestClient, report: bytes, signature: bytes | None = None, csrf: str | None = None):  # type: ignore[no-untyped-def]
    token = csrf if csrf is not None else form_value(browser.get("/portal/verify").text, "csrf")
    files = {"report": ("report.json", report, "application/json")}
    if signature is not None:
        files["signature"] = ("report.json.sig", signature, "text/plain")
    return browser.post("/portal/verify", data={"csrf": token}, files=files)


def _changed(data: bytes) -> bytes:
    # One byte of one digit in the evidence: still valid JSON, still a report, no longer the signed one.
    at = data.index(b'"perf/auroc":0.8') + len(b'"perf/auroc":0.8')
    return data[:at] + (b"9" if data[at : at + 1] != b"9" else b"8") + data[at + 1 :]


@pytest.mark.parametrize("with_signature", [True, False], ids=["signature", "stored-copy"])
def test_verify_by_upload_intact_then_one_byte_changed(
    signed_in: Open, settings: Settings, trial_id: str, with_signature: bool
) -> None:
    browser = signed_in("th-reg")
    data = report_file(settings, trial_id, JSON_NAME).read_bytes()
    signature = report_file(settings, trial_id, SIGNATURE_NAME).read_bytes() if with_signature else None
    intact = _verify(browser, data, signature)
    assert intact.status_code == 200
    assert "✔</span> Intact</h2>" in intact.text and "Not intact" not in intact.text
    assert hashlib.sha256(data).hexdigest() in intact.text
    broken = _verify(browser, _changed(data), signature)
    assert broken.status_code == 200
    assert "Not intact" in broken.text and "</span> Intact</h2>" not in broken.text
    reason = "signature does not match" if with_signature else "differ from the signed report stored"
    assert reason in broken.text
    outcomes = [e.detail["intact"] for e in _audited(settings, "report_verified_by_upload", "th-reg")]
    assert outcomes[-2:] == [True, False]


@pytest.mark.parametrize(
    ("report", "signature", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00garbage", None, "This file is not a regsandbox exit report"),
        (b'{"schema": "something/else"}', None, "This file is not a regsandbox exit report"),
        (b"[1, 2, 3]", b"bm90IGEgc2lnbmF0dXJl\n", "signature has 15 bytes, expected 64"),
        (b"{}", b"%%% not base64 %%%", "signature is not base64"),
    ],
    ids=["binary", "other-json", "short-signature", "garbled-signature"],
)
def test_verify_answers_garbage_with_a_sentence(
    signed_in: Open, report: bytes, signature: bytes | None, message: str
) -> None:
    response = _verify(signed_in("sg-reg"), report, signature)
    assert response.status_code == 200
    assert "Not intact" in response.text and message in response.text


def test_verify_refuses_empty_oversized_and_forged_uploads(signed_in: Open) -> None:
    browser = signed_in("sg-reg")
    empty = _verify(browser, b"")
    assert empty.status_code == 422 and "The report file is empty." in empty.text
    token = form_value(browser.get("/portal/verify").text, "csrf")
    huge = browser.post(
        "/portal/verify",
        content=b"x" * 1024,
        headers={"content-type": "multipart/form-data; boundary=b", "content-length": str(64 * 1024 * 1024)},
    )
    assert huge.status_code == 413 and "too large" in huge.text
    forged = _verify(browser, b"{}", csrf="not the token")
    assert forged.status_code == 403
    missing = browser.post("/portal/verify", data={"csrf": token})
    assert missing.status_code == 422 and "Choose the report file" in missing.text
    mangled = browser.post(
        "/portal/verify", content=b"--b\r\nnot a part", headers={"content-type": "multipart/form-data"}
    )
    assert mangled.status_code == 400 and "The upload could not be read" in mangled.text
