"""A trial's report files: read in the browser, or downloaded exactly as stored; and the portal's CSS.

Every read and download is an audit event that names the sha256 of the bytes served, so the log
shows which document each person received. The HTML report is served as it was written, under a
sandboxing Content-Security-Policy: it is a rendering of developer-supplied text (model names,
subgroup labels), and must not run script or reach anything, even if a renderer bug let markup in.
"""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request
from fastapi.responses import Response

from orchestrator.api.deps import SettingsDep
from orchestrator.api.portal.views import FILES, Kind, report_dir, visible_trial
from orchestrator.api.portal.web import (
    CSS_NAME,
    PortalDb,
    ViewerDep,
    css_bytes,
    not_found,
    refused,
    security_headers,
)
from orchestrator.reports.writer import HTML_NAME
from orchestrator.store import audit

router = APIRouter()
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
)


@router.get("/trials/{trial_id}/report")
def read_report(
    request: Request, db: PortalDb, settings: SettingsDep, viewer: ViewerDep, trial_id: str
) -> Response:
    trial = visible_trial(db, viewer, trial_id)
    if trial is None:
        return not_found(request, viewer)
    path = report_dir(settings, trial_id) / HTML_NAME
    if not path.is_file():
        return refused(request, viewer, "This trial has no HTML report yet.", status_code=404)
    data = path.read_bytes()
    audit.record(
        db,
        viewer.username,
        "report_read",
        f"trial:{trial_id}",
        via="portal",
        sha256=hashlib.sha256(data).hexdigest(),
    )
    response = Response(data, media_type="text/html; charset=utf-8")
    return security_headers(response, REPORT_CSP)


@router.get("/trials/{trial_id}/download/{kind}")
def download(
    request: Request,
    db: PortalDb,
    settings: SettingsDep,
    viewer: ViewerDep,
    trial_id: str,
    kind: str,
) -> Response:
    trial = visible_trial(db, viewer, trial_id)
    if trial is None:
        return not_found(request, viewer)
    try:
        chosen = Kind(kind)
    except ValueError:
        return not_found(request, viewer)
    name, media_type, label = FILES[chosen]
    path = report_dir(settings, trial_id) / name
    if not path.is_file():
        return refused(request, viewer, f"This trial has no file of this kind: {label}.", status_code=404)
    # Read once and serve those bytes, so the digest audited is the digest of what was sent.
    data = path.read_bytes()
    audit.record(
        db,
        viewer.username,
        "report_downloaded",
        f"trial:{trial_id}",
        via="portal",
        kind=chosen.value,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )
    # Named so that `regsandbox report verify X.report.json` finds X.report.json.sig beside it.
    filename = f"{trial_id}.{name}"
    response = Response(
        data, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
    return security_headers(response, "default-src 'none'; sandbox")


@router.get(f"/static/{CSS_NAME}")
def stylesheet() -> Response:
    # The URL carries a digest of the content, so browsers may keep it for long.
    response = Response(css_bytes(), media_type="text/css; charset=utf-8")
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
