"""The portal's colours meet WCAG 2.1 AA: text 4.5:1 on the backgrounds it is drawn on, focus rings 3:1."""

from __future__ import annotations

import re

import pytest

from orchestrator.api.portal.web import CSS_NAME, TEMPLATES

WHITE = "#ffffff"


def _colours() -> dict[str, str]:
    root = re.search(r":root\s*\{(.*?)\}", (TEMPLATES / CSS_NAME).read_text(), re.S)
    assert root, "portal.css declares its colours in :root"
    return dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-f]{6})", root.group(1)))


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


# (foreground, background, minimum): every pairing the stylesheet draws.
PAIRS = [
    ("ink", "white", 4.5),
    ("muted", "white", 4.5),
    ("muted", "soft", 4.5),
    ("muted", "pass-bg", 4.5),
    ("muted", "fail-bg", 4.5),
    ("link", "white", 4.5),
    ("white", "link", 4.5),  # primary buttons
    ("white", "top", 4.5),  # header
    ("pass", "pass-bg", 4.5),
    ("cond", "cond-bg", 4.5),
    ("fail", "fail-bg", 4.5),
    ("fail", "white", 4.5),
    ("focus", "white", 3.0),
]


@pytest.mark.parametrize(("fg", "bg", "minimum"), PAIRS, ids=[f"{f}-on-{b}" for f, b, _ in PAIRS])
def test_colour_pairs_meet_aa(fg: str, bg: str, minimum: float) -> None:
    colours = {**_colours(), "white": WHITE}
    assert _contrast(colours[fg], colours[bg]) >= minimum, (fg, colours[fg], bg, colours[bg])
