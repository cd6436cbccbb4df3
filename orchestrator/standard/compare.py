"""Profiles compared criterion by criterion: where jurisdictions agree, where they differ, the core.

Profiles written by different regulators name their criteria differently (``perf-auroc`` in the
ASEAN core, ``eu-art15-auroc`` in the EU comparator), so rows are keyed by what is measured: the
metric key. A profile may hold several criteria on one metric (a drift warning and a drift
failure); its cell lists them all. A row every compared profile requires belongs to the common
core, whatever the thresholds or severities: the core is what a trial assessed under any of them
is certain to have been checked for. How far thresholds differ is measured between each profile's
strictest criterion on the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import PolicyError
from orchestrator.policy_models import Criterion, PolicyProfile, Threshold, format_threshold

Agreement = Literal["agree", "differ", "some"]
_SEVERITY = {"blocking": "blk", "advisory": "adv"}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Requirement(_Model):
    """One criterion of one profile on a row's metric, with where its value comes from."""

    criterion_id: str = Field(description="Id of the criterion in that profile.")
    comparator: str = Field(description="How the observed value must relate to the threshold.")
    threshold: Threshold = Field(description="The profile's threshold.")
    severity: str = Field(description="blocking or advisory.")
    provenance: str = Field(description="sourced, convention or proposed.")
    reference: str = Field(description="Where the criterion or its threshold comes from.")
    inherited_from: str | None = Field(default=None, description="Profile that defined it, when inherited.")

    @property
    def text(self) -> str:
        return f"{self.comparator} {format_threshold(self.threshold)} {_SEVERITY[self.severity]}"


def _cell(requirements: Sequence[Requirement]) -> str:
    return "; ".join(r.text for r in requirements)


class ComparisonRow(_Model):
    """One metric across every compared profile."""

    metric: str = Field(description="Metric key the criteria read.")
    required: dict[str, list[Requirement]] = Field(
        description="Profile code -> its criteria on the metric (absent: the profile does not require it)."
    )
    agreement: Agreement = Field(
        description="agree: every profile, same thresholds and severities; differ: every profile, "
        "thresholds or severities differ; some: only some profiles require it."
    )
    spread: float | None = Field(
        default=None,
        description="Largest minus smallest of the strictest thresholds (widest bound gap for ranges).",
    )
    severity_differs: bool = Field(
        default=False, description="Whether some make it blocking, others advisory."
    )

    @property
    def in_core(self) -> bool:
        return self.agreement != "some"

    @property
    def one_source(self) -> bool:
        """Whether every profile states the row with the same criteria from the same source."""
        spelled = {
            tuple((q.text, q.provenance, q.reference) for q in reqs) for reqs in self.required.values()
        }
        return len(spelled) == 1

    def cell(self, code: str) -> str:
        return _cell(self.required[code]) if code in self.required else "-"


class ProfileComparison(_Model):
    """The agreement table of several profiles and their common core."""

    codes: list[str] = Field(description="Jurisdiction codes compared, in the order asked.")
    profiles: dict[str, str] = Field(description="Code -> profile id@version and digest prefix.")
    rows: list[ComparisonRow] = Field(description="One row per metric, agreeing rows first.")

    @property
    def common_core(self) -> list[ComparisonRow]:
        return [r for r in self.rows if r.in_core]

    def to_text(self) -> str:
        """The agreement table as a person reads it in a terminal."""
        width = max((len(r.metric) for r in self.rows), default=20)
        cell = max(9, *(len(r.cell(c)) for r in self.rows for c in self.codes))
        lines = [
            "profiles: " + ", ".join(f"{c}={p}" for c, p in self.profiles.items()),
            f"{'criterion':<{width}}  " + "  ".join(f"{c:<{cell}}" for c in self.codes) + "  agreement",
        ]
        for row in self.rows:
            note: str = row.agreement
            if row.agreement == "differ":
                parts = []
                if row.spread:
                    parts.append(f"threshold by {row.spread:.4g}")
                if row.severity_differs:
                    parts.append("severity")
                note += " (" + ", ".join(parts) + ")" if parts else ""
            if row.agreement == "some":
                note += f" ({len(row.required)}/{len(self.codes)})"
            lines.append(
                f"{row.metric:<{width}}  "
                + "  ".join(f"{row.cell(c):<{cell}}" for c in self.codes)
                + f"  {note}"
            )
        core = self.common_core
        lines += [
            "",
            f"common core: {len(core)} criteria required by all {len(self.codes)} profiles: "
            + (", ".join(r.metric for r in core) or "none"),
            "provenance:",
        ]
        for row in self.rows:
            # Profiles that inherit one criterion cite one source: said once, with every code that uses it.
            sources: dict[tuple[str, str], list[str]] = {}
            for code, reqs in row.required.items():
                for req in reqs:
                    sources.setdefault((req.provenance, req.reference), []).append(code)
            for (provenance, reference), users in sources.items():
                lines.append(f"  {row.metric} [{', '.join(dict.fromkeys(users))}] {provenance}: {reference}")
        return "\n".join(lines)


