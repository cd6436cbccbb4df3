"""Property-based bad input for every file the platform reads from a person: no case crashes.

Hypothesis generates both raw bytes and structured documents (the shipped example mutated:
values replaced, keys dropped, unknown keys added) for the trial spec (``trial validate``),
policy profiles, report verification and report diff. Every case must end in a clear,
deliberate answer: success, or the command's documented exit code with a one-line error, or
an error of the platform's own root (which the console script prints as one line). Any other
exception is a crash and fails the test. Counts per target are ``CASES`` (docs/reliability.md).
The API's request bodies and uploads are fuzzed from its OpenAPI document in
tests/api/test_openapi_fuzz.py.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.errors import RegSandboxError
from orchestrator.policy import load_profile
from orchestrator.reports.sample import sample_report
from orchestrator.reports.writer import write_report

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SPEC = yaml.safe_load((ROOT / "examples" / "trials" / "diabetes-risk.yaml").read_text())
SG_PROFILE = yaml.safe_load((ROOT / "policies" / "sg.yaml").read_text())
# Cases per target; together the file runs in about a minute on 2 cores.
CASES = {
    "spec-bytes": 200,
    "spec-structure": 200,
    "policy-bytes": 150,
    "policy-structure": 150,
    "verify-bytes": 150,
    "verify-mutated": 150,
    "diff": 100,
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.just("../../etc/passwd"),
    st.just("models:/x@y"),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += _paths(value, (*prefix, i))
    return found


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """``base`` with a few edits: a value replaced, a key dropped or an unknown key added."""
    doc = copy.deepcopy(base)
    paths = _paths(doc)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        try:
            for part in path[:-1]:  # an earlier edit may have removed or replaced this path
                parent = parent[part]
        except (IndexError, KeyError, TypeError):
            continue
        if not isinstance(parent, dict | list):
            continue
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        try:
            if action == "replace":
                parent[path[-1]] = draw(values)
            elif action == "drop" and isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=10))] = draw(values)
        except (IndexError, KeyError, TypeError):
            continue
    return draw(st.one_of(st.just(doc), values)) if draw(st.integers(0, 9)) == 0 else doc


def as_yaml(doc: Any) -> bytes:
    try:
        return yaml.safe_dump(doc, allow_unicode=True).encode("utf-8")
    except (yaml.YAMLError, ValueError):
        return json.dumps(doc, default=str).encode()


def fuzz(target: str):  # type: ignore[no-untyped-def]
    return settings(
        max_examples=CASES[target],
        deadline=None,
        database=None,
        derandomize=True,  # the same cases on every run, so a failure reproduces
        suppress_health_check=list(HealthCheck),
    )


def cli(args: list[str], codes: set[int]) -> Any:
    """Run the command as the console script would; anything but a deliberate end fails."""
    result = CliRunner().invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit | RegSandboxError):
        raise AssertionError(f"{args}: crashed with {result.exception!r}") from result.exception
    if isinstance(result.exception, RegSandboxError):
        return result  # main() prints these as one line and exits 1
    assert result.exit_code in codes, (args, result.exit_code, result.output[-2000:])
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _validate(work: Path, data: bytes) -> None:
    path = work / "spec.yaml"
    path.write_bytes(data)
    result = cli(["trial", "validate", str(path)], {0, 2})
    if result.exit_code == 2:
        assert result.output.strip(), "exit 2 without naming a problem"


@fuzz("spec-bytes")
@given(data=st.binary(max_size=2000))
def test_trial_validate_raw_bytes(work: Path, data: bytes) -> None:
    _validate(work, data)


@fuzz("spec-structure")
@given(doc=mutated(EXAMPLE_SPEC))
def test_trial_validate_structure(work: Path, doc: Any) -> None:
    _validate(work, as_yaml(doc))


def _profile(work: Path, data: bytes) -> None:
    folder = work / "policies"
    folder.mkdir(exist_ok=True)
    (folder / "sg.yaml").write_bytes(data)
    try:
        load_profile("sg", folder)
    except RegSandboxError as exc:
        assert str(exc).strip()


@fuzz("policy-bytes")
@given(data=st.binary(max_size=2000))
def test_policy_profile_raw_bytes(work: Path, data: bytes) -> None:
    _profile(work, data)


@fuzz("policy-structure")
@given(doc=mutated({k: v for k, v in SG_PROFILE.items() if k not in ("extends", "base")}))
def test_policy_profile_structure(work: Path, doc: Any) -> None:
    _profile(work, as_yaml(doc))


@pytest.fixture(scope="module")
def signed(work: Path) -> Path:
    out = work / "signed"
    write_report(sample_report(), out, work / "keys", pdf=False)
    return out


def _verify(work: Path, signed: Path, report: bytes, signature: bytes | None = None) -> None:
    folder = work / "verify"
    folder.mkdir(exist_ok=True)
    (folder / "report.json").write_bytes(report)
    (folder / "report.json.sig").write_bytes(
        signature if signature is not None else (signed / "report.json.sig").read_bytes()
    )
    key = work / "keys" / "issuer-ed25519.pub.pem"
    result = cli(["report", "verify", str(folder / "report.json"), "--public-key", str(key)], {0, 1})
    intact = report == (signed / "report.json").read_bytes() and signature is None
    assert result.exit_code == (0 if intact else 1), result.output


@fuzz("verify-bytes")
@given(report=st.binary(max_size=4000), signature=st.binary(max_size=200))
def test_report_verify_raw_bytes(work: Path, signed: Path, report: bytes, signature: bytes) -> None:
    _verify(work, signed, report, signature)


@fuzz("verify-mutated")
@given(data=st.data())
def test_report_verify_flipped_and_cut(work: Path, signed: Path, data: st.DataObject) -> None:
    original = (signed / "report.json").read_bytes()
    where = data.draw(st.integers(0, len(original) - 1))
    how = data.draw(st.sampled_from(["flip", "cut", "insert"]))
    if how == "flip":
        changed = (
            original[:where]
            + bytes([original[where] ^ data.draw(st.integers(1, 255))])
            + original[where + 1 :]
        )
    elif how == "cut":
        changed = original[:where]
    else:
        changed = original[:where] + data.draw(st.binary(min_size=1, max_size=20)) + original[where:]
    _verify(work, signed, changed)


@fuzz("diff")
@given(
    before=st.one_of(
        st.binary(max_size=1000), mutated(json.loads(sample_report().model_dump_json(by_alias=True)))
    )
)
def test_report_diff_bad_input(work: Path, signed: Path, before: Any) -> None:
    path = work / "before.json"
    path.write_bytes(before if isinstance(before, bytes) else json.dumps(before, default=str).encode())
    cli(["report", "diff", str(path), str(signed / "report.json")], {0, 1, 2})
