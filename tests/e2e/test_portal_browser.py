"""The regulators' portal in a real browser on a phone-sized screen (Debian chromium via Playwright).

A Thai regulator signs in on a 375 x 812 viewport, opens a trial, downloads the PDF and the JSON,
verifies the JSON by upload, and records a decision, against the platform served by uvicorn on a
loopback port. Every page is checked for what a phone user and an assistive technology need: no
sideways scrolling, a label on every input, a visible skip link, no console errors (a Content-
Security-Policy violation would be one). Screenshots of each step are kept in the test's folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from orchestrator.api.app import create_app
from orchestrator.reports.writer import JSON_NAME, PDF_NAME
from orchestrator.settings import Settings
from tests.portal.seed import PASSWORD, seed, write_sample

pytestmark = pytest.mark.slow
PHONE = {"width": 375, "height": 812}
# Set to a folder (e.g. docs/screenshots) to keep the screenshots beyond the test run.
SHOTS_ENV = "REGSANDBOX_PORTAL_SCREENSHOTS"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings, str]]:
    base = tmp_path_factory.mktemp("portal-browser")
    settings = Settings(home=base / "home")
    trial_id = seed(settings, write_sample(base / "written", pdf=True))
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
    yield f"http://127.0.0.1:{port}", settings, trial_id
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


class Phone:
    """One page on a phone-sized screen, checked and photographed at each step."""

    def __init__(self, page: Any, shots: Path) -> None:
        self.page, self.shots, self.problems = page, shots, []
        page.on("console", lambda m: self.problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: self.problems.append(str(e)))

    def check(self, name: str, status: int = 200) -> None:
        page = self.page
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name}: the page is {overflow}px wider than the phone"
        assert page.evaluate("document.documentElement.lang") == "en"
        unlabelled = page.evaluate(
            """[...document.querySelectorAll('input, select, textarea')]
               .filter(e => e.type !== 'hidden' && e.labels.length === 0).map(e => e.name)"""
        )
        assert unlabelled == [], f"{name}: inputs without a label: {unlabelled}"
        assert page.locator("h1").count() == 1, f"{name}: one main heading per page"
        page.screenshot(path=str(self.shots / f"{name}.png"))  # what the phone shows
        page.screenshot(path=str(self.shots / f"{name}-full.png"), full_page=True)
        # Chromium logs every document answered with an error status; only an expected one may appear.
        expected = f"the server responded with a status of {status}"
        problems = [p for p in self.problems if status == 200 or expected not in p]
        assert not problems, f"{name}: {problems}"
        self.problems.clear()


def test_a_regulator_works_through_the_portal_on_a_phone(
    served: tuple[str, Settings, str], browser: Any, tmp_path: Path
) -> None:
    base, settings, trial_id = served
    shots = Path(os.environ.get(SHOTS_ENV) or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=PHONE, accept_downloads=True, is_mobile=True, has_touch=True)
    phone = Phone(context.new_page(), shots)
    page = phone.page
    try:
        page.goto(f"{base}/portal/trials/{trial_id}")
        assert page.url.startswith(f"{base}/portal/login?next=")
        page.keyboard.press("Tab")  # the first stop is the skip link, and it shows itself
        skip = page.locator("a.skip")
        assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
        assert skip.bounding_box()["y"] >= 0
        phone.check("01-sign-in")

        page.get_by_label("Username").fill("th-reg")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/portal/trials/{trial_id}")  # back where the link pointed
        assert page.get_by_role("heading", name="Verdict for Thailand (TH)").is_visible()
        phone.check("03-trial")

        page.get_by_role("navigation", name="Portal").get_by_role("link", name="Trials").click()
        card = page.locator("li.card", has_text="diabetes-risk-screening")
        assert "Thailand: ✖ Fail" in card.locator(".verdict-line").inner_text()
        phone.check("02-trials")
        card.get_by_role("link", name="diabetes-risk-screening").click()
        page.wait_for_url(f"{base}/portal/trials/{trial_id}")

        stored_dir = settings.reports_dir / trial_id
        with page.expect_download() as pdf:
            page.get_by_role("link", name="Report, PDF").click()
        assert Path(pdf.value.path()).read_bytes() == (stored_dir / PDF_NAME).read_bytes()
        assert pdf.value.suggested_filename == f"{trial_id}.{PDF_NAME}"
        with page.expect_download() as json_download:
            page.get_by_role("link", name="Report, JSON (the signed document)").click()
        downloaded = Path(json_download.value.path())
        assert downloaded.read_bytes() == (stored_dir / JSON_NAME).read_bytes()

        page.get_by_role("link", name="Read the full report").click()
        assert page.title().startswith("Regulatory sandbox exit report")
        phone.check("04-report")
        page.go_back()

        page.get_by_role("link", name="Verify a report").click()
        page.get_by_label("Report file (JSON)").set_input_files(str(downloaded))
        page.get_by_role("button", name="Verify").click()
        result = page.locator("section.result")
        assert result.locator("h2").inner_text().endswith("Intact")
        assert hashlib.sha256(downloaded.read_bytes()).hexdigest() in result.inner_text()
        phone.check("05-verify")

        page.goto(f"{base}/portal/trials/{trial_id}")
        page.get_by_role("button", name="Record and sign the decision").click()
        # The browser's own check stops a decision without a choice before it leaves the phone.
        assert page.url == f"{base}/portal/trials/{trial_id}"
        page.get_by_label("Approve with conditions").check()
        page.get_by_role("button", name="Record and sign the decision").click()
        alert = page.get_by_role("alert")
        assert "Write the conditions in the comment." in alert.inner_text()
        box = alert.bounding_box()  # the refused form comes back scrolled to its error, not to the top
        assert box and 0 <= box["y"] < PHONE["height"], box
        assert page.title().startswith("Error: ")
        phone.check("06-decision-error", status=422)
        page.get_by_label("Comment").fill("Recalibrate on the Thai population and report AUROC by ethnicity.")
        page.get_by_role("button", name="Record and sign the decision").click()
        assert "was recorded and signed" in page.get_by_role("status").inner_text()
        assert page.locator("li.decision").first.get_by_text("Signature verifies").is_visible()
        phone.check("07-decision-recorded")
    finally:
        context.close()
