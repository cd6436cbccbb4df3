"""How numbers, times and JSON values are written in renderings of a report.

One spelling everywhere (the English body, every annex, the PDF): a regulator comparing an
annex with the signed JSON should see the same digits, so numbers use a dot as the decimal
mark in every language.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from markupsafe import Markup


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


def fmt_share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def fmt_signed_share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.1f} pp"


def css_string(value: Any) -> Markup:
    """``value`` as a quoted CSS string, safe inside a ``<style>`` element (no ``</style>`` escape)."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\a ").replace("<", "\\3c ")
    return Markup(f'"{text}"')  # noqa: S704 - every character that could end the string or the element is escaped
