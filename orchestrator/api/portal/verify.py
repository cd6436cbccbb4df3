"""Verify a report by upload: is this file intact, and was it signed with this platform's key?

The check is the one ``regsandbox report verify`` makes (:func:`orchestrator.reports.verification_problem`):
signature over the exact bytes, then canonical form. A report uploaded without its signature is
checked against the platform's own copy: intact when its bytes are those of the stored, signed
report of a trial the viewer may see. Uploads are bounded by their declared length before any
byte is parsed, and whatever they contain, the answer is a sentence, never an error page.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from orchestrator.api.access import can_see
from orchestrator.api.deps import SettingsDep
from orchestrator.api.portal.views import TRIAL_ID, public_key_path, report_dir, visible_trial
from orchestrator.api.portal.web import PortalDb, Viewer, ViewerDep, csrf_ok, refused, render
from orchestrator.reports.model import ExitReport, ReportIntegrityError, parse_report
from orchestrator.reports.signing import public_key_fingerprint, verification_problem
from orchestrator.reports.writer import JSON_NAME, SIGNATURE_NAME
from orchestrator.settings import Settings
from orchestrator.store import audit
from orchestrator.store.trials import find

router = APIRouter()
REPORT_MAX = 16 * 1024 * 1024  # a demo-size report is about 40 kB; generous for large evidence tables
SIGNATURE_MAX = 1024
BODY_MAX = REPORT_MAX + SIGNATURE_MAX + 64 * 1024  # both files plus the multipart framing and the token


@dataclass(frozen=True)
class Outcome:
    intact: bool
    message: str
    sha256: str
    report: ExitReport | None = None
    against: str = ""  # "uploaded signature" or "stored report"


def _show(
    request: Request,
    viewer: Viewer,
    settings: Settings,
    status_code: int = 200,
    outcome: Outcome | None = None,
    error: str | None = None,
    trial_link: str | None = None,
) -> Response:
    return render(
        request,
        "verify.html.j2",
        viewer,
        status_code=status_code,
        title="Verify a report",
        nav="verify",
        fingerprint=public_key_fingerprint(settings.keys_dir),
        outcome=outcome,
        error=error,
        trial_link=trial_link,
        report_max_mb=REPORT_MAX // (1024 * 1024),
    )


@router.get("/verify", response_class=HTMLResponse)
def verify_form(request: Request, settings: SettingsDep, viewer: ViewerDep) -> Response:
    return _show(request, viewer, settings)


async def _read(upload: UploadFile, limit: int) -> bytes | None:
    data = await upload.read(limit + 1)
    return None if len(data) > limit else data


def _short(problem: str) -> str:
    # Validation messages quote the input; a page needs the first few lines, not a megabyte of it.
    lines = problem.splitlines()
    text = "\n".join(lines[:4]) + ("\n…" if len(lines) > 4 else "")
    return text if len(text) <= 600 else text[:600] + "…"


def _check(db: Session, settings: Settings, viewer: Viewer, data: bytes, signature: bytes | None) -> Outcome:
    digest = hashlib.sha256(data).hexdigest()
    try:
        report: ExitReport | None = parse_report(data)
    except ReportIntegrityError as exc:
        report = None
        if signature is None:
            return Outcome(False, "This file is not a regsandbox exit report: " + _short(str(exc)), digest)
    if signature is not None:
        with tempfile.TemporaryDirectory(prefix="regsandbox-verify-") as tmp:
            (Path(tmp) / JSON_NAME).write_bytes(data)
            (Path(tmp) / SIGNATURE_NAME).write_bytes(signature)
            problem = verification_problem(
                Path(tmp) / JSON_NAME, Path(tmp) / SIGNATURE_NAME, public_key_path(settings)
            )
        if problem:
            return Outcome(False, _short(problem), digest, report, "uploaded signature")
        return Outcome(
            True,
            "The signature matches these bytes and this platform's key.",
            digest,
            report,
            "uploaded signature",
        )
    if report is None:  # unparsable without a signature returned above; this keeps the types honest
        return Outcome(False, "This file is not a regsandbox exit report.", digest)
    trial_id = report.trial_id
    trial = visible_trial(db, viewer, trial_id) if TRIAL_ID.match(trial_id) else None
    stored = report_dir(settings, trial_id) / JSON_NAME
    if trial is None or not stored.is_file():
        return Outcome(
            False,
            "No signature was uploaded, and no signed report of a trial you may see has "
            "this trial id. Upload the signature file (report.json.sig) with the report.",
            digest,
            report,
        )
    if stored.read_bytes() != data:
        return Outcome(
            False,
            f"These bytes differ from the signed report stored for trial {trial_id}: the file was changed.",
            digest,
            report,
            "stored report",
        )
    problem = verification_problem(stored, stored.parent / SIGNATURE_NAME, public_key_path(settings))
    if problem:
        return Outcome(
            False,
            "The stored report itself does not verify: " + _short(problem),
            digest,
            report,
            "stored report",
        )
    return Outcome(
        True,
        f"These bytes are exactly the signed report stored for trial {trial_id}.",
        digest,
        report,
        "stored report",
    )


async def _take(
    request: Request, db: Session, settings: Settings, viewer: Viewer, form: FormData
) -> Response | tuple[bytes, bytes | None]:
    """The uploaded report and signature bytes, or the page that says why there are none."""
    token = form.get("csrf")
    if not csrf_ok(db, viewer, token if isinstance(token, str) else "", "verify_upload"):
        return refused(
            request,
            viewer,
            "This upload did not come from this portal session. "
            "Open the Verify page again and upload from there.",
        )
    report_file, signature_file = form.get("report"), form.get("signature")
    if not isinstance(report_file, UploadFile) or not report_file.filename:
        return _show(request, viewer, settings, 422, error="Choose the report file (report.json) to verify.")
    data = await _read(report_file, REPORT_MAX)
    signature = None
    if isinstance(signature_file, UploadFile) and signature_file.filename:
        signature = await _read(signature_file, SIGNATURE_MAX)
        if signature is None:
            return _show(
                request,
                viewer,
                settings,
                413,
                error=f"The signature file is larger than "
                f"{SIGNATURE_MAX} bytes: it is not a report signature.",
            )
    if data is None:
        return _show(request, viewer, settings, 413, error="The report is too large to verify here.")
    if not data:
        return _show(request, viewer, settings, 422, error="The report file is empty.")
    return data, signature


@router.post("/verify", response_class=HTMLResponse)
async def verify_upload(request: Request, db: PortalDb, settings: SettingsDep, viewer: ViewerDep) -> Response:
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        return _show(
            request,
            viewer,
            settings,
            411,
            error="The upload did not say how large it is; use the form on this page.",
        )
    if int(declared) > BODY_MAX:
        return _show(
            request,
            viewer,
            settings,
            413,
            error=f"The upload is too large: a report may have at most "
            f"{REPORT_MAX // (1024 * 1024)} MB, its signature at most {SIGNATURE_MAX} bytes.",
        )
    try:
        # The context closes the spooled upload files however the request ends.
        async with request.form(max_files=2, max_fields=4) as form:
            answer = await _take(request, db, settings, viewer, form)
    except HTTPException as exc:  # a body that is not multipart form data at all
        return _show(request, viewer, settings, 400, error=f"The upload could not be read: {exc.detail}")
    if isinstance(answer, Response):
        return answer
    data, signature = answer
    # Checking reads files and the database: off the event loop, like the portal's other routes.
    return await run_in_threadpool(_answer, request, db, settings, viewer, data, signature)


def _answer(
    request: Request, db: Session, settings: Settings, viewer: Viewer, data: bytes, signature: bytes | None
) -> Response:
    outcome = _check(db, settings, viewer, data, signature)
    audit.record(
        db,
        viewer.username,
        "report_verified_by_upload",
        f"sha256:{outcome.sha256}",
        via="portal",
        intact=outcome.intact,
        against=outcome.against,
        size=len(data),
    )
    report = outcome.report
    trial = find(db, report.trial_id) if report and TRIAL_ID.match(report.trial_id) else None
    # A way on to the trial's page, for those who may see it; for others the file speaks for itself.
    link = trial.trial_id if trial is not None and can_see(viewer.user, trial) else None
    return _show(request, viewer, settings, outcome=outcome, trial_link=link)
