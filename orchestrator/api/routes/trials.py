"""Trials: submit a spec, list and read trials, start and cancel runs, read final metrics.

``{ref}`` is a trial id (``diabetes-risk-screening-1a2b3c4d``) or a submission number (``7``),
see :mod:`orchestrator.api.trials`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.api import trials
from orchestrator.api.access import deny
from orchestrator.api.deps import CurrentUser, DbSession, RunsDep, SettingsDep
from orchestrator.api.endpoints import endpoint_path
from orchestrator.api.reports import final_metrics
from orchestrator.store import Trial, User, audit

router = APIRouter(prefix="/api/trials", tags=["trials"])

Ref = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        description="Trial id, or the submission number (also before it has a trial id).",
        examples=["diabetes-risk-screening-5a3c9e01", "7"],
    ),
]


class TrialCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    spec: dict[str, Any] = Field(description="The trial spec, as in a SPEC.yaml file, as a JSON object.")


class TrialPublic(BaseModel):
    id: int = Field(description="Submission number; addresses the trial for its whole life.")
    trial_id: str | None = Field(description="Trial id, once a run was started.")
    name: str
    sponsor: str
    jurisdictions: list[str]
    status: str = Field(description="submitted, running, completed, failed or cancelled.")
    state: str = Field(description="The lifecycle's latest step (admitted, deployed, observing ...).")
    submitted_at: dt.datetime
    finished_at: dt.datetime | None
    flow_run_id: str | None
    mlflow_run_id: str | None
    verdicts: dict[str, Any] = Field(description="Jurisdiction -> verdict; a regulator sees its own only.")
    report_sha256: str | None
    endpoint: str | None = Field(description="Path of the developer endpoint under the platform.")
    open: bool = Field(description="Whether the endpoint takes developer traffic now.")
    error: str | None

    @classmethod
    def of(cls, trial: Trial, user: User, **extra: Any) -> Any:
        return cls(
            id=trial.id,
            trial_id=trial.trial_id,
            name=trial.name,
            sponsor=trial.sponsor,
            jurisdictions=list(trial.jurisdictions or []),
            status=trial.status,
            state=trial.state,
            submitted_at=trial.submitted_at,
            finished_at=trial.finished_at,
            flow_run_id=trial.flow_run_id,
            mlflow_run_id=trial.mlflow_run_id,
            verdicts=trials.verdicts_for(user, trial),
            report_sha256=trial.report_sha256,
            endpoint=endpoint_path(trial),
            open=trials.is_open(trial),
            error=trial.error,
            **extra,
        )


class TrialDetail(TrialPublic):
    spec: dict[str, Any] = Field(description="The spec as submitted (and as run).")


class MetricsPublic(BaseModel):
    trial_id: str | None
    final: bool = Field(description="True once the report holds the final values; else empty.")
    values: dict[str, float | None]
    intervals: dict[str, list[float]]
    mlflow_run_id: str | None = Field(description="Where the streamed metrics are, while it runs.")


@router.post("", response_model=TrialDetail, status_code=status.HTTP_201_CREATED)
def submit(body: TrialCreate, user: CurrentUser, db: DbSession) -> TrialDetail:
    trial = trials.submit(db, user, body.spec)
    return TrialDetail.of(trial, user, spec=trial.spec)


@router.get("", response_model=list[TrialPublic])
def list_trials(user: CurrentUser, db: DbSession) -> list[TrialPublic]:
    return [TrialPublic.of(t, user) for t in trials.list_visible(db, user)]


@router.get("/{ref}", response_model=TrialDetail)
def read(ref: Ref, user: CurrentUser, db: DbSession) -> TrialDetail:
    trial = trials.visible_trial(db, user, ref, "trial_read")
    return TrialDetail.of(trial, user, spec=trial.spec)


@router.post("/{ref}/start", response_model=TrialPublic, status_code=status.HTTP_202_ACCEPTED)
def start(ref: Ref, user: CurrentUser, db: DbSession, runs: RunsDep) -> TrialPublic:
    trial = trials.visible_trial(db, user, ref, "trial_start")
    return TrialPublic.of(trials.start(db, user, trial, runs), user)


@router.post("/{ref}/cancel", response_model=TrialPublic, status_code=status.HTTP_202_ACCEPTED)
def cancel(ref: Ref, user: CurrentUser, db: DbSession, runs: RunsDep) -> TrialPublic:
    trial = trials.visible_trial(db, user, ref, "trial_cancel")
    return TrialPublic.of(trials.cancel(db, user, trial, runs), user)


@router.get("/{ref}/metrics", response_model=MetricsPublic)
def metrics(ref: Ref, user: CurrentUser, db: DbSession, settings: SettingsDep) -> MetricsPublic:
    trial = trials.visible_trial(db, user, ref, "metrics_read")
    target = f"trial:{trial.trial_id or trial.id}"
    if user.role not in ("admin", "developer"):
        deny(db, user, "metrics_read", target, "metrics are for administrators and the sponsor's developers")
    found = final_metrics(settings, trial)
    audit.record(db, user.username, "metrics_read", target, final=found is not None)
    return MetricsPublic(
        trial_id=trial.trial_id,
        final=found is not None,
        values=(found or {}).get("values", {}),
        intervals=(found or {}).get("intervals", {}),
        mlflow_run_id=trial.mlflow_run_id,
    )
