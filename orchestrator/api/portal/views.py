"""What the portal's pages show, gathered from the platform database and the stored report files.

A trial's page reads its report from ``reports_dir / trial_id``, checks the stored bytes against
their signature and the issuer's public key, and picks the one jurisdiction the viewer acts for
(a regulator) or chooses (an administrator or developer, who may see every jurisdiction).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.api import decisions
from orchestrator.api.access import can_see, visible_trials
from orchestrator.api.portal.web import Viewer
from orchestrator.policy_models import format_threshold
from orchestrator.records import CriterionOutcome, JurisdictionAssessment
from orchestrator.reports.envelope import ENVELOPE_NAME
from orchestrator.reports.model import ExitReport, ReportIntegrityError, parse_report
from orchestrator.reports.signing import PUBLIC_KEY_NAME, verification_problem
from orchestrator.reports.writer import HTML_NAME, JSON_NAME, PDF_NAME, SIGNATURE_NAME
from orchestrator.settings import Settings
from orchestrator.store import Decision, Trial, User, audit
from orchestrator.store.trials import find

# Trial ids become folder names: anything else is refused before it comes near the filesystem.
TRIAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Kind(StrEnum):
    """The files of a stored report that can be downloaded."""

    json = "json"
    html = "html"
    pdf = "pdf"
    sig = "sig"
    intoto = "intoto"


# kind -> (stored file name, media type, label)
FILES: dict[Kind, tuple[str, str, str]] = {
    Kind.json: (JSON_NAME, "application/json", "Report, JSON (the signed document)"),
    Kind.pdf: (PDF_NAME, "application/pdf", "Report, PDF"),
    Kind.html: (HTML_NAME, "text/html; charset=utf-8", "Report, HTML (one self-contained file)"),
    Kind.sig: (SIGNATURE_NAME, "text/plain; charset=us-ascii", "Signature of the JSON (Ed25519, base64)"),
    Kind.intoto: (ENVELOPE_NAME, "application/jsonl", "in-toto attestation (DSSE envelope)"),
}


@dataclass(frozen=True)
class FileLink:
    kind: str
    name: str
    label: str
    size: int


@dataclass(frozen=True)
class StoredReport:
    report: ExitReport | None
    sha256: str
    problem: str | None  # why the stored bytes do not verify; None when intact
    files: list[FileLink]


@dataclass
class TrialPage:
    trial: Trial
    stored: StoredReport | None
    jurisdictions: list[str]
    chosen: str | None
    assessment: JurisdictionAssessment | None
    verdicts: dict[str, str]
    decisions: list[DecisionView] = field(default_factory=list)


@dataclass(frozen=True)
class DecisionView:
    row: Decision
    by: str
    problem: str | None


def public_key_path(settings: Settings) -> Path:
    return settings.keys_dir / PUBLIC_KEY_NAME


def report_dir(settings: Settings, trial_id: str) -> Path:
    return settings.reports_dir / trial_id


def visible_trial(db: Session, viewer: Viewer, trial_id: str) -> Trial | None:
    """The trial, when it exists and the viewer may see it; a refusal is audited, and looks like absence."""
    if not TRIAL_ID.match(trial_id):
        return None
    trial = find(db, trial_id)
    if trial is None:
        return None
    if not can_see(viewer.user, trial):
        audit.record(db, viewer.username, "access_refused", f"trial:{trial_id}", via="portal")
        return None
    return trial


def trials_for(db: Session, viewer: Viewer) -> list[Trial]:
    return [t for t in db.scalars(visible_trials(viewer.user)) if can_see(viewer.user, t)]


def stored_report(settings: Settings, trial_id: str) -> StoredReport | None:
    folder = report_dir(settings, trial_id)
    json_path = folder / JSON_NAME
    if not json_path.is_file():
        return None
    data = json_path.read_bytes()
    try:
        problem = verification_problem(json_path, folder / SIGNATURE_NAME, public_key_path(settings))
    except OSError:
        problem = "the signature file or the platform's public key is missing"
    try:
        report: ExitReport | None = parse_report(data)
    except ReportIntegrityError:
        report = None
    files = [
        FileLink(kind.value, name, label, (folder / name).stat().st_size)
        for kind, (name, _, label) in FILES.items()
        if (folder / name).is_file()
    ]
    return StoredReport(report, hashlib.sha256(data).hexdigest(), problem, files)


def trial_page(db: Session, settings: Settings, viewer: Viewer, trial: Trial, wanted: str = "") -> TrialPage:
    trial_id = trial.trial_id or ""  # only trials with an id have a page
    stored = stored_report(settings, trial_id)
    report = stored.report if stored else None
    jurisdictions = list(report.trial.jurisdictions if report else trial.jurisdictions or [])
    if viewer.role == "regulator":
        # A regulator reads its own jurisdiction's assessment, never another's.
        jurisdictions = [j for j in jurisdictions if j == viewer.jurisdiction]
    chosen = wanted if wanted in jurisdictions else (jurisdictions[0] if jurisdictions else None)
    assessment = next((a for a in report.assessments if a.jurisdiction == chosen), None) if report else None
    verdicts: dict[str, str] = dict(report.verdicts) if report else dict(trial.verdicts or {})
    page = TrialPage(trial, stored, jurisdictions, chosen, assessment, verdicts)
    page.decisions = decisions_for(db, settings, viewer, trial_id)
    return page


def decisions_for(db: Session, settings: Settings, viewer: Viewer, trial_id: str) -> list[DecisionView]:
    """Decisions on the trial, newest first; a regulator sees those of its own jurisdiction only."""
    query = (
        select(Decision, User.username)
        .join(User, User.id == Decision.user_id)
        .where(Decision.trial_id == trial_id)
        .order_by(Decision.at.desc(), Decision.id.desc())
    )
    if viewer.role == "regulator":
        query = query.where(Decision.jurisdiction == viewer.jurisdiction)
    return [
        DecisionView(row, by, decisions.verification_problem(db, settings, row))
        for row, by in db.execute(query).tuples()
    ]


def threshold_text(criterion: CriterionOutcome) -> str:
    if criterion.comparator == "between":
        return f"between {format_threshold(criterion.threshold)}"
    return f"{criterion.comparator} {format_threshold(criterion.threshold)}"


def outcome_class(outcome: str) -> str:
    return "insufficient" if outcome.startswith("insufficient") else outcome
