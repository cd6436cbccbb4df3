"""What a person watching a trial sees: one line per step, and a bar for long work.

The lifecycle reports through :func:`current`; the command line installs a
:class:`TerminalReporter` for the duration of a trial. On a terminal the workload is one bar
redrawn in place; elsewhere (a log file, CI) a line is written only when the count changes, at
most once a second, and at the end, so a slow model never fills a log with repeated lines.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Protocol, TextIO


class Reporter(Protocol):
    def line(self, message: str) -> None: ...

    def bar(self, label: str, done: int, total: int, unit: str) -> None: ...


_current: Reporter | None = None


def current() -> Reporter | None:
    return _current


@contextlib.contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    global _current
    previous, _current = _current, reporter
    try:
        yield reporter
    finally:
        _current = previous


class TerminalReporter:
    def __init__(self, stream: TextIO | None = None, width: int = 30, min_interval_s: float = 1.0) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._width = width
        self._interval = min_interval_s
        self._open_bar = False
        self._last: tuple[str, int] | None = None
        self._last_at = 0.0

    def line(self, message: str) -> None:
        if self._open_bar:
            self._stream.write("\n")
            self._open_bar = False
        self._stream.write(message + "\n")
        self._stream.flush()

    def bar(self, label: str, done: int, total: int, unit: str) -> None:
        if self._last == (label, done):
            return
        finished = done >= total
        now = time.monotonic()
        if not self._tty and not finished and now - self._last_at < self._interval:
            return
        self._last, self._last_at = (label, done), now
        if not self._tty:
            self.line(f"{label} {done}/{total} {unit}")
            return
        filled = int(self._width * done / total) if total else self._width
        bar = "#" * filled + "." * (self._width - filled)
        self._stream.write(f"\r{label} [{bar}] {done}/{total} {unit}")
        self._open_bar = not finished
        if finished:
            self._stream.write("\n")
        self._stream.flush()
