"""Proposals to change a profile: proposed, commented, endorsed, accepted, every step audited.

Rules, one place for the API and the portal alike:

- a regulator proposes a new version of its own jurisdiction's profile or of the shared core,
  with a reason; the version must be newer than the one in force, and the document must load
  (fields, ``extends``, overrides that only tighten);
- the stored trials are re-assessed under the proposal when it is made, and the result is
  attached to it (and each trial's re-assessment recorded as a signed document);
- any regulator comments; a regulator other than the proposer endorses, once;
- a regulator of the profile's jurisdiction (any regulator, for the shared core) accepts it once a
  regulator of another jurisdiction than the proposer's has endorsed it. The accepted document
  becomes the profile in force on this platform; other open proposals on the same version of
  that profile are superseded, since they were written against a version no longer in force.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from orchestrator.errors import AccessDeniedError, ConflictError, NotFoundError, PolicyError, SpecError
from orchestrator.policy import ADOPTED_DIR, load_profile, policies_in_force, shipped_policies_dir
from orchestrator.policy_models import PolicyProfile
from orchestrator.records import utcnow
from orchestrator.settings import Settings
from orchestrator.standard import reassess, trust
from orchestrator.store import (
    AdoptedProfile,
    ProfileProposal,
    ProposalComment,
    ProposalEndorsement,
    Trial,
    User,
    audit,
)

SOURCE = "proposal"
MAX_REASON = 4000
MAX_COMMENT = 4000
MAX_DOCUMENT = 64 * 1024


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("-", 1)[0].split("."))


def _regulator(user: User, what: str) -> str:
    if user.role != "regulator" or not user.jurisdiction:
        raise AccessDeniedError(f"only a regulator may {what}")
    return user.jurisdiction


def may_propose(user: User, profile: PolicyProfile) -> bool:
    return user.role == "regulator" and (profile.kind == "core" or profile.jurisdiction == user.jurisdiction)


def current_document(settings: Settings, profile_id: str) -> str:
    """The text of the profile file in force, for a proposal to start from."""
    profile = load_profile(profile_id, policies_in_force(settings.home))
    return Path(profile.source).read_text(encoding="utf-8")


def create(
    db: Session, settings: Settings, user: User, profile_id: str, document: str, reason: str
) -> ProfileProposal:
    """Record ``user``'s proposal; ``SpecError`` lists each problem by field (profile, document, reason)."""
    jurisdiction = _regulator(user, "propose a profile change")
    in_force = policies_in_force(settings.home)
    try:
        current = load_profile(profile_id, in_force)
    except PolicyError as exc:
        raise SpecError(SOURCE, [f"profile: {exc}"]) from exc
    problems = []
    if not may_propose(user, current):
        problems.append(
            f"profile: a regulator of {jurisdiction} proposes changes to its own profile or the core"
        )
    if not reason.strip():
        problems.append("reason: say why the profile should change")
    elif len(reason) > MAX_REASON:
        problems.append(f"reason: at most {MAX_REASON} characters")
    if len(document.encode()) > MAX_DOCUMENT:
        problems.append(f"document: at most {MAX_DOCUMENT} bytes")
    if problems:
        raise SpecError(SOURCE, problems)
    text = document.replace("\r\n", "\n").encode("utf-8")
    try:
        doc = reassess.read_document(text, "document")
        if doc.id != current.id:
            raise PolicyError(f"document: id is {doc.id!r}; a proposal for {current.id!r} keeps its id")
        if _version(doc.version) <= _version(current.version):
            raise PolicyError(
                f"document: version {doc.version} must be newer than {current.version} in force"
            )
        reports, _ = trust.stored_reports(settings)
        result = reassess.reassess(reports, text, "document", in_force)
    except PolicyError as exc:
        raise SpecError(SOURCE, [str(exc)]) from exc
    row = ProfileProposal(
        profile_id=current.id,
        jurisdiction=current.jurisdiction,
        base_version=current.version,
        version=doc.version,
        base_document=Path(current.source).read_text(encoding="utf-8"),
        document=text.decode("utf-8"),
        digest=result.proposed_digest,
        reason=reason.strip(),
        proposed_by=user.id,
        reassessment=result.model_dump(mode="json"),
    )
    db.add(row)
    db.flush()
    target = f"proposal:{row.id}"
    audit.record(
        db,
        user.username,
        "proposal_created",
        target,
        profile=current.id,
        version=doc.version,
        base=current.version,
    )
    for one in result.trials:
        path = reassess.record(settings, one, result, user.username)
        audit.record(
            db,
            user.username,
            "reassessment_recorded",
            f"trial:{one.trial_id}",
            proposal=row.id,
            report_sha256=one.report_sha256,
            path=str(path),
        )
    return row


