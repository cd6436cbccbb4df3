"""Inline SVG figures drawn from the plain figure data monitors put in the report.

Figures are styled with presentation attributes, not CSS: WeasyPrint does not apply the page's
stylesheet to inline SVG, and a figure then looks the same in the browser, the PDF and a copy
pasted elsewhere. Every label is escaped (``Markup.format``):
subgroup names and feature names are developer-controlled data. Figure data is free-form, so
each function returns None for shapes it cannot draw rather than raise.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from markupsafe import Markup

MIN_SUBGROUP_N = 100  # below this a subgroup is "insufficient evidence" (proposed profile convention)
PSI_WARN, PSI_FAIL = 0.10, 0.25  # industry convention, see POLICY-RESEARCH "Proposed profile content"
_GROUP_KEYS = ("group", "value", "level", "subgroup")
_N_KEYS = ("n", "count", "cases")
_DASHED = 'stroke-width="2" stroke-dasharray="5 3"'
# Presentation attributes rather than CSS: WeasyPrint applies neither the page's stylesheet nor
# (cheaply) a <style> per figure to inline SVG, and attributes render the same everywhere.
_PRESENTATION = {
    "": "",
    "bar": 'fill="#2f5d8a"',
    "bar muted": 'fill="#b8c0cc"',
    "bar warn": 'fill="#c98a00"',
    "bar bad": 'fill="#b3261e"',
    "axis": 'stroke="#5b6575" fill="none"',
    "frame": 'stroke="#5b6575" fill="none"',
    "ideal": 'stroke="#5b6575" stroke-dasharray="4 3" fill="none"',
    "curve": 'stroke="#2f5d8a" stroke-width="2" fill="none"',
    "dot": 'fill="#2f5d8a"',
    "threshold": f'stroke="#b3261e" {_DASHED}',
    "threshold warn": f'stroke="#c98a00" {_DASHED}',
    "threshold-label": 'fill="#b3261e"',
    "small": 'font-size="10"',
    "threshold-label small": 'fill="#b3261e" font-size="10"',
}
_CLASS = re.compile(r'class="([^"]*)"')
_ROOT = Markup('font-family="Noto Sans, DejaVu Sans, sans-serif" font-size="12" fill="#1d2430"')


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


def _styled(match: re.Match[str]) -> str:
    # Class values come from this module only; labels are escaped, so they cannot hold class="...".
    return f"{match[0]} {_PRESENTATION[match[1]]}".rstrip()


def _svg(width: int, height: float, title: str, css_id: str, parts: list[Markup]) -> Markup:
    head = Markup(
        '<svg id="{}" class="figure" viewBox="0 0 {} {:.0f}" role="img" '
        'xmlns="http://www.w3.org/2000/svg" {}><title>{}</title>'
    ).format(css_id, width, height, _ROOT, title)
    # The parts are already escaped markup; adding attributes after our own class values keeps them so.
    body = Markup(_CLASS.sub(_styled, str(Markup("").join(parts))))  # noqa: S704
    return head + body + Markup("</svg>")


def _text(x: float, y: float, label: object, anchor: str = "start", css: str = "") -> Markup:
    return Markup('<text class="{}" x="{:.1f}" y="{:.1f}" text-anchor="{}">{}</text>').format(
        css, x, y, anchor, label
    )


def finite(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def latency_histogram_svg(figure: dict[str, Any]) -> Markup | None:
    """Bars of the request latency distribution: ``{"bin_edges_ms" | "edges": [...], "counts": [...]}``."""
    edges = [float(e) for e in figure.get("bin_edges_ms") or figure.get("edges") or []]
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
        bar.format(x(i), y(c), max(x(1) - x(0) - 1, 0.5), y(0) - y(c), f"{a:.3g}-{b:.3g} ms: {c:g} requests")
        for i, (a, b, c) in enumerate(zip(edges, edges[1:], counts, strict=False))
    ]
    parts.append(
        Markup('<line class="axis" x1="{0}" y1="{1:.1f}" x2="{2}" y2="{1:.1f}"/>').format(left, y(0), w - 12)
    )
    step = max(1, math.ceil(len(edges) / 7))
    parts += [_text(x(i), h - 24, f"{e:.3g}", "middle") for i, e in enumerate(edges) if i % step == 0]
    parts += [_text(w / 2, h - 4, "latency (ms)", "middle"), _text(left - 6, top + 10, f"{peak:g}", "end")]
    parts.append(_text(left - 6, y(0), "0", "end"))
    return _svg(w, h, "Latency histogram (ms)", "fig-latency", parts)


def _calibration_bins(figure: dict[str, Any]) -> list[tuple[float, float, float]]:
    if isinstance(figure.get("bins"), list):
        rows = [(b.get("mean_predicted"), b.get("observed"), b.get("count")) for b in figure["bins"]]
    else:  # columnar, as monitors.stats.calibration_bins returns it
        rows = list(
            zip(
                figure.get("mean_predicted") or [],
                figure.get("observed_rate") or figure.get("observed") or [],
                figure.get("count") or figure.get("counts") or [],
                strict=False,
            )
        )
    return [(float(p), float(o), float(n or 0)) for p, o, n in rows if finite(p) and finite(o)]


def calibration_svg(figure: dict[str, Any]) -> Markup | None:
    """Reliability plot: observed event rate against mean predicted risk, one dot per bin."""
    bins = _calibration_bins(figure)
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


def _curve_svg(
    points: list[tuple[float, float]], labels: tuple[str, str, str, str], note: str, baseline: float | None
) -> Markup:
    """A curve in the unit square; ``baseline`` None draws the diagonal, a number a horizontal line."""
    title, css_id, xlabel, ylabel = labels
    size, pad = 320, 40
    px, py = Scale(0.0, 1.0, pad, size - pad), Scale(0.0, 1.0, size - pad, pad)
    reference = (
        Markup('<line class="ideal" x1="{0}" y1="{1}" x2="{1}" y2="{0}"/>').format(pad, size - pad)
        if baseline is None
        else Markup('<line class="ideal" x1="{0}" y1="{1:.1f}" x2="{2}" y2="{1:.1f}"/>').format(
            pad, py(baseline), size - pad
        )
    )
    parts = [
        Markup('<rect class="frame" x="{0}" y="{0}" width="{1}" height="{1}"/>').format(pad, size - 2 * pad),
        reference,
        Markup('<polyline class="curve" points="{}"/>').format(
            " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        ),
    ]
    for v in (0.0, 0.5, 1.0):
        parts += [_text(px(v), size - pad + 16, v, "middle"), _text(pad - 4, py(v) + 4, v, "end")]
    if note:
        parts.append(_text(px(0.95), py(0.05) if baseline is None else py(0.92), note, "end"))
    parts.append(_text(size / 2, size - 6, xlabel, "middle"))
    parts.append(
        Markup('<g transform="rotate(-90 12 {0})">{1}</g>').format(
            size // 2, _text(12, size / 2, ylabel, "middle")
        )
    )
    return _svg(size, size, title, css_id, parts)


def _points(xs: Any, ys: Any) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in zip(xs or [], ys or [], strict=False) if finite(x) and finite(y)]


def roc_svg(figure: dict[str, Any]) -> Markup | None:
    """ROC curve from ``{"fpr": [...], "tpr": [...], "auroc": float}``."""
    points = _points(figure.get("fpr"), figure.get("tpr"))
    if len(points) < 2:
        return None
    auroc = figure.get("auroc")
    note = f"AUROC {float(auroc):.3f}" if finite(auroc) else ""
    labels = ("ROC curve", "fig-roc", "false positive rate", "true positive rate")
    return _curve_svg(points, labels, note, None)


def pr_svg(figure: dict[str, Any]) -> Markup | None:
    """Precision-recall curve from ``{"recall": [...], "precision": [...], "auprc", "prevalence"}``."""
    points = _points(figure.get("recall"), figure.get("precision"))
    if len(points) < 2:
        return None
    auprc, prevalence = figure.get("auprc"), figure.get("prevalence")
    note = f"AUPRC {float(auprc):.3f}" if finite(auprc) else ""
    labels = ("Precision-recall curve", "fig-pr", "recall (sensitivity)", "precision (PPV)")
    return _curve_svg(points, labels, note, float(prevalence) if finite(prevalence) else 0.0)


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
    known = [float(v) for r in rows if finite(v := r.get(akey))]
    lo = min([0.5, *[math.floor(v * 10) / 10 for v in known]])
    if threshold is not None:
        lo = min(lo, math.floor(threshold * 10) / 10)
    w, label_w, bar_h, top = 460, 110, 24, 24
    axis_y = top + bar_h * len(rows) + 4
    x = Scale(lo, 1.0, label_w, w - 150)
    bar = Markup('<rect class="{}" x="{}" y="{}" width="{:.1f}" height="{}"/>')
    parts: list[Markup] = []
    for i, row in enumerate(rows):
        yy, raw, n = top + i * bar_h, row.get(akey), row.get(nkey) if nkey else None
        value = float(raw) if finite(raw) else None
        small = finite(n) and float(n) < MIN_SUBGROUP_N
        parts.append(_text(label_w - 6, yy + 15, str(row.get(gkey))[:16], "end"))
        if value is not None:
            css = "bar muted" if small else "bar"
            parts.append(bar.format(css, label_w, yy + 3, max(x(value) - label_w, 1.0), bar_h - 6))
        note = ("—" if value is None else f"{value:.3f}") + (
            f" (insufficient, n<{MIN_SUBGROUP_N})" if small else " (no value)" if value is None else ""
        )
        # Values in a column of their own, clear of the bars and the threshold line.
        parts.append(_text(w - 142, yy + 15, note, css="small"))
    parts += [_text(x(v), axis_y + 14, f"{v:.2f}", "middle") for v in (lo, (lo + 1) / 2, 1.0)]
    if threshold is not None:
        line = Markup('<line class="threshold" x1="{0:.1f}" y1="{1}" x2="{0:.1f}" y2="{2}"/>')
        parts.append(line.format(x(threshold), top - 4, axis_y))
        parts.append(_text(x(threshold) + 3, top - 8, f"threshold {threshold:g}", css="threshold-label"))
    return _svg(w, axis_y + 24, f"AUROC by {attribute}", f"fig-subgroup-{attribute}", parts)


def drift_svg(figure: dict[str, Any], warn: float = PSI_WARN, fail: float = PSI_FAIL) -> Markup | None:
    """PSI per feature as bars against the warn and fail lines, KS statistic as a label.

    ``figure`` is the drift monitor's ``{"features": [...], "psi": [...], "ks": [...]}``
    (``ks`` optional); features without a finite PSI are listed with "no value".
    The caller picks the warn and fail lines (the monitor's or the profiles' thresholds).
    """
    features = [str(f) for f in figure.get("features") or []]
    psi = list(figure.get("psi") or [])
    ks = list(figure.get("ks") or [])
    if not features or len(psi) != len(features):
        return None
    ks += [None] * (len(features) - len(ks))
    known = [float(v) for v in psi if finite(v)]
    top_value = max([fail * 1.2, *known]) if known else fail * 1.2
    w, label_w, bar_h, top = 460, 120, 22, 24
    axis_y = top + bar_h * len(features) + 4
    x = Scale(0.0, top_value, label_w, w - 130)
    bar = Markup('<rect class="{}" x="{}" y="{}" width="{:.1f}" height="{}"><title>{}</title></rect>')
    parts: list[Markup] = [_text(w - 62, top - 8, "PSI", "end", css="small")]
    for i, (name, p, k) in enumerate(zip(features, psi, ks, strict=True)):
        yy = top + i * bar_h
        parts.append(_text(label_w - 6, yy + 14, name[:18], "end"))
        if not finite(p):
            parts.append(_text(w - 62, yy + 14, "—", "end", css="small"))
            continue
        value = float(p)
        css = "bar bad" if value >= fail else "bar warn" if value >= warn else "bar"
        tip = f"{name}: PSI {value:.3f}" + (f", KS {float(k):.3f}" if finite(k) else "")
        parts.append(bar.format(css, label_w, yy + 3, max(x(value) - label_w, 1.0), bar_h - 6, tip))
        # Values in a column of their own, clear of the bars and the threshold lines.
        parts.append(_text(w - 62, yy + 14, f"{value:.3f}", "end", css="small"))
        parts.append(_text(w - 4, yy + 14, f"KS {float(k):.2f}" if finite(k) else "KS —", "end", css="small"))
    line = Markup('<line class="{}" x1="{:.1f}" y1="{}" x2="{:.1f}" y2="{}"/>')
    parts.append(line.format("threshold warn", x(warn), top - 4, x(warn), axis_y))
    parts.append(line.format("threshold", x(fail), top - 4, x(fail), axis_y))
    parts.append(_text(x(warn), top - 8, f"warn {warn:g}", "end", css="small"))
    parts.append(_text(x(fail) + 3, top - 8, f"fail {fail:g}", css="threshold-label small"))
    parts.append(_text(w / 2, axis_y + 16, "population stability index (PSI) per feature", "middle"))
    return _svg(w, axis_y + 24, "Drift per feature (PSI, KS)", "fig-drift", parts)


def representativeness_svg(rows: list[Any]) -> Markup | None:
    """Each group's share of the trial data (bar) against its target-population share (tick).

    ``rows`` are :class:`~orchestrator.reports.sections.RepresentativenessRow` objects.
    """
    if not rows:
        return None
    peak = max(max(r.observed_share, r.target_share) for r in rows)
    w, label_w, bar_h, top = 460, 150, 20, 20
    axis_y = top + bar_h * len(rows) + 4
    x = Scale(0.0, max(peak * 1.1, 0.05), label_w, w - 90)
    bar = Markup('<rect class="{}" x="{}" y="{}" width="{:.1f}" height="{}"><title>{}</title></rect>')
    tick = Markup('<line class="threshold" x1="{0:.1f}" y1="{1}" x2="{0:.1f}" y2="{2}"/>')
    parts: list[Markup] = []
    for i, row in enumerate(rows):
        yy = top + i * bar_h
        css = "bar warn" if abs(row.difference) >= 0.05 else "bar"
        tip = (
            f"{row.attribute} {row.group}: observed {row.observed_share:.1%}, "
            f"target {row.target_share:.1%}, difference {row.difference * 100:+.1f} pp"
        )
        parts.append(_text(label_w - 6, yy + 14, f"{row.attribute}: {row.group}"[:24], "end"))
        parts.append(
            bar.format(css, label_w, yy + 3, max(x(row.observed_share) - label_w, 1.0), bar_h - 6, tip)
        )
        parts.append(tick.format(x(row.target_share), yy + 1, yy + bar_h - 1))
        parts.append(_text(w - 86, yy + 14, f"{row.difference * 100:+.1f} pp", css="small"))
    parts.append(_text(label_w, axis_y + 14, "bar: trial data; red tick: target population", css="small"))
    return _svg(
        w, axis_y + 22, "Representativeness: trial data vs target population", "fig-representativeness", parts
    )
