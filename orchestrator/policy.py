"""Load jurisdiction policy profiles and assess a trial's evidence against them.

Profiles live as YAML in the ``policies`` data package (the repository's top-level
``policies/`` folder, shipped in the wheel): ``asean-core`` holds the
harmonised core and each country profile ``extends`` it, adding criteria or tightening
inherited ones through ``overrides`` (never loosening them: the point of a shared core is
that every participating regulator can rely on it). Reference profiles (``kind: reference``:
the EU AI Act's high-risk obligations, IMDRF's Good Machine Learning Practice) read the same
evidence for comparison; no core or jurisdiction profile may build on one. The digest covers
every file of the chain, so a report names exactly which documents produced its verdicts.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from orchestrator.errors import PolicyError
from orchestrator.package_data import data_dir
from orchestrator.policy_models import (
    Criterion,
    CriterionOverride,
    PolicyProfile,
    ProfileDocument,
    Requirement,
    format_threshold,
)
from orchestrator.records import CriterionOutcome, JurisdictionAssessment, Outcome, Verdict

__all__ = [
    "Criterion",
    "CriterionOverride",
    "PolicyProfile",
    "ProfileDocument",
    "Requirement",
    "assess",
    "assess_all",
    "default_policies_dir",
    "policies_in_force",
    "shipped_policies_dir",
    "list_profiles",
    "load_profile",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_BOUND_SUFFIXES = {"_ci_low": 0, "_ci_high": 1}


ADOPTED_DIR = "policies"


def shipped_policies_dir() -> Path:
    """The folder of the ``policies`` data package: the shipped profiles."""
    return data_dir("policies")


def policies_in_force(home: Path) -> Path:
    """The profiles in force on the platform whose home is ``home``.

    Once a proposal has been accepted there, its home holds the whole set (the shipped profiles
    with the adopted versions in place of theirs); until then the shipped profiles are in force.
    """
    adopted = home / ADOPTED_DIR
    return adopted if (adopted / "asean-core.yaml").is_file() else shipped_policies_dir()


def default_policies_dir() -> Path:
    """The profiles in force for this process's platform home."""
    from orchestrator.settings import get_settings

    return policies_in_force(get_settings().home)


def _location(loc: tuple[int | str, ...], raw: Any) -> str:
    """A field path such as ``criteria[2] (id 'perf-auroc').threshold``."""
    parts: list[str] = []
    node = raw
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{item}]"]
            node = node[item] if isinstance(node, list) and item < len(node) else None
            if isinstance(node, dict) and "id" in node:
                parts[-1] += f" (id {node['id']!r})"
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "(document)"


def _read(path: Path) -> tuple[bytes, ProfileDocument]:
    try:
        raw_bytes = path.read_bytes()
        raw = yaml.safe_load(raw_bytes)
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path}: cannot read profile: {exc}") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: a profile must be a YAML mapping")
    try:
        doc = ProfileDocument.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{_location(err['loc'], raw)}: {err['msg']}" for err in exc.errors()]
        raise PolicyError(f"{path}: " + "; ".join(problems)) from exc
    if doc.id != path.stem:
        raise PolicyError(f"{path}: id {doc.id!r} must equal the file name {path.stem!r}")
    for i, c in enumerate(doc.criteria):
        if c.inherited_from is not None:
            raise PolicyError(f"{path}: criteria[{i}] (id {c.id!r}).inherited_from is set by the loader")
    return raw_bytes, doc


def _tighten(base: Criterion, override: CriterionOverride, path: Path) -> Criterion:
    where = f"{path}: overrides (id {override.id!r})"
    if base.severity == "blocking" and override.severity == "advisory":
        raise PolicyError(f"{where}: severity blocking -> advisory would loosen an inherited criterion")
    new_t = base.threshold if override.threshold is None else override.threshold
    old_t = base.threshold
    if isinstance(old_t, tuple) and isinstance(new_t, tuple):
        looser = new_t[0] < old_t[0] or new_t[1] > old_t[1]
    elif isinstance(old_t, tuple) or isinstance(new_t, tuple):
        raise PolicyError(f"{where}.threshold: must have the same shape as {format_threshold(old_t)}")
    else:
        looser = new_t < old_t if base.comparator in (">=", ">") else new_t > old_t
    if looser:
        raise PolicyError(
            f"{where}.threshold: {format_threshold(new_t)} is looser than inherited "
            f"{base.describe()}; overrides may only tighten"
        )
    return base.model_copy(
        update={
            "threshold": new_t,
            "severity": override.severity or base.severity,
            "provenance": override.provenance or base.provenance,
            "reference": override.reference,
            "description": override.description or base.description,
        }
    )


