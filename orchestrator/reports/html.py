"""Render an exit report as one self-contained HTML page (also the source of the PDF).

The page carries everything inline (CSS, SVG figures) because regulators archive it, mail it
and open it on phones in places without network access. Every text that comes from the
report is escaped by the template engine: model names, subgroup labels and error messages
are developer-controlled input. The body is English; each jurisdiction's annex restates the
essentials in its own language (:mod:`orchestrator.reports.annex`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from orchestrator.records import CriterionOutcome
from orchestrator.reports import figures
from orchestrator.reports.annex import annexes, model_name, monitoring_plan, overview, post_market_text
from orchestrator.reports.formatting import (
    css_string,
    fmt_json,
    fmt_num,
    fmt_share,
    fmt_signed_share,
    fmt_time,
)
from orchestrator.reports.i18n import catalogue, jurisdiction
from orchestrator.reports.model import ExitReport

TEMPLATES = Path(__file__).with_name("templates")
VERDICTS = ("pass", "conditional", "fail")


@dataclass(frozen=True)
class SubgroupView:
    attribute: str
    columns: list[str]
    rows: list[dict[str, Any]]
    svg: Markup | None


@dataclass(frozen=True)
class ResultRow:
    """One criterion variant (id, metric, threshold, severity, provenance) and its outcome by jurisdiction."""

    criterion: CriterionOutcome
    reference: int
    outcomes: dict[str, CriterionOutcome]


@dataclass(frozen=True)
class DriftView:
    columns: list[str]
    rows: list[dict[str, Any]]
    svg: Markup | None
    reference: str | None = None  # what the trial was compared with, as the monitor named it
    not_assessed: str | None = None  # why drift was not assessed


def _safe(draw: Callable[..., Markup | None], *args: Any) -> Markup | None:
    # Figure data is free-form monitor output; a malformed figure must not cost the whole report.
    try:
        return draw(*args)
    except (TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError, IndexError):
        return None


def _figure(report: ExitReport, name: str) -> dict[str, Any] | None:
    found = next((m.figures[name] for m in report.monitors if name in m.figures), None)
    return found if isinstance(found, dict) else None


def _thresholds(
    report: ExitReport, match: Callable[[str], bool], comparators: tuple[str, ...]
) -> list[float]:
    return [
        float(c.threshold)
        for a in report.assessments
        for c in a.criteria
        if match(c.metric) and c.comparator in comparators and isinstance(c.threshold, float | int)
    ]


def _subgroups(report: ExitReport) -> list[SubgroupView]:
    # The strictest minimum AUROC any jurisdiction applies is the line each subgroup is read against.
    minimums = _thresholds(report, lambda m: m == "perf/auroc", (">=", ">"))
    threshold = max(minimums) if minimums else None
    views = []
    for monitor in report.monitors:
        for name, rows in monitor.tables.items():
            if not name.startswith("subgroups/") or not rows:
                continue
            attribute = name.split("/", 1)[1]
            columns = list(dict.fromkeys(k for row in rows for k in row))
            svg = _safe(figures.subgroup_bars_svg, attribute, rows, threshold)
            views.append(SubgroupView(attribute, columns, rows, svg))
    return views


def _languages(report: ExitReport) -> tuple[list[dict[str, Any]], list[str]]:
    """A chat trial's results per language (the chat monitor's table) and the monitor's notes."""
    for monitor in report.monitors:
        rows = monitor.tables.get("chat/languages")
        if rows:
            return rows, list(monitor.notes)
    return [], []


def _results(report: ExitReport) -> tuple[list[ResultRow], list[str]]:
    """Criteria across jurisdictions, one row per variant, and the numbered references they cite.

    Most criteria come from the shared core, so one table with a column per jurisdiction shows
    at a glance where verdicts diverge, and each reference is printed once instead of per country.
    """
    references: list[str] = []
    rows: dict[tuple[object, ...], ResultRow] = {}
    for assessment in report.assessments:
        for c in assessment.criteria:
            if c.reference not in references:
                references.append(c.reference)
            key = (c.criterion_id, c.metric, c.comparator, c.threshold, c.severity, c.provenance, c.reference)
            row = rows.setdefault(key, ResultRow(c, references.index(c.reference) + 1, {}))
            row.outcomes[assessment.jurisdiction] = c
    return list(rows.values()), references


def _drift(report: ExitReport) -> DriftView | None:
    # The drift monitor names its summary figure "drift_psi"; "drift" is accepted as well.
    figure = _figure(report, "drift") or _figure(report, "drift_psi")
    if not figure or not isinstance(figure.get("features"), list):
        return None
    reference = str(figure["reference"]) if figure.get("reference") else None
    if figure.get("not_assessed"):
        return DriftView([], [], None, reference, str(figure["not_assessed"]))
    limits = _thresholds(report, lambda m: "psi" in m, ("<=", "<"))
    major, moderate = figure.get("major"), figure.get("moderate")
    fail = min(limits) if limits else float(major) if figures.finite(major) else figures.PSI_FAIL
    warn = min(float(moderate) if figures.finite(moderate) else figures.PSI_WARN, fail)
    table = next((m.tables["drift"] for m in report.monitors if m.tables.get("drift")), None)
    if table:
        columns = list(dict.fromkeys(k for row in table for k in row))
    else:
        features, psi, ks = figure["features"], figure.get("psi") or [], figure.get("ks") or []
        table = [
            {"feature": f, "psi": psi[i] if i < len(psi) else None, "ks": ks[i] if i < len(ks) else None}
            for i, f in enumerate(features)
        ]
        columns = ["feature", "psi", "ks"]
    return DriftView(columns, table, _safe(figures.drift_svg, figure, warn, fail), reference)


