"""The platform store: users and credentials, trials, decisions, proposals and the audit log (SQLAlchemy)."""

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
from orchestrator.store.proposals import (
    PROPOSAL_STATES,
    AdoptedProfile,
    ProfileProposal,
    ProposalComment,
    ProposalEndorsement,
)

__all__ = [
    "DECISIONS",
    "PROPOSAL_STATES",
    "ROLES",
    "AdoptedProfile",
    "ApiToken",
    "AuditEvent",
    "Base",
    "Decision",
    "EndpointToken",
    "ProfileProposal",
    "ProposalComment",
    "ProposalEndorsement",
    "Trial",
    "User",
    "WebSession",
    "database_url",
    "engine",
    "session_scope",
    "sessions",
]
