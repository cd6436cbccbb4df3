"""Render an exit report as PDF with WeasyPrint, from the same HTML as the web page.

WeasyPrint needs Pango (Debian ``libpango-1.0-0``, ``libpangoft2-1.0-0``, ``libharfbuzz-subset0``)
and fonts that cover the annex scripts (Debian ``fonts-noto-core``): without them Thai prints as
boxes. It is imported on first use because it takes about a second to load and most callers of
this package (verification, diff) never need it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from orchestrator.reports.html import render_html
from orchestrator.reports.model import ExitReport

if TYPE_CHECKING:
    from weasyprint.text.fonts import FontConfiguration

log = logging.getLogger(__name__)
_FONTS: FontConfiguration | None = None


class PdfUnavailableError(RuntimeError):
    """WeasyPrint or the system libraries it needs cannot be loaded here."""


def _weasyprint() -> Any:
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: Pango or HarfBuzz shared libraries missing
        raise PdfUnavailableError(
            f"PDF rendering needs WeasyPrint and Pango (pip install weasyprint; apt-get install "
            f"libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-core): {exc}"
        ) from exc
    return weasyprint


def _no_fetching(weasyprint: Any) -> Any:
    # A report is self-contained: nothing it links may be fetched while rendering (only data: URIs).
    fetcher = getattr(weasyprint, "URLFetcher", None)
    if fetcher is not None:  # WeasyPrint >= 66
        return fetcher(allowed_protocols=["data"])

    def refuse(url: str, *args: object, **kwargs: object) -> dict[str, object]:
        raise ValueError(f"an exit report PDF does not fetch {url}")

    return refuse


def html_to_pdf(html: str) -> bytes:
    """PDF bytes of a standalone HTML page."""
    global _FONTS
    weasyprint = _weasyprint()
    from weasyprint.text.fonts import FontConfiguration

    # One font configuration per process: building it scans fontconfig, which costs more than
    # laying out a report.
    _FONTS = _FONTS or FontConfiguration()
    document = weasyprint.HTML(string=html, url_fetcher=_no_fetching(weasyprint), media_type="print")
    # A fixed identifier (instead of a random one) keeps the PDF of a report reproducible.
    return bytes(document.write_pdf(font_config=_FONTS, pdf_identifier=b"regsandbox-exit-report"))


def render_pdf(
    report: ExitReport, *, report_sha256: str | None = None, key_fingerprint: str | None = None
) -> bytes:
    """The report as PDF: the HTML page laid out for A4, with every jurisdiction annex."""
    return html_to_pdf(render_html(report, report_sha256=report_sha256, key_fingerprint=key_fingerprint))
