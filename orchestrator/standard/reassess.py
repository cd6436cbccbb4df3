"""Re-assess stored evidence under another version of a profile, without running the model again.

A report holds what a re-assessment needs: the summary metric values and their intervals, each
monitor's result (whose findings name the subgroup behind a failed criterion), and the evaluation
kind the trial was admitted as (its ``admitted`` event). :func:`reassess` applies the current
profiles and a proposed document to that evidence and lists, per jurisdiction, both verdicts and
every criterion whose outcome differs. A proposed document is laid over the current profiles: a
country profile replaces that country's, a changed core reaches every profile that extends it.

The result is recorded as a new signed document (``regsandbox/reassessment/v1``) that names the
report it read by sha256; the report itself is never touched.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import yaml
from cryptography.exceptions import InvalidSignature
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import PolicyError
from orchestrator.policy import assess, default_policies_dir, load_profile
from orchestrator.policy_models import PolicyProfile, ProfileDocument, format_threshold
from orchestrator.records import CriterionOutcome, JurisdictionAssessment, Verdict, utcnow
from orchestrator.reports.model import ReportIntegrityError
from orchestrator.reports.signing import decode_signature, load_public_key, public_key_fingerprint, sign
from orchestrator.settings import Settings
from orchestrator.standard.trust import LOCAL, VerifiedReport

SCHEMA = "regsandbox/reassessment/v1"
Outcome = Literal["pass", "fail", "insufficient evidence", "not required"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Flip(_Model):
    """A criterion whose outcome differs between the current and the proposed profile."""

    criterion_id: str
    metric: str
    observed: float | None = Field(description="The stored value the criterion reads (None: not measured).")
    current: Outcome
    proposed: Outcome
    current_rule: str = Field(description="The criterion as the current profile states it, or '-'.")
    proposed_rule: str = Field(description="The criterion as the proposed profile states it, or '-'.")


class JurisdictionReassessment(_Model):
    """One jurisdiction's verdicts on one trial, before and after the proposed change."""

    jurisdiction: str
    recorded: Verdict | None = Field(description="The verdict the report itself records, if it assessed it.")
    current: Verdict = Field(description="Verdict under the current profile, on the stored evidence.")
    proposed: Verdict = Field(description="Verdict under the proposed profile, on the stored evidence.")
    current_profile: str = Field(description="id@version (digest prefix) of the current profile.")
    proposed_profile: str = Field(description="id@version (digest prefix) of the proposed profile.")
    flips: list[Flip] = Field(description="Criteria whose outcome differs, in profile order.")


class TrialReassessment(_Model):
    """One stored trial re-assessed: which report, whose, and every affected jurisdiction."""

    trial_id: str
    report_sha256: str = Field(description="sha256 of the report.json that was read (unchanged).")
    issuer: str = Field(description="'local' or the trusted sandbox that signed the report.")
    issuer_fingerprint: str
    jurisdictions: list[JurisdictionReassessment]


class Reassessment(_Model):
    """A proposed profile document applied to stored trials."""

    proposed_id: str
    proposed_version: str
    proposed_digest: str
    trials: list[TrialReassessment]

    @property
    def flip_count(self) -> int:
        return sum(len(j.flips) for t in self.trials for j in t.jurisdictions)

    def to_text(self) -> str:
        lines = [f"proposed profile {self.proposed_id}@{self.proposed_version} ({self.proposed_digest[:12]})"]
        for t in self.trials:
            lines.append(f"trial {t.trial_id} (issuer {t.issuer}, report sha256 {t.report_sha256[:12]})")
            for j in t.jurisdictions:
                change = "unchanged" if j.current == j.proposed else "CHANGES"
                lines.append(f"  {j.jurisdiction}: current {j.current} -> proposed {j.proposed} ({change})")
                for f in j.flips:
                    seen = "not measured" if f.observed is None else f"{f.observed:.4g}"
                    lines.append(
                        f"    {f.criterion_id}: observed {seen}: {f.current} ({f.current_rule}) -> "
                        f"{f.proposed} ({f.proposed_rule})"
                    )
        if not self.trials:
            lines.append("no stored trial names a jurisdiction the proposal affects")
        return "\n".join(lines)


