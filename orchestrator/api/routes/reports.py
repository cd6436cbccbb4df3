"""Exit reports: download a trial's files, verify an uploaded report, fetch the issuer's key.

Everyone who can see a trial can read its whole report (regulators included: the report is the
evidence). Every read and every verification is an audit event.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from orchestrator.api import reports, trials
from orchestrator.api.access import can_see
from orchestrator.api.deps import CurrentUser, DbSession, SettingsDep
from orchestrator.api.limits import VERIFY_LIMIT, MiB
from orchestrator.api.reports import ReportKind
from orchestrator.api.routes.trials import Ref
from orchestrator.errors import NotFoundError, TooLargeError
from orchestrator.store import audit
from orchestrator.store.trials import find

router = APIRouter(prefix="/api", tags=["reports"])

SIGNATURE_LIMIT = 4096  # base64 of a 64-byte signature is 89 bytes; anything near this is not one
INLINE = (ReportKind.html, ReportKind.pdf)


class VerificationPublic(BaseModel):
    intact: bool = Field(description="True when the report is unchanged and signed by this platform.")
    problem: str | None = Field(description="Why it is not, when it is not.")
    trial_id: str | None = Field(description="The trial id the report claims.")
    report_sha256: str
    signature_source: str = Field(description="uploaded, or stored (the platform's copy for the trial).")
    key_fingerprint: str = Field(description="Fingerprint of the issuer key checked against.")


class IssuerKey(BaseModel):
    public_key_pem: str
    fingerprint: str
    algorithm: str = "Ed25519"


@router.get(
    "/trials/{ref}/report/{kind}",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The report file."}},
)
def download(
    ref: Ref, kind: ReportKind, user: CurrentUser, db: DbSession, settings: SettingsDep
) -> FileResponse:
    trial = trials.visible_trial(db, user, ref, "report_read")
    path = reports.report_file(settings, trial, kind)
    audit.record(db, user.username, "report_read", f"trial:{trial.trial_id}", kind=kind.value)
    name, media_type = reports.FILES[kind]
    return FileResponse(
        path,
        media_type=media_type,
        filename=f"{trial.trial_id}-{name}",
        content_disposition_type="inline" if kind in INLINE else "attachment",
    )


def _read(upload: UploadFile, limit: int, what: str) -> bytes:
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(
            f"{what} larger than {limit // MiB or limit} {'MiB' if limit >= MiB else 'bytes'}"
        )
    return data


@router.post("/reports/verify", response_model=VerificationPublic)
def verify(
    user: CurrentUser,
    db: DbSession,
    settings: SettingsDep,
    report: Annotated[UploadFile, File(description="report.json, exactly as received.")],
    signature: Annotated[
        UploadFile | None,
        File(description="report.json.sig; default: the platform's stored signature of that trial."),
    ] = None,
) -> VerificationPublic:
    data = _read(report, VERIFY_LIMIT, "report")
    source = "uploaded"
    if signature is not None:
        sig = _read(signature, SIGNATURE_LIMIT, "signature")
    else:
        claimed = reports.claimed_trial_id(data)
        trial = find(db, claimed) if claimed else None
        if trial is None or not can_see(user, trial) or not reports.has_report(settings, trial):
            raise NotFoundError(
                "no signature uploaded, and no trial you can see has a stored report with that trial_id"
            )
        sig = reports.report_file(settings, trial, ReportKind.signature).read_bytes()
        source = "stored"
    result = reports.verify_bytes(settings, data, sig, source)
    audit.record(
        db,
        user.username,
        "report_verified",
        f"trial:{result.trial_id}" if result.trial_id else "",
        intact=result.intact,
        report_sha256=result.report_sha256,
        signature=source,
    )
    return VerificationPublic(**result.__dict__)


@router.get("/reports/issuer-key", response_model=IssuerKey)
def issuer_key(user: CurrentUser, settings: SettingsDep) -> IssuerKey:
    pem, fingerprint = reports.issuer(settings)
    return IssuerKey(public_key_pem=pem, fingerprint=fingerprint)
