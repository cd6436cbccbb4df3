"""Report files over the API, verification of uploaded reports, and the upload limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.api.limits import VERIFY_LIMIT
from orchestrator.reports import public_key_fingerprint, verification_problem
from tests.api.conftest import Platform

FILES = {
    "json": ("report.json", "application/json"),
    "html": ("report.html", "text/html; charset=utf-8"),
    "signature": ("report.json.sig", "text/plain; charset=utf-8"),
    "envelope": ("report.intoto.jsonl", "application/jsonl"),
}


def stored(platform: Platform, key: str, name: str = "report.json") -> bytes:
    return (platform.settings.reports_dir / platform.refs[key] / name).read_bytes()


@pytest.mark.parametrize("kind", list(FILES))
def test_each_kind_is_the_stored_file(platform: Platform, kind: str) -> None:
    name, media_type = FILES[kind]
    response = platform.get("reg_sg", f"/api/trials/{platform.refs['A']}/report/{kind}")
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.content == stored(platform, "A", name)
    assert platform.refs["A"] in response.headers["content-disposition"]


def test_a_report_without_pdf_answers_404_for_it(platform: Platform) -> None:
    assert platform.get("admin", f"/api/trials/{platform.refs['A']}/report/pdf").status_code == 404
    assert platform.get("admin", f"/api/trials/{platform.refs['OA']}/report/json").status_code == 404


@pytest.mark.parametrize(
    "kind", ["..%2F..%2Fkeys%2Fissuer-ed25519.pem", "../../keys/issuer-ed25519.pem", "report.json", "JSON"]
)
def test_no_path_but_the_report_kinds(platform: Platform, kind: str) -> None:
    response = platform.get("admin", f"/api/trials/{platform.refs['A']}/report/{kind}")
    assert response.status_code in (404, 422)
    assert b"PRIVATE KEY" not in response.content


def test_report_reads_are_audited(platform: Platform) -> None:
    platform.get("reg_sg", f"/api/trials/{platform.refs['A']}/report/html")
    events = platform.get("admin", "/api/audit", params={"action": "report_read", "actor": "reg_sg"}).json()
    assert events["events"][0]["detail"] == {"kind": "html"}
    assert events["events"][0]["target"] == f"trial:{platform.refs['A']}"


def verify(platform: Platform, who: str, report: bytes, signature: bytes | None = None) -> dict:
    files = {"report": ("report.json", report, "application/json")}
    if signature is not None:
        files["signature"] = ("report.json.sig", signature, "text/plain")
    response = platform.post(who, "/api/reports/verify", files=files)
    assert response.status_code == 200, response.text
    return response.json()


def test_an_intact_report_verifies_with_the_stored_signature(platform: Platform) -> None:
    result = verify(platform, "reg_sg", stored(platform, "A"))
    assert result["intact"] is True, result
    assert (result["trial_id"], result["signature_source"]) == (platform.refs["A"], "stored")
    assert result["key_fingerprint"] == public_key_fingerprint(platform.settings.keys_dir)


def test_one_changed_byte_fails(platform: Platform) -> None:
    report = stored(platform, "A")
    changed = report.replace(b'"perf/auroc":0.8249', b'"perf/auroc":0.9249', 1)
    assert changed != report
    result = verify(platform, "reg_sg", changed)
    assert result["intact"] is False
    assert "signature does not match" in result["problem"]


def test_an_uploaded_signature_is_checked_instead(platform: Platform) -> None:
    report_a, sig_b = stored(platform, "A"), stored(platform, "B", "report.json.sig")
    assert verify(platform, "dev_a", report_a, stored(platform, "A", "report.json.sig"))["intact"] is True
    mismatch = verify(platform, "dev_a", report_a, sig_b)
    assert (mismatch["intact"], mismatch["signature_source"]) == (False, "uploaded")
    assert verify(platform, "dev_a", report_a, b"not base64 at all!")["intact"] is False
    assert verify(platform, "dev_a", b"{not json", sig_b)["intact"] is False


def test_without_a_signature_only_a_visible_trials_copy_is_used(platform: Platform) -> None:
    files = {"report": ("report.json", stored(platform, "A"), "application/json")}
    assert platform.post("dev_b", "/api/reports/verify", files=files).status_code == 404
    files = {"report": ("report.json", b'{"trial_id": "no-such-trial-00000000"}', "application/json")}
    assert platform.post("admin", "/api/reports/verify", files=files).status_code == 404


def test_an_upload_over_the_limit_is_refused_413(platform: Platform) -> None:
    big = b" " * (VERIFY_LIMIT + 1)
    files = {"report": ("report.json", big, "application/json")}
    assert platform.post("admin", "/api/reports/verify", files=files).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it arrives
        for _ in range(VERIFY_LIMIT // 65536 + 2):
            yield b"x" * 65536

    headers = {**platform.headers("admin"), "content-type": "multipart/form-data; boundary=b"}
    response = platform.client.post("/api/reports/verify", content=chunks(), headers=headers)
    assert response.status_code == 413
    # Other API bodies are capped lower.
    response = platform.post("admin", "/api/trials", content=b"{" + b" " * (2 * 1024 * 1024) + b"}")
    assert response.status_code == 413


def test_the_issuer_key_verifies_reports_offline(platform: Platform, tmp_path: Path) -> None:
    issuer = platform.get("reg_th", "/api/reports/issuer-key").json()
    assert issuer["fingerprint"] == public_key_fingerprint(platform.settings.keys_dir)
    key = tmp_path / "issuer.pem"
    key.write_text(issuer["public_key_pem"])
    folder = platform.settings.reports_dir / platform.refs["B"]
    assert verification_problem(folder / "report.json", folder / "report.json.sig", key) is None
