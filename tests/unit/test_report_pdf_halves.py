"""The PDF is laid out in two halves at once (report here, annexes in a worker) and joined.

Real WeasyPrint in a real spawned worker process; the joined file is read back with pypdf.
"""

from __future__ import annotations

import io
import os
import re
import signal

import pytest
from pypdf import PdfReader

import orchestrator.reports.pdf as pdf_module
from orchestrator.reports import ExitReport, render_html
from orchestrator.reports.formatting import css_string
from orchestrator.reports.pdf import ANNEX_MARKER, layout_pdf, render_pdf, split_annexes

FOOTER = re.compile(r"(Annexes · )?(\d+) / (\d+)$")


def _footers(pdf: bytes) -> list[tuple[str, int, int]]:
    out = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        last = [line for line in page.extract_text().splitlines() if line.strip()][-1]
        match = FOOTER.search(last)
        assert match, f"no page footer in {last!r}"
        out.append((match.group(1) or "", int(match.group(2)), int(match.group(3))))
    return out


def _outline(pdf: bytes) -> list[str]:
    """Every bookmark title, depth-first (the annexes' bookmarks follow the report's)."""

    def walk(items: list) -> list[str]:  # type: ignore[type-arg]
        return [t for item in items for t in (walk(item) if isinstance(item, list) else [item.title])]

    return walk(PdfReader(io.BytesIO(pdf)).outline)


def test_the_page_splits_into_two_standalone_pages_at_the_marker(report: ExitReport) -> None:
    html = render_html(report)
    assert html.count(ANNEX_MARKER) == 1
    halves = split_annexes(html)
    assert halves is not None
    first, second = halves
    assert 'id="results"' in first and 'id="reproducibility"' not in first
    assert 'id="reproducibility"' in second and 'id="annex-TH"' in second or "annex" in second
    for half in halves:  # each is a whole page with the report's head and styles
        assert half.startswith("<!DOCTYPE html>") and "<style>" in half and half.rstrip().endswith("</html>")
    assert split_annexes("<html><body><main><p>no marker</p></main></body></html>") is None


def test_report_pages_then_annex_pages_each_numbered_on_their_own(report: ExitReport, workers) -> None:  # type: ignore[no-untyped-def]
    workers(1)
    pdf = render_pdf(report)
    footers = _footers(pdf)
    body = [f for f in footers if not f[0]]
    annex = [f for f in footers if f[0]]
    assert body and annex and footers == body + annex  # the report first, then its annexes
    assert [n for _, n, _ in body] == list(range(1, len(body) + 1)) and {t for *_, t in body} == {len(body)}
    assert [n for _, n, _ in annex] == list(range(1, len(annex) + 1)) and {t for *_, t in annex} == {
        len(annex)
    }
    titles = _outline(pdf)
    assert titles.index("10. Reproducibility annex") < titles.index("Jurisdiction annexes")
    assert render_pdf(report) == pdf  # reproducible: the signed envelope names these exact bytes


def test_without_a_worker_the_same_pages_come_from_one_document(report: ExitReport, workers) -> None:  # type: ignore[no-untyped-def]
    workers(1)
    joined = render_pdf(report)
    workers(0)
    single = render_pdf(report)
    assert single != joined
    # Same pages and bookmarks; one document numbers its pages straight through.
    assert len(_footers(single)) == len(_footers(joined))
    assert _outline(single) == _outline(joined)
    assert [t for *_, t in _footers(single)] == [len(_footers(single))] * len(_footers(single))


def test_a_stuck_worker_is_ended_and_the_annexes_laid_out_here(
    report: ExitReport,
    workers,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    workers(1)
    expected = render_pdf(report)
    worker = pdf_module._worker()
    os.kill(worker.process.pid, signal.SIGSTOP)  # alive, holding the request, answering nothing
    monkeypatch.setattr(pdf_module, "WORKER_TIMEOUT_S", 0.5)
    assert render_pdf(report) == expected
    assert "PDF worker failed (TimeoutError" in caplog.text
    assert worker.process.wait(timeout=10) == -signal.SIGKILL  # ended, not left behind
    assert pdf_module._worker() is not worker  # the next report starts a fresh one


def test_a_worker_that_dies_mid_request_costs_nothing_but_time(
    report: ExitReport,
    workers,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    workers(1)
    expected = render_pdf(report)
    worker = pdf_module._worker()
    pending = worker.submit("<p>first</p>")
    os.kill(worker.process.pid, signal.SIGKILL)
    with pytest.raises(RuntimeError, match="PDF worker exited"):
        pending.result(timeout=30)
    assert render_pdf(report) == expected  # a new worker is started for this one
    assert "laying out the annexes in this process" not in caplog.text


def test_the_running_footer_string_cannot_break_out_of_the_style_element() -> None:
    hostile = 'x"; } </style><script>alert(1)</script>\\'
    quoted = css_string(hostile)
    assert "</style>" not in quoted and quoted.startswith('"') and quoted.endswith('"')
    assert '\\"' in quoted and "\\\\" in quoted
    pdf = layout_pdf(f"<style>@page {{ @bottom-left {{ content: {quoted}; }} }}</style><p>body</p>")
    assert pdf.startswith(b"%PDF-")
