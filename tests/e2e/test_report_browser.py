"""The HTML report in a real headless browser (Debian chromium driven by Playwright), phone and desktop.

Never skipped: it needs the ``playwright`` Python package and ``/usr/bin/chromium`` (Debian
``chromium``); Playwright's own browser download is not used. A missing piece fails with what
to install.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.reports import ReportPaths, parse_report, write_report
from orchestrator.reports.sample import sample_report

WIDTHS = (390, 1200)
GOLDEN = Path(__file__).parents[1] / "unit" / "golden"


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ReportPaths]:
    base = tmp_path_factory.mktemp("browser")
    failed = parse_report((GOLDEN / "exit-report-v1.0-failed.json").read_bytes())
    return {
        "sample": write_report(sample_report(), base / "sample", base / "keys", pdf=False),
        "failed": write_report(failed, base / "failed", base / "keys", pdf=False),
    }


def _open(browser: Any, html: str, width: int) -> tuple[Any, list[str], list[str]]:
    page = browser.new_page(viewport={"width": width, "height": 900})
    problems: list[str] = []
    requests: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(Path(html).as_uri(), wait_until="load")
    return page, problems, requests


@pytest.mark.parametrize("width", WIDTHS)
def test_report_renders_with_matrix_figures_and_annexes(
    browser: Any, reports: dict[str, ReportPaths], width: int, tmp_path: Path
) -> None:
    page, problems, requests = _open(browser, reports["sample"].html, width)
    try:
        assert page.title().startswith("Regulatory sandbox exit report")
        assert page.locator("#verdict-matrix").is_visible()
        assert page.locator("#verdict-matrix tbody tr").count() == 6
        figures = page.locator("svg.figure")
        assert figures.count() >= 10
        for i in range(figures.count()):
            figure = figures.nth(i)
            figure.scroll_into_view_if_needed()
            box = figure.bounding_box()
            assert box and box["width"] > 150 and box["height"] > 40, (figure.get_attribute("id"), box)
        for figure_id in ("fig-calibration", "fig-roc", "fig-latency", "fig-drift", "fig-subgroup-country"):
            assert page.locator(f"svg#{figure_id}").count() == 1, figure_id
        annexes = page.locator("section.annex")
        assert annexes.count() == 6
        assert page.locator("section.annex[lang=th] h2").inner_text() == "ภาคผนวก TH: ประเทศไทย"
        # Wide tables scroll inside their own box; the page itself never scrolls sideways on a phone.
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"page is {overflow}px wider than the {width}px viewport"
        page.screenshot(path=str(tmp_path / f"report-{width}.png"), full_page=False)
        assert not problems, problems
        assert all(url.startswith(("file:", "data:")) for url in requests), requests  # self-contained
    finally:
        page.close()


def test_failed_report_renders_its_error(browser: Any, reports: dict[str, ReportPaths]) -> None:
    page, problems, _ = _open(browser, reports["failed"].html, WIDTHS[0])
    try:
        assert page.locator("#error").is_visible()
        assert "BackendUnavailableError" in page.locator("#error").inner_text()
        assert page.locator("#verdict-matrix").is_visible()
        assert page.locator("svg.figure").count() == 0
        assert not problems, problems
    finally:
        page.close()


def test_print_layout_puts_each_annex_on_its_own_page(browser: Any, reports: dict[str, ReportPaths]) -> None:
    page, problems, _ = _open(browser, reports["sample"].html, WIDTHS[1])
    try:
        page.emulate_media(media="print")
        breaks = page.evaluate(
            "[...document.querySelectorAll('section.annex')].map(s => getComputedStyle(s).breakBefore)"
        )
        assert breaks[1:] == ["page"] * 5
        assert not problems, problems
    finally:
        page.close()
