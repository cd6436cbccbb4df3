"""Other sandboxes this one recognises: their issuer keys, and the reports imported from them.

A trusted issuer is a name and an Ed25519 public key, kept as ``<home>/trust/<name>.pem``. A report
from another sandbox is imported only when a trusted key verifies its signature over the exact
bytes (and its in-toto attestation, when present). Which key to try is read from the
attestation's ``keyid``, so a refusal can say whether the issuer is unknown or the bytes were
altered; without an attestation every trusted key is tried. Imported reports are stored apart from
this platform's own, under ``<home>/imported/<trial id>/``, with a note of the issuer, and are
verified again whenever they are read: removing trust in an issuer withdraws its reports too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from orchestrator.errors import NotFoundError, PolicyError, TrustError
from orchestrator.records import utcnow
from orchestrator.reports.envelope import ENVELOPE_NAME, envelope_problem, keyid, read_statement
from orchestrator.reports.model import ExitReport, ReportIntegrityError, load_report
from orchestrator.reports.signing import export_public_key, load_public_key, verification_problem
from orchestrator.reports.writer import JSON_NAME, SIGNATURE_NAME
from orchestrator.settings import Settings

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
LOCAL = "local"
ISSUER_NOTE = "issuer.json"


class TrustedIssuer(BaseModel):
    """Another sandbox whose reports this one accepts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Local name of the other sandbox, e.g. th-fda-sandbox.")
    fingerprint: str = Field(description="sha256 of the raw Ed25519 public key.")
    key_path: str = Field(description="Where the public key (PEM) is kept.")


class VerifiedReport(BaseModel):
    """A report whose bytes a known key verifies: this platform's own, or a trusted sandbox's."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    trial_id: str
    folder: str = Field(description="Folder holding report.json and its signature.")
    sha256: str = Field(description="sha256 of report.json as signed.")
    issuer: str = Field(description="'local' for this platform, else the trusted issuer's name.")
    fingerprint: str = Field(description="sha256 of the issuer's public key.")
    report: ExitReport


def trust_dir(settings: Settings) -> Path:
    return settings.home / "trust"


def imported_dir(settings: Settings) -> Path:
    return settings.home / "imported"


def _fingerprint(path: Path) -> str:
    return keyid(load_public_key(path))


def trusted(settings: Settings) -> list[TrustedIssuer]:
    """Every trusted issuer, by name."""
    folder = trust_dir(settings)
    return [
        TrustedIssuer(name=path.stem, fingerprint=_fingerprint(path), key_path=str(path))
        for path in sorted(folder.glob("*.pem"))
    ]


def audit_event(
    settings: Settings,
    action: str,
    target: str,
    db: Session | None = None,
    actor: str = "cli",
    **detail: object,
) -> None:
    """Audit in the caller's transaction when it has one (the API), else in one of its own (the CLI)."""
    from orchestrator.store import audit, session_scope

    if db is not None:
        audit.record(db, actor, action, target, **detail)
        return
    with session_scope(settings) as own:
        audit.record(own, actor, action, target, **detail)


def add_trusted(settings: Settings, name: str, key_file: Path) -> TrustedIssuer:
    """Trust ``key_file`` (an Ed25519 public key, PEM) as the issuer key of sandbox ``name``."""
    if not NAME.match(name):
        raise PolicyError(f"name: {name!r} must be 1-63 lower-case letters, digits and dashes")
    try:
        key = load_public_key(key_file)
    except OSError as exc:
        raise TrustError(f"key: cannot read {key_file}: {exc.strerror}") from exc
    except ReportIntegrityError as exc:
        raise TrustError(f"key: {exc}") from exc
    fingerprint = keyid(key)
    if fingerprint == _fingerprint(export_public_key(settings.keys_dir)):
        raise TrustError("key: this is the platform's own issuer key; its reports need no trust entry")
    for issuer in trusted(settings):
        if issuer.name == name:
            raise TrustError(f"name: {name!r} is already trusted ({issuer.fingerprint}); remove it first")
        if issuer.fingerprint == fingerprint:
            raise TrustError(f"key: already trusted as {issuer.name!r}")
    folder = trust_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.pem"
    path.write_bytes(Path(key_file).read_bytes())
    audit_event(settings, "trust_added", f"issuer:{name}", fingerprint=fingerprint)
    return TrustedIssuer(name=name, fingerprint=fingerprint, key_path=str(path))


def remove_trusted(settings: Settings, name: str) -> TrustedIssuer:
    """Stop trusting ``name``; reports imported from it stop verifying here."""
    for issuer in trusted(settings):
        if issuer.name == name:
            Path(issuer.key_path).unlink()
            audit_event(settings, "trust_removed", f"issuer:{name}", fingerprint=issuer.fingerprint)
            return issuer
    known = ", ".join(i.name for i in trusted(settings)) or "none"
    raise NotFoundError(f"name: no trusted issuer {name!r} (trusted: {known})")


def _keys(settings: Settings) -> dict[str, tuple[str, Path]]:
    """Fingerprint -> (issuer name, key path) for the local key and every trusted one."""
    own = export_public_key(settings.keys_dir)
    keys = {_fingerprint(own): (LOCAL, own)}
    for issuer in trusted(settings):
        keys[issuer.fingerprint] = (issuer.name, Path(issuer.key_path))
    return keys