def _resolve(path: Path, seen: tuple[str, ...]) -> tuple[list[bytes], PolicyProfile]:
    raw_bytes, doc = _read(path)
    if doc.id in seen:
        raise PolicyError(f"{path}: extends cycle: {' -> '.join((*seen, doc.id))}")
    chain_bytes: list[bytes] = []
    inherited: list[Criterion] = []
    requirements: list[Requirement] = []
    notes: list[str] = []
    chain: tuple[str, ...] = (doc.id,)
    if doc.extends is not None:
        parent_path = path.parent / f"{doc.extends}.yaml"
        if not parent_path.is_file():
            raise PolicyError(f"{path}: extends: no profile {doc.extends!r} at {parent_path}")
        chain_bytes, parent = _resolve(parent_path, (*seen, doc.id))
        if parent.kind == "reference" and doc.kind != "reference":
            # A comparator must never become part of a regulator's verdict by inheritance.
            raise PolicyError(
                f"{path}: extends: {doc.kind} profile cannot build on reference profile {parent.id!r}"
            )
        inherited = [
            c.model_copy(update={"inherited_from": c.inherited_from or parent.id}) for c in parent.criteria
        ]
        requirements = list(parent.requirements)
        notes = list(parent.notes)
        chain = (doc.id, *parent.chain)
    by_id = {c.id: c for c in inherited}
    for override in doc.overrides:
        if override.id not in by_id:
            raise PolicyError(f"{path}: overrides (id {override.id!r}): no such inherited criterion")
        by_id[override.id] = _tighten(by_id[override.id], override, path)
    for i, c in enumerate(doc.criteria):
        if c.id in by_id:
            raise PolicyError(
                f"{path}: criteria[{i}] (id {c.id!r}): already inherited; use overrides to tighten it"
            )
    criteria = [*by_id.values(), *doc.criteria]
    known = {r.id for r in requirements}
    for i, r in enumerate(doc.requirements):
        if r.id in known:
            raise PolicyError(f"{path}: requirements[{i}] (id {r.id!r}): already inherited")
    if not criteria:
        raise PolicyError(f"{path}: criteria: the resolved profile has no criterion")
    chain_bytes = [*chain_bytes, raw_bytes]
    digest = hashlib.sha256(b"".join(chain_bytes)).hexdigest()
    profile = PolicyProfile(
        **doc.model_dump(exclude={"criteria", "requirements", "notes"}),
        criteria=criteria,
        requirements=[*requirements, *doc.requirements],
        notes=[*notes, *doc.notes],
        digest=digest,
        chain=chain,
        source=str(path),
    )
    return chain_bytes, profile


def _find(code_or_id: str, policies_dir: Path) -> Path:
    if not _NAME.match(code_or_id):
        raise PolicyError(f"not a profile id or jurisdiction code: {code_or_id!r}")
    direct = policies_dir / f"{code_or_id.lower()}.yaml"
    if direct.is_file():
        return direct
    known = []
    for path in sorted(policies_dir.glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_bytes())
        except (OSError, yaml.YAMLError):
            continue  # reported properly if and when that file itself is loaded
        if isinstance(raw, dict):
            known.append(f"{raw.get('id')} ({raw.get('jurisdiction')})")
            if raw.get("id") == code_or_id or str(raw.get("jurisdiction", "")).upper() == code_or_id.upper():
                return path
    raise PolicyError(
        f"no policy profile {code_or_id!r} in {policies_dir}; known: {', '.join(known) or 'none'}"
    )


def load_profile(code_or_id: str, policies_dir: Path | None = None) -> PolicyProfile:
    """The resolved profile for a jurisdiction code (``SG``) or profile id (``asean-core``).

    Raises :class:`PolicyError` naming the file and field path when a document in the chain is
    malformed, when ``extends`` forms a cycle, or when an override loosens a criterion.
    """
    directory = policies_dir or default_policies_dir()
    return _resolve(_find(code_or_id, directory), ())[1]


def list_profiles(policies_dir: Path | None = None) -> list[PolicyProfile]:
    """Every profile in the folder, resolved, in file-name order.

    Raises :class:`PolicyError` when two files claim the same jurisdiction code: a code must
    name exactly one profile, or a trial could be assessed against the wrong document.
    """
    directory = policies_dir or default_policies_dir()
    profiles = [_resolve(path, ())[1] for path in sorted(directory.glob("*.yaml"))]
    owner: dict[str, PolicyProfile] = {}
    for profile in profiles:
        first = owner.setdefault(profile.jurisdiction, profile)
        if first is not profile:
            raise PolicyError(
                f"{profile.source}: jurisdiction {profile.jurisdiction!r} is already used by {first.source}"
            )
    return profiles


def _evidence(
    values: Mapping[str, float | None], intervals: Mapping[str, tuple[float, float]]
) -> dict[str, float | None]:
    # CI bounds become metrics of their own (perf/auroc_ci_low); an explicit value wins.
    evidence: dict[str, float | None] = {}
    for key, bounds in intervals.items():
        for suffix, i in _BOUND_SUFFIXES.items():
            evidence[f"{key}{suffix}"] = float(bounds[i])
    evidence.update(values)
    return {k: None if v is None or math.isnan(v) else float(v) for k, v in evidence.items()}


