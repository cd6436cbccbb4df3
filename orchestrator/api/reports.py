"""A trial's report files as the API serves them, and verification of an uploaded report.

Files are read only from ``reports_dir/<trial_id>/``, by a fixed name per kind: no part of a
request ever becomes part of a path, so nothing outside the reports can be served. The signing
key is the platform's issuer key, the one the reports and the decisions are signed with.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import NotFoundError
from orchestrator.reports import ReportIntegrityError, public_key_fingerprint, verification_problem
from orchestrator.reports.envelope import ENVELOPE_NAME
from orchestrator.reports.signing import export_public_key
from orchestrator.reports.writer import HTML_NAME, JSON_NAME, PDF_NAME, SIGNATURE_NAME
from orchestrator.settings import Settings
from orchestrator.store import Trial

_TRIAL_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")


class ReportKind(enum.StrEnum):
    json = "json"
    html = "html"
    pdf = "pdf"
    signature = "signature"
    envelope = "envelope"


FILES: dict[ReportKind, tuple[str, str]] = {
    ReportKind.json: (JSON_NAME, "application/json"),
    ReportKind.html: (HTML_NAME, "text/html; charset=utf-8"),
    ReportKind.pdf: (PDF_NAME, "application/pdf"),
    ReportKind.signature: (SIGNATURE_NAME, "text/plain; charset=utf-8"),
    ReportKind.envelope: (ENVELOPE_NAME, "application/jsonl"),
}


def report_dir(settings: Settings, trial_id: str | None) -> Path | None:
    """The trial's report folder, or None when the id could not name one safely."""
    if not trial_id or not _TRIAL_ID.match(trial_id):
        return None
    root = settings.reports_dir.resolve()
    folder = (root / trial_id).resolve()
    return folder if folder.parent == root else None


def report_file(settings: Settings, trial: Trial, kind: ReportKind) -> Path:
    folder = report_dir(settings, trial.trial_id)
    path = folder / FILES[kind][0] if folder else None
    if path is None or not path.is_file():
        raise NotFoundError(f"trial {trial.trial_id or trial.id} has no {kind.value} report (yet)")
    return path


def has_report(settings: Settings, trial: Trial) -> bool:
    folder = report_dir(settings, trial.trial_id)
    return folder is not None and (folder / JSON_NAME).is_file() and (folder / SIGNATURE_NAME).is_file()


def stored_report_problem(settings: Settings, trial: Trial) -> str | None:
    """Why the trial's stored report does not verify under the issuer key, or None."""
    json_path = report_file(settings, trial, ReportKind.json)
    sig_path = report_file(settings, trial, ReportKind.signature)
    return verification_problem(json_path, sig_path, export_public_key(settings.keys_dir))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def final_metrics(settings: Settings, trial: Trial) -> dict[str, Any] | None:
    """The report's final metric values and intervals, or None before there is a report."""
    if not has_report(settings, trial):
        return None
    data = json.loads(report_file(settings, trial, ReportKind.json).read_bytes())
    metrics = data.get("metrics") or {}
    return {"values": metrics.get("values") or {}, "intervals": metrics.get("intervals") or {}}


def issuer(settings: Settings) -> tuple[str, str]:
    """The issuer's public key (PEM text) and its fingerprint, as the reports cite it."""
    pem = export_public_key(settings.keys_dir).read_text(encoding="ascii")
    return pem, public_key_fingerprint(settings.keys_dir)


@dataclass(frozen=True)
class Verification:
    intact: bool
    problem: str | None
    trial_id: str | None
    report_sha256: str
    signature_source: str
    key_fingerprint: str


def claimed_trial_id(report: bytes) -> str | None:
    """The ``trial_id`` an uploaded report claims, read without trusting the rest of it."""
    try:
        value = json.loads(report).get("trial_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and _TRIAL_ID.match(value) else None


def verify_bytes(settings: Settings, report: bytes, signature: bytes, source: str) -> Verification:
    """Check ``report`` against ``signature`` and this platform's issuer key."""
    with tempfile.TemporaryDirectory(prefix="regsandbox-verify-") as tmp:
        report_path, sig_path = Path(tmp) / JSON_NAME, Path(tmp) / SIGNATURE_NAME
        report_path.write_bytes(report)
        sig_path.write_bytes(signature)
        try:
            problem = verification_problem(report_path, sig_path, export_public_key(settings.keys_dir))
        except ReportIntegrityError as exc:
            problem = str(exc)
    return Verification(
        intact=problem is None,
        problem=problem,
        trial_id=claimed_trial_id(report),
        report_sha256=hashlib.sha256(report).hexdigest(),
        signature_source=source,
        key_fingerprint=public_key_fingerprint(settings.keys_dir),
    )
