"""Signing in: passwords, personal API tokens, browser sessions, and the bootstrap administrator.

Every sign-in (and every failed one) and every token issued is an audit event. Tokens and session
secrets are shown once and stored as digests (:mod:`orchestrator.security`).
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator import security
from orchestrator.errors import AuthenticationError, ConflictError
from orchestrator.records import utcnow
from orchestrator.store import ROLES, ApiToken, User, WebSession, audit
from orchestrator.store.db import as_utc

SESSION_HOURS = 12
BOOTSTRAP_ADMIN = "admin"


def authenticate(db: Session, username: str, password: str, via: str) -> User:
    user = db.scalars(select(User).where(User.username == username)).first()
    # Hash even for an unknown name, so timing does not tell which names exist.
    hashed = user.password_hash if user else security.hash_password("not a user")
    if user is None or not user.active or not security.check_password(hashed, password):
        audit.record_apart(db, username[:128], "sign_in_failed", via=via)
        raise AuthenticationError("wrong username or password")
    audit.record(db, user.username, "sign_in", via=via)
    return user


def issue_api_token(db: Session, user: User, label: str = "") -> str:
    token, digest = security.new_token("api")
    db.add(ApiToken(user_id=user.id, digest=digest, label=label[:128]))
    audit.record(db, user.username, "api_token_issued", f"user:{user.username}", label=label[:128])
    return token


def user_for_token(db: Session, token: str) -> User:
    found = db.scalars(select(ApiToken).where(ApiToken.digest == security.digest(token))).first()
    user = db.get(User, found.user_id) if found and not found.revoked else None
    if user is None or not user.active:
        raise AuthenticationError("unknown or revoked token")
    return user


def start_session(db: Session, user: User) -> str:
    secret, digest = security.new_token("ses")
    expires = utcnow() + dt.timedelta(hours=SESSION_HOURS)
    db.add(WebSession(user_id=user.id, digest=digest, csrf=secrets.token_urlsafe(24), expires_at=expires))
    return secret


def session_for(db: Session, secret: str) -> tuple[User, WebSession]:
    found = db.scalars(select(WebSession).where(WebSession.digest == security.digest(secret))).first()
    if found is None or as_utc(found.expires_at) < utcnow():
        raise AuthenticationError("not signed in, or the session expired")
    user = db.get(User, found.user_id)
    if user is None or not user.active:
        raise AuthenticationError("not signed in")
    return user, found


def end_session(db: Session, secret: str) -> None:
    found = db.scalars(select(WebSession).where(WebSession.digest == security.digest(secret))).first()
    if found is not None:
        db.delete(found)


def create_user(
    db: Session,
    actor: str,
    username: str,
    password: str,
    role: str,
    sponsor: str | None = None,
    jurisdiction: str | None = None,
) -> User:
    if role not in ROLES:
        raise ConflictError(f"role must be one of {', '.join(ROLES)}")
    if role == "developer" and not sponsor:
        raise ConflictError("a developer acts for a sponsor: give its slug")
    if role == "regulator" and not jurisdiction:
        raise ConflictError("a regulator acts for a jurisdiction: give its code")
    if db.scalars(select(User).where(User.username == username)).first() is not None:
        raise ConflictError(f"user {username!r} exists already")
    user = User(
        username=username,
        password_hash=security.hash_password(password),
        role=role,
        sponsor=sponsor if role == "developer" else None,
        jurisdiction=jurisdiction if role == "regulator" else None,
    )
    db.add(user)
    db.flush()
    audit.record(
        db, actor, "user_created", f"user:{username}", role=role, sponsor=sponsor, jurisdiction=jurisdiction
    )
    return user


def ensure_bootstrap_admin(db: Session) -> str | None:
    """Create the first administrator when there is none; return its password (shown once) or None."""
    if db.scalars(select(User).where(User.role == "admin")).first() is not None:
        return None
    password = security.new_password()
    create_user(db, "regsandbox up", BOOTSTRAP_ADMIN, password, "admin")
    return password
