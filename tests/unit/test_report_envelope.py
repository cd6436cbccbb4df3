"""The in-toto attestation (DSSE envelope) written beside each report, and its verification."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from orchestrator.reports import ExitReport, ReportPaths, envelope_problem, verify_envelope, write_report
from orchestrator.reports.envelope import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    keyid,
    pae,
    read_statement,
)
from orchestrator.reports.sample import sample_report
from orchestrator.reports.signing import PUBLIC_KEY_NAME, load_or_create_key


@pytest.fixture(scope="module")
def report() -> ExitReport:
    return sample_report()


@pytest.fixture
def written(report: ExitReport, tmp_path: Path) -> ReportPaths:
    return write_report(report, tmp_path / "out", tmp_path / "keys", pdf=False)


def _lines(paths: ReportPaths) -> list[dict[str, object]]:
    assert paths.envelope
    return [json.loads(line) for line in Path(paths.envelope).read_bytes().splitlines()]


def test_pae_matches_the_dsse_test_vector() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("t", b"") == b"DSSEv1 1 t 0 "
    assert pae("ü", b"x") == "DSSEv1 2 ü 1 x".encode()  # lengths count bytes, not characters


def test_statement_binds_model_report_and_renderings(written: ReportPaths, report: ExitReport) -> None:
    (envelope,) = _lines(written)
    assert envelope["payloadType"] == PAYLOAD_TYPE
    statement = read_statement(written.envelope or "")
    assert statement["_type"] == STATEMENT_TYPE and statement["predicateType"] == PREDICATE_TYPE
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert report.model and report.model.digest
    assert subjects["model:models:/diabetes-risk/3"] == report.model.digest
    assert subjects["report.json"] == hashlib.sha256(Path(written.json_).read_bytes()).hexdigest()
    assert subjects["report.html"] == hashlib.sha256(Path(written.html).read_bytes()).hexdigest()
    assert "report.pdf" not in subjects  # pdf=False
    assert statement["predicate"]["verdicts"] == report.verdicts
    assert statement["predicate"]["trialId"] == report.trial_id
    signatures = envelope["signatures"]
    assert isinstance(signatures, list)
    assert signatures[0]["keyid"] == keyid(load_or_create_key(Path(written.public_key).parent).public_key())


def test_envelope_verifies_and_any_changed_report_byte_fails(written: ReportPaths) -> None:
    assert envelope_problem(written.envelope or "", written.public_key) is None
    report = Path(written.json_)
    original = report.read_bytes()
    for position in (0, len(original) // 2, len(original) - 1):
        tampered = bytearray(original)
        tampered[position] ^= 0x01
        report.write_bytes(bytes(tampered))
        assert not verify_envelope(written.envelope or "", written.public_key)
    report.write_bytes(original)
    html = Path(written.html)
    html.write_text(html.read_text(encoding="utf-8") + " ", encoding="utf-8")
    assert (
        envelope_problem(written.envelope or "", written.public_key)
        == "report.html does not match the attested sha256"
    )


def test_tampered_envelope_or_foreign_key_fails(written: ReportPaths, tmp_path: Path) -> None:
    path = Path(written.envelope or "")
    (envelope,) = _lines(written)
    statement = read_statement(path)
    statement["predicate"]["verdicts"] = {"SG": "pass"}  # type: ignore[index]
    forged = {**envelope, "payload": base64.b64encode(json.dumps(statement).encode()).decode()}
    path.write_text(json.dumps(forged) + "\n")
    assert envelope_problem(path, written.public_key) == "no envelope is signed by this public key"
    path.write_text(json.dumps({**envelope, "payloadType": "application/json"}) + "\n")
    assert "payloadType" in (envelope_problem(path, written.public_key) or "")
    path.write_text(json.dumps(envelope) + "\n")
    load_or_create_key(tmp_path / "other")
    assert not verify_envelope(path, tmp_path / "other" / PUBLIC_KEY_NAME)
    path.write_text("")
    assert "holds no envelope" in (envelope_problem(path, written.public_key) or "")


def test_url_safe_base64_and_appended_countersignatures_are_accepted(
    written: ReportPaths, tmp_path: Path
) -> None:
    path = Path(written.envelope or "")
    (envelope,) = _lines(written)
    signatures = envelope["signatures"]
    assert isinstance(signatures, list) and isinstance(envelope["payload"], str)
    url_safe = {
        **envelope,
        "payload": envelope["payload"].replace("+", "-").replace("/", "_"),
        "signatures": [{**signatures[0], "sig": signatures[0]["sig"].replace("+", "-").replace("/", "_")}],
    }
    other = load_or_create_key(tmp_path / "regulator")
    countersigned = {
        **envelope,
        "signatures": [{"keyid": "regulator", "sig": base64.b64encode(b"\0" * 64).decode()}],
    }
    path.write_text(json.dumps(countersigned) + "\n" + json.dumps(url_safe) + "\n")
    assert envelope_problem(path, written.public_key) is None
    assert other is not None


def test_an_independent_dsse_implementation_verifies_the_envelope(written: ReportPaths) -> None:
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    public = serialization.load_pem_public_key(Path(written.public_key).read_bytes())
    (line,) = Path(written.envelope or "").read_bytes().splitlines()
    envelope = Envelope.from_dict(json.loads(line))
    key = SSlibKey.from_crypto(public, keyid=json.loads(line)["signatures"][0]["keyid"])  # type: ignore[arg-type]
    accepted = envelope.verify([key], 1)
    assert list(accepted) == [key.keyid]
    assert json.loads(envelope.pae().split(b" ", 4)[4])["_type"] == STATEMENT_TYPE


def test_failed_trial_has_no_model_subject(tmp_path: Path) -> None:
    raw = (Path(__file__).with_name("golden") / "exit-report-v1.0-failed.json").read_bytes()
    from orchestrator.reports import parse_report

    paths = write_report(parse_report(raw), tmp_path / "failed", tmp_path / "keys", pdf=False)
    names = [s["name"] for s in read_statement(paths.envelope or "")["subject"]]
    assert names == ["report.json", "report.html"]
    assert verify_envelope(paths.envelope or "", paths.public_key, paths.json_)
