"""The PDF rendering: written beside the JSON, real text in Thai and Vietnamese, fonts embedded.

These tests never skip: they need WeasyPrint (pip ``weasyprint``) with Pango, ``fonts-noto-core``
and ``poppler-utils`` (pdftotext, pdffonts, pdftoppm). A missing piece fails with what to install.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
from pypdf import PdfReader

from orchestrator.reports import ExitReport, ReportPaths, verify, verify_envelope, write_report
from orchestrator.reports.annex import annexes
from orchestrator.reports.envelope import read_statement
from orchestrator.reports.i18n import catalogue
from orchestrator.reports.sample import sample_report

POPPLER = ("pdftotext", "pdffonts", "pdftoppm")


def _tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: apt-get install poppler-utils"
    return found


def _squash(text: str) -> str:
    # Line breaks and justification spaces fall differently in a PDF; Thai has no spaces at all.
    return "".join(unicodedata.normalize("NFC", text).split())


def _base_letters(text: str) -> str:
    """Text without combining marks (Thai tone marks, above and below vowels, nikhahit).

    WeasyPrint maps each glyph to one Unicode string, the first it was drawn for, and writes no
    /ActualText; a Thai mark glyph reused in another cluster (sara am, a tone mark over it) can
    therefore extract as a neighbouring mark or none. Letters, their order and the spacing
    vowels are exact, and that is what is compared; the HTML and the JSON carry the exact text.
    """
    return "".join(
        c
        for c in unicodedata.normalize("NFKD", _squash(text))
        if not unicodedata.combining(c) and unicodedata.category(c) != "Mn"
    )


@pytest.fixture(scope="module")
def report() -> ExitReport:
    return sample_report()


@pytest.fixture(scope="module")
def written(report: ExitReport, tmp_path_factory: pytest.TempPathFactory) -> ReportPaths:
    base = tmp_path_factory.mktemp("pdf")
    return write_report(report, base / "out", base / "keys")


@pytest.fixture(scope="module")
def pdf_text(written: ReportPaths, report: ExitReport) -> str:
    """The PDF's text without the running footers, which land mid-paragraph at page breaks."""
    assert written.pdf, "write_report produced no PDF: is WeasyPrint installed (pip install weasyprint)?"
    text = subprocess.run(
        [_tool("pdftotext"), "-enc", "UTF-8", written.pdf, "-"], check=True, capture_output=True, text=True
    ).stdout
    footer = re.compile(rf"^(\f?{re.escape(report.trial_id)}|\f?(Annexes · )?\d+ / \d+)$")
    return "\n".join(line for line in text.splitlines() if not footer.match(line.strip()))


def test_report_has_json_html_pdf_signature_and_attestation(written: ReportPaths) -> None:
    assert written.pdf and Path(written.pdf).read_bytes().startswith(b"%PDF-")
    assert verify(written.json_, written.signature, written.public_key)
    assert verify_envelope(written.envelope or "", written.public_key)
    names = [s["name"] for s in read_statement(written.envelope or "")["subject"]]
    assert names[-3:] == ["report.json", "report.html", "report.pdf"]
    reader = PdfReader(written.pdf)
    assert len(reader.pages) >= 10
    assert reader.metadata and "diabetes-risk-screening" in (reader.metadata.title or "")


def _annex_strings(report: ExitReport, language: str) -> list[str]:
    t = catalogue(language)
    annex = next(x for x in annexes(report) if x.language == language)
    return [
        annex.title,
        t("heading.summary"),
        t("annex.authoritative"),
        t("annex.translation"),
        t("heading.annex_results"),
        annex.risk,
        *annex.summary,
        *annex.post_market,
        *(row.outcome_text for row in annex.rows),
    ]


def test_pdf_carries_the_vietnamese_annex_text_exactly(report: ExitReport, pdf_text: str) -> None:
    text = _squash(pdf_text)
    missing = [s for s in _annex_strings(report, "vi") if _squash(s) not in text]
    assert not missing, f"Vietnamese annex text not extractable from the PDF: {missing[:3]}"


def test_pdf_carries_the_thai_annex_text_as_real_text(report: ExitReport, pdf_text: str) -> None:
    strings = _annex_strings(report, "th")
    exact = _squash(pdf_text)
    # Headings without marks reused across clusters come out exactly.
    assert _squash(strings[0]) in exact and _squash(catalogue("th")("label.verdict")) in exact
    text = _base_letters(pdf_text)
    missing = [s for s in strings if _base_letters(s) not in text]
    assert not missing, f"Thai annex text not extractable from the PDF: {missing[:3]}"
    assert sum("\u0e00" <= c <= "\u0e7f" for c in pdf_text) > 1000


def test_thai_glyphs_come_from_an_embedded_noto_thai_font(written: ReportPaths) -> None:
    assert written.pdf
    fonts = subprocess.run(
        [_tool("pdffonts"), written.pdf], check=True, capture_output=True, text=True
    ).stdout
    assert "Noto-Sans-Thai" in fonts or "NotoSansThai" in fonts, fonts
    thai_heading = _squash(catalogue("th")("heading.annex", code="TH", name="ประเทศไทย"))
    reader = PdfReader(written.pdf)
    page_no = next(i for i, page in enumerate(reader.pages) if thai_heading in _squash(page.extract_text()))
    resources = reader.pages[page_no]["/Resources"]["/Font"]
    base_fonts = {str(resources[name].get_object()["/BaseFont"]) for name in resources}
    assert any("Thai" in name for name in base_fonts), base_fonts
    for line in fonts.splitlines()[2:]:
        assert " yes " in line, f"font not embedded: {line}"  # emb column: nothing left to the reader's fonts


def test_thai_annex_page_renders_to_an_image_with_ink(written: ReportPaths, tmp_path: Path) -> None:
    from PIL import Image

    assert written.pdf
    thai_heading = _squash(catalogue("th")("heading.annex", code="TH", name="ประเทศไทย"))
    reader = PdfReader(written.pdf)
    page_no = 1 + next(
        i for i, page in enumerate(reader.pages) if thai_heading in _squash(page.extract_text())
    )
    prefix = tmp_path / "th"
    subprocess.run(
        [
            _tool("pdftoppm"),
            "-png",
            "-r",
            "60",
            "-f",
            str(page_no),
            "-l",
            str(page_no),
            written.pdf,
            str(prefix),
        ],
        check=True,
    )
    (image_path,) = tmp_path.glob("th*.png")
    image = Image.open(image_path).convert("L")
    dark = sum(1 for value in image.getdata() if value < 128)
    assert dark > 0.01 * image.width * image.height  # a page of text, not a blank one


def test_a_failing_pdf_renderer_costs_no_signed_evidence(
    report: ExitReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orchestrator.reports.pdf as pdf_module

    out = tmp_path / "out"
    out.mkdir()
    (out / "report.pdf").write_bytes(b"%PDF- stale")

    def broken(*args: object, **kwargs: object) -> bytes:
        raise OSError("cannot load library 'libpango-1.0-0'")

    monkeypatch.setattr(pdf_module, "html_to_pdf", broken)
    paths = write_report(report, out, tmp_path / "keys")
    assert paths.pdf is None and not (out / "report.pdf").exists()
    assert verify(paths.json_, paths.signature, paths.public_key)
    assert verify_envelope(paths.envelope or "", paths.public_key)
    assert all(tool for tool in map(shutil.which, POPPLER)), "poppler-utils is missing"
