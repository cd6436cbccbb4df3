"""Render an exit report as one self-contained HTML page.

The page carries everything inline (CSS, SVG figures drawn here) because regulators archive
it, mail it and open it on phones in places without network access. Every text that comes
from the report is escaped: model names, subgroup labels and error messages are
developer-controlled input.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from orchestrator.reports.model import ExitReport

TEMPLATES = Path(__file__).with_name("templates")
MIN_SUBGROUP_N = 100  # below this a subgroup is "insufficient evidence" (proposed profile convention)
_GROUP_KEYS = ("group", "value", "level", "subgroup")
_N_KEYS = ("n", "count", "cases")


def fmt_num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "—"
        return f"{value:,.1f}" if abs(value) >= 1000 else f"{value:.{digits}f}"
    if isinstance(value, list | tuple) and len(value) == 2:
        return f"[{fmt_num(value[0], digits)}, {fmt_num(value[1], digits)}]"
    return str(value)


def fmt_time(value: dt.datetime | None) -> str:
    return "—" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_json(value: Any, indent: int | None = 2) -> str:
    return json.dumps(value, indent=indent, sort_keys=True, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Scale:
    """Linear map from a data domain onto pixels, clamped so outliers stay on the canvas."""

    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, value: float) -> float:
        lo, hi = min(self.d0, self.d1), max(self.d0, self.d1)
        t = (min(max(float(value), lo), hi) - self.d0) / (self.d1 - self.d0)
        return self.r0 + t * (self.r1 - self.r0)


def _svg(width: int, height: int, title: str, css_id: str, parts: list[Markup]) -> Markup:
    head = Markup(
        '<svg id="{}" class="figure" viewBox="0 0 {} {}" role="img" xmlns="http://www.w3.org/2000/svg">'
        "<title>{}</title>"
    ).format(css_id, width, height, title)
    return head + Markup("").join(parts) + Markup("</svg>")


def _text(x: float, y: float, label: object, anchor: str = "start", css: str = "") -> Markup:
    # Markup.format escapes every argument: labels come from developer-controlled data.
    return Markup('<text class="{}" x="{:.1f}" y="{:.1f}" text-anchor="{}">{}</text>').format(
        css, x, y, anchor, label
    )


def latency_histogram_svg(figure: dict[str, Any]) -> Markup | None:
    """Bars of the request latency distribution from ``{"edges": [...], "counts": [...]}``."""
    edges = [float(e) for e in figure.get("edges") or []]
    counts = [float(c) for c in figure.get("counts") or []]
    if not counts or len(edges) != len(counts) + 1 or edges[-1] <= edges[0]:
        return None
    w, h, left, bottom, top = 460, 230, 48, 42, 14
    peak = max(max(counts), 1.0)
    # Equal-width slots labelled with their edges: bins are often log-spaced, and drawing them to a
    # linear scale would let the wide tail bins dominate the picture.
    x, y = Scale(0, len(counts), left, w - 12), Scale(0.0, peak, h - bottom, top)
    bar = Markup(
        '<rect class="bar" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}"><title>{}</title></rect>'
    )
    parts = [
        bar.format(x(i), y(c), x(1) - x(0) - 1, y(0) - y(c), f"{a:g}-{b:g} ms: {c:g} requests")
        for i, (a, b, c) in enumerate(zip(edges, edges[1:], counts, strict=False))
    ]
    parts.append(
        Markup('<line class="axis" x1="{0}" y1="{1:.1f}" x2="{2}" y2="{1:.1f}"/>').format(left, y(0), w - 12)
    )
    step = max(1, len(edges) // 8)
    parts += [_text(x(i), h - 24, f"{e:g}", "middle") for i, e in enumerate(edges) if i % step == 0]
    parts += [_text(w / 2, h - 4, "latency (ms)", "middle"), _text(left - 6, top + 10, f"{peak:g}", "end")]
    parts.append(_text(left - 6, y(0), "0", "end"))
    return _svg(w, h, "Latency histogram (ms)", "fig-latency", parts)


def calibration_svg(figure: dict[str, Any]) -> Markup | None:
    """Reliability plot from ``{"bins": [{"mean_predicted", "observed", "count"}]}``."""
    bins = [
        (float(b["mean_predicted"]), float(b["observed"]), float(b.get("count") or 0))
        for b in figure.get("bins") or []
        if b.get("mean_predicted") is not None and b.get("observed") is not None
    ]
    if not bins:
        return None
    size, pad = 320, 40
    px, py = Scale(0.0, 1.0, pad, size - pad), Scale(0.0, 1.0, size - pad, pad)
    biggest = max(n for _, _, n in bins) or 1.0
    parts = [
        Markup('<rect class="frame" x="{0}" y="{0}" width="{1}" height="{1}"/>').format(pad, size - 2 * pad),
        Markup('<line class="ideal" x1="{0}" y1="{1}" x2="{1}" y2="{0}"/>').format(pad, size - pad),
        Markup('<polyline class="curve" points="{}"/>').format(
            " ".join(f"{px(p):.1f},{py(o):.1f}" for p, o, _ in bins)
        ),
    ]
    dot = Markup('<circle class="dot" cx="{:.1f}" cy="{:.1f}" r="{:.1f}"><title>{}</title></circle>')
    for p, o, n in bins:
        tip = f"predicted {p:.3f}, observed {o:.3f}, n={n:g}"
        parts.append(dot.format(px(p), py(o), 2.5 + 5 * math.sqrt(n / biggest), tip))
    for v in (0.0, 0.5, 1.0):
        parts += [_text(px(v), size - pad + 16, v, "middle"), _text(pad - 4, py(v) + 4, v, "end")]
    parts.append(_text(size / 2, size - 6, "mean predicted risk", "middle"))
    parts.append(
        Markup('<g transform="rotate(-90 12 {0})">{1}</g>').format(
            size // 2, _text(12, size / 2, "observed rate", "middle")
        )
    )
    return _svg(size, size, "Calibration: observed vs predicted risk", "fig-calibration", parts)


def _key(row: dict[str, Any], candidates: tuple[str, ...], contains: str) -> str | None:
    found = next((name for name in candidates if name in row), None)
    return found or next((k for k in row if contains in k.lower() and not isinstance(row[k], str)), None)


def subgroup_bars_svg(attribute: str, rows: list[dict[str, Any]], threshold: float | None) -> Markup | None:
    """Horizontal AUROC bars per subgroup, small groups greyed, the profile's threshold as a line."""
    if not rows:
        return None
    gkey = next((k for k in (*_GROUP_KEYS, attribute) if k in rows[0]), None) or next(iter(rows[0]))
    akey, nkey = _key(rows[0], ("auroc", "perf/auroc"), "auroc"), _key(rows[0], _N_KEYS, "count")
    if akey is None:
        return None
    finite = [float(v) for r in rows if isinstance(v := r.get(akey), int | float) and math.isfinite(v)]
    lo = min([0.5, *[math.floor(v * 10) / 10 for v in finite]])
    if threshold is not None:
        lo = min(lo, math.floor(threshold * 10) / 10)
    w, label_w, bar_h, top = 460, 110, 24, 24
    axis_y = top + bar_h * len(rows) + 4
    x = Scale(lo, 1.0, label_w, w - 70)
    bar = Markup('<rect class="{}" x="{}" y="{}" width="{:.1f}" height="{}"/>')
    parts: list[Markup] = []
    for i, row in enumerate(rows):
        yy, value, n = top + i * bar_h, row.get(akey), row.get(nkey) if nkey else None
        usable = isinstance(value, int | float) and math.isfinite(value)
        small = isinstance(n, int | float) and n < MIN_SUBGROUP_N
        end = x(float(value)) if usable and isinstance(value, int | float) else float(label_w)
        parts.append(_text(label_w - 6, yy + 15, str(row.get(gkey))[:14], "end"))
        if usable:
            css = "bar muted" if small else "bar"
            parts.append(bar.format(css, label_w, yy + 3, max(end - label_w, 1.0), bar_h - 6))
        note = fmt_num(value) + (
            f" (insufficient, n<{MIN_SUBGROUP_N})" if small else "" if usable else " (no value)"
        )
        parts.append(_text(end + 4, yy + 15, note))
    parts += [_text(x(v), axis_y + 14, f"{v:.2f}", "middle") for v in (lo, (lo + 1) / 2, 1.0)]
    if threshold is not None:
        line = Markup('<line class="threshold" x1="{0:.1f}" y1="{1}" x2="{0:.1f}" y2="{2}"/>')
        parts.append(line.format(x(threshold), top - 4, axis_y))
        parts.append(_text(x(threshold) + 3, top - 8, f"threshold {threshold:g}", css="threshold-label"))
    return _svg(w, axis_y + 24, f"AUROC by {attribute}", f"fig-subgroup-{attribute}", parts)


