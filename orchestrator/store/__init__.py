"""The platform store: users and credentials, trials, decisions and the audit log (SQLAlchemy)."""

from orchestrator.store.db import database_url, engine, session_scope, sessions
from orchestrator.store.models import (
    DECISIONS,
    ROLES,
    ApiToken,
    AuditEvent,
    Base,
    Decision,
    EndpointToken,
    Trial,
    User,
    WebSession,
)

__all__ = [
    "DECISIONS",
    "ROLES",
    "ApiToken",
    "AuditEvent",
    "Base",
    "Decision",
    "EndpointToken",
    "Trial",
    "User",
    "WebSession",
    "database_url",
    "engine",
    "session_scope",
    "sessions",
]
