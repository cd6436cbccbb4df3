"""The standard's portal pages: who may see and do what, forms refused without the session's CSRF
token, and a bad proposal answered on its form, naming what is wrong. The whole walk from a
proposal to its acceptance is in tests/e2e/test_proposal_browser.py (a real browser)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from orchestrator.policy import shipped_policies_dir
from orchestrator.settings import Settings
from orchestrator.store import ProfileProposal, session_scope
from tests.portal.seed import form_value

Open = Callable[[str], TestClient]


def _count(settings: Settings) -> int:
    with session_scope(settings) as db:
        return int(db.scalar(select(func.count()).select_from(ProfileProposal)) or 0)


def test_developers_have_no_part_in_the_standard(signed_in: Open) -> None:
    developer = signed_in("acme-dev")
    for path in ("/portal/standard", "/portal/standard/compare", "/portal/proposals/1"):
        page = developer.get(path)
        assert page.status_code == 404, path
    assert ">Standard</a>" not in developer.get("/portal/").text
    assert ">Standard</a>" in signed_in("th-reg").get("/portal/").text


def test_an_administrator_reads_along_but_does_not_propose(signed_in: Open) -> None:
    admin = signed_in("admin1")
    assert admin.get("/portal/standard").status_code == 200
    assert "Propose a change" not in admin.get("/portal/standard").text
    refused = admin.get("/portal/proposals/new")
    assert refused.status_code == 403 and "Only a regulator proposes" in refused.text


def test_a_proposal_without_the_sessions_csrf_token_is_refused(signed_in: Open, settings: Settings) -> None:
    before = _count(settings)
    document = (shipped_policies_dir() / "sg.yaml").read_text().replace("version: 0.2.0", "version: 0.3.0")
    answer = signed_in("sg-reg").post(
        "/portal/proposals", data={"profile": "sg", "document": document, "reason": "r", "csrf": "forged"}
    )
    assert answer.status_code == 403 and "Nothing was recorded" in answer.text
    assert _count(settings) == before


def test_a_bad_proposal_comes_back_on_its_form_naming_the_problem(
    signed_in: Open, settings: Settings
) -> None:
    regulator = signed_in("sg-reg")
    form = regulator.get("/portal/proposals/new?profile=sg")
    assert form.status_code == 200
    csrf = form_value(form.text, "csrf")
    # Another profile's id in the document, then a threshold that is not a number.
    th_doc = (shipped_policies_dir() / "th.yaml").read_text()
    answer = regulator.post(
        "/portal/proposals", data={"profile": "sg", "document": th_doc, "reason": "Because.", "csrf": csrf}
    )
    assert answer.status_code == 422
    assert "a proposal for &#39;sg&#39; keeps its id" in answer.text and 'aria-invalid="true"' in answer.text
    sg_doc = (shipped_policies_dir() / "sg.yaml").read_text().replace("version: 0.2.0", "version: 0.3.0")
    broken = sg_doc.replace("threshold: 0.75", "threshold: high", 1)
    answer = regulator.post(
        "/portal/proposals", data={"profile": "sg", "document": broken, "reason": "Because.", "csrf": csrf}
    )
    assert answer.status_code == 422 and "criteria.0.threshold" in answer.text
    assert "Because." in answer.text  # what was typed is kept
    assert _count(settings) == 0


def test_thailand_may_not_propose_for_singapore(signed_in: Open, settings: Settings) -> None:
    regulator = signed_in("th-reg")
    form = regulator.get("/portal/proposals/new?profile=sg")
    assert 'value="sg"' not in form.text.split('name="profile"', 1)[1].split("</select>")[0]
    csrf = form_value(form.text, "csrf")
    sg_doc = (shipped_policies_dir() / "sg.yaml").read_text().replace("version: 0.2.0", "version: 0.3.0")
    answer = regulator.post(
        "/portal/proposals", data={"profile": "sg", "document": sg_doc, "reason": "r", "csrf": csrf}
    )
    assert (
        answer.status_code == 422 and "a regulator of TH proposes changes to its own profile" in answer.text
    )
    assert _count(settings) == 0


def test_compare_names_an_unknown_profile(signed_in: Open) -> None:
    page = signed_in("th-reg").get("/portal/standard/compare?p=SG&p=XX")
    assert page.status_code == 422 and "no policy profile &#39;XX&#39;" in page.text
    page = signed_in("th-reg").get("/portal/standard/compare?p=SG&p=TH&p=EU")
    assert page.status_code == 200 and "Common core" in page.text
