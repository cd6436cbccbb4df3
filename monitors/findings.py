"""One sentence per metric key saying where a value comes from: which subgroup, which feature.

A verdict that reads "fairness/auroc_gap/ethnicity <= 0.05 not met (observed 0.22)" tells a
regulator that something is wrong but not for whom. :func:`findings` reads the monitors'
evidence tables and returns, for each metric key it can explain, the groups or features behind
the value; the policy engine appends it to the verdict's rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from monitors.base import MonitorResult
from monitors.distribution import describe_shift
from monitors.fairness import ASSESSED, INSUFFICIENT, INSUFFICIENT_GROUPS, metric_key


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.2f}"


def _spread(attr: str, rows: list[dict[str, Any]], col: str, label: str) -> str:
    low = min(rows, key=lambda r: r[col])
    high = max(rows, key=lambda r: r[col])
    gap = float(high[col]) - float(low[col])
    return (
        f"{label} {_fmt(low[col])} in {attr} '{low['group']}' (n={low['n']}) vs {_fmt(high[col])} "
        f"in '{high['group']}' (n={high['n']}): gap {gap:.2f}"
    )


def _subgroup_findings(attr: str, rows: list[dict[str, Any]]) -> dict[str, str]:
    ok = [r for r in rows if r["status"] == ASSESSED]
    thin = [r for r in rows if r["status"] == INSUFFICIENT]
    out: dict[str, str] = {}
    if thin:
        listed = ", ".join(f"'{r['group']}' (n={r['n']}, positives={r['positives']})" for r in thin)
        out[metric_key(INSUFFICIENT_GROUPS, attr)] = f"insufficient evidence in {attr} {listed}"
    if len(ok) < 2:
        reason = f"fewer than 2 {attr} groups with enough cases of both outcomes"
        for metric in ("auroc_gap", "tpr_gap", "fpr_gap", "eq_odds_diff", "worst_group_auroc"):
            out[metric_key(metric, attr)] = reason
        return out
    tpr, fpr = _spread(attr, ok, "tpr", "TPR"), _spread(attr, ok, "fpr", "FPR")
    tpr_gap = max(r["tpr"] for r in ok) - min(r["tpr"] for r in ok)
    fpr_gap = max(r["fpr"] for r in ok) - min(r["fpr"] for r in ok)
    worst = min(ok, key=lambda r: r["auroc"])
    out.update(
        {
            metric_key("auroc_gap", attr): _spread(attr, ok, "auroc", "AUROC"),
            metric_key("tpr_gap", attr): tpr,
            metric_key("fpr_gap", attr): fpr,
            metric_key("eq_odds_diff", attr): tpr if tpr_gap >= fpr_gap else fpr,
            metric_key("worst_group_auroc", attr): (
                f"lowest AUROC in {attr} '{worst['group']}' (n={worst['n']}): {_fmt(worst['auroc'])}"
            ),
        }
    )
    return out


def _drift_findings(rows: list[dict[str, Any]]) -> dict[str, str]:
    ranked = [r for r in rows if r.get("psi") is not None]
    out = {f"drift/psi/{r['feature']}": f"{r['status']}; {describe_shift(r)}" for r in ranked}
    if ranked:
        top = max(ranked, key=lambda r: r["psi"])
        out["drift/max_psi"] = (
            f"largest shift in feature '{top['feature']}' (PSI {top['psi']:.2f}, {top['status']}); "
            f"{describe_shift(top)}"
        )
    return out


def findings(results: Iterable[MonitorResult]) -> dict[str, str]:
    """Metric key -> explanation, from the evidence tables of the given monitor results."""
    out: dict[str, str] = {}
    for result in results:
        for name, rows in result.tables.items():
            if name.startswith("subgroups/") and rows:
                out.update(_subgroup_findings(name.split("/", 1)[1], rows))
            elif name == "drift" and rows:
                out.update(_drift_findings(rows))
            elif name == "chat/findings":
                out.update({row["metric"]: row["finding"] for row in rows})
    return out