def read_document(text: bytes, source: str) -> ProfileDocument:
    """A proposed profile document, checked; ``PolicyError`` names the field."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}: a profile must be a YAML mapping")
    try:
        return ProfileDocument.model_validate(raw)
    except ValidationError as exc:
        problems = [
            "{}: {}".format(".".join(str(p) for p in e["loc"]) or "(document)", e["msg"])
            for e in exc.errors()
        ]
        raise PolicyError(f"{source}: " + "; ".join(problems)) from exc


@contextmanager
def overlay(text: bytes, source: str, policies_dir: Path | None = None) -> Iterator[Path]:
    """A folder holding the current profiles with the proposed document in place of its namesake."""
    doc = read_document(text, source)
    base = policies_dir or default_policies_dir()
    with tempfile.TemporaryDirectory(prefix="regsandbox-proposal-") as tmp:
        folder = Path(tmp)
        for path in base.glob("*.yaml"):
            shutil.copyfile(path, folder / path.name)
        (folder / f"{doc.id}.yaml").write_bytes(text)
        load_profile(doc.id, folder)  # extends, overrides and their tightening rules, checked now
        yield folder


def _kind(report: VerifiedReport) -> str:
    for event in report.report.events:
        if event.kind == "admitted" and isinstance(event.detail.get("kind"), str):
            return str(event.detail["kind"])
    return "tabular"


def _label(profile: PolicyProfile) -> str:
    return f"{profile.id}@{profile.version} ({profile.digest[:12]})"


def _rule(o: CriterionOutcome | None) -> str:
    if o is None:
        return "-"
    if o.comparator == "between":
        return f"{o.metric} between {format_threshold(o.threshold)} {o.severity}"
    return f"{o.metric} {o.comparator} {format_threshold(o.threshold)} {o.severity}"


def flips(current: JurisdictionAssessment, proposed: JurisdictionAssessment) -> list[Flip]:
    """Criteria whose outcome differs; a criterion only one side has counts as 'not required' on the other."""
    before = {o.criterion_id: o for o in current.criteria}
    after = {o.criterion_id: o for o in proposed.criteria}
    order = [*before, *(k for k in after if k not in before)]
    found = []
    for cid in order:
        a, b = before.get(cid), after.get(cid)
        was: Outcome = a.outcome if a else "not required"
        now: Outcome = b.outcome if b else "not required"
        if was != now:
            either = b or a
            assert either is not None  # noqa: S101 - cid comes from one of the two
            found.append(
                Flip(
                    criterion_id=cid,
                    metric=either.metric,
                    observed=either.observed,
                    current=was,
                    proposed=now,
                    current_rule=_rule(a),
                    proposed_rule=_rule(b),
                )
            )
    return found


def _assess(profile: PolicyProfile, report: VerifiedReport) -> JurisdictionAssessment:
    from monitors import findings
    from orchestrator.evaluation import get_kind

    metrics = report.report.metrics
    values = dict(metrics.values) if metrics else {}
    intervals = dict(metrics.intervals) if metrics else {}
    return assess(
        profile, values, intervals, findings(report.report.monitors), applies=get_kind(_kind(report)).applies
    )


def reassess(
    reports: Sequence[VerifiedReport], text: bytes, source: str, policies_dir: Path | None = None
) -> Reassessment:
    """Every jurisdiction of every report that the proposed document affects, before and after."""
    base = policies_dir or default_policies_dir()
    doc = read_document(text, source)
    trials = []
    with overlay(text, source, base) as proposed_dir:
        changed = load_profile(doc.id, proposed_dir)
        # Each profile is resolved once per call, not once per report: parsing YAML dominates otherwise.
        loaded: dict[tuple[str, Path], PolicyProfile] = {}

        def load(code: str, folder: Path) -> PolicyProfile:
            if (code, folder) not in loaded:
                loaded[code, folder] = load_profile(code, folder)
            return loaded[code, folder]

        for report in reports:
            codes = list(report.report.trial.jurisdictions)
            if (
                changed.kind == "jurisdiction"
                and changed.jurisdiction not in codes
                and report.issuer != LOCAL
            ):
                # A trusted neighbour's report was imported to be reused: read under this profile too.
                # A local trial is read only for the jurisdictions its sponsor submitted it to.
                codes.append(changed.jurisdiction)
            recorded = report.report.verdicts
            rows = []
            for code in codes:
                after_profile = load(code, proposed_dir)
                if doc.id not in after_profile.chain:
                    continue
                before_profile = load(code, base)
                before, after = _assess(before_profile, report), _assess(after_profile, report)
                rows.append(
                    JurisdictionReassessment(
                        jurisdiction=code,
                        recorded=recorded.get(code),
                        current=before.verdict,
                        proposed=after.verdict,
                        current_profile=_label(before_profile),
                        proposed_profile=_label(after_profile),
                        flips=flips(before, after),
                    )
                )
            if rows:
                trials.append(
                    TrialReassessment(
                        trial_id=report.trial_id,
                        report_sha256=report.sha256,
                        issuer=report.issuer,
                        issuer_fingerprint=report.fingerprint,
                        jurisdictions=rows,
                    )
                )
    return Reassessment(
        proposed_id=changed.id,
        proposed_version=changed.version,
        proposed_digest=changed.digest,
        trials=trials,
    )


def canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record(settings: Settings, result: TrialReassessment, proposal: Reassessment, by: str) -> Path:
    """Sign one trial's re-assessment with the issuer key and store it beside the others of that trial.

    The document names the report by sha256 and its issuer; the report's files are not opened for
    writing. Returns the path of the JSON (its base64 signature sits at ``<path>.sig``).
    """
    at = utcnow()
    payload = {
        "schema": SCHEMA,
        "trial_id": result.trial_id,
        "report_sha256": result.report_sha256,
        "report_issuer": result.issuer,
        "report_issuer_fingerprint": result.issuer_fingerprint,
        "proposed_profile": {
            "id": proposal.proposed_id,
            "version": proposal.proposed_version,
            "digest": proposal.proposed_digest,
        },
        "jurisdictions": [j.model_dump(mode="json") for j in result.jurisdictions],
        "by": by,
        "at": at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
    }
    data = canonical(payload)
    folder = settings.home / "reassessments" / result.trial_id
    folder.mkdir(parents=True, exist_ok=True)
    stamp = at.strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"{stamp}-{proposal.proposed_id}-{proposal.proposed_version}.json"
    path.write_bytes(data)
    path.with_name(path.name + ".sig").write_bytes(base64.b64encode(sign(data, settings.keys_dir)) + b"\n")
    return path


def issuer_fingerprint(settings: Settings) -> str:
    return public_key_fingerprint(settings.keys_dir)


def record_problem(path: Path, public_key: Path) -> str | None:
    """Why a recorded re-assessment does not verify with ``public_key``, or None when it does.

    The signature (``<path>.sig``) must verify over the file's exact bytes, and those bytes must be
    the canonical form of a ``regsandbox/reassessment/v1`` document.
    """
    data = Path(path).read_bytes()
    try:
        signature = decode_signature(Path(path).with_name(Path(path).name + ".sig").read_bytes())
        load_public_key(public_key).verify(signature, data)
    except ReportIntegrityError as exc:
        return str(exc)
    except InvalidSignature:
        return "signature does not match the record's bytes and the public key"
    try:
        payload = json.loads(data)
    except ValueError as exc:
        return f"not JSON: {exc}"
    if not isinstance(payload, dict) or payload.get("schema") != SCHEMA:
        return f"not a {SCHEMA} document"
    if canonical(payload) != data:
        return "signed but not in canonical form"
    return None