def _claimed_keyid(folder: Path) -> str | None:
    envelope = folder / ENVELOPE_NAME
    if not envelope.is_file():
        return None
    try:
        raw = json.loads(next(line for line in envelope.read_bytes().splitlines() if line.strip()))
        found = raw["signatures"][0]["keyid"]
        read_statement(envelope)  # a malformed envelope is reported by envelope_problem below
    except (ValueError, KeyError, IndexError, TypeError, StopIteration):
        return None
    return found if isinstance(found, str) else None


def verify_folder(settings: Settings, folder: Path) -> VerifiedReport:
    """The report in ``folder``, verified by a key this platform knows; ``TrustError`` says why not."""
    folder = Path(folder)
    report_path, sig_path = folder / JSON_NAME, folder / SIGNATURE_NAME
    for needed in (report_path, sig_path):
        if not needed.is_file():
            raise TrustError(f"{folder}: no {needed.name}; a report is imported with its signature")
    keys = _keys(settings)
    claimed = _claimed_keyid(folder)
    if claimed is not None and claimed not in keys:
        raise TrustError(
            f"{folder}: signed by an untrusted issuer ({claimed}); trust its key first "
            "(regsandbox trust add NAME KEY.pem) after checking the fingerprint with its operator"
        )
    candidates = {claimed: keys[claimed]} if claimed is not None else keys
    problems = []
    for fingerprint, (name, key_path) in candidates.items():
        problem = verification_problem(report_path, sig_path, key_path)
        if problem is None and (folder / ENVELOPE_NAME).is_file():
            found = envelope_problem(folder / ENVELOPE_NAME, key_path, report_path)
            problem = f"attestation: {found}" if found else None
        if problem is None:
            data = report_path.read_bytes()
            return VerifiedReport(
                trial_id=load_report(report_path).trial_id,
                folder=str(folder),
                sha256=hashlib.sha256(data).hexdigest(),
                issuer=name,
                fingerprint=fingerprint,
                report=load_report(report_path),
            )
        problems.append(f"{name}: {problem}")
    if claimed is not None:
        name = keys[claimed][0]
        raise TrustError(f"{folder}: altered since {name!r} signed it ({'; '.join(problems)})")
    raise TrustError(
        f"{folder}: no trusted key verifies it: either its issuer is not trusted or it was altered "
        f"({'; '.join(problems)})"
    )


def import_report(
    settings: Settings, folder: Path, db: Session | None = None, actor: str = "cli"
) -> VerifiedReport:
    """Verify the report in ``folder`` against the trusted issuers and keep a copy of it here."""
    found = verify_folder(settings, folder)
    if found.issuer == LOCAL:
        raise TrustError(f"{folder}: this platform signed it; its own reports are not imported")
    target = imported_dir(settings) / found.trial_id
    if (target / JSON_NAME).is_file():
        if (target / JSON_NAME).read_bytes() == (Path(folder) / JSON_NAME).read_bytes():
            return verify_folder(settings, target)
        raise TrustError(f"trial {found.trial_id}: a different report of it was already imported")
    target.mkdir(parents=True, exist_ok=True)
    for name in (JSON_NAME, SIGNATURE_NAME, ENVELOPE_NAME):
        if (Path(folder) / name).is_file():
            shutil.copyfile(Path(folder) / name, target / name)
    note = {"issuer": found.issuer, "fingerprint": found.fingerprint, "imported_at": utcnow().isoformat()}
    (target / ISSUER_NOTE).write_text(json.dumps(note, indent=2) + "\n")
    audit_event(
        settings,
        "report_imported",
        f"trial:{found.trial_id}",
        db,
        actor,
        issuer=found.issuer,
        fingerprint=found.fingerprint,
        report_sha256=found.sha256,
    )
    return found.model_copy(update={"folder": str(target)})


def stored_reports(
    settings: Settings, trial_ids: list[str] | None = None
) -> tuple[list[VerifiedReport], dict[str, str]]:
    """This platform's reports and the imported ones that verify, and why the others do not."""
    folders = [p.parent for p in sorted(settings.reports_dir.glob(f"*/{JSON_NAME}"))]
    folders += [p.parent for p in sorted(imported_dir(settings).glob(f"*/{JSON_NAME}"))]
    wanted = set(trial_ids) if trial_ids else None
    found: list[VerifiedReport] = []
    refused: dict[str, str] = {}
    for folder in folders:
        if wanted is not None and folder.name not in wanted:
            continue
        try:
            found.append(verify_folder(settings, folder))
        except (TrustError, OSError) as exc:
            refused[folder.name] = str(exc)
    if wanted is not None:
        for missing in sorted(wanted - {r.trial_id for r in found} - set(refused)):
            refused[missing] = "no stored or imported report of this trial"
    return found, refused


def imported_at(folder: Path) -> dt.datetime | None:
    note = Path(folder) / ISSUER_NOTE
    if not note.is_file():
        return None
    return dt.datetime.fromisoformat(json.loads(note.read_text())["imported_at"])
