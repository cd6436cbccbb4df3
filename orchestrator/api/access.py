"""Who may see and do what: the platform's access rules, in one place.

Administrators see every trial; a developer sees the trials of its sponsor; a regulator sees the
trials that name its jurisdiction. Everything else is refused, and a refusal reads the same as a
trial that does not exist, so nobody learns of another sponsor's trials by probing ids. Each
refusal is an audit event, written apart from the request's transaction, which is rolled back.
"""

from __future__ import annotations

from typing import NoReturn

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from orchestrator.errors import AccessDeniedError, NotFoundError
from orchestrator.store import Trial, User, audit


def can_see(user: User, trial: Trial) -> bool:
    if user.role == "admin":
        return True
    if user.role == "developer":
        return trial.sponsor == user.sponsor
    if user.role == "regulator":
        return user.jurisdiction in (trial.jurisdictions or [])
    return False


def visible_trials(user: User) -> Select[Trial]:
    """The trials ``user`` may list, newest first (JSON membership is checked in Python for SQLite)."""
    query = select(Trial).order_by(Trial.submitted_at.desc(), Trial.id.desc())
    if user.role == "developer":
        query = query.where(Trial.sponsor == user.sponsor)
    return query


def require_role(user: User, *roles: str) -> None:
    if user.role not in roles:
        raise AccessDeniedError(f"this needs the {' or '.join(roles)} role")


def require(db: Session, user: User, action: str, target: str, *roles: str) -> None:
    """``require_role``, with the refusal recorded in the audit log."""
    if user.role not in roles:
        deny(db, user, action, target, f"this needs the {' or '.join(roles)} role")


def deny(db: Session, user: User, action: str, target: str, reason: str) -> NoReturn:
    audit.record_apart(db, user.username, "access_denied", target, attempted=action, reason=reason)
    raise AccessDeniedError(reason)


def hide(db: Session, user: User, action: str, target: str, exists: bool) -> NoReturn:
    """Answer as if ``target`` did not exist; a probe of something that does exist is recorded."""
    if exists:
        audit.record_apart(db, user.username, "access_denied", target, attempted=action, reason="not visible")
    raise NotFoundError(f"no {target.split(':')[0]} {target.split(':', 1)[-1]!r}")
