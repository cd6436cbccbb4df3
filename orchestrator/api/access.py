"""Who may see and do what: the platform's access rules, in one place.

Administrators see every trial; a developer sees the trials of its sponsor; a regulator sees the
trials that name its jurisdiction. Everything else is refused, and a refusal reads the same as a
trial that does not exist, so nobody learns of another sponsor's trials by probing ids.
"""

from __future__ import annotations

from sqlalchemy import Select, select

from orchestrator.errors import AccessDeniedError
from orchestrator.store import Trial, User


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
    query = select(Trial).order_by(Trial.submitted_at.desc())
    if user.role == "developer":
        query = query.where(Trial.sponsor == user.sponsor)
    return query


def require_role(user: User, *roles: str) -> None:
    if user.role not in roles:
        raise AccessDeniedError(f"this needs the {' or '.join(roles)} role")
