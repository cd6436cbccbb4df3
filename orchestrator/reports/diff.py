"""What changed between two exit reports of the same product (a re-trial, a new model version).

Regulators compare trials when a developer comes back with a changed model, or when a profile
was tightened: did a verdict move, which criterion flipped, which numbers moved beyond noise,
and is it even the same model and data (digests)? The comparison works on the signed JSON only.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.records import CriterionOutcome
from orchestrator.reports.model import ExitReport

DEFAULT_TOLERANCE = 0.01
ValueKind = Literal["digest", "version", "identity"]


class _Change(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VerdictChange(_Change):
    jurisdiction: str
    before: str | None = Field(description="Verdict in A; None when A has no assessment for it.")
    after: str | None = Field(description="Verdict in B; None when B has no assessment for it.")


class CriterionChange(_Change):
    jurisdiction: str
    criterion_id: str
    metric: str
    before: str | None = Field(description="Outcome in A; None when A does not apply the criterion.")
    after: str | None = Field(description="Outcome in B; None when B does not apply the criterion.")
    threshold_before: float | tuple[float, float] | None = None
    threshold_after: float | tuple[float, float] | None = None


class MetricChange(_Change):
    key: str
    before: float | None
    after: float | None
    delta: float | None = Field(description="after - before; None when either side has no value.")


class ValueChange(_Change):
    kind: ValueKind
    name: str
    before: str | None
    after: str | None


class ReportDiff(_Change):
    """Differences between report A (before) and report B (after)."""

    a: str = Field(description="Trial id of A.")
    b: str = Field(description="Trial id of B.")
    tolerance: float
    verdicts: list[VerdictChange] = Field(default_factory=list)
    criteria: list[CriterionChange] = Field(default_factory=list)
    metrics: list[MetricChange] = Field(default_factory=list)
    values: list[ValueChange] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when anything differs; notes alone (context) do not count."""
        return bool(self.verdicts or self.criteria or self.metrics or self.values)

    def to_text(self) -> str:
        """A plain-text rendering, one change per line, for terminals and e-mail."""
        lines = [f"exit report diff: A={self.a}  B={self.b}  (metric tolerance {self.tolerance:g})"]
        lines += [f"note: {n}" for n in self.notes]
        if not self.changed:
            return "\n".join([*lines, "no differences"]) + "\n"
        sections: list[tuple[str, list[_Change]]] = [
            ("verdicts", [*self.verdicts]),
            ("criteria", [*self.criteria]),
            ("metrics", [*self.metrics]),
            ("digests and versions", [*self.values]),
        ]
        for title, items in sections:
            if items:
                lines.append(f"{title}:")
                lines += [f"  {_line(item)}" for item in items]
        return "\n".join(lines) + "\n"


