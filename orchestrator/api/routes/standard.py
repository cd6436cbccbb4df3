"""The shared standard over the API: profiles compared, proposals and their steps, reports imported
from trusted sandboxes. Regulators take part; administrators read and import; developers have no
part in it."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, File, Path, Query, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.api.access import require_role
from orchestrator.api.deps import CurrentUser, DbSession, SettingsDep
from orchestrator.api.limits import MiB
from orchestrator.errors import TooLargeError
from orchestrator.policy import load_profile, policies_in_force
from orchestrator.reports.envelope import ENVELOPE_NAME
from orchestrator.reports.writer import JSON_NAME, SIGNATURE_NAME
from orchestrator.standard import proposals, trust
from orchestrator.standard.compare import ProfileComparison, compare_profiles
from orchestrator.store import ProfileProposal, ProposalComment, User

router = APIRouter(prefix="/api", tags=["standard"])
ProposalId = Annotated[int, Path(ge=1, le=2**31 - 1)]
IMPORT_LIMIT = 20 * MiB


class ProposalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    profile: str = Field(max_length=64, description="Id of the profile to change, e.g. sg or asean-core.")
    document: str = Field(
        max_length=proposals.MAX_DOCUMENT, description="The new version's profile file (YAML)."
    )
    reason: str = Field(max_length=proposals.MAX_REASON, description="Why the profile should change.")


class CommentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(max_length=proposals.MAX_COMMENT)


class CommentPublic(BaseModel):
    by: str | None
    body: str
    at: dt.datetime


class ProposalPublic(BaseModel):
    id: int
    profile_id: str
    jurisdiction: str
    base_version: str
    version: str
    status: str
    reason: str
    document: str
    proposed_by: str | None
    proposed_at: dt.datetime
    accepted_by: str | None
    accepted_at: dt.datetime | None
    endorsed_by: list[str]
    comments: list[CommentPublic]
    reassessment: dict[str, Any] = Field(
        description="The stored trials re-assessed under the proposal, as far as the caller may read them; "
        "'others' counts what it may not."
    )

    @classmethod
    def of(cls, db: Session, row: ProfileProposal, user: User) -> ProposalPublic:
        def name(user_id: int | None) -> str | None:
            user = db.get(User, user_id) if user_id else None
            return user.username if user else None

        comments = db.scalars(
            select(ProposalComment).where(ProposalComment.proposal_id == row.id).order_by(ProposalComment.id)
        )
        return cls(
            id=row.id,
            profile_id=row.profile_id,
            jurisdiction=row.jurisdiction,
            base_version=row.base_version,
            version=row.version,
            status=row.status,
            reason=row.reason,
            document=row.document,
            proposed_by=name(row.proposed_by),
            proposed_at=row.proposed_at,
            accepted_by=name(row.accepted_by),
            accepted_at=row.accepted_at,
            endorsed_by=[n for e in proposals.endorsements(db, row) if (n := name(e.user_id))],
            comments=[CommentPublic(by=name(c.user_id), body=c.body, at=c.at) for c in comments],
            reassessment=proposals.visible_reassessment(db, user, row),
        )


class ImportedPublic(BaseModel):
    trial_id: str
    issuer: str = Field(description="Name under which this platform trusts the signing sandbox.")
    fingerprint: str
    report_sha256: str
    verdicts: dict[str, str] = Field(description="Verdicts as the issuing sandbox recorded them.")


def _participant(user: User) -> None:
    require_role(user, "regulator", "admin")


@router.get("/profiles/compare", response_model=ProfileComparison)
def compare(
    user: CurrentUser, settings: SettingsDep, codes: Annotated[list[str], Query(min_length=2, max_length=16)]
) -> ProfileComparison:
    _participant(user)
    folder = policies_in_force(settings.home)
    return compare_profiles([load_profile(code, folder) for code in codes], codes)


@router.get("/proposals", response_model=list[ProposalPublic])
def list_proposals(user: CurrentUser, db: DbSession) -> list[ProposalPublic]:
    _participant(user)
    rows = db.scalars(select(ProfileProposal).order_by(ProfileProposal.id.desc()))
    return [ProposalPublic.of(db, r, user) for r in rows]


@router.post("/proposals", response_model=ProposalPublic, status_code=status.HTTP_201_CREATED)
def create(body: ProposalCreate, user: CurrentUser, db: DbSession, settings: SettingsDep) -> ProposalPublic:
    row = proposals.create(db, settings, user, body.profile, body.document, body.reason)
    return ProposalPublic.of(db, row, user)


@router.get("/proposals/{proposal_id}", response_model=ProposalPublic)
def show(proposal_id: ProposalId, user: CurrentUser, db: DbSession) -> ProposalPublic:
    _participant(user)
    return ProposalPublic.of(db, proposals.get(db, proposal_id), user)


@router.post("/proposals/{proposal_id}/comments", response_model=ProposalPublic, status_code=201)
def comment(proposal_id: ProposalId, body: CommentCreate, user: CurrentUser, db: DbSession) -> ProposalPublic:
    _participant(user)
    row = proposals.get(db, proposal_id)
    proposals.comment(db, user, row, body.body)
    return ProposalPublic.of(db, row, user)


@router.post("/proposals/{proposal_id}/endorsements", response_model=ProposalPublic, status_code=201)
def endorse(proposal_id: ProposalId, user: CurrentUser, db: DbSession) -> ProposalPublic:
    _participant(user)
    row = proposals.get(db, proposal_id)
    proposals.endorse(db, user, row)
    return ProposalPublic.of(db, row, user)


@router.post("/proposals/{proposal_id}/accept", response_model=ProposalPublic)
def accept(
    proposal_id: ProposalId, user: CurrentUser, db: DbSession, settings: SettingsDep
) -> ProposalPublic:
    _participant(user)
    row = proposals.get(db, proposal_id)
    proposals.accept(db, settings, user, row)
    return ProposalPublic.of(db, row, user)


def _save(upload: UploadFile, target: FsPath) -> None:
    data = upload.file.read(IMPORT_LIMIT + 1)
    if len(data) > IMPORT_LIMIT:
        raise TooLargeError(f"{target.name} larger than {IMPORT_LIMIT // MiB} MiB")
    target.write_bytes(data)


@router.post("/reports/import", response_model=ImportedPublic, status_code=201)
def import_report(
    user: CurrentUser,
    db: DbSession,
    settings: SettingsDep,
    report: Annotated[UploadFile, File(description="report.json, exactly as the other sandbox signed it.")],
    signature: Annotated[UploadFile, File(description="report.json.sig.")],
    attestation: Annotated[UploadFile | None, File(description="report.intoto.jsonl, when sent.")] = None,
) -> ImportedPublic:
    """Import a report signed by a trusted sandbox; 422 says why one is refused (untrusted, altered)."""
    _participant(user)
    with tempfile.TemporaryDirectory(prefix="regsandbox-import-") as tmp:
        folder = FsPath(tmp)
        _save(report, folder / JSON_NAME)
        _save(signature, folder / SIGNATURE_NAME)
        if attestation is not None:
            _save(attestation, folder / ENVELOPE_NAME)
        found = trust.import_report(settings, folder, db, user.username)
    return ImportedPublic(
        trial_id=found.trial_id,
        issuer=found.issuer,
        fingerprint=found.fingerprint,
        report_sha256=found.sha256,
        verdicts=dict(found.report.verdicts),
    )
