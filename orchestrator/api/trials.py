"""Trials as the API and the portal handle them: find, list, submit, start, cancel.

A trial is addressed by a reference: its ``trial_id`` (``name-1a2b3c4d``, known once a flow run
exists) or its submission number (the row's ``id``, all digits, valid for the trial's whole life).
A trial id always contains a dash, so the two never collide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from orchestrator.api.access import can_see, deny, hide, require, visible_trials
from orchestrator.api.runs import Runs
from orchestrator.data.contract_suites import is_contract_file, load_contract
from orchestrator.errors import ConflictError, DataError, SpecError
from orchestrator.records import utcnow
from orchestrator.spec import ApprovedData, TrialSpec, parse_spec
from orchestrator.store import Trial, User, audit
from orchestrator.store.db import as_utc
from orchestrator.store.trials import TERMINAL, find
from orchestrator.trial import trial_id_for

OPEN_STATES = ("deployed", "observing")
SOURCE = "spec"
MAX_REF = 64


def find_trial(db: Session, ref: str) -> Trial | None:
    if ref.isdigit() and len(ref) < 10:
        return db.get(Trial, int(ref))
    return find(db, ref) if len(ref) <= MAX_REF else None


def visible_trial(db: Session, user: User, ref: str, action: str) -> Trial:
    """The trial ``ref`` names, if ``user`` may see it; otherwise the same 404 as for no trial."""
    trial = find_trial(db, ref)
    if trial is None or not can_see(user, trial):
        hide(db, user, action, f"trial:{ref[:MAX_REF]}", exists=trial is not None)
    return trial


def list_visible(db: Session, user: User) -> list[Trial]:
    trials = list(db.scalars(visible_trials(user)))
    return [t for t in trials if can_see(user, t)]


def verdicts_for(user: User, trial: Trial) -> dict[str, Any]:
    """A regulator sees its own jurisdiction's verdict only; the others see every verdict."""
    verdicts = dict(trial.verdicts or {})
    if user.role == "regulator":
        return {k: v for k, v in verdicts.items() if k == user.jurisdiction}
    return verdicts


def is_open(trial: Trial) -> bool:
    """Whether the trial's endpoint takes developer traffic now.

    The lifecycle's state decides, not ``status``: a run started from the Prefect UI publishes
    its states to a row the API never marked running.
    """
    if trial.status in TERMINAL or trial.state not in OPEN_STATES:
        return False
    return trial.open_until is None or as_utc(trial.open_until) > utcnow()


def _host_paths(spec: TrialSpec) -> list[str]:
    # A spec sent over the API has no file to be relative to, so host paths must be absolute.
    problems = []
    named: list[tuple[str, Path | str | None]] = [
        ("data.approved.path", spec.data.approved.path if spec.data.approved else None),
        (
            "data.reference.path",
            spec.data.reference.path if isinstance(spec.data.reference, ApprovedData) else None,
        ),
    ]
    uri = spec.model.uri
    if uri is not None and "://" not in uri and not uri.startswith(("models:", "runs:")):
        named.append(("model.uri", uri))
    if is_contract_file(spec.data.contract):
        named.append(("data.expectations", spec.data.contract))
    for field, path in named:
        if path is not None and not Path(path).is_absolute():
            problems.append(f"{field}: give an absolute path on the platform host (got {path})")
    return problems


def check_spec(data: Any) -> TrialSpec:
    """What ``regsandbox trial validate`` checks, for a spec sent as JSON; SpecError lists problems."""
    from orchestrator.preflight import preflight

    spec = parse_spec(data, SOURCE)
    problems = _host_paths(spec)
    if not problems:
        try:
            load_contract(spec.data.contract)
        except DataError as exc:
            problems.append(f"data.expectations: {exc}")
    if problems:
        raise SpecError(SOURCE, problems)
    preflight(spec, SOURCE)
    return spec


def submit(db: Session, user: User, data: Any) -> Trial:
    """Record a developer's (or an administrator's) trial spec as a submission."""
    require(db, user, "trial_submit", "trials", "developer", "admin")
    spec = check_spec(data)
    if user.role == "developer" and spec.sponsor != user.sponsor:
        deny(db, user, "trial_submit", f"sponsor:{spec.sponsor}", f"you submit for {user.sponsor} only")
    trial = Trial(
        name=spec.name,
        sponsor=spec.sponsor,
        jurisdictions=list(spec.jurisdictions),
        spec=spec.model_dump(mode="json"),
        submitted_by=user.id,
    )
    db.add(trial)
    db.flush()
    audit.record(db, user.username, "trial_submitted", f"submission:{trial.id}", name=spec.name)
    return trial


def start(db: Session, user: User, trial: Trial, runs: Runs) -> Trial:
    """Start the submission's flow run; the trial id derives from the run's id."""
    require(db, user, "trial_start", f"submission:{trial.id}", "admin")
    if trial.status != "submitted" or trial.flow_run_id:
        raise ConflictError(f"submission {trial.id} is {trial.status}; only a new submission can start")
    flow_run_id = runs.start(trial.spec)
    trial_id = trial_id_for(trial.name, flow_run_id)
    early = find(db, trial_id)
    if early is not None and early.id != trial.id:
        # The run published its first transition before this transaction: keep this row (it knows
        # who submitted) and take over what the run wrote.
        for field in ("state", "status", "gateway_url", "open_until", "mlflow_run_id", "verdicts"):
            setattr(trial, field, getattr(early, field))
        db.delete(early)
        db.flush()
    trial.flow_run_id, trial.trial_id = flow_run_id, trial_id
    if trial.status == "submitted":
        trial.status = "running"
    audit.record(db, user.username, "trial_started", f"trial:{trial_id}", flow_run_id=flow_run_id)
    return trial


def cancel(db: Session, user: User, trial: Trial, runs: Runs) -> Trial:
    """Cancel a submission outright, or ask a running trial's flow run to stop."""
    target = f"trial:{trial.trial_id}" if trial.trial_id else f"submission:{trial.id}"
    require(db, user, "trial_cancel", target, "admin")
    if trial.status in TERMINAL:
        raise ConflictError(f"{target} is {trial.status} already")
    if trial.flow_run_id:
        outcome = runs.cancel(trial.flow_run_id)
        audit.record(db, user.username, "trial_cancel_requested", target, flow_run_id=trial.flow_run_id)
        if outcome == "cancelled":  # it never started, so no run will publish its end
            trial.status, trial.finished_at = "cancelled", utcnow()
        return trial
    if trial.status != "submitted":
        raise ConflictError(
            f"{target} runs under a flow run this platform does not know; cancel it in Prefect"
        )
    trial.status, trial.finished_at = "cancelled", utcnow()
    audit.record(db, user.username, "trial_cancelled", target)
    return trial
