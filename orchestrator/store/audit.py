"""The audit log: append-only and hash-chained, so a changed or removed record is detected.

Each record's hash covers its own content and the previous record's hash; ``verify`` walks the
chain from the start and names the first record that does not match. Appends take a lock so two
writers cannot fork the chain (an advisory lock on PostgreSQL; SQLite's write lock, taken first).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from orchestrator.records import utcnow
from orchestrator.store.db import as_utc
from orchestrator.store.models import AuditEvent

GENESIS = "0" * 64
_LOCK_KEY = 0x7265_6773  # "regs": the advisory lock that serialises appends on PostgreSQL


class ChainCheck(BaseModel):
    model_config = ConfigDict(frozen=True)

    intact: bool
    records: int
    first_bad: int | None = None
    reason: str | None = None


def _digest(prev_hash: str, seq: int, at: str, actor: str, action: str, target: str, detail: Any) -> str:
    fields = [prev_hash, seq, at, actor, action, target, detail]
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _stamp(event: AuditEvent) -> str:
    # One spelling of the time, whatever the database gives back (SQLite drops the zone,
    # PostgreSQL answers in the session's zone).
    return as_utc(event.at).replace(tzinfo=None).isoformat(timespec="microseconds")


def record(session: Session, actor: str, action: str, target: str = "", **detail: Any) -> AuditEvent:
    """Append one event in the caller's transaction; it is part of the chain once committed."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    else:
        # SQLite takes its write lock at a transaction's first write, not at the read of the last
        # record below: two first calls of one token at the same moment (the load test) both read
        # seq n and both wrote n + 1. A write that changes nothing takes the lock first, so the
        # read below sees every committed record (the others wait on the busy timeout).
        session.execute(text("UPDATE audit_events SET seq = seq WHERE 0"))
    last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    clean = json.loads(json.dumps(detail, default=str))
    event = AuditEvent(seq=seq, at=utcnow(), actor=actor, action=action, target=target, detail=clean)
    event.prev_hash = prev
    event.hash = _digest(prev, seq, _stamp(event), actor, action, target, clean)
    session.add(event)
    session.flush()
    return event


def record_apart(session: Session, actor: str, action: str, target: str = "", **detail: Any) -> None:
    """Append in a transaction of its own: for refusals, whose request transaction is rolled back."""
    with Session(session.get_bind()) as own, own.begin():
        record(own, actor, action, target, **detail)


def verify(session: Session) -> ChainCheck:
    """Walk the chain in order; the first record whose link or hash does not hold is named."""
    prev, count, expected_seq = GENESIS, 0, 1
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
        count += 1
        problem = None
        if event.seq != expected_seq:
            problem, event_seq = "record missing", expected_seq
        elif event.prev_hash != prev:
            problem, event_seq = "link to the previous record broken", event.seq
        elif event.hash != _digest(
            prev, event.seq, _stamp(event), event.actor, event.action, event.target, event.detail
        ):
            problem, event_seq = "content changed", event.seq
        if problem:
            return ChainCheck(intact=False, records=count, first_bad=event_seq, reason=problem)
        prev, expected_seq = event.hash, expected_seq + 1
    return ChainCheck(intact=True, records=count)
