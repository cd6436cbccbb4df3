"""An in-toto attestation of the exit report, in a DSSE envelope (``report.intoto.jsonl``).

The detached Ed25519 signature proves the bytes of ``report.json``; the attestation says,
under the same issuer key and in a format supply-chain tools already read, which model was
trialled (its sha256) and which report, HTML and PDF the trial produced. The envelope follows
DSSE v1 (signature over PAE(payloadType, payload)); the payload is an in-toto Statement v1.
The file is JSON Lines, one envelope per line, so countersignatures can be appended.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from orchestrator.reports.model import SCHEMA_ID, ExitReport, ReportIntegrityError, parse_report
from orchestrator.reports.signing import load_public_key

PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE: Final = "https://regsandbox.dev/exit-report/v1"
ENVELOPE_NAME: Final = "report.intoto.jsonl"
REPORT_SUBJECT: Final = "report.json"
RENDERINGS: Final = ("report.html", "report.pdf")
MODEL_SUBJECT_PREFIX: Final = "model:"


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def keyid(public_key: Ed25519PublicKey) -> str:
    """sha256 of the raw public key, the same fingerprint the HTML report shows."""
    return "sha256:" + hashlib.sha256(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")


def statement(report: ExitReport, report_bytes: bytes, renderings: Mapping[str, bytes]) -> dict[str, Any]:
    """The in-toto Statement: subjects are the model, ``report.json`` and each rendering by file name."""
    subjects: list[dict[str, Any]] = []
    if report.model and report.model.digest:
        name = MODEL_SUBJECT_PREFIX + (report.model.resolved or report.model.uri)
        subjects.append({"name": name, "digest": {"sha256": _hex(report.model.digest)}})
    for name, data in {REPORT_SUBJECT: report_bytes, **renderings}.items():
        subjects.append({"name": name, "digest": {"sha256": hashlib.sha256(data).hexdigest()}})
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "schema": SCHEMA_ID,
            "trialId": report.trial_id,
            "trialName": report.trial.name,
            "sponsor": report.trial.sponsor,
            "status": report.status,
            "createdAt": report.created_at.isoformat().replace("+00:00", "Z"),
            "verdicts": dict(sorted(report.verdicts.items())),
            "teardownVerified": report.teardown.verified,
            "profiles": {a.jurisdiction: f"{a.profile_id}@{a.profile_version}" for a in report.assessments},
        },
    }


def envelope_line(
    report: ExitReport, report_bytes: bytes, key: Ed25519PrivateKey, renderings: Mapping[str, bytes]
) -> bytes:
    """One signed DSSE envelope as a JSON Lines record (ends with a newline)."""
    body = json.dumps(
        statement(report, report_bytes, renderings), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    signature = key.sign(pae(PAYLOAD_TYPE, body))
    envelope = {
        "payload": base64.b64encode(body).decode("ascii"),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [
            {"keyid": keyid(key.public_key()), "sig": base64.b64encode(signature).decode("ascii")}
        ],
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode("ascii") + b"\n"


def _b64(text: object) -> bytes:
    # DSSE: verifiers must accept standard and URL-safe base64 alike.
    if not isinstance(text, str):
        raise ReportIntegrityError("envelope field is not a base64 string")
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ReportIntegrityError(f"envelope field is not base64: {exc}") from exc


def _signed_statement(envelope: Any, public_key: Ed25519PublicKey) -> dict[str, Any] | None:
    """The statement of an envelope the key signed, or None when no signature of it verifies."""
    if not isinstance(envelope, dict) or envelope.get("payloadType") != PAYLOAD_TYPE:
        raise ReportIntegrityError(f"envelope payloadType is not {PAYLOAD_TYPE}")
    body = _b64(envelope.get("payload"))
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise ReportIntegrityError("envelope carries no signatures")
    for entry in signatures:
        try:
            public_key.verify(
                _b64(entry.get("sig") if isinstance(entry, dict) else None), pae(PAYLOAD_TYPE, body)
            )
        except InvalidSignature:
            continue
        try:
            parsed = json.loads(body)
        except ValueError as exc:
            raise ReportIntegrityError(f"signed payload is not JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise ReportIntegrityError("signed payload is not an in-toto statement")
        return parsed
    return None


def _subject_problems(statement: dict[str, Any], report_path: Path) -> list[str]:
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        return [f"statement is not an {STATEMENT_TYPE} of {PREDICATE_TYPE}"]
    subjects = {
        s.get("name"): (s.get("digest") or {}).get("sha256")
        for s in statement.get("subject") or []
        if isinstance(s, dict)
    }
    if REPORT_SUBJECT not in subjects:
        return [f"statement has no {REPORT_SUBJECT} subject"]
    data = report_path.read_bytes()
    problems = []
    if subjects[REPORT_SUBJECT] != hashlib.sha256(data).hexdigest():
        problems.append(f"{report_path.name} does not match the attested sha256")
    report = parse_report(data)
    attested_models = {
        v for k, v in subjects.items() if isinstance(k, str) and k.startswith(MODEL_SUBJECT_PREFIX)
    }
    declared = _hex(report.model.digest) if report.model and report.model.digest else None
    if attested_models != ({declared} if declared else set()):
        problems.append("attested model digest differs from the report's model digest")
    for name in RENDERINGS:
        sibling = report_path.with_name(name)
        # Renderings are checked when they sit beside the report; a regulator may hold only the JSON.
        if name in subjects and sibling.is_file():
            if hashlib.sha256(sibling.read_bytes()).hexdigest() != subjects[name]:
                problems.append(f"{name} does not match the attested sha256")
    return problems


def envelope_problem(
    envelope_path: Path | str, public_key_path: Path | str, report_path: Path | str | None = None
) -> str | None:
    """Why the attestation does not verify, or None when it does.

    Some envelope in the file must carry a valid signature of ``public_key_path`` over a
    regsandbox exit-report statement whose ``report.json`` subject is the sha256 of
    ``report_path`` (default: ``report.json`` beside the envelope), whose model subject is the
    report's model digest, and whose ``report.html`` / ``report.pdf`` subjects match those
    files when they are present. Missing files raise ``OSError`` (a usage problem).
    """
    envelope_path = Path(envelope_path)
    report = Path(report_path) if report_path else envelope_path.with_name(REPORT_SUBJECT)
    public_key = load_public_key(public_key_path)
    lines = [line for line in envelope_path.read_bytes().splitlines() if line.strip()]
    if not lines:
        return f"{envelope_path.name} holds no envelope"
    try:
        for line in lines:
            found = _signed_statement(json.loads(line), public_key)
            if found is not None:
                problems = _subject_problems(found, report)
                return "; ".join(problems) if problems else None
    except ValueError as exc:  # ReportIntegrityError and malformed JSON alike
        return str(exc)
    return "no envelope is signed by this public key"


def verify_envelope(
    envelope_path: Path | str, public_key_path: Path | str, report_path: Path | str | None = None
) -> bool:
    """True when :func:`envelope_problem` finds nothing wrong."""
    return envelope_problem(envelope_path, public_key_path, report_path) is None


def read_statement(envelope_path: Path | str) -> dict[str, Any]:
    """The (unverified) statement of the first envelope, for display; verify before trusting it."""
    first = next(line for line in Path(envelope_path).read_bytes().splitlines() if line.strip())
    statement_json: dict[str, Any] = json.loads(_b64(json.loads(first)["payload"]))
    return statement_json
