"""Done-when 4: a proposal walked from creation to acceptance by two regulators in a real browser.

Singapore's regulator, on a phone-sized screen, compares the profiles, proposes a new version of
the SG profile that moves one threshold, and reads the re-assessment of the stored trials (two
real trials' reports) attached to it; Thailand's regulator, on a desktop screen, comments and
endorses; Singapore's regulator accepts, and the new version is the profile in force. Each step
is an audit event and the chain stays intact. Screenshots of each step are kept in the test's
folder (or in ``REGSANDBOX_PORTAL_SCREENSHOTS``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select

from orchestrator.api.app import create_app
from orchestrator.policy import load_profile, policies_in_force
from orchestrator.settings import Settings
from orchestrator.store import AuditEvent, audit, session_scope
from tests.e2e.test_portal_browser import PHONE, SHOTS_ENV, Phone
from tests.portal.seed import PASSWORD, seed, write_sample
from tests.standard.homes import TRIALS, issue, register, stored

pytestmark = pytest.mark.slow
DESKTOP = {"width": 1280, "height": 900}
METRIC = "fairness/worst_group_auroc/ethnicity"
CRITERION = "sg-worst-group-auroc-ethnicity"
# The shipped profile's version, and the next one the proposal raises it to.
SHIPPED = load_profile("sg").version
_major, _minor, _ = SHIPPED.split(".")
PROPOSED = f"{_major}.{int(_minor) + 1}.0"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    base = tmp_path_factory.mktemp("proposal-browser")
    settings = Settings(home=base / "home")
    seed(settings, write_sample(base / "written", pdf=False))
    for trial_id in TRIALS:
        issue(settings.home, trial_id)  # two real trials' reports, issued by this platform
        register(settings, trial_id)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the portal did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", settings
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def _sign_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/portal/standard")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/portal/standard")


def test_two_regulators_take_a_proposal_from_creation_to_acceptance(
    served: tuple[str, Settings], browser: Any, tmp_path: Path
) -> None:
    base, settings = served
    shots = Path(os.environ.get(SHOTS_ENV) or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    observed = {t: stored(t)["metrics"]["values"][METRIC] for t in TRIALS}
    new = round(sum(observed.values()) / 2, 4)  # between the two trials: exactly one of them flips
    flipping = {t for t, v in observed.items() if (v >= 0.75) != (v >= new)}
    assert len(flipping) == 1

    sg_context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    th_context = browser.new_context(viewport=DESKTOP)
    sg, th = Phone(sg_context.new_page(), shots), Phone(th_context.new_page(), shots)
    try:
        # Singapore's regulator, on a phone: the standard, the comparison, then a proposal.
        _sign_in(sg.page, base, "sg-reg")
        sg.check("p01-standard-sg-phone")
        sg.page.get_by_role("link", name="Compare the jurisdictions' profiles").click()
        core = sg.page.locator("section", has=sg.page.get_by_role("heading", name="Common core"))
        assert "required by all 6 profiles" in core.inner_text()
        assert sg.page.locator("tr.agreement-differ", has_text="ops/error_rate").count() == 1
        sg.check("p02-compare-sg-phone")

        sg.page.goto(f"{base}/portal/standard")
        sg.page.get_by_role("link", name="Propose a change").click()
        sg.page.get_by_label("Profile").select_option("sg")
        sg.page.get_by_role("button", name="Start from this profile").click()
        document = sg.page.get_by_label("New version of sg")
        text = document.input_value()
        assert f"version: {SHIPPED}" in text and "threshold: 0.75" in text
        sg.page.get_by_label("Reason").fill("The ethnic-group AUROC floor is stricter than any neighbour's.")
        document.fill(document.input_value().replace("threshold: 0.75", f"threshold: {new}", 1))
        # A preview first: the stored trials under the draft, nothing recorded.
        sg.page.get_by_role("button", name="Preview the re-assessment").click()
        (flipped,) = flipping
        preview = sg.page.locator("#preview").inner_text()
        assert f"{CRITERION}: observed {observed[flipped]!r}: fail → pass" in preview
        assert "Nothing is recorded by a preview" in preview
        assert not (settings.home / "reassessments").exists()
        sg.check("p03-preview-sg-phone")
        sg.page.get_by_role("button", name="Propose and re-assess the stored trials").click()
        # The version was not raised: refused, saying so, with the text kept.
        assert f"must be newer than {SHIPPED}" in sg.page.get_by_role("alert").inner_text()
        sg.check("p03-proposal-refused-sg-phone", status=422)
        document = sg.page.get_by_label("New version of sg")
        assert f"threshold: {new}" in document.input_value()
        document.fill(document.input_value().replace(f"version: {SHIPPED}", f"version: {PROPOSED}"))
        sg.page.get_by_role("button", name="Propose and re-assess the stored trials").click()
        assert "re-assessed under it" in sg.page.get_by_role("status").inner_text()
        proposal_url = sg.page.url.split("?")[0]
        changes = sg.page.locator("section", has=sg.page.get_by_role("heading", name="What changes"))
        assert f">= {new}" in changes.inner_text() and ">= 0.75" in changes.inner_text()
        reassessed = sg.page.locator(
            "section", has=sg.page.get_by_role("heading", name="Stored trials re-assessed under the proposal")
        )
        listed = reassessed.inner_text()
        assert f"{CRITERION}: observed {observed[flipped]!r}" in listed
        for trial_id in TRIALS:
            assert trial_id in listed
        assert listed.count(f"{CRITERION}:") == 1  # the other trial stays on the same side
        assert "You cannot accept it now: it needs an endorsement" in sg.page.locator("main").inner_text()
        sg.check("p04-proposal-made-sg-phone")

        # Thailand's regulator, on a desktop: reads, comments, endorses.
        _sign_in(th.page, base, "th-reg")
        th.page.get_by_role("link", name=f"Proposal 1: sg {SHIPPED} → {PROPOSED}").click()
        th.page.get_by_label("Your comment").fill(
            "Agreed: 0.75 had no source; TH keeps the core's gap criterion."
        )
        th.page.get_by_role("button", name="Add the comment").click()
        assert "Your comment was added" in th.page.get_by_role("status").inner_text()
        th.page.get_by_role("button", name="Endorse this proposal").click()
        assert "Your endorsement was recorded" in th.page.get_by_role("status").inner_text()
        assert th.page.get_by_role("button", name="Endorse this proposal").count() == 0
        # Thailand cannot accept a change to Singapore's profile.
        assert "a regulator of SG accepts changes to its profile" in th.page.locator("main").inner_text()
        th.check("p05-endorsed-th-desktop")

        # Singapore's regulator accepts; the new version is in force.
        sg.page.goto(proposal_url)
        assert "th-reg (TH)" in sg.page.locator("section", has_text="Endorsements").first.inner_text()
        sg.page.get_by_role("button", name=f"Accept: make it version {PROPOSED}").click()
        assert "is now the profile in force" in sg.page.get_by_role("status").inner_text()
        assert sg.page.locator("#status").inner_text() == "accepted"
        sg.check("p06-accepted-sg-phone")
        sg.page.goto(f"{base}/portal/standard")
        row = sg.page.locator("tr", has_text="Singapore")
        assert PROPOSED in row.inner_text()
        sg.check("p07-standard-after-sg-phone")
    finally:
        sg_context.close()
        th_context.close()

    in_force = load_profile("sg", policies_in_force(settings.home))
    assert in_force.version == PROPOSED and in_force.criterion(CRITERION).threshold == new
    with session_scope(settings) as db:
        actions = [(e.actor, e.action) for e in db.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
        assert audit.verify(db).intact
    steps = [
        ("sg-reg", "proposal_created"),
        ("th-reg", "proposal_commented"),
        ("th-reg", "proposal_endorsed"),
        ("sg-reg", "proposal_accepted"),
    ]
    assert [a for a in actions if a[1] in {s[1] for s in steps}] == steps
    # One signed re-assessment per stored report: SG reads every stored trial under its proposal.
    reports = list(settings.reports_dir.glob("*/report.json"))
    assert actions.count(("sg-reg", "reassessment_recorded")) == len(reports) == len(TRIALS) + 1
