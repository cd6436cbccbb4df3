"""Render an exit report as PDF with WeasyPrint, from the same HTML as the web page.

WeasyPrint needs Pango (Debian ``libpango-1.0-0``, ``libpangoft2-1.0-0``, ``libharfbuzz-subset0``)
and fonts that cover the annex scripts (Debian ``fonts-noto-core``): without them Thai prints as
boxes. It is imported on first use because it takes about a second to load and most callers of
this package (verification, diff) never need it.

Layout is WeasyPrint's cost and it is single-threaded, so a report is laid out in two halves at
once: the report itself in this process and its annexes (sections 10 to 12 and the
jurisdiction annexes, after ``ANNEX_MARKER`` in the page) in a worker process (``pdf_worker``).
The halves are joined with pypdf, outlines included. The annexes carry their own page
numbers ("Annexes · 2 / 14"), as annexes of printed reports usually do. Should the worker be
unavailable, the whole page is laid out here as one document.

WeasyPrint writes an in-page link as a link to a named destination (the element's id) and
drops, with an error, a link whose id is not in the document it lays out. A link from one half
into the other therefore leaves its half as a link to ``ELSEWHERE`` + id, which WeasyPrint
keeps as it is, and becomes a link to the named destination again when the halves are joined:
the joined PDF carries the named destinations of both halves.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from orchestrator.reports.html import render_html
from orchestrator.reports.model import ExitReport

if TYPE_CHECKING:
    from pypdf import PdfWriter
    from weasyprint.text.fonts import FontConfiguration

log = logging.getLogger(__name__)
_FONTS: FontConfiguration | None = None
ANNEX_MARKER = "<!-- regsandbox:pdf-annexes -->"
ELSEWHERE = "regsandbox-anchor:"
# Attribute values as the template engine writes them (always double-quoted, text escaped), so
# "id=" inside report text never matches.
_ID = re.compile(r'\sid="([^"]+)"')
_IN_PAGE_LINK = re.compile(r'(\shref=)"#([^"]+)"')
# A worker that takes longer than this is abandoned and the annexes are laid out here instead.
WORKER_TIMEOUT_S = 180.0
_WORKER: _Worker | None = None
_WORKER_LOCK = threading.Lock()


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
    # The page's stylesheet also serves browsers: WeasyPrint warns about every screen-only rule
    # (overflow-x, width media queries) on every render, which says nothing about the report.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    return weasyprint


def _no_fetching(weasyprint: Any) -> Any:
    # A report is self-contained: nothing it links may be fetched while rendering (only data: URIs).
    fetcher = getattr(weasyprint, "URLFetcher", None)
    if fetcher is not None:  # WeasyPrint >= 66
        return fetcher(allowed_protocols=["data"])

    def refuse(url: str, *args: object, **kwargs: object) -> dict[str, object]:
        raise ValueError(f"an exit report PDF does not fetch {url}")

    return refuse


def layout_pdf(html: str) -> bytes:
    """PDF bytes of a standalone HTML page, laid out as one document in this process."""
    global _FONTS
    weasyprint = _weasyprint()
    from weasyprint.text.fonts import FontConfiguration

    # One font configuration per process: building it scans fontconfig, which costs more than
    # laying out a report.
    _FONTS = _FONTS or FontConfiguration()
    document = weasyprint.HTML(string=html, url_fetcher=_no_fetching(weasyprint), media_type="print")
    # A fixed identifier (instead of a random one) keeps the PDF of a report reproducible.
    return bytes(document.write_pdf(font_config=_FONTS, pdf_identifier=b"regsandbox-exit-report"))


def _links_across(page: str, other: str) -> str:
    """``page`` with its links to ids that only ``other`` has pointing at ``ELSEWHERE`` instead."""
    here, there = set(_ID.findall(page)), set(_ID.findall(other))

    def retarget(link: re.Match[str]) -> str:
        attribute, anchor = link.groups()
        if anchor in here or anchor not in there:
            return link.group(0)
        return f'{attribute}"{ELSEWHERE}{anchor}"'

    return _IN_PAGE_LINK.sub(retarget, page)


def split_annexes(html: str) -> tuple[str, str] | None:
    """The page cut at ``ANNEX_MARKER`` into two standalone pages sharing the same head.

    A link into the other page points at ``ELSEWHERE`` + id; ``join_pdfs`` points it back.
    """
    cut, body = html.find(ANNEX_MARKER), html.find("<main>")
    if cut < 0 or body < 0 or cut < body:
        return None
    head = html[: body + len("<main>")]
    report, annexes = html[:cut] + "</main>\n</body>\n</html>\n", head + html[cut:]
    return _links_across(report, annexes), _links_across(annexes, report)


def _workers_wanted() -> bool:
    from orchestrator.settings import get_settings

    return get_settings().pdf_workers > 0 and (os.cpu_count() or 1) > 1


class _Worker:
    """One ``pdf_worker`` process and the thread that talks to it (one request at a time)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.reports.pdf_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.calls = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pdf-worker")

    def submit(self, html: str) -> Future[bytes]:
        return self.calls.submit(self._roundtrip, html.encode("utf-8"))

    def _roundtrip(self, request: bytes) -> bytes:
        from orchestrator.reports.pdf_worker import read_frame, write_frame

        assert self.process.stdin and self.process.stdout  # noqa: S101 - both are pipes
        write_frame(self.process.stdin, request)
        answer = read_frame(self.process.stdout)
        if answer is None:
            raise RuntimeError(f"PDF worker exited (code {self.process.poll()})")
        if answer[:1] != b"\0":
            raise RuntimeError(f"PDF worker: {answer[1:].decode(errors='replace')}")
        return answer[1:]

    def end(self) -> None:
        # Killing the process also ends a roundtrip blocked on it: its read sees end of file.
        with contextlib.suppress(OSError):
            self.process.kill()
        self.calls.shutdown(wait=False, cancel_futures=True)


