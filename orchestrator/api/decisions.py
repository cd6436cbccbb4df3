"""Regulators' decisions: signed records that refer to a trial's report, never edits of it.

A decision is the canonical JSON of ``{schema, trial_id, jurisdiction, seq, decision, comment,
regulator, report_sha256, at}`` signed with the platform's issuer key (Ed25519, the key that signs
the reports), stored with its payload and signature. A later decision of the same jurisdiction on
the same trial is a new record with the next ``seq``. Anyone holding the issuer's public key can
check a decision without the platform; :func:`verification_problem` does it here.

The JSON API and the portal both record decisions through :func:`record_decision`, check them
with :func:`verification_problem`, and show them on the trial's Prefect flow run through
:func:`publish_decision_to_prefect`. The rules a decision must meet are :func:`decision_problems`;
each problem names its field (``decision: ...``, ``comment: ...``), and the portal words the
same problems for its form.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

from cryptography.exceptions import InvalidSignature
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from orchestrator.api.access import can_see, deny, hide
from orchestrator.api.reports import (
    ReportKind,
    file_sha256,
    has_report,
    report_file,
    stored_report_problem,
)
from orchestrator.api.runs import PrefectRuns, Runs
from orchestrator.errors import ConflictError, SpecError
from orchestrator.records import utcnow
from orchestrator.reports.model import ReportIntegrityError
from orchestrator.reports.signing import export_public_key, load_public_key, public_key_fingerprint, sign
from orchestrator.settings import Settings, get_settings
from orchestrator.store import DECISIONS, Decision, Trial, User, audit

logger = logging.getLogger("regsandbox.api.decisions")

SCHEMA = "regsandbox/decision/v1"
SOURCE = "decision"
MAX_COMMENT = 4000
# A decision that departs from plain approval must say why, or the record is of little use.
COMMENT_REQUIRED = ("approve_with_conditions", "reject")
DECISION_UNKNOWN = f"decision: must be one of {', '.join(DECISIONS)}"
COMMENT_TOO_LONG = f"comment: at most {MAX_COMMENT} characters"
COMMENT_MISSING = "comment: required with approve_with_conditions (the conditions) and reject (the reasons)"


def canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decision_problems(decision: str, comment: str) -> list[str]:
    """Why ``decision`` with ``comment`` cannot be recorded, one field-path problem a line; [] when it can."""
    problems = []
    if decision not in DECISIONS:
        problems.append(DECISION_UNKNOWN)
    if len(comment) > MAX_COMMENT:
        problems.append(COMMENT_TOO_LONG)
    if decision in COMMENT_REQUIRED and not comment.strip():
        problems.append(COMMENT_MISSING)
    return problems


def _last_seq(db: Session, trial_id: str, jurisdiction: str) -> int:
    found = db.scalar(
        select(func.max(Decision.seq)).where(
            Decision.trial_id == trial_id, Decision.jurisdiction == jurisdiction
        )
    )
    return int(found or 0)


def _replayed(user: User, last: int | None) -> ConflictError:
    return ConflictError(
        f"decision number {last or 0} was recorded for {user.jurisdiction} since this form was made: "
        "a form records one decision; open the trial again to decide anew"
    )


def record_decision(
    db: Session,
    settings: Settings,
    user: User,
    trial: Trial,
    decision: str,
    comment: str = "",
    expected_seq: int | None = None,
) -> Decision:
    """Sign and store ``user``'s decision on ``trial``; refusals raise the platform's errors.

    Only a regulator of a jurisdiction the trial names may decide, and only once the trial has a
    report that verifies: the decision cites that report's sha256. A decision that breaks
    :func:`decision_problems` raises ``SpecError`` with those problems. ``expected_seq`` is the
    number the caller saw coming next; when another decision came first (a replayed or stale
    form) nothing is recorded and ``ConflictError`` says so.
    """
    target = f"trial:{trial.trial_id or trial.id}"
    if not can_see(user, trial):
        hide(db, user, "decision", target, exists=True)
    if user.role != "regulator" or not user.jurisdiction:
        deny(db, user, "decision", target, "only a regulator of a jurisdiction the trial names decides")
    problems = decision_problems(decision, comment)
    if problems:
        raise SpecError(SOURCE, problems)
    if not trial.trial_id or not has_report(settings, trial):
        raise ConflictError(f"{target} has no report yet: a decision refers to a signed report")
    problem = stored_report_problem(settings, trial)
    if problem:
        raise ConflictError(f"{target}: the stored report does not verify ({problem})")
    if expected_seq is not None:
        seen = _last_seq(db, trial.trial_id, user.jurisdiction)
        if expected_seq != seen + 1:
            # Made before decision number `seen` was recorded: a replay of one already recorded,
            # or a second tab. One form records one decision. Audited apart: this request's own
            # transaction is rolled back with the refusal.
            detail = {"expected_seq": expected_seq, "last_seq": seen}
            audit.record_apart(db, user.username, "decision_replay_refused", target, **detail)
            raise _replayed(user, seen)
    # Lock the trial before numbering, so two decisions at once take turns instead of both reading
    # the same last seq: a no-op UPDATE takes the row lock on PostgreSQL and the write lock on
    # SQLite (which ignores SELECT ... FOR UPDATE), both held until the transaction ends.
    db.execute(
        update(Trial).where(Trial.id == trial.id).values(trial_id=Trial.trial_id),
        execution_options={"synchronize_session": False},
    )
    last = _last_seq(db, trial.trial_id, user.jurisdiction)
    if expected_seq is not None and expected_seq != last + 1:
        # Two identical submissions at once: the first checks passed for both, the lock decides.
        raise _replayed(user, last)
    at = utcnow()
    payload = {
        "schema": SCHEMA,
        "trial_id": trial.trial_id,
        "jurisdiction": user.jurisdiction,
        "seq": last + 1,
        "decision": decision,
        "comment": comment,
        "regulator": user.username,
        "report_sha256": file_sha256(report_file(settings, trial, ReportKind.json)),
        "at": at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
    }
    data = canonical(payload)
    row = Decision(
        trial_id=trial.trial_id,
        jurisdiction=user.jurisdiction,
        seq=payload["seq"],
        decision=decision,
        comment=comment,
        user_id=user.id,
        report_sha256=payload["report_sha256"],
        payload=data.decode("utf-8"),
        signature=base64.b64encode(sign(data, settings.keys_dir)).decode("ascii"),
        at=at,
    )
    db.add(row)
    db.flush()
    audit.record(
        db,
        user.username,
        "decision_recorded",
        target,
        jurisdiction=user.jurisdiction,
        seq=row.seq,
        decision=decision,
        report_sha256=row.report_sha256,
    )
    return row


def verification_problem(db: Session, settings: Settings, decision: Decision) -> str | None:
    """Why the stored decision does not hold, or None: signature, canonical form, and columns."""
    try:
        signature = base64.b64decode(decision.signature, validate=True)
        load_public_key(export_public_key(settings.keys_dir)).verify(signature, decision.payload.encode())
    except ReportIntegrityError as exc:
        return f"the platform's public key is unreadable: {exc}"
    except (binascii.Error, ValueError):
        return "signature is not base64"
    except InvalidSignature:
        return "signature does not match the payload and the issuer key"
    payload = json.loads(decision.payload)
    if canonical(payload) != decision.payload.encode("utf-8"):
        return "payload is signed but not in canonical form"
    regulator = db.get(User, decision.user_id)
    stored = {
        "trial_id": decision.trial_id,
        "jurisdiction": decision.jurisdiction,
        "seq": decision.seq,
        "decision": decision.decision,
        "comment": decision.comment,
        "report_sha256": decision.report_sha256,
        "regulator": regulator.username if regulator else None,
    }
    changed = sorted(k for k, v in stored.items() if payload.get(k) != v)
    return f"record differs from its signed payload in: {', '.join(changed)}" if changed else None


def key_fingerprint(settings: Settings) -> str:
    return public_key_fingerprint(settings.keys_dir)


def _markdown(trial: Trial, decision: Decision, fingerprint: str) -> str:
    comment = decision.comment.replace("\n", " ").replace("|", "\\|") or "(none)"
    return "\n".join(
        [
            f"### {decision.jurisdiction} decision {decision.seq}: {decision.decision}",
            "",
            "| field | value |",
            "|---|---|",
            f"| trial | `{trial.trial_id}` |",
            f"| decision | **{decision.decision}** |",
            f"| comment | {comment} |",
            f"| report sha256 | `{decision.report_sha256}` |",
            f"| recorded | {decision.at.isoformat()} |",
            "",
            f"Signed with the platform issuer key `{fingerprint}` (Ed25519 over the canonical JSON below).",
            "",
            f"```json\n{decision.payload}\n```",
            "",
            f"signature: `{decision.signature}`",
        ]
    )


def publish_decision_to_prefect(
    trial: Trial, decision: Decision, *, runs: Runs | None = None, settings: Settings | None = None
) -> bool:
    """Show the decision on the trial's flow run as a markdown artifact; never raises.

    Returns whether the artifact was created: a trial without a flow run (or a Prefect server that
    does not answer) leaves the decision recorded and signed all the same.
    """
    if not trial.flow_run_id:
        return False
    settings = settings or get_settings()
    try:
        key = f"decision-{trial.trial_id}-{decision.jurisdiction.lower()}"
        runs = runs or PrefectRuns(settings)
        markdown = _markdown(trial, decision, key_fingerprint(settings))
        description = f"{decision.jurisdiction} regulator's decision {decision.seq} on {trial.trial_id}"
        runs.annotate(trial.flow_run_id, key, markdown, description)
    except Exception as exc:  # the decision is recorded; showing it in Prefect is a courtesy
        logger.warning("decision %s on %s not shown in Prefect: %s", decision.id, trial.trial_id, exc)
        return False
    return True