def _contract_by_column(report: ExitReport) -> list[tuple[str, list[str], int]]:
    """Every data-contract check, grouped by column: (column, what each check found, checks not held).

    One row per column instead of one per check keeps a 60-check suite readable (and cheap to lay
    out); the checks that did not hold are also listed one per row in section 3.
    """
    checks = report.data.validation.checks if report.data and report.data.validation else None
    grouped: dict[str, list[tuple[str, bool]]] = {}
    for c in checks or []:
        text = c.detail or c.name
        grouped.setdefault(c.column or "(whole table)", []).append(
            (text if c.success else f"NOT HELD: {text}", c.success)
        )
    return [
        (column, [t for t, _ in found], sum(not ok for _, ok in found)) for column, found in grouped.items()
    ]


def _operational(report: ExitReport) -> list[tuple[str, Any]]:
    values: dict[str, float | None] = {}
    for monitor in report.monitors:
        values.update(monitor.values)
    if report.metrics:
        values.update(report.metrics.values)
    rows: list[tuple[str, Any]] = [
        (k, v)
        for k, v in sorted(values.items())
        if k.startswith(("latency/", "ops/", "operational/", "resources/")) or "error_rate" in k
    ]
    ops = report.operations
    if ops:
        rows += [
            ("requests", ops.requests),
            ("errors", ops.errors),
            ("developer requests", ops.developer_requests),
        ]
        if ops.requests:
            rows.append(("error rate (errors / requests)", ops.errors / ops.requests))
        rows += [(f"resource: {k}", v) for k, v in sorted((ops.resources or {}).items())]
    return rows


def _isolation_events(report: ExitReport) -> list[tuple[str, str, str]]:
    """(when, kind, what) of each isolation-relevant event: incidents, controls not in force, audit events."""
    found: list[tuple[str, str, str]] = []
    if report.operations and report.operations.incidents:
        found += [
            (fmt_time(i.at) if i.at else "—", i.kind, i.description) for i in report.operations.incidents
        ]
    if report.isolation:
        found += [
            ("—", "isolation", f"control not in force: {c.control} {c.detail}".strip())
            for c in report.isolation.controls
            if not c.applied
        ]
    found += [
        (fmt_time(e.at), e.kind, fmt_json(e.detail, None) if e.detail else "")
        for e in report.events
        if any(word in e.kind.lower() for word in ("isolation", "egress", "escape", "incident"))
    ]
    return found


def mlflow_link(report: ExitReport) -> str | None:
    """A link into the MLflow UI for the trial's run, when the run is served over http(s)."""
    run = report.mlflow
    if run is None:
        return None
    if run.run_url:
        return run.run_url
    if run.tracking_uri.startswith(("http://", "https://")):
        return f"{run.tracking_uri.rstrip('/')}/#/experiments/{run.experiment_id}/runs/{run.run_id}"
    return None


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=fmt_num,
        when=fmt_time,
        pretty=fmt_json,
        compact=lambda v: fmt_json(v, None),
        share=fmt_share,
        signed_share=fmt_signed_share,
        css_string=css_string,
    )
    return env


def render_html(
    report: ExitReport,
    *,
    report_sha256: str | None = None,
    key_fingerprint: str | None = None,
) -> str:
    """The report as a standalone HTML page (UTF-8 text); its print styles lay out the PDF."""
    t = catalogue("en")
    assessed = {a.jurisdiction: a for a in report.assessments}
    codes = list(dict.fromkeys([*report.trial.jurisdictions, *assessed]))
    latency, calibration, roc, pr = (
        _figure(report, n) for n in ("latency_histogram", "calibration", "roc", "precision_recall")
    )
    representativeness = report.data.representativeness if report.data else None
    monitoring, default_monitoring = monitoring_plan(report, t)
    page = _environment().get_template("report.html.j2")
    return page.render(
        r=report,
        t=t,
        summary=overview(report, t),
        model_name=model_name(report),
        matrix=[(code, assessed.get(code)) for code in codes],
        results=_results(report),
        local_classes=[(code, jurisdiction(code).local_class(report.trial.risk_class)) for code in codes],
        subgroups=_subgroups(report),
        languages=_languages(report),
        drift=_drift(report),
        contract_by_column=_contract_by_column(report),
        operational=_operational(report),
        isolation_events=_isolation_events(report),
        latency_svg=_safe(figures.latency_histogram_svg, latency) if latency else None,
        calibration_svg=_safe(figures.calibration_svg, calibration) if calibration else None,
        roc_svg=_safe(figures.roc_svg, roc) if roc else None,
        pr_svg=_safe(figures.pr_svg, pr) if pr else None,
        representativeness_svg=_safe(figures.representativeness_svg, representativeness),
        monitoring=monitoring,
        default_monitoring=default_monitoring,
        post_market=post_market_text(report, t),
        annexes=annexes(report),
        mlflow_link=mlflow_link(report),
        report_sha256=report_sha256,
        key_fingerprint=key_fingerprint,
        verdicts=VERDICTS,
    )
