"""Time to render a demo-size exit report in all three formats (target: under 3 s together).

Run: ``python bench/bench_reports.py [REPORT.json] [REPEATS]``. Without a report it uses the
newest ``report.json`` under ``$REGSANDBOX_HOME/reports`` (then ``/tmp/rshome/reports``), else
the built-in sample report (six jurisdictions, every section filled). The one-off cost of
loading WeasyPrint and scanning fonts is printed separately: a long-running worker pays it once.
CPU seconds are printed beside wall seconds because a busy machine inflates the latter; they
count this process only, not the worker that lays out the annexes. The baseline is the same PDF
laid out as one document in this process (``REGSANDBOX_PDF_WORKERS=0``).
"""

from __future__ import annotations

import glob
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.summary import emit, figure  # noqa: E402
from orchestrator.reports import ExitReport, load_report, render_html, write_report  # noqa: E402
from orchestrator.reports.sample import sample_report  # noqa: E402
from orchestrator.reports.signing import load_or_create_key  # noqa: E402
from orchestrator.reports.writer import signable_bytes  # noqa: E402


def _find_report(argument: str | None) -> tuple[str, ExitReport]:
    if argument:
        return argument, load_report(argument)
    homes = [os.environ.get("REGSANDBOX_HOME", ".regsandbox"), "/tmp/rshome"]  # noqa: S108 - demo home
    found = [p for home in homes for p in glob.glob(f"{home}/reports/*/report.json")]
    completed = [p for p in found if load_report(p).status == "completed"]
    if completed:
        newest = max(completed, key=os.path.getmtime)
        return newest, load_report(newest)
    return "built-in sample report", sample_report()


def _time(step: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), statistics.median(walls), min(cpus)


def main(argument: str | None = None, repeats: int = 3) -> None:
    source, report = _find_report(argument)
    keys = Path(tempfile.mkdtemp(prefix="bench-keys-"))
    out = Path(tempfile.mkdtemp(prefix="bench-report-"))
    key = load_or_create_key(keys)

    start = time.perf_counter()
    from orchestrator.reports.pdf import layout_pdf, render_pdf

    layout_pdf("<p>ภาษาไทย</p>")  # imports WeasyPrint and scans the fonts, once per process
    warmup = time.perf_counter() - start
    render_pdf(report)  # warms the layout caches and the annex worker, as an earlier report would

    def json_and_signature() -> None:
        key.sign(signable_bytes(report))

    steps: list[tuple[str, Callable[[], object]]] = [
        ("json + signature", json_and_signature),
        ("html", lambda: render_html(report)),
        ("pdf, one process", lambda: layout_pdf(render_html(report))),
        ("pdf", lambda: render_pdf(report)),
        ("write_report (all files)", lambda: write_report(report, out, keys, overwrite=True)),
    ]
    written = write_report(report, out, keys, overwrite=True)
    print(f"exit report rendering: {source}")
    criteria = sum(len(a.criteria) for a in report.assessments)
    print(f"  {len(report.assessments)} jurisdictions, {criteria} criteria")
    print(f"  one-off WeasyPrint import and font scan: {warmup:6.2f} s")
    print(f"  {'step':<26}{'best s':>8}{'median s':>10}{'cpu s':>8}   ({repeats} runs)")
    medians = {}
    for name, step in steps:
        best, median, cpu = _time(step, repeats)
        medians[name] = median
        print(f"  {name:<26}{best:8.3f}{median:10.3f}{cpu:8.3f}")
    total = medians["write_report (all files)"]
    print(
        f"  all three formats, written and signed: {total:.2f} s median (target < 3 s); PDF with the "
        f"annex worker / in one process: {medians['pdf'] / medians['pdf, one process']:.2f}"
    )
    sizes = {p.name: p.stat().st_size for p in sorted(out.iterdir())}
    print("  files: " + ", ".join(f"{name} {size / 1024:.0f} KiB" for name, size in sizes.items()))
    if written.pdf:
        from pypdf import PdfReader

        print(f"  pdf pages: {len(PdfReader(written.pdf).pages)}")
    one_process = medians["pdf, one process"]
    emit(
        "reports",
        [
            figure(
                "exit report PDF, annexes in the worker",
                medians["pdf"],
                "s",
                "the same PDF laid out in one process",
                one_process,
            ),
            figure(
                "all three formats, written and signed",
                total,
                "s",
                "the PDF alone laid out in one process",
                one_process,
                "lower",
                "total < 3 s",
            ),
        ],
    )


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else None, int(args[1]) if len(args) > 1 else 3)
