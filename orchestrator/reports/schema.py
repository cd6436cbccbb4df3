"""JSON Schema of the exit report, shipped as ``schemas/exit-report-v1.json`` (a data package).

Regulators and other tools validate reports against the shipped file without running any of
this code, so the file is generated from :class:`ExitReport` and a test fails when the two
drift. Regenerate with ``python -m orchestrator.reports.schema`` (``--check`` only compares).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from orchestrator.package_data import data_dir
from orchestrator.reports.model import SCHEMA_ID, ExitReport

SCHEMA_PATH = data_dir("schemas") / "exit-report-v1.json"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def export_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that every stored ``report.json`` satisfies."""
    # Validation mode describes what load_report accepts; stored reports always carry every key.
    body = ExitReport.model_json_schema(mode="validation", by_alias=True)
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": SCHEMA_ID, **body}


def schema_text() -> str:
    """The schema exactly as shipped: two-space indent, sorted keys, trailing newline."""
    return json.dumps(export_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.reports.schema", description=__doc__)
    parser.add_argument("--out", type=Path, default=SCHEMA_PATH, help="where to write the schema")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs, write nothing")
    args = parser.parse_args(argv)
    text = schema_text()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date; run python -m orchestrator.reports.schema", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
