"""Regulators' decisions on a trial's report: record one, list them, verify one's signature."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.api import decisions, trials
from orchestrator.api.access import can_see, hide
from orchestrator.api.deps import CurrentUser, DbSession, SettingsDep
from orchestrator.api.routes.trials import Ref
from orchestrator.store import Decision, Trial, User

router = APIRouter(prefix="/api", tags=["decisions"])


class DecisionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "approve_with_conditions", "reject"]
    comment: str = Field(default="", max_length=decisions.MAX_COMMENT, description="Conditions or reasons.")
    expected_seq: int | None = Field(
        default=None,
        ge=1,
        description="The number this decision should take; refused (409) when another came first, "
        "so a retried or replayed request never records twice.",
    )


class DecisionPublic(BaseModel):
    id: int
    trial_id: str
    jurisdiction: str
    seq: int = Field(description="1 for the jurisdiction's first decision on the trial, then 2, 3 ...")
    decision: str
    comment: str
    regulator: str | None
    report_sha256: str = Field(description="sha256 of the report.json the decision refers to.")
    at: dt.datetime
    payload: str = Field(description="The canonical JSON that was signed.")
    signature: str = Field(description="Base64 Ed25519 signature of the payload by the issuer key.")
    key_fingerprint: str

    @classmethod
    def of(cls, db: Session, row: Decision, fingerprint: str) -> DecisionPublic:
        regulator = db.get(User, row.user_id)
        return cls(
            id=row.id,
            trial_id=row.trial_id,
            jurisdiction=row.jurisdiction,
            seq=row.seq,
            decision=row.decision,
            comment=row.comment,
            regulator=regulator.username if regulator else None,
            report_sha256=row.report_sha256,
            at=row.at,
            payload=row.payload,
            signature=row.signature,
            key_fingerprint=fingerprint,
        )


class DecisionCheck(BaseModel):
    decision_id: int
    intact: bool
    problem: str | None
    key_fingerprint: str


def _visible_to(user: User, row: Decision) -> bool:
    # Like verdicts: a regulator sees its own jurisdiction's decisions, not the others'.
    return user.role != "regulator" or row.jurisdiction == user.jurisdiction


@router.post("/trials/{ref}/decisions", response_model=DecisionPublic, status_code=status.HTTP_201_CREATED)
def record(
    ref: Ref,
    body: DecisionCreate,
    user: CurrentUser,
    db: DbSession,
    settings: SettingsDep,
    request: Request,
    background: BackgroundTasks,
) -> DecisionPublic:
    trial = trials.visible_trial(db, user, ref, "decision")
    row = decisions.record_decision(
        db, settings, user, trial, body.decision, body.comment, expected_seq=body.expected_seq
    )
    # After the response (and the commit): Prefect being slow or away never holds the request.
    background.add_task(
        decisions.publish_decision_to_prefect, trial, row, runs=request.app.state.runs, settings=settings
    )
    return DecisionPublic.of(db, row, decisions.key_fingerprint(settings))


@router.get("/trials/{ref}/decisions", response_model=list[DecisionPublic])
def list_decisions(ref: Ref, user: CurrentUser, db: DbSession, settings: SettingsDep) -> list[DecisionPublic]:
    trial = trials.visible_trial(db, user, ref, "decision_list")
    if not trial.trial_id:
        return []
    rows = db.scalars(
        select(Decision)
        .where(Decision.trial_id == trial.trial_id)
        .order_by(Decision.jurisdiction, Decision.seq)
    )
    fingerprint = decisions.key_fingerprint(settings)
    return [DecisionPublic.of(db, r, fingerprint) for r in rows if _visible_to(user, r)]


@router.get("/decisions/{decision_id}/verify", response_model=DecisionCheck)
def verify(
    decision_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    user: CurrentUser,
    db: DbSession,
    settings: SettingsDep,
) -> DecisionCheck:
    row = db.get(Decision, decision_id)
    trial = db.scalars(select(Trial).where(Trial.trial_id == row.trial_id)).first() if row else None
    if row is None or trial is None or not can_see(user, trial) or not _visible_to(user, row):
        hide(db, user, "decision_verify", f"decision:{decision_id}", exists=row is not None)
    problem = decisions.verification_problem(db, settings, row)
    return DecisionCheck(
        decision_id=row.id,
        intact=problem is None,
        problem=problem,
        key_fingerprint=decisions.key_fingerprint(settings),
    )
