"""The portal's pages: the trials the viewer may see, one trial's summary, and recording a decision."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, Response

from orchestrator.api import decisions
from orchestrator.api.deps import RunsDep, SettingsDep
from orchestrator.api.portal.views import (
    TrialPage,
    outcome_class,
    threshold_text,
    trial_page,
    trials_for,
    visible_trial,
)
from orchestrator.api.portal.web import (
    PortalDb,
    Viewer,
    ViewerDep,
    csrf_ok,
    not_found,
    redirect,
    refused,
    render,
    url,
)
from orchestrator.errors import ConflictError, SpecError
from orchestrator.store import DECISIONS, audit

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def trials(request: Request, db: PortalDb, viewer: ViewerDep) -> Response:
    rows = trials_for(db, viewer)
    return render(request, "trials.html.j2", viewer, title="Trials", nav="trials", trials=rows)


def _can_decide(viewer: Viewer, page: TrialPage) -> bool:
    # A decision refers to one exact, intact report; without one there is nothing to decide on.
    stored = page.stored
    return (
        viewer.role == "regulator"
        and page.chosen == viewer.jurisdiction
        and stored is not None
        and stored.report is not None
        and stored.problem is None
    )


def _show(
    request: Request,
    viewer: Viewer,
    page: TrialPage,
    status_code: int = 200,
    form: dict[str, str] | None = None,
    error: str | None = None,
    recorded: int | None = None,
) -> Response:
    trial = page.trial
    report = page.stored.report if page.stored else None
    spec = trial.spec or {}
    return render(
        request,
        "trial.html.j2",
        viewer,
        status_code=status_code,
        title=f"Trial {trial.name}",
        nav="trial",
        page=page,
        trial=trial,
        report=report,
        intended_use=report.trial.intended_use if report else spec.get("intended_use", "—"),
        risk_class=report.trial.risk_class if report else spec.get("risk_class", "—"),
        can_decide=_can_decide(viewer, page),
        choices=DECISIONS,
        comment_max=decisions.MAX_COMMENT,
        threshold_text=threshold_text,
        outcome_class=outcome_class,
        form=form or {"decision": "", "comment": ""},
        error=error,
        recorded=recorded,
    )


@router.get("/trials/{trial_id}", response_class=HTMLResponse)
def trial(
    request: Request,
    db: PortalDb,
    settings: SettingsDep,
    viewer: ViewerDep,
    trial_id: str,
    j: str = "",
    recorded: int | None = None,
) -> Response:
    found = visible_trial(db, viewer, trial_id)
    if found is None:
        return not_found(request, viewer)
    page = trial_page(db, settings, viewer, found, j.upper())
    audit.record(
        db, viewer.username, "trial_viewed", f"trial:{trial_id}", via="portal", jurisdiction=page.chosen
    )
    return _show(request, viewer, page, recorded=recorded)


def _in_words(decision: str, comment: str, problems: list[str]) -> str:
    """The first of :func:`decisions.decision_problems` as the form says it."""
    problem = problems[0]
    if problem == decisions.DECISION_UNKNOWN:
        return "Choose approve, approve with conditions, or reject."
    if problem == decisions.COMMENT_TOO_LONG:
        return f"The comment is {len(comment)} characters long; at most {decisions.MAX_COMMENT} are kept."
    if problem == decisions.COMMENT_MISSING:
        what = "the conditions" if decision == "approve_with_conditions" else "the reasons for rejection"
        return f"Write {what} in the comment."
    return problem


@router.post("/trials/{trial_id}/decision", response_class=HTMLResponse)
def decide(
    request: Request,
    db: PortalDb,
    settings: SettingsDep,
    runs: RunsDep,
    background: BackgroundTasks,
    viewer: ViewerDep,
    trial_id: str,
    csrf: Annotated[str, Form(max_length=64)] = "",
    decision: Annotated[str, Form(max_length=64)] = "",
    comment: Annotated[str, Form()] = "",
    seq: Annotated[int | None, Form(ge=1, le=1_000_000)] = None,
) -> Response:
    if not csrf_ok(db, viewer, csrf, "decision", f"trial:{trial_id}"):
        return refused(
            request,
            viewer,
            "This decision was not recorded: the form did not come from this portal session. "
            "Open the trial's page again and submit the decision from there.",
        )
    found = visible_trial(db, viewer, trial_id)
    if found is None:
        return not_found(request, viewer)
    page = trial_page(db, settings, viewer, found)
    if not _can_decide(viewer, page):
        return refused(
            request,
            viewer,
            "No decision can be recorded here: decisions are recorded by a regulator of a participating "
            "jurisdiction, on a report whose signature verifies.",
            status_code=409 if viewer.role == "regulator" else 403,
        )
    try:
        row = decisions.record_decision(db, settings, viewer.user, found, decision, comment, expected_seq=seq)
    except SpecError as exc:
        problem = _in_words(decision, comment, exc.problems)
    except ConflictError as exc:
        if seq is not None and "since this form was made" in str(exc):
            problem = (
                "No decision was recorded: another decision for your jurisdiction was recorded after this "
                "form was opened (a form submitted twice, or a second tab). It is shown below; decide "
                "again here if it should be replaced."
            )
        else:  # the report went missing or stopped verifying since the page was built
            problem = f"No decision was recorded: the trial's report cannot be relied on now ({exc})."
    else:
        # After the response (and the commit), as the API does: Prefect never holds the browser.
        background.add_task(decisions.publish_decision_to_prefect, found, row, runs=runs, settings=settings)
        return redirect(url(request, f"/trials/{trial_id}?recorded={row.seq}#decisions"))
    form = {"decision": decision, "comment": comment}
    return _show(request, viewer, page, status_code=422, form=form, error=problem)