def _worker() -> _Worker:
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None or _WORKER.process.poll() is not None:
            _WORKER = _Worker()
        return _WORKER


def _drop_worker() -> None:
    global _WORKER
    with _WORKER_LOCK:
        worker, _WORKER = _WORKER, None
    if worker is not None:
        worker.end()


def prewarm() -> None:
    """Start the worker and let it load WeasyPrint and the fonts now, so the report need not wait."""
    try:
        if _workers_wanted():
            _worker().submit('<p lang="th">ภาษาไทย</p>')
    except Exception as exc:  # noqa: BLE001 - warming up is an optimisation, never a failure
        log.debug("PDF worker not started: %s", exc)


def _annexes_elsewhere(html: str) -> Future[bytes] | None:
    try:
        return _worker().submit(html)
    except Exception as exc:  # noqa: BLE001 - the annexes are then laid out here
        log.warning("PDF worker unavailable (%s); laying out the annexes in this process", exc)
        _drop_worker()
        return None


def _collect(future: Future[bytes] | None, html: str) -> bytes:
    if future is not None:
        try:
            return future.result(timeout=WORKER_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - broken or stuck worker: do the work here
            log.warning(
                "PDF worker failed (%s: %s); laying out the annexes in this process", type(exc).__name__, exc
            )
            _drop_worker()
    return layout_pdf(html)


def _link_named_destinations(writer: PdfWriter) -> None:
    """Turn each link to ``ELSEWHERE`` + id into a link to that id's named destination."""
    from pypdf.generic import NameObject, TextStringObject

    names = set(writer.named_destinations)
    for page in writer.pages:
        annotations = page.get("/Annots")
        if annotations is None:
            continue
        annotations = annotations.get_object()
        for ref in list(annotations):
            link = ref.get_object()
            action = link.get("/A")
            uri = action.get_object().get("/URI") if action is not None else None
            if not isinstance(uri, str) or not uri.startswith(ELSEWHERE):
                continue
            anchor = unquote(uri[len(ELSEWHERE) :])
            if anchor not in names:  # the element was never laid out (display: none)
                log.warning("PDF link to #%s dropped: no such destination in the report", anchor)
                annotations.remove(ref)
                continue
            del link["/A"]
            link[NameObject("/Dest")] = TextStringObject(anchor)


def join_pdfs(first: bytes, second: bytes) -> bytes:
    """One PDF of the pages, outlines, named destinations and metadata of ``first`` then ``second``."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    head = PdfReader(io.BytesIO(first))
    writer.append(head)
    writer.append(PdfReader(io.BytesIO(second)))
    _link_named_destinations(writer)
    if head.metadata:
        writer.add_metadata(dict(head.metadata))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def html_to_pdf(html: str) -> bytes:
    """PDF bytes of a report page: its two halves laid out at once where a worker can help."""
    halves = split_annexes(html) if _workers_wanted() else None
    if halves is None:
        return layout_pdf(html)
    report, annexes = halves
    pending = _annexes_elsewhere(annexes)
    first = layout_pdf(report)
    return join_pdfs(first, _collect(pending, annexes))


def render_pdf(
    report: ExitReport, *, report_sha256: str | None = None, key_fingerprint: str | None = None
) -> bytes:
    """The report as PDF: the HTML page laid out for A4, with every jurisdiction annex."""
    return html_to_pdf(render_html(report, report_sha256=report_sha256, key_fingerprint=key_fingerprint))
