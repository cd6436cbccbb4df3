"""The portal's pages of the shared standard: profiles compared, proposals made, discussed, endorsed
and accepted. Regulators take part; administrators read along; developers have no part in it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from orchestrator.api.deps import SettingsDep
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
from orchestrator.errors import ConflictError, PolicyError, SpecError
from orchestrator.policy import list_profiles, load_profile, policies_in_force
from orchestrator.settings import Settings
from orchestrator.standard import proposals
from orchestrator.standard.compare import compare_profiles
from orchestrator.store import ProfileProposal, ProposalComment, User, audit

router = APIRouter()
FORM_REFUSED = (
    "Nothing was recorded: the form did not come from this portal session. "
    "Open the page again and submit it from there."
)


def _takes_part(viewer: Viewer) -> bool:
    return viewer.role in ("regulator", "admin")


def _names(db: PortalDb, ids: set[int]) -> dict[int, str]:
    users: list[User] = list(db.scalars(select(User).where(User.id.in_(ids)))) if ids else []
    return {u.id: f"{u.username} ({u.jurisdiction})" if u.jurisdiction else u.username for u in users}


@router.get("/standard", response_class=HTMLResponse)
def standard(request: Request, db: PortalDb, settings: SettingsDep, viewer: ViewerDep) -> Response:
    if not _takes_part(viewer):
        return not_found(request, viewer)
    profiles = list_profiles(policies_in_force(settings.home))
    rows = list(db.scalars(select(ProfileProposal).order_by(ProfileProposal.id.desc())))
    names = _names(db, {r.proposed_by for r in rows})
    proposable = [p for p in profiles if proposals.may_propose(viewer.user, p)]
    return render(
        request,
        "standard.html.j2",
        viewer,
        title="The shared standard",
        nav="standard",
        profiles=profiles,
        proposals=rows,
        names=names,
        proposable=proposable,
    )


@router.get("/standard/compare", response_class=HTMLResponse)
def compare(
    request: Request,
    settings: SettingsDep,
    viewer: ViewerDep,
    p: Annotated[list[str], Query(max_length=16)] = [],  # noqa: B006 - FastAPI reads the default, never mutates it
) -> Response:
    if not _takes_part(viewer):
        return not_found(request, viewer)
    folder = policies_in_force(settings.home)
    everything = list_profiles(folder)
    chosen = p or [x.jurisdiction for x in everything if x.kind == "jurisdiction"]
    error, result = None, None
    try:
        result = compare_profiles([load_profile(code, folder) for code in chosen], chosen)
    except PolicyError as exc:
        error = str(exc)
    return render(
        request,
        "compare.html.j2",
        viewer,
        status_code=422 if error else 200,
        title="Profiles compared",
        nav="standard",
        profiles=everything,
        chosen=chosen,
        result=result,
        error=error,
    )


def _new_form(
    request: Request,
    settings: Settings,
    viewer: Viewer,
    profile: str,
    document: str | None = None,
    reason: str = "",
    error: str | None = None,
    previewed: dict[str, Any] | None = None,
) -> Response:
    folder = policies_in_force(settings.home)
    proposable = [x for x in list_profiles(folder) if proposals.may_propose(viewer.user, x)]
    if not proposable:
        return refused(request, viewer, "Only a regulator proposes changes to a profile.")
    chosen = next((x for x in proposable if x.id == profile), proposable[0])
    text = document if document is not None else proposals.current_document(settings, chosen.id)
    return render(
        request,
        "proposal_new.html.j2",
        viewer,
        status_code=422 if error else 200,
        title="Propose a profile change",
        nav="standard",
        proposable=proposable,
        chosen=chosen,
        document=text,
        reason=reason,
        error=error,
        previewed=previewed,
    )


@router.get("/proposals/new", response_class=HTMLResponse)
def new_proposal(request: Request, settings: SettingsDep, viewer: ViewerDep, profile: str = "") -> Response:
    return _new_form(request, settings, viewer, profile)


@router.post("/proposals", response_class=HTMLResponse)
def create_proposal(
    request: Request,
    db: PortalDb,
    settings: SettingsDep,
    viewer: ViewerDep,
    csrf: Annotated[str, Form(max_length=64)] = "",
    profile: Annotated[str, Form(max_length=64)] = "",
    document: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    action: Annotated[str, Form(max_length=16)] = "propose",
) -> Response:
    if not csrf_ok(db, viewer, csrf, "proposal", f"profile:{profile}"):
        return refused(request, viewer, FORM_REFUSED)
    if action == "preview":
        try:
            found = proposals.preview(db, settings, viewer.user, profile, document)
        except SpecError as exc:
            return _new_form(
                request, settings, viewer, profile, document, reason, error="; ".join(exc.problems)
            )
        except PermissionError as exc:
            return refused(request, viewer, str(exc))
        return _new_form(request, settings, viewer, profile, document, reason, previewed=found)
    try:
        row = proposals.create(db, settings, viewer.user, profile, document, reason)
    except SpecError as exc:
        return _new_form(request, settings, viewer, profile, document, reason, error="; ".join(exc.problems))
    except PermissionError as exc:
        return refused(request, viewer, str(exc))
    return redirect(url(request, f"/proposals/{row.id}?done=proposed"))


def _show(
    request: Request,
    db: PortalDb,
    settings: Settings,
    viewer: Viewer,
    row: ProfileProposal,
    done: str = "",
    error: str | None = None,
    comment: str = "",
) -> Response:
    comments = list(
        db.scalars(
            select(ProposalComment).where(ProposalComment.proposal_id == row.id).order_by(ProposalComment.id)
        )
    )
    endorsed = proposals.endorsements(db, row)
    names = _names(
        db,
        {row.proposed_by, *(c.user_id for c in comments), *(e.user_id for e in endorsed)}
        | ({row.accepted_by} if row.accepted_by else set()),
    )
    try:
        base = load_profile(row.profile_id, policies_in_force(settings.home))
    except PolicyError:
        base = None
    changes = _changes(row, settings)
    return render(
        request,
        "proposal.html.j2",
        viewer,
        status_code=422 if error else 200,
        title=f"Proposal {row.id}: {row.profile_id} {row.version}",
        nav="standard",
        proposal=row,
        comments=comments,
        endorsed=endorsed,
        names=names,
        base=base,
        changes=changes,
        reassessment=proposals.visible_reassessment(db, viewer.user, row),
        can_endorse=viewer.role == "regulator"
        and row.status == "open"
        and row.proposed_by != viewer.user.id
        and all(e.user_id != viewer.user.id for e in endorsed),
        accept_problem=proposals.acceptance_problem(db, viewer.user, row),
        done=done,
        error=error,
        comment=comment,
    )


def _changes(row: ProfileProposal, settings: Settings) -> list[tuple[str, str, str]]:
    """(criterion id, as it was, as proposed) for every criterion the proposal changes.

    Both documents are laid over the profiles in force, so the comparison reads the same before
    and after the proposal is accepted.
    """
    from orchestrator.standard.reassess import overlay

    sides = []
    try:
        for text in (row.base_document, row.document):
            with overlay(text.encode(), "document", policies_in_force(settings.home)) as folder:
                sides.append({c.id: c for c in load_profile(row.profile_id, folder).criteria})
    except PolicyError:
        return []
    before, after = sides
    found = []
    for cid in [*before, *(k for k in after if k not in before)]:
        a, b = before.get(cid), after.get(cid)
        was = f"{a.describe()} {a.severity}" if a else "-"
        now = f"{b.describe()} {b.severity}" if b else "-"
        if was != now:
            found.append((cid, was, now))
    return found


@router.get("/proposals/{proposal_id}", response_class=HTMLResponse)
def proposal(
    request: Request, db: PortalDb, settings: SettingsDep, viewer: ViewerDep, proposal_id: int, done: str = ""
) -> Response:
    row = db.get(ProfileProposal, proposal_id)
    if row is None or not _takes_part(viewer):
        return not_found(request, viewer)
    audit.record(db, viewer.username, "proposal_viewed", f"proposal:{row.id}", via="portal")
    return _show(request, db, settings, viewer, row, done=done)


@router.post("/proposals/{proposal_id}/{action}", response_class=HTMLResponse)
def act(
    request: Request,
    db: PortalDb,
    settings: SettingsDep,
    viewer: ViewerDep,
    proposal_id: int,
    action: str,
    csrf: Annotated[str, Form(max_length=64)] = "",
    body: Annotated[str, Form()] = "",
) -> Response:
    row = db.get(ProfileProposal, proposal_id)
    if row is None or not _takes_part(viewer) or action not in ("comment", "endorse", "accept"):
        return not_found(request, viewer)
    if not csrf_ok(db, viewer, csrf, action, f"proposal:{proposal_id}"):
        return refused(request, viewer, FORM_REFUSED)
    try:
        if action == "comment":
            proposals.comment(db, viewer.user, row, body)
        elif action == "endorse":
            proposals.endorse(db, viewer.user, row)
        else:
            proposals.accept(db, settings, viewer.user, row)
    except SpecError as exc:
        return _show(request, db, settings, viewer, row, error="; ".join(exc.problems), comment=body)
    except (ConflictError, PermissionError) as exc:
        return _show(request, db, settings, viewer, row, error=str(exc), comment=body)
    anchor = {"comment": "#discussion-h", "endorse": "#endorsements-h", "accept": ""}[action]
    return redirect(url(request, f"/proposals/{row.id}?done={action}{anchor}"))