@dataclass(frozen=True)
class SubgroupView:
    attribute: str
    columns: list[str]
    rows: list[dict[str, Any]]
    svg: Markup | None


def _auroc_threshold(report: ExitReport) -> float | None:
    # The strictest minimum AUROC any jurisdiction applies is the line each subgroup is read against.
    found = [
        c.threshold
        for a in report.assessments
        for c in a.criteria
        if c.metric == "perf/auroc" and c.comparator in (">=", ">") and isinstance(c.threshold, float | int)
    ]
    return float(max(found)) if found else None


def _subgroups(report: ExitReport) -> list[SubgroupView]:
    threshold, views = _auroc_threshold(report), []
    for monitor in report.monitors:
        for name, rows in monitor.tables.items():
            if not name.startswith("subgroups/") or not rows:
                continue
            attribute = name.split("/", 1)[1]
            columns = list(dict.fromkeys(k for row in rows for k in row))
            views.append(
                SubgroupView(attribute, columns, rows, _safe(subgroup_bars_svg, attribute, rows, threshold))
            )
    return views


def _figure(report: ExitReport, name: str) -> dict[str, Any] | None:
    return next((m.figures[name] for m in report.monitors if name in m.figures), None)


def _operational(report: ExitReport) -> list[tuple[str, Any]]:
    values: dict[str, float | None] = {}
    for monitor in report.monitors:
        values.update(monitor.values)
    if report.metrics:
        values.update(report.metrics.values)
    rows: list[tuple[str, Any]] = [
        (k, v)
        for k, v in sorted(values.items())
        if k.startswith(("latency/", "ops/", "operational/")) or "error_rate" in k
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
    return rows


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=fmt_num, when=fmt_time, pretty=fmt_json, compact=lambda v: fmt_json(v, None))
    return env


def _safe(draw: Callable[..., Markup | None], *args: Any) -> Markup | None:
    # Figure data is free-form monitor output; a malformed figure must not cost the whole report.
    try:
        return draw(*args)
    except (TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError):
        return None


def render_html(
    report: ExitReport, *, report_sha256: str | None = None, key_fingerprint: str | None = None
) -> str:
    """The report as a standalone HTML page (UTF-8 text)."""
    assessed = {a.jurisdiction: a for a in report.assessments}
    codes = list(dict.fromkeys([*report.trial.jurisdictions, *assessed]))
    latency, calibration = _figure(report, "latency_histogram"), _figure(report, "calibration")
    page = _environment().get_template("report.html.j2")
    return page.render(
        r=report,
        matrix=[(code, assessed.get(code)) for code in codes],
        subgroups=_subgroups(report),
        operational=_operational(report),
        latency_svg=_safe(latency_histogram_svg, latency) if latency else None,
        calibration_svg=_safe(calibration_svg, calibration) if calibration else None,
        report_sha256=report_sha256,
        key_fingerprint=key_fingerprint,
        verdicts=("pass", "conditional", "fail"),
    )