def _strictest(requirements: Sequence[Requirement]) -> Threshold:
    def key(r: Requirement) -> float:
        t = r.threshold
        if isinstance(t, tuple):
            return t[0] - t[1]  # narrower ranges are stricter
        return t if r.comparator in (">=", ">") else -t

    return max(requirements, key=key).threshold


def _spread(values: Sequence[Threshold]) -> float | None:
    if all(isinstance(v, tuple) for v in values):
        lows = [v[0] for v in values if isinstance(v, tuple)]
        highs = [v[1] for v in values if isinstance(v, tuple)]
        return max(max(lows) - min(lows), max(highs) - min(highs))
    numbers = [float(v) for v in values if not isinstance(v, tuple)]
    return max(numbers) - min(numbers) if len(numbers) == len(values) else None


def _requirement(c: Criterion) -> Requirement:
    return Requirement(
        criterion_id=c.id,
        comparator=c.comparator,
        threshold=c.threshold,
        severity=c.severity,
        provenance=c.provenance,
        reference=c.reference,
        inherited_from=c.inherited_from,
    )


def compare_profiles(
    profiles: Sequence[PolicyProfile], codes: Sequence[str] | None = None
) -> ProfileComparison:
    """Compare ``profiles`` (labelled by ``codes``, default their jurisdiction codes)."""
    if len(profiles) < 2:
        raise PolicyError("compare: name at least two profiles")
    labels = list(codes) if codes is not None else [p.jurisdiction for p in profiles]
    if len(set(labels)) != len(labels):
        raise PolicyError(f"compare: each profile may be named once (got {', '.join(labels)})")
    table: dict[str, dict[str, list[Requirement]]] = {}
    for label, profile in zip(labels, profiles, strict=True):
        for c in profile.criteria:
            table.setdefault(c.metric, {}).setdefault(label, []).append(_requirement(c))
    rows = []
    for metric, cells in table.items():
        required = {label: sorted(cells[label], key=lambda r: r.text) for label in labels if label in cells}
        spread, severity_differs = None, False
        if len(required) == len(labels):
            agreement: Agreement = "agree" if len({_cell(r) for r in required.values()}) == 1 else "differ"
            spread = _spread([_strictest(r) for r in required.values()])
            severity_differs = len({tuple(sorted({q.severity for q in r})) for r in required.values()}) > 1
        else:
            agreement = "some"
        rows.append(
            ComparisonRow(
                metric=metric,
                required=required,
                agreement=agreement,
                spread=spread,
                severity_differs=severity_differs,
            )
        )
    order = {"agree": 0, "differ": 1, "some": 2}
    rows.sort(key=lambda r: (order[r.agreement], r.metric))
    return ProfileComparison(
        codes=labels,
        profiles={
            label: f"{p.id}@{p.version} ({p.digest[:12]})" for label, p in zip(labels, profiles, strict=True)
        },
        rows=rows,
    )
