"""What the portal does besides showing: record a regulator's decision as a signed record.

A decision is a new record that refers to one exact report (by the sha256 of its signed bytes),
never an edit of the report. Its payload is canonical JSON (sorted keys, no whitespace, UTF-8)
signed with the issuer's Ed25519 key, so anyone holding the public key can check that the
platform recorded exactly this decision on exactly that report. Recording is audited.

:func:`record_decision` is the one entry point the portal calls; the JSON API may provide its
own, and the two are interchangeable as long as they write the same ``Decision`` rows.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from orchestrator.errors import AccessDeniedError, ConflictError
from orchestrator.records import utcnow
from orchestrator.reports.model import ReportIntegrityError
from orchestrator.reports.signing import load_or_create_key, load_public_key, public_key_fingerprint
from orchestrator.settings import Settings
from orchestrator.store import DECISIONS, Decision, Trial, User, audit

DECISION_SCHEMA = "regsandbox/decision/v1"
COMMENT_MAX = 4000
# A decision that departs from plain approval must say why, or the record is of little use.
COMMENT_REQUIRED = ("approve_with_conditions", "reject")


def canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decision_error(decision: str, comment: str) -> str | None:
    """Why this decision cannot be recorded as given, in words for the form; None when it can."""
    if decision not in DECISIONS:
        return "Choose approve, approve with conditions, or reject."
    if len(comment) > COMMENT_MAX:
        return f"The comment is {len(comment)} characters long; at most {COMMENT_MAX} are kept."
    if decision in COMMENT_REQUIRED and not comment.strip():
        what = "the conditions" if decision == "approve_with_conditions" else "the reasons for rejection"
        return f"Write {what} in the comment."
    return None


def record_decision(
    db: Session,
    settings: Settings,
    user: User,
    trial_id: str,
    decision: str,
    comment: str,
    report_sha256: str,
) -> Decision:
    """Record ``user``'s decision for their jurisdiction on the report whose bytes hash to ``report_sha256``.

    Raises ``AccessDeniedError`` for anyone but a regulator, ``ConflictError`` for a decision the
    form should not have let through (:func:`decision_error` says why, in words).
    Checking that ``user`` may see the trial is the caller's job (:func:`orchestrator.api.access.can_see`).
    """
    if user.role != "regulator" or not user.jurisdiction:
        raise AccessDeniedError("only a regulator of a participating jurisdiction records decisions")
    problem = decision_error(decision, comment)
    if problem:
        raise ConflictError(problem)
    jurisdiction = user.jurisdiction
    # Lock the trial's row before numbering: two decisions at once take turns instead of both
    # reading the same last number (a row lock on PostgreSQL, the write lock on SQLite).
    db.execute(update(Trial).where(Trial.trial_id == trial_id).values(trial_id=Trial.trial_id))
    last = db.scalar(
        select(func.max(Decision.seq)).where(
            Decision.trial_id == trial_id, Decision.jurisdiction == jurisdiction
        )
    )
    seq, at = (last or 0) + 1, utcnow()
    payload = {
        "schema": DECISION_SCHEMA,
        "trial_id": trial_id,
        "jurisdiction": jurisdiction,
        "seq": seq,
        "decision": decision,
        "comment": comment,
        "decided_by": user.username,
        "report_sha256": report_sha256,
        "at": at.isoformat().replace("+00:00", "Z"),
        "issuer_key": public_key_fingerprint(settings.keys_dir),
    }
    body = canonical(payload)
    signature = base64.b64encode(load_or_create_key(settings.keys_dir).sign(body)).decode()
    row = Decision(
        trial_id=trial_id,
        jurisdiction=jurisdiction,
        seq=seq,
        decision=decision,
        comment=comment,
        user_id=user.id,
        report_sha256=report_sha256,
        payload=body.decode("utf-8"),
        signature=signature,
        at=at,
    )
    db.add(row)
    db.flush()
    audit.record(
        db,
        user.username,
        "decision_recorded",
        f"trial:{trial_id}",
        jurisdiction=jurisdiction,
        seq=seq,
        decision=decision,
        report_sha256=report_sha256,
    )
    return row


def decision_problem(row: Decision, public_key_path: Path | str) -> str | None:
    """Why a stored decision does not verify against the issuer's public key; None when it does."""
    body = row.payload.encode("utf-8")
    try:
        signature = base64.b64decode(row.signature, validate=True)
        load_public_key(public_key_path).verify(signature, body)
    except (binascii.Error, ValueError, ReportIntegrityError) as exc:
        return f"signature unreadable: {exc}"
    except InvalidSignature:
        return "signature does not match the recorded payload"
    except OSError:
        return "the platform's public key is missing"
    payload = json.loads(body)
    # The columns shown on screen must say what was signed.
    for field in ("trial_id", "jurisdiction", "seq", "decision", "comment", "report_sha256"):
        if payload.get(field) != getattr(row, field):
            return f"recorded {field} differs from the signed payload"
    return None
