"""A process killed (SIGKILL) while it writes an exit report never leaves a torn report.

A real writer process renders, signs and writes a report (HTML, PDF, envelope, signature,
JSON) and is killed at a random moment inside that write, round after round. Afterwards each
folder holds either no ``report.json`` or a complete report that verifies; writing the same
report again finishes the job and leaves no temporary behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.reports import load_report
from orchestrator.reports.sample import sample_report
from orchestrator.reports.signing import PUBLIC_KEY_NAME, verify
from orchestrator.reports.writer import (
    HTML_NAME,
    JSON_NAME,
    PDF_NAME,
    SIGNATURE_NAME,
    load_or_create_key,
    write_report,
)

pytestmark = pytest.mark.slow

ROUNDS = 10
ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import sys, time
from pathlib import Path
from orchestrator.reports.sample import sample_report
from orchestrator.reports.writer import write_report
report = sample_report()
print("ready", flush=True)
sys.stdin.readline()  # the parent starts its clock when the write begins
started = time.monotonic()
write_report(report, Path(sys.argv[1]), Path(sys.argv[2]))
print(f"done {time.monotonic() - started:.3f}", flush=True)
"""


def start_writer(out_dir: Path, keys: Path) -> subprocess.Popen:  # type: ignore[type-arg]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(out_dir), str(keys)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    return writer


def check_folder(out_dir: Path, keys: Path) -> str:
    """'none' or 'complete'; anything else fails the test."""
    if not (out_dir / JSON_NAME).exists():
        return "none"
    assert verify(out_dir / JSON_NAME, out_dir / SIGNATURE_NAME, keys / PUBLIC_KEY_NAME), out_dir
    load_report(out_dir / JSON_NAME)
    assert (out_dir / HTML_NAME).read_text(encoding="utf-8").rstrip().endswith("</html>")
    assert (out_dir / PDF_NAME).read_bytes().rstrip().endswith(b"%%EOF")
    json.loads((out_dir / "report.intoto.jsonl").read_text(encoding="utf-8"))
    return "complete"


def test_a_report_is_whole_or_absent_whenever_its_writer_is_killed(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    load_or_create_key(keys)
    # One write to the end, to know how long a write lasts on this machine.
    writer = start_writer(tmp_path / "full", keys)
    out, _ = writer.communicate("go\n", timeout=120)
    duration = float(out.split()[-1])
    assert check_folder(tmp_path / "full", keys) == "complete"

    rng = random.Random(14)
    seen: dict[str, int] = {"none": 0, "complete": 0}
    for n in range(ROUNDS):
        out_dir = tmp_path / f"round-{n:02d}"
        writer = start_writer(out_dir, keys)
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
        time.sleep(rng.uniform(0.0, duration * 1.1))  # anywhere in the write, sometimes just after
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        seen[check_folder(out_dir, keys)] += 1
        # The next write of the same report (a retry, or the sweep) completes it and tidies up.
        write_report(sample_report(), out_dir, keys)
        assert check_folder(out_dir, keys) == "complete"
        assert [p.name for p in out_dir.iterdir() if p.name.startswith(".")] == []
    print(f"{ROUNDS} writers killed mid-write ({duration:.2f}s per write): {seen}")
    assert seen["none"] > 0, "no kill landed inside a write"
