"""The audit log (administrators only): read it page by page, and check its hash chain."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from orchestrator.api.access import require
from orchestrator.api.deps import CurrentUser, DbSession
from orchestrator.store import AuditEvent, audit

router = APIRouter(prefix="/api/audit", tags=["audit"])


class AuditEventPublic(BaseModel):
    seq: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    hash: str


class AuditPage(BaseModel):
    total: int = Field(description="Events matching the filter, on every page.")
    limit: int
    events: list[AuditEventPublic] = Field(description="Newest first.")
    next_before: int | None = Field(
        description="Pass as ``before`` for the next (older) page; unset at the end."
    )


class ChainPublic(BaseModel):
    intact: bool
    records: int
    first_bad: int | None = Field(description="seq of the first record that does not hold.")
    reason: str | None


@router.get("", response_model=AuditPage)
def read_audit(
    user: CurrentUser,
    db: DbSession,
    before: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="Only events older than this seq (paging).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    action: Annotated[str | None, Query(max_length=64, description="Only events of this action.")] = None,
    actor: Annotated[str | None, Query(max_length=128, description="Only events by this actor.")] = None,
) -> AuditPage:
    require(db, user, "audit_read", "audit", "admin")
    query = select(AuditEvent)
    if action:
        query = query.where(AuditEvent.action == action)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    # Paged by seq, not by offset: reading the log appends to it, which would shift offsets.
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    rows = list(db.scalars(query.order_by(AuditEvent.seq.desc()).limit(limit + 1)))
    more = len(rows) > limit
    events = [
        AuditEventPublic(
            seq=e.seq, at=e.at, actor=e.actor, action=e.action, target=e.target, detail=e.detail, hash=e.hash
        )
        for e in rows[:limit]
    ]
    # Recorded after the query, so the page shows the log as it was before this read.
    audit.record(db, user.username, "audit_read", "audit", before=before, limit=limit)
    return AuditPage(
        total=total, limit=limit, events=events, next_before=events[-1].seq if more and events else None
    )


@router.get("/verify", response_model=ChainPublic)
def verify_chain(user: CurrentUser, db: DbSession) -> ChainPublic:
    require(db, user, "audit_verify", "audit", "admin")
    check = audit.verify(db)
    return ChainPublic(
        intact=check.intact, records=check.records, first_bad=check.first_bad, reason=check.reason
    )
