"""The platform database's tables (SQLAlchemy 2): people, their credentials, trials, decisions, audit.

Secrets are never stored: passwords as Argon2 hashes, API and endpoint tokens as SHA-256 digests
(they are long random strings, so a fast hash is enough and lookups stay indexed). The audit table
is append-only and hash-chained (:mod:`orchestrator.store.audit`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from orchestrator.records import utcnow

ROLES = ("admin", "developer", "regulator")
DECISIONS = ("approve", "approve_with_conditions", "reject")


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: DateTime(timezone=True), dict[str, Any]: JSON, list[str]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    # A developer acts for one sponsor, a regulator for one jurisdiction; an admin for neither.
    sponsor: Mapped[str | None] = mapped_column(String(64), default=None)
    jurisdiction: Mapped[str | None] = mapped_column(String(2), default=None)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A personal API token: shown once when issued, stored as its digest."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    label: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked: Mapped[bool] = mapped_column(default=False)


class WebSession(Base):
    """A signed-in browser: the cookie holds the secret, the table its digest and CSRF token."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()


class Trial(Base):
    """A trial from submission to its report. ``trial_id`` is known once a flow run exists."""

    __tablename__ = "trials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[str | None] = mapped_column(String(64), unique=True, index=True, default=None)
    name: Mapped[str] = mapped_column(String(64))
    sponsor: Mapped[str] = mapped_column(String(64), index=True)
    jurisdictions: Mapped[list[str]] = mapped_column(default=list)
    spec: Mapped[dict[str, Any]] = mapped_column()
    # submitted, running, completed, failed, cancelled; ``state`` is the lifecycle's latest step.
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    state: Mapped[str] = mapped_column(String(32), default="submitted")
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    submitted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    flow_run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    gateway_url: Mapped[str | None] = mapped_column(String(256), default=None)
    open_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    report_dir: Mapped[str | None] = mapped_column(Text, default=None)
    report_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    verdicts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class EndpointToken(Base):
    """A developer's token for one trial's endpoint, valid while that trial is open."""

    __tablename__ = "endpoint_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[str] = mapped_column(String(64), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Decision(Base):
    """A regulator's decision on a trial's report: a new signed record, never an edit of the report."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("trial_id", "jurisdiction", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[str] = mapped_column(String(64), index=True)
    jurisdiction: Mapped[str] = mapped_column(String(2))
    seq: Mapped[int] = mapped_column(Integer, default=1)
    decision: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    report_sha256: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text, doc="The canonical JSON that was signed.")
    signature: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """One entry of the append-only, hash-chained audit log."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(256), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