def visible_reassessment(db: Session, user: User, proposal: ProfileProposal) -> dict[str, Any]:
    """The proposal's attached re-assessment as ``user`` may read it (see :func:`readable`)."""
    return readable(db, user, dict(proposal.reassessment or {}), proposal.jurisdiction)


def preview(db: Session, settings: Settings, user: User, profile_id: str, document: str) -> dict[str, Any]:
    """The stored trials re-assessed under a draft, as ``user`` may read them; nothing is recorded."""
    _regulator(user, "preview a profile change")
    in_force = policies_in_force(settings.home)
    try:
        current = load_profile(profile_id, in_force)
        reports, _ = trust.stored_reports(settings)
        result = reassess.reassess(reports, document.replace("\r\n", "\n").encode(), "document", in_force)
    except PolicyError as exc:
        raise SpecError(SOURCE, [str(exc)]) from exc
    return readable(db, user, result.model_dump(mode="json"), current.jurisdiction)


def readable(db: Session, user: User, data: dict[str, Any], jurisdiction: str) -> dict[str, Any]:
    """A re-assessment (of a proposal on ``jurisdiction``'s profile) as ``user`` may read it.

    The platform's access rules hold here too: a regulator reads the trials it may see (those that
    name its jurisdiction, and reports imported from trusted sandboxes for reuse) and, in them, its
    own jurisdiction's verdicts and those of the profile under negotiation. What it may not read
    is counted, never named, so the size of the effect is known without disclosing other sponsors'
    trials. Administrators read everything.
    """
    trials = list(data.get("trials", []))
    if user.role == "admin":
        return {**data, "trials": trials, "others": None}
    mine = user.jurisdiction if user.role == "regulator" else None
    keep = {mine, jurisdiction} if jurisdiction != "ASEAN" else {mine}
    named = {
        t.trial_id: set(t.jurisdictions or [])
        for t in db.scalars(select(Trial).where(Trial.trial_id.in_([x["trial_id"] for x in trials])))
    }
    shown, hidden_trials, hidden_changes, hidden_flips = [], 0, 0, 0
    for trial in trials:
        visible = trial.get("issuer") != trust.LOCAL or (
            mine is not None and mine in named.get(trial["trial_id"], set())
        )
        rows = [j for j in trial["jurisdictions"] if visible and j["jurisdiction"] in keep]
        rest = [j for j in trial["jurisdictions"] if j not in rows]
        if rows:
            shown.append({**trial, "jurisdictions": rows})
        if rest:
            hidden_trials += 0 if rows else 1
            hidden_changes += sum(1 for j in rest if j["current"] != j["proposed"])
            hidden_flips += sum(len(j["flips"]) for j in rest)
    others = {"trials": hidden_trials, "verdict_changes": hidden_changes, "flips": hidden_flips}
    return {**data, "trials": shown, "others": others}


def get(db: Session, proposal_id: int) -> ProfileProposal:
    row = db.get(ProfileProposal, proposal_id)
    if row is None:
        raise NotFoundError(f"proposal {proposal_id}: no such proposal")
    return row


def comment(db: Session, user: User, proposal: ProfileProposal, body: str) -> ProposalComment:
    _regulator(user, "comment on a proposal")
    text = body.strip()
    if not text:
        raise SpecError(SOURCE, ["comment: write something"])
    if len(text) > MAX_COMMENT:
        raise SpecError(SOURCE, [f"comment: at most {MAX_COMMENT} characters"])
    row = ProposalComment(proposal_id=proposal.id, user_id=user.id, body=text)
    db.add(row)
    db.flush()
    audit.record(db, user.username, "proposal_commented", f"proposal:{proposal.id}", comment=row.id)
    return row