def _show(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _line(item: _Change) -> str:
    if isinstance(item, VerdictChange):
        return f"{item.jurisdiction}: {_show(item.before)} -> {_show(item.after)}"
    if isinstance(item, CriterionChange):
        both = item.threshold_before is not None and item.threshold_after is not None
        moved = (
            f" (threshold {_show(item.threshold_before)} -> {_show(item.threshold_after)})"
            if both and item.threshold_before != item.threshold_after
            else ""
        )
        where = f"{item.jurisdiction} {item.criterion_id} [{item.metric}]"
        return f"{where}: {_show(item.before)} -> {_show(item.after)}{moved}"
    if isinstance(item, MetricChange):
        delta = "" if item.delta is None else f" ({item.delta:+.4g})"
        return f"{item.key}: {_show(item.before)} -> {_show(item.after)}{delta}"
    assert isinstance(item, ValueChange)  # noqa: S101 - the four change kinds are exhaustive
    return f"{item.kind} {item.name}: {_show(item.before)} -> {_show(item.after)}"


def _number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def exceeds(before: float | None, after: float | None, tolerance: float) -> bool:
    """Whether a metric moved by more than ``tolerance``.

    Absolute for values within [-1, 1] (rates, AUROC, gaps), relative to the magnitude above
    that (latency in ms, request counts), so one tolerance fits both kinds of metric.
    Appearing or disappearing always counts.
    """
    if before is None or after is None:
        return before is not after
    return abs(after - before) > tolerance * max(1.0, abs(before))


def _metrics(report: ExitReport) -> dict[str, float | None]:
    values: dict[str, float | None] = {}
    for monitor in report.monitors:
        values.update(monitor.values)
    if report.metrics:
        values.update(report.metrics.values)
    return {k: _number(v) for k, v in values.items()}


def _criteria(report: ExitReport) -> dict[tuple[str, str], CriterionOutcome]:
    return {(x.jurisdiction, c.criterion_id): c for x in report.assessments for c in x.criteria}


def _values(report: ExitReport) -> dict[tuple[ValueKind, str], str | None]:
    found: dict[tuple[ValueKind, str], str | None] = {
        ("identity", "trial name"): report.trial.name,
        ("identity", "sponsor"): report.trial.sponsor,
        ("identity", "intended use"): report.trial.intended_use,
        ("identity", "risk class"): report.trial.risk_class,
        ("digest", "model"): report.model.digest if report.model else None,
        ("digest", "image"): report.model.image_digest if report.model else None,
        ("digest", "data"): report.data.digest if report.data else None,
    }
    for a in report.assessments:
        found[("digest", f"profile {a.jurisdiction}")] = (
            f"{a.profile_id}@{a.profile_version} {a.profile_digest}"
        )
    for name, version in report.reproducibility.versions.items():
        found[("version", name)] = version
    return found


def _strip(digest: str | None) -> str | None:
    return digest.removeprefix("sha256:") if digest else digest


def diff_reports(a: ExitReport, b: ExitReport, tolerance: float = DEFAULT_TOLERANCE) -> ReportDiff:
    """Differences from ``a`` (before) to ``b`` (after); see :func:`exceeds` for the tolerance."""
    if tolerance < 0 or not math.isfinite(tolerance):
        raise ValueError(f"tolerance must be a finite number >= 0, not {tolerance}")
    notes = []
    if a.trial.name != b.trial.name or a.trial.sponsor != b.trial.sponsor:
        notes.append("the reports are of different trials or sponsors; compare with care")
    if a.status != b.status:
        notes.append(f"trial status: {a.status} -> {b.status}")

    codes = list(dict.fromkeys([*a.verdicts, *b.verdicts]))
    verdicts = [
        VerdictChange(jurisdiction=c, before=a.verdicts.get(c), after=b.verdicts.get(c))
        for c in codes
        if a.verdicts.get(c) != b.verdicts.get(c)
    ]

    before, after = _criteria(a), _criteria(b)
    criterion_changes = []
    for key in dict.fromkeys([*before, *after]):
        old, new = before.get(key), after.get(key)
        ref = new if new is not None else old
        if ref is None or (old and new and (old.outcome, old.threshold) == (new.outcome, new.threshold)):
            continue
        criterion_changes.append(
            CriterionChange(
                jurisdiction=key[0],
                criterion_id=key[1],
                metric=ref.metric,
                before=old.outcome if old else None,
                after=new.outcome if new else None,
                threshold_before=old.threshold if old else None,
                threshold_after=new.threshold if new else None,
            )
        )

    ma, mb = _metrics(a), _metrics(b)
    metric_changes = []
    for k in sorted(set(ma) | set(mb)):
        x, y = ma.get(k), mb.get(k)
        if exceeds(x, y, tolerance):
            delta = None if x is None or y is None else y - x
            metric_changes.append(MetricChange(key=k, before=x, after=y, delta=delta))

    va, vb = _values(a), _values(b)
    value_changes = [
        ValueChange(kind=kind, name=name, before=va.get((kind, name)), after=vb.get((kind, name)))
        for kind, name in dict.fromkeys([*va, *vb])
        if _strip(va.get((kind, name))) != _strip(vb.get((kind, name)))
    ]
    return ReportDiff(
        a=a.trial_id,
        b=b.trial_id,
        tolerance=tolerance,
        verdicts=verdicts,
        criteria=criterion_changes,
        metrics=metric_changes,
        values=value_changes,
        notes=notes,
    )
