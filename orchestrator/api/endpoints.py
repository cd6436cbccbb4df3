"""A trial's developer endpoint as the platform hands it out: its address and per-trial tokens.

The endpoint lives under the platform's own address, ``/trials/<trial_id>/``, where the gateway
forwards to the trial's sandbox while the trial is open. A token is issued to a developer of the
trial's sponsor, shown once, and stored as its digest; the gateway checks it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from orchestrator import security
from orchestrator.api.access import can_see, deny, hide
from orchestrator.api.trials import is_open
from orchestrator.errors import ConflictError
from orchestrator.store import EndpointToken, Trial, User, audit


def endpoint_path(trial: Trial) -> str | None:
    return f"/trials/{trial.trial_id}/" if trial.trial_id else None


def issue_endpoint_token(db: Session, user: User, trial: Trial) -> str:
    """A fresh token for ``trial``'s endpoint, for a developer of its sponsor while it is open."""
    target = f"trial:{trial.trial_id or trial.id}"
    if not can_see(user, trial):
        hide(db, user, "endpoint_token", target, exists=True)
    if user.role != "developer":
        deny(db, user, "endpoint_token", target, "endpoint tokens are issued to the sponsor's developers")
    if not trial.trial_id or not is_open(trial):
        raise ConflictError(f"{target} is not open for developer traffic (state {trial.state})")
    token, digest = security.new_token("ep")
    db.add(EndpointToken(trial_id=trial.trial_id, digest=digest, user_id=user.id))
    db.flush()
    audit.record(db, user.username, "endpoint_token_issued", target)
    return token
