"""Every internal link of the report PDF lands somewhere, however the PDF was laid out.

The report half links into the annexes (section 11, section 12) that the worker lays out as a
separate document, so those links only resolve if the join carries them across. Real WeasyPrint,
a real worker process, and pypdf reading the result back.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest

import orchestrator.reports.pdf as pdf_module
from orchestrator.reports import ExitReport, render_html
from orchestrator.reports.pdf import ANNEX_MARKER, join_pdfs, layout_pdf, render_pdf, split_annexes
from tests.pdf_links import links as _links


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _weasyprint_errors() -> Iterator[list[logging.LogRecord]]:
    """ERROR records of WeasyPrint emitted in this process, whatever logging the project set up."""
    logger = logging.getLogger("weasyprint")
    handler, level = _Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.ERROR)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _check(pdf: bytes, expected: set[str]) -> dict[str, int]:
    landed, unresolved, external = _links(pdf)
    assert not unresolved, f"internal links without a destination in the PDF: {unresolved}"
    assert set(landed) == expected, "every in-page link of the HTML is a link of the PDF"
    assert all(urlsplit(uri).scheme in ("http", "https") for uri in external), external
    return landed


def test_every_internal_link_resolves_in_the_joined_and_the_single_pdf(
    report: ExitReport,
    workers,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = set(re.findall(r'href="#([^"]+)"', render_html(report)))
    assert {"contract-annex", "evidence-tables"} <= expected

    workers(1)
    with _weasyprint_errors() as errors:
        joined = render_pdf(report)
    assert not [r.getMessage() for r in errors]
    landed = _check(joined, expected)

    # The annexes laid out here instead of in the worker: their log is this process's, same bytes.
    def no_worker() -> None:
        raise OSError("no worker in this test")

    with monkeypatch.context() as patch, _weasyprint_errors() as errors:
        patch.setattr(pdf_module, "_worker", no_worker)
        assert render_pdf(report) == joined
    assert not [r.getMessage() for r in errors]

    workers(0)
    with _weasyprint_errors() as errors:
        single = render_pdf(report)
    assert not [r.getMessage() for r in errors]
    assert _check(single, expected) == landed  # the joined links land on the same pages


def test_links_cross_the_cut_both_ways_and_a_link_to_nothing_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    html = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><main>'
        '<h1 id="top">Report</h1><p><a href="#far">to the annex</a> <a href="#hidden">to nothing</a></p>'
        f"{ANNEX_MARKER}"
        '<h2 id="far" style="break-before: page">Annex</h2><p><a href="#top">back</a></p>'
        '<p id="hidden" style="display: none">never laid out</p>'
        "</main></body></html>"
    )
    halves = split_annexes(html)
    assert halves is not None
    with _weasyprint_errors() as errors:
        joined = join_pdfs(*map(layout_pdf, halves))
    assert not [r.getMessage() for r in errors]
    landed, unresolved, external = _links(joined)
    assert landed == {"far": 1, "top": 0} and not unresolved and not external
    assert "PDF link to #hidden dropped" in caplog.text
