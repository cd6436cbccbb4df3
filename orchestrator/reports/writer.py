"""Write a signed exit report to disk.

``report.json`` (canonical, signed), ``report.html``, ``report.pdf``, ``report.intoto.jsonl``
(in-toto attestation in a DSSE envelope) and ``report.json.sig``. Every file is written to a
temporary name, flushed to disk and renamed into place, and ``report.json`` is renamed last: a
process killed at any moment leaves either no ``report.json`` or one whose signature, renderings
and envelope are all in place (tests/faults/test_report_kill.py kills writers to prove it).
Temporaries of a write that was killed are removed by the next write to the same folder.
Signed reports are immutable: writing different content over one raises unless the caller
explicitly asks to replace it. The PDF is a rendering: when it cannot be produced the signed
evidence is still written, and ``ReportPaths.pdf`` is None.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.reports.envelope import ENVELOPE_NAME, envelope_line
from orchestrator.reports.html import render_html
from orchestrator.reports.model import ExitReport, ReportIntegrityError, canonical_json, parse_report
from orchestrator.reports.signing import (
    encode_signature,
    export_public_key,
    load_or_create_key,
    public_key_fingerprint,
)

JSON_NAME = "report.json"
SIGNATURE_NAME = "report.json.sig"
HTML_NAME = "report.html"
PDF_NAME = "report.pdf"

log = logging.getLogger(__name__)


class ReportPaths(BaseModel):
    """Where the files of one written report are (``json`` is spelled ``json_`` in Python)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    json_: str = Field(alias="json", description="Canonical report JSON (the signed bytes).")
    html: str = Field(description="Standalone HTML rendering.")
    pdf: str | None = Field(default=None, description="PDF rendering, when one was produced.")
    signature: str = Field(description="Base64 Ed25519 signature of the JSON file.")
    public_key: str = Field(description="Issuer public key (PEM) that verifies the signature.")
    envelope: str | None = Field(
        default=None, description="in-toto attestation (DSSE envelope, JSON Lines) of model and report."
    )


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # reports are published documents; mkstemp's 0600 would hide them
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove_temporaries(out_dir: Path) -> None:
    # Only the trial's own writer (or the sweep that finishes an abandoned trial after its
    # process died) writes this folder, so a temporary here is what a killed write left.
    for name in (JSON_NAME, SIGNATURE_NAME, HTML_NAME, PDF_NAME, ENVELOPE_NAME):
        for stale in out_dir.glob(f".{name}.*"):
            stale.unlink(missing_ok=True)


def signable_bytes(report: ExitReport) -> bytes:
    """Canonical bytes, checked to load back into the same report and the same bytes.

    Signing bytes that do not survive their own round trip would produce a report that no
    verifier can confirm, so that is caught here, before anything is written.
    """
    data = canonical_json(report)
    try:
        again = canonical_json(parse_report(data))
    except ReportIntegrityError as exc:
        raise ReportIntegrityError(
            f"trial {report.trial_id}: canonical form does not load back: {exc}"
        ) from exc
    if again != data:
        raise ReportIntegrityError(
            f"trial {report.trial_id}: canonical form is not stable across a round trip"
        )
    return data


def _pdf(report: ExitReport, html: bytes) -> bytes | None:
    from orchestrator.reports.pdf import html_to_pdf

    try:
        return html_to_pdf(html.decode("utf-8"))
    except Exception:
        # A rendering fault must never cost the trial its signed evidence.
        log.exception("trial %s: PDF rendering failed; JSON, HTML and signatures written", report.trial_id)
        return None


def write_report(
    report: ExitReport, out_dir: Path, keys_dir: Path, *, overwrite: bool = False, pdf: bool = True
) -> ReportPaths:
    """Write, sign and attest ``report`` in ``out_dir``; idempotent for identical content."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, sig_path, html_path = out_dir / JSON_NAME, out_dir / SIGNATURE_NAME, out_dir / HTML_NAME
    pdf_path, envelope_path = out_dir / PDF_NAME, out_dir / ENVELOPE_NAME
    data = signable_bytes(report)
    if json_path.exists() and not overwrite and json_path.read_bytes() != data:
        raise ReportIntegrityError(
            f"trial {report.trial_id}: {json_path} already holds a different report; reports are immutable"
        )
    key = load_or_create_key(keys_dir)
    digest, fingerprint = hashlib.sha256(data).hexdigest(), public_key_fingerprint(keys_dir)
    renderings = {HTML_NAME: render_html(report, report_sha256=digest, key_fingerprint=fingerprint).encode()}
    pdf_bytes = _pdf(report, renderings[HTML_NAME]) if pdf else None
    if pdf_bytes is not None:
        renderings[PDF_NAME] = pdf_bytes
    else:
        pdf_path.unlink(missing_ok=True)  # a stale PDF of other content must not sit beside the report
    # Ed25519 is deterministic, so rewriting identical content yields the identical signatures.
    signature = encode_signature(key.sign(data))
    _remove_temporaries(out_dir)
    for name, rendering in renderings.items():
        _atomic_write(out_dir / name, rendering)
    _atomic_write(envelope_path, envelope_line(report, data, key, renderings))
    _atomic_write(sig_path, signature)
    _atomic_write(json_path, data)  # last: its presence means everything else is in place
    return ReportPaths(
        json_=str(json_path),
        html=str(html_path),
        pdf=str(pdf_path) if pdf_bytes is not None else None,
        signature=str(sig_path),
        public_key=str(export_public_key(keys_dir)),
        envelope=str(envelope_path),
    )