def endorse(db: Session, user: User, proposal: ProfileProposal) -> ProposalEndorsement:
    jurisdiction = _regulator(user, "endorse a proposal")
    if proposal.status != "open":
        raise ConflictError(f"proposal {proposal.id} is {proposal.status}; only open proposals are endorsed")
    if proposal.proposed_by == user.id:
        raise ConflictError(f"proposal {proposal.id}: the proposer does not endorse their own proposal")
    done = db.scalars(
        select(ProposalEndorsement).where(
            ProposalEndorsement.proposal_id == proposal.id, ProposalEndorsement.user_id == user.id
        )
    ).first()
    if done is not None:
        raise ConflictError(f"proposal {proposal.id}: already endorsed by {user.username}")
    row = ProposalEndorsement(proposal_id=proposal.id, user_id=user.id, jurisdiction=jurisdiction)
    db.add(row)
    db.flush()
    audit.record(db, user.username, "proposal_endorsed", f"proposal:{proposal.id}", jurisdiction=jurisdiction)
    return row


def endorsements(db: Session, proposal: ProfileProposal) -> list[ProposalEndorsement]:
    return list(
        db.scalars(
            select(ProposalEndorsement)
            .where(ProposalEndorsement.proposal_id == proposal.id)
            .order_by(ProposalEndorsement.at)
        )
    )


def acceptance_problem(db: Session, user: User, proposal: ProfileProposal) -> str | None:
    """Why ``user`` cannot accept the proposal now, or None when they can."""
    if user.role != "regulator" or not user.jurisdiction:
        return "only a regulator accepts a proposal"
    if proposal.status != "open":
        return f"the proposal is {proposal.status}"
    if proposal.jurisdiction != "ASEAN" and proposal.jurisdiction != user.jurisdiction:
        return f"a regulator of {proposal.jurisdiction} accepts changes to its profile"
    proposer = db.get(User, proposal.proposed_by)
    others = [
        e for e in endorsements(db, proposal) if proposer is None or e.jurisdiction != proposer.jurisdiction
    ]
    if not others:
        return "it needs an endorsement from a regulator of another jurisdiction first"
    return None


def _adopt(settings: Settings, proposal: ProfileProposal) -> Path:
    folder = settings.home / ADOPTED_DIR
    if not (folder / "asean-core.yaml").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        for path in shipped_policies_dir().glob("*.yaml"):
            shutil.copyfile(path, folder / path.name)
    target = folder / f"{proposal.profile_id}.yaml"
    staged = folder / f".{proposal.profile_id}.yaml.new"
    staged.write_text(proposal.document, encoding="utf-8")
    staged.replace(target)
    return target


def accept(db: Session, settings: Settings, user: User, proposal: ProfileProposal) -> AdoptedProfile:
    """Put the proposed document in force; ``ConflictError`` when the rules do not allow it yet."""
    # Two acceptances at once take turns: a no-op UPDATE holds the row (PostgreSQL) or the write
    # lock (SQLite) until the transaction ends, and the state is read again after it.
    db.execute(
        update(ProfileProposal)
        .where(ProfileProposal.profile_id == proposal.profile_id)
        .values(status=ProfileProposal.status),
        execution_options={"synchronize_session": False},
    )
    db.refresh(proposal)
    problem = acceptance_problem(db, user, proposal)
    if problem:
        raise ConflictError(f"proposal {proposal.id} not accepted: {problem}")
    in_force = load_profile(proposal.profile_id, policies_in_force(settings.home))
    if in_force.version != proposal.base_version:
        raise ConflictError(
            f"proposal {proposal.id} was written against {proposal.base_version}; "
            f"{in_force.version} is in force now"
        )
    path = _adopt(settings, proposal)
    adopted = load_profile(proposal.profile_id, path.parent)
    now = utcnow()
    proposal.status, proposal.accepted_by, proposal.accepted_at = "accepted", user.id, now
    row = AdoptedProfile(
        profile_id=proposal.profile_id,
        version=proposal.version,
        document=proposal.document,
        digest=hashlib.sha256(proposal.document.encode()).hexdigest(),
        proposal_id=proposal.id,
        at=now,
    )
    db.add(row)
    others = db.scalars(
        select(ProfileProposal).where(
            ProfileProposal.profile_id == proposal.profile_id,
            ProfileProposal.status == "open",
            ProfileProposal.id != proposal.id,
        )
    )
    for other in others:
        other.status = "superseded"
        audit.record(
            db, user.username, "proposal_superseded", f"proposal:{other.id}", by_proposal=proposal.id
        )
    db.flush()
    audit.record(
        db,
        user.username,
        "proposal_accepted",
        f"proposal:{proposal.id}",
        profile=proposal.profile_id,
        version=proposal.version,
        digest=adopted.digest,
    )
    return row