def _outcome(
    c: Criterion, evidence: Mapping[str, float | None], intervals: Mapping[str, tuple[float, float]]
) -> CriterionOutcome:
    observed = evidence.get(c.metric)
    result: Outcome = (
        "insufficient evidence" if observed is None else ("pass" if c.holds(observed) else "fail")
    )
    interval = intervals.get(c.metric)
    return CriterionOutcome(
        criterion_id=c.id,
        metric=c.metric,
        comparator=c.comparator,
        threshold=c.threshold,
        severity=c.severity,
        provenance=c.provenance,
        reference=c.reference,
        observed=observed,
        interval=(float(interval[0]), float(interval[1])) if interval is not None else None,
        outcome=result,
        inherited_from=c.inherited_from,
    )


def _explained(o: CriterionOutcome, findings: Mapping[str, str]) -> str:
    return f": {findings[o.metric]}" if o.metric in findings else ""


def _phrase(
    kind: str, outcomes: list[CriterionOutcome], by_id: Mapping[str, Criterion], findings: Mapping[str, str]
) -> str:
    noun = "criterion" if len(outcomes) == 1 else "criteria"
    items = [
        f"{by_id[o.criterion_id].describe()} not met (observed {o.observed:.4g}{_explained(o, findings)})"
        for o in outcomes
    ]
    return f"{kind} {noun} {'; '.join(items)}"


def _verdict(
    outcomes: list[CriterionOutcome], profile: PolicyProfile, findings: Mapping[str, str]
) -> tuple[Verdict, str]:
    by_id = {c.id: c for c in profile.criteria}
    blocking = [o for o in outcomes if o.outcome == "fail" and o.severity == "blocking"]
    if blocking:
        return "fail", "fail: " + _phrase("blocking", blocking, by_id, findings)
    advisory = [o for o in outcomes if o.outcome == "fail"]
    missing = [o for o in outcomes if o.outcome == "insufficient evidence"]
    if advisory or missing:
        parts = []
        if advisory:
            parts.append(_phrase("advisory", advisory, by_id, findings))
        if missing:
            names = ", ".join(
                by_id[o.criterion_id].describe()
                + (f" ({findings[o.metric]})" if o.metric in findings else "")
                for o in missing
            )
            parts.append(f"insufficient evidence for {names}")
        return "conditional", "conditional: " + "; ".join(parts)
    return "pass", f"pass: all {len(outcomes)} criteria met"


def _unmeasured(profile: PolicyProfile) -> str:
    if not profile.requirements:
        return ""
    ids = ", ".join(r.id for r in profile.requirements)
    return f"; not assessed by the sandbox (documentary review): {ids}"


def assess(
    profile: PolicyProfile,
    values: Mapping[str, float | None],
    intervals: Mapping[str, tuple[float, float]],
    findings: Mapping[str, str] | None = None,
    applies: Callable[[str], bool] | None = None,
) -> JurisdictionAssessment:
    """Apply every criterion of ``profile`` to the observed values and give the verdict.

    A metric that is absent or None is "insufficient evidence", never a pass. Any blocking
    failure fails the trial; otherwise an advisory failure or missing evidence makes it
    conditional; otherwise it passes. ``findings`` (metric key -> explanation, from
    :func:`monitors.findings`) are quoted in the rule, so that a failed subgroup criterion
    names the subgroup and the gap. The profile's documentary requirements are listed in the
    rule as not assessed: the verdict covers the measured criteria only. ``applies`` keeps the
    criteria the trial's evaluation kind can judge (a chat criterion says nothing of a
    classifier); without it every criterion is applied.
    """
    evidence = _evidence(values, intervals)
    criteria = [c for c in profile.criteria if applies is None or applies(c.metric)]
    outcomes = [_outcome(c, evidence, intervals) for c in criteria]
    verdict, rule = _verdict(outcomes, profile, findings or {})
    return JurisdictionAssessment(
        jurisdiction=profile.jurisdiction,
        profile_id=profile.id,
        profile_version=profile.version,
        profile_digest=profile.digest,
        verdict=verdict,
        rule=rule + _unmeasured(profile),
        criteria=outcomes,
    )


def assess_all(
    codes: Iterable[str],
    values: Mapping[str, float | None],
    intervals: Mapping[str, tuple[float, float]],
    policies_dir: Path | None = None,
    findings: Mapping[str, str] | None = None,
    applies: Callable[[str], bool] | None = None,
) -> dict[str, JurisdictionAssessment]:
    """One assessment per jurisdiction code (keys as given), all over the same evidence.

    ``applies`` is the evaluation kind's filter (profiles hold tabular and chat criteria alike).
    """
    return {
        code: assess(load_profile(code, policies_dir), values, intervals, findings, applies) for code in codes
    }
