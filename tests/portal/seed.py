"""A platform home for portal tests: people of every role, three trials, and one real signed report.

The report (JSON, HTML, PDF, signature, in-toto envelope) is written once per test session with
:func:`write_report` and copied, with the key that signed it, into each home that needs it.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from orchestrator.api.auth import create_user
from orchestrator.reports import ExitReport, write_report
from orchestrator.reports.sample import sample_report
from orchestrator.settings import Settings
from orchestrator.store import Trial, session_scope

PASSWORD = "a long test passphrase"
SPONSOR = "acme-health"
OTHER_SPONSOR = "other-labs"
SG_ONLY = "sg-only-trial-00000001"
ACME_PENDING = "acme-pending-00000002"
PEOPLE = {
    "admin1": ("admin", None, None),
    "th-reg": ("regulator", None, "TH"),
    "sg-reg": ("regulator", None, "SG"),
    "acme-dev": ("developer", SPONSOR, None),
    "other-dev": ("developer", OTHER_SPONSOR, None),
}


@dataclass(frozen=True)
class Written:
    """Report files written once: the report, its folder and the keys folder that signed it."""

    report: ExitReport
    folder: Path
    keys: Path


def write_sample(base: Path, pdf: bool = True) -> Written:
    report = sample_report()
    write_report(report, base / "report", base / "keys", pdf=pdf)
    return Written(report, base / "report", base / "keys")


def seed(settings: Settings, written: Written) -> str:
    """Users, trials and the stored report in ``settings.home``; returns the sample trial's id."""
    settings.ensure_dirs()
    report = written.report
    shutil.copytree(written.keys, settings.keys_dir, dirs_exist_ok=True)
    shutil.copytree(written.folder, settings.reports_dir / report.trial_id)
    with session_scope(settings) as db:
        for name, (role, sponsor, jurisdiction) in PEOPLE.items():
            create_user(db, "test", name, PASSWORD, role, sponsor=sponsor, jurisdiction=jurisdiction)
        db.add(
            Trial(
                trial_id=report.trial_id,
                name=report.trial.name,
                sponsor=report.trial.sponsor,
                jurisdictions=list(report.trial.jurisdictions),
                spec=report.trial.spec,
                status="completed",
                state="reported",
                verdicts=dict(report.verdicts),
                finished_at=report.finished_at,
            )
        )
        db.add(
            Trial(
                trial_id=SG_ONLY,
                name="sg-only-triage",
                sponsor=OTHER_SPONSOR,
                jurisdictions=["SG"],
                spec={"intended_use": "Triage chest X-rays", "risk_class": "B"},
                status="running",
                state="observing",
            )
        )
        db.add(
            Trial(
                trial_id=ACME_PENDING,
                name="acme-second-model",
                sponsor=SPONSOR,
                jurisdictions=["MY", "TH"],
                spec={"intended_use": "Retinopathy screening", "risk_class": "C"},
                status="running",
                state="deployed",
            )
        )
    return report.trial_id


def form_value(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} field in the page"
    return found.group(1)


def sign_in(client, username: str, password: str = PASSWORD, next_path: str = ""):  # type: ignore[no-untyped-def]
    """Sign in through the form as a browser does; returns the POST's response (a redirect)."""
    page = client.get("/portal/login")
    token = form_value(page.text, "signin_token")
    data = {"username": username, "password": password, "signin_token": token, "next": next_path}
    return client.post("/portal/login", data=data, follow_redirects=False)
