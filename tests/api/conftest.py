"""A platform seeded with people, trials and signed reports, served by the API on SQLite and on a
real PostgreSQL server: every test that takes ``platform`` runs once on each.

People: ``admin``; ``dev_a`` and ``dev_b``, developers of sponsors A and B; ``reg_sg`` and
``reg_th``, regulators of Singapore and Thailand. Trials: ``A`` (sponsor A, names SG and MY) and
``B`` (sponsor B, names TH and VN), both completed with a signed report; ``OA`` and ``OB``, one
open trial of each sponsor (naming SG and TH respectively), observing, without a report yet.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from orchestrator import security
from orchestrator.api import auth
from orchestrator.api.app import create_app
from orchestrator.reports import ExitReport, write_report
from orchestrator.reports.sample import sample_report
from orchestrator.settings import Settings
from orchestrator.store import Trial, session_scope
from tests.api.fakes import FakeRuns

SPONSOR_A, SPONSOR_B = "acme-health", "beta-med"
PASSWORD = "correct horse battery staple"
PEOPLE: dict[str, dict[str, Any]] = {
    "admin": {"role": "admin"},
    "dev_a": {"role": "developer", "sponsor": SPONSOR_A},
    "dev_b": {"role": "developer", "sponsor": SPONSOR_B},
    "reg_sg": {"role": "regulator", "jurisdiction": "SG"},
    "reg_th": {"role": "regulator", "jurisdiction": "TH"},
}
EXAMPLE_SPEC = Path(__file__).parents[2] / "examples" / "trials" / "diabetes-risk.yaml"
# (trial id, sponsor, jurisdictions); A keeps the sample report's own trial id.
REPORTED = {
    "A": ("diabetes-risk-screening-5a3c9e01", SPONSOR_A, ["SG", "MY"]),
    "B": ("beta-screening-0b0b0b0b", SPONSOR_B, ["TH", "VN"]),
}
OPEN = {
    "OA": ("acme-open-1a1a1a1a", SPONSOR_A, ["SG"]),
    "OB": ("beta-open-2b2b2b2b", SPONSOR_B, ["TH"]),
}


def example_spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(EXAMPLE_SPEC.read_text())
    spec.update(changes)
    return spec


def derived_report(trial_id: str, sponsor: str, codes: list[str]) -> ExitReport:
    """The sample report, re-addressed to another trial, sponsor and set of jurisdictions."""
    base = sample_report()
    assessments = [a for a in base.assessments if a.jurisdiction in codes]
    spec = {**base.trial.spec, "sponsor": sponsor, "jurisdictions": codes}
    return base.model_copy(
        update={
            "trial_id": trial_id,
            "trial": base.trial.model_copy(update={"sponsor": sponsor, "jurisdictions": codes, "spec": spec}),
            "assessments": assessments,
            "verdicts": {a.jurisdiction: a.verdict for a in assessments},
            "events": [e.model_copy(update={"trial_id": trial_id}) for e in base.events],
        }
    )


@pytest.fixture(scope="session", autouse=True)
def cheap_passwords() -> Iterator[None]:
    # Argon2 at its lowest cost: password stretching is not under test, and its default cost
    # (about 0.3 s a hash here) would dominate the suite.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        yield


@pytest.fixture(scope="session")
def report_seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Signed reports of trials A and B and the issuer key that signed them, written once."""
    seed = tmp_path_factory.mktemp("report-seed")
    for trial_id, sponsor, codes in REPORTED.values():
        write_report(
            derived_report(trial_id, sponsor, codes), seed / "reports" / trial_id, seed / "keys", pdf=False
        )
    return seed


@dataclass
class Platform:
    client: TestClient
    settings: Settings
    runs: FakeRuns
    tokens: dict[str, str]
    refs: dict[str, str]
    backend: str

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}

    def get(self, who: str, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers(who), **kwargs)

    def post(self, who: str, path: str, **kwargs: Any) -> Any:
        return self.client.post(path, headers=self.headers(who), **kwargs)


def _seed(settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    tokens, refs = {}, {}
    now = dt.datetime.now(dt.UTC)
    with session_scope(settings) as db:
        for username, affiliation in PEOPLE.items():
            user = auth.create_user(db, "test-setup", username, PASSWORD, **affiliation)
            tokens[username] = auth.issue_api_token(db, user, "tests")
        for key, (trial_id, sponsor, codes) in {**REPORTED, **OPEN}.items():
            reported = key in REPORTED
            report = (settings.reports_dir / trial_id / "report.json").read_bytes() if reported else b"{}"
            db.add(
                Trial(
                    trial_id=trial_id,
                    name=trial_id.rsplit("-", 1)[0],
                    sponsor=sponsor,
                    jurisdictions=codes,
                    spec=example_spec(sponsor=sponsor, jurisdictions=codes),
                    status="completed" if reported else "running",
                    state="reported" if reported else "observing",
                    flow_run_id=f"00000000-0000-4000-8000-{key.encode().hex():0>12}",
                    verdicts=json.loads(report).get("verdicts", {}),
                    report_sha256=hashlib.sha256(report).hexdigest() if reported else None,
                    finished_at=now if reported else None,
                )
            )
            refs[key] = trial_id
    return tokens, refs


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, report_seed: Path
) -> Iterator[Platform]:
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_server").create_database()
    home = tmp_path_factory.mktemp(f"home-{request.param}")
    shutil.copytree(report_seed / "keys", home / "keys")
    shutil.copytree(report_seed / "reports", home / "reports")
    settings = Settings(home=home, database_url=url)
    runs = FakeRuns()
    app = create_app(settings, runs=runs)
    tokens, refs = _seed(settings)
    with TestClient(app) as client:
        yield Platform(client, settings, runs, tokens, refs, request.param)
