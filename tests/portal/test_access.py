"""Who sees which trial in the portal: refusals read exactly like trials that do not exist."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.settings import Settings
from orchestrator.store import AuditEvent, session_scope
from tests.portal.seed import ACME_PENDING, SG_ONLY

Open = Callable[[str], TestClient]


def _listed(browser: TestClient) -> set[str]:
    page = browser.get("/portal/").text
    return {t for t in ("diabetes-risk-screening", "sg-only-triage", "acme-second-model") if f">{t}<" in page}


@pytest.mark.parametrize(
    ("person", "expected"),
    [
        ("admin1", {"diabetes-risk-screening", "sg-only-triage", "acme-second-model"}),
        ("th-reg", {"diabetes-risk-screening", "acme-second-model"}),
        ("sg-reg", {"diabetes-risk-screening", "sg-only-triage"}),
        ("acme-dev", {"diabetes-risk-screening", "acme-second-model"}),
        ("other-dev", {"sg-only-triage"}),
    ],
)
def test_each_person_lists_the_trials_their_role_allows(
    signed_in: Open, person: str, expected: set[str]
) -> None:
    assert _listed(signed_in(person)) == expected


def test_a_regulator_sees_its_own_verdict_in_words_and_colour(signed_in: Open) -> None:
    page = signed_in("th-reg").get("/portal/").text
    assert (
        'Thailand: <span class="badge v-fail"><span aria-hidden="true" class="sym">✖</span> Fail</span>'
        in page
    )
    page = signed_in("sg-reg").get("/portal/").text
    assert '<span class="badge v-conditional">' in page and "Conditional" in page


@pytest.mark.parametrize("suffix", ["", "/report", "/download/json", "/download/pdf"])
def test_a_th_regulator_cannot_see_an_sg_only_trial(signed_in: Open, suffix: str, settings: Settings) -> None:
    browser = signed_in("th-reg")
    refused = browser.get(f"/portal/trials/{SG_ONLY}{suffix}")
    missing = browser.get(f"/portal/trials/no-such-trial-00000000{suffix}")
    assert refused.status_code == missing.status_code == 404
    assert refused.text == missing.text  # nothing tells a refusal from absence
    assert SG_ONLY not in refused.text
    with session_scope(settings) as db:
        refusals = db.scalars(select(AuditEvent).where(AuditEvent.action == "access_refused")).all()
    assert any(e.actor == "th-reg" and e.target == f"trial:{SG_ONLY}" for e in refusals)


def test_a_developer_sees_only_its_sponsors_trials(signed_in: Open, trial_id: str) -> None:
    other = signed_in("other-dev")
    assert other.get(f"/portal/trials/{trial_id}").status_code == 404
    assert other.get(f"/portal/trials/{trial_id}/download/json").status_code == 404
    assert other.get(f"/portal/trials/{SG_ONLY}").status_code == 200
    acme = signed_in("acme-dev")
    assert acme.get(f"/portal/trials/{SG_ONLY}").status_code == 404
    assert acme.get(f"/portal/trials/{ACME_PENDING}").status_code == 200


def test_a_regulator_reads_only_its_own_jurisdictions_assessment(signed_in: Open, trial_id: str) -> None:
    page = signed_in("th-reg").get(f"/portal/trials/{trial_id}?j=SG").text
    assert "Verdict for Thailand (TH)" in page and "Verdict for Singapore" not in page
    assert "blocking criteria fail" in page  # TH's rule
    assert "13 criteria of the TH profile" in page
    assert 'aria-label="Jurisdiction"' not in page  # no choice of jurisdiction for a regulator


def test_an_administrator_chooses_the_jurisdiction(signed_in: Open, trial_id: str) -> None:
    browser = signed_in("admin1")
    assert "Verdict for Singapore (SG)" in browser.get(f"/portal/trials/{trial_id}").text
    page = browser.get(f"/portal/trials/{trial_id}?j=vn").text
    assert "Verdict for Viet Nam (VN)" in page
    assert 'href="?j=TH#verdict-h"' in page


def test_the_trial_page_summarises_the_report(signed_in: Open, trial_id: str) -> None:
    page = signed_in("th-reg").get(f"/portal/trials/{trial_id}").text
    for text in (
        "Flag adults at risk of undiagnosed type 2 diabetes in primary care",  # intended use
        "<dt>Risk class</dt><dd>C ",
        "perf-auroc-ci-low",
        "&gt;= 0.81",  # TH's tightened threshold
        "0.8046",  # observed
        "95% CI [0.8046, 0.8422]",
        "PSI 0.10 warn / 0.25 act",  # provenance reference
        "the stored report's signature verifies",
        "Read the full report",
    ):
        assert text in page, text
    for kind in ("json", "pdf", "html", "sig", "intoto"):
        assert f"/portal/trials/{trial_id}/download/{kind}" in page


def test_a_trial_without_a_report_says_so(signed_in: Open) -> None:
    page = signed_in("th-reg").get(f"/portal/trials/{ACME_PENDING}").text
    assert "No exit report has been written for this trial yet." in page
    assert "Retinopathy screening" in page
    assert 'name="decision"' not in page


@pytest.mark.parametrize("trial", ["..", "a/../../etc", "%2e%2e", "x" * 80, "-leading-dash"])
def test_odd_trial_ids_are_not_found(signed_in: Open, trial: str) -> None:
    response = signed_in("admin1").get(f"/portal/trials/{trial}/download/json")
    assert response.status_code == 404
