"""Exit reports: canonical bytes, schema, signing and tamper detection, HTML rendering."""

from __future__ import annotations

import base64
import datetime as dt
import json
import stat
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from monitors.base import MonitorResult
from orchestrator.records import CriterionOutcome, JurisdictionAssessment, TrialEvent
from orchestrator.reports import (
    DataSection,
    EndpointSection,
    ErrorSection,
    ExitReport,
    IsolationControl,
    IsolationSection,
    MakeupRow,
    MetricsSection,
    MlflowSection,
    ModelSection,
    OperationsSection,
    ReportIntegrityError,
    ReportPaths,
    ReproducibilitySection,
    TeardownSection,
    TrialSection,
    canonical_json,
    export_schema,
    load_or_create_key,
    load_report,
    sign,
    verification_problem,
    verify,
    write_report,
)
from orchestrator.reports.schema import SCHEMA_PATH, main, schema_text
from orchestrator.reports.signing import PRIVATE_KEY_NAME, PUBLIC_KEY_NAME

T0 = dt.datetime(2026, 11, 26, 8, 0, 0, tzinfo=dt.UTC)
SHA_MODEL = "a" * 64
SHA_DATA = "b" * 64
SPEC = {
    "name": "diabetes-risk-screening",
    "sponsor": "acme-health",
    "intended_use": "Flag adults at risk of undiagnosed type 2 diabetes in primary care",
    "risk_class": "C",
    "model": {"uri": "models:/diabetes-risk@candidate", "template": "mlflow-pyfunc"},
    "data": {"source": "synthetic", "synthetic": {"generator": "sea-population", "rows": 5000, "seed": 7}},
    "jurisdictions": ["SG", "TH"],
}


def _at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _criterion(
    cid: str,
    metric: str,
    comparator: str,
    threshold: float,
    observed: float | None,
    outcome: str,
    severity: str = "blocking",
    interval: tuple[float, float] | None = None,
    inherited: str | None = "asean-core",
) -> CriterionOutcome:
    return CriterionOutcome.model_validate(
        {
            "criterion_id": cid,
            "metric": metric,
            "comparator": comparator,
            "threshold": threshold,
            "severity": severity,
            "provenance": "proposed",
            "reference": "POLICY-RESEARCH proposed default",
            "observed": observed,
            "interval": interval,
            "outcome": outcome,
            "inherited_from": inherited,
        }
    )


def _assessments() -> list[JurisdictionAssessment]:
    core = [
        _criterion("auroc-min", "perf/auroc", ">=", 0.80, 0.84, "pass", interval=(0.82, 0.86)),
        _criterion("auroc-gap", "fairness/auroc_gap", "<=", 0.05, 0.03, "pass"),
        _criterion("latency-p95", "latency/p95_ms", "<=", 500.0, 182.5, "pass", severity="advisory"),
    ]
    th_extra = _criterion("ece-max", "calibration/ece", "<=", 0.05, 0.071, "fail", "advisory", None, None)
    return [
        JurisdictionAssessment(
            jurisdiction="SG",
            profile_id="sg",
            profile_version="2026.1",
            profile_digest="c" * 64,
            verdict="pass",
            rule="pass: every blocking criterion passes",
            criteria=core,
        ),
        JurisdictionAssessment(
            jurisdiction="TH",
            profile_id="th",
            profile_version="2026.1",
            profile_digest="d" * 64,
            verdict="conditional",
            rule="conditional: blocking criteria pass, an advisory one fails",
            criteria=[*core, th_extra],
        ),
    ]


def _monitors() -> list[MonitorResult]:
    subgroup_sex = [
        {"group": "female", "n": 2480, "auroc": 0.85, "tpr": 0.71, "fpr": 0.12},
        {"group": "male", "n": 2520, "auroc": 0.82, "tpr": 0.69, "fpr": 0.14},
    ]
    subgroup_country = [
        {"group": "SG", "n": 1650, "auroc": 0.86},
        {"group": "TH", "n": 3290, "auroc": 0.83},
        {"group": "VN", "n": 60, "auroc": float("nan")},  # too few cases: no AUROC
    ]
    return [
        MonitorResult(
            monitor="performance",
            values={"perf/auroc": 0.84, "calibration/ece": 0.071},
            intervals={"perf/auroc": (0.82, 0.86)},
            figures={
                "calibration": {
                    "bins": [
                        {"mean_predicted": 0.05, "observed": 0.04, "count": 2100},
                        {"mean_predicted": 0.25, "observed": 0.31, "count": 1500},
                        {"mean_predicted": 0.65, "observed": 0.58, "count": 900},
                    ]
                }
            },
        ),
        MonitorResult(
            monitor="fairness",
            values={"fairness/auroc_gap": 0.03},
            tables={"subgroups/sex": subgroup_sex, "subgroups/country": subgroup_country},
            notes=["VN has fewer than 100 cases: insufficient evidence"],
        ),
        MonitorResult(
            monitor="latency",
            values={"latency/p50_ms": 41.0, "latency/p95_ms": 182.5, "ops/error_rate": 0.004},
            figures={
                "latency_histogram": {"edges": [0, 50, 100, 200, 400, 800], "counts": [610, 240, 90, 50, 10]}
            },
        ),
    ]


def _common() -> dict[str, Any]:
    return {
        "trial": TrialSection(
            name="diabetes-risk-screening",
            sponsor="acme-health <script>alert(1)</script>",
            intended_use="Flag adults at risk of undiagnosed type 2 diabetes (เบาหวาน) in primary care",
            risk_class="C",
            jurisdictions=["SG", "TH"],
            spec=SPEC,
        ),
        "reproducibility": ReproducibilitySection(
            versions={"python": "3.11.7", "pydantic": "2.14.4"},
            seeds={"data": 7, "bootstrap": 11},
            digests={"data": SHA_DATA, "profile/sg": "c" * 64},
        ),
    }


@pytest.fixture
def completed() -> ExitReport:
    events = [
        TrialEvent(trial_id="tr-1", at=_at(i), kind=kind)
        for i, kind in enumerate(
            ["admitted", "data_ready", "provisioned", "deployed", "observing", "assessed"]
        )
    ]
    return ExitReport(
        trial_id="tr-1",
        status="completed",
        created_at=_at(30),
        started_at=T0,
        finished_at=_at(29.5),
        model=ModelSection(
            uri="models:/diabetes-risk@candidate",
            resolved="models:/diabetes-risk/3",
            digest=SHA_MODEL,
            template="mlflow-pyfunc",
            image="regsandbox/mlflow-pyfunc:abc",
            image_digest="sha256:" + "e" * 64,
            flavors=["python_function", "sklearn"],
        ),
        data=DataSection(
            source="synthetic",
            generator="sea-population",
            rows=5000,
            seed=7,
            digest=SHA_DATA,
            label="diabetes",
            sensitive_attributes=["sex", "country"],
            makeup=[
                MakeupRow(attribute="country", group="SG", n=1650, share=0.33),
                MakeupRow(attribute="country", group="TH", n=3290, share=0.658),
                MakeupRow(attribute="country", group="VN", n=60, share=0.012),
            ],
        ),
        isolation=IsolationSection(
            backend="docker",
            level="container",
            verified=True,
            controls=[
                IsolationControl(control="no-egress network", applied=True, detail="internal network"),
                IsolationControl(control="read-only root filesystem", applied=True),
            ],
        ),
        endpoint=EndpointSection(url="http://127.0.0.1:8765/trials/tr-1", token_hint="x9f2"),
        metrics=MetricsSection(
            values={
                "perf/auroc": 0.84,
                "fairness/auroc_gap": 0.03,
                "latency/p95_ms": 182.5,
                "calibration/ece": 0.071,
                "perf/auprc": float("nan"),
            },
            intervals={"perf/auroc": (0.82, 0.86)},
        ),
        monitors=_monitors(),
        assessments=_assessments(),
        verdicts={"SG": "pass", "TH": "conditional"},
        operations=OperationsSection(requests=1000, errors=4, developer_requests=12),
        mlflow=MlflowSection(tracking_uri="sqlite:///tmp/mlflow.db", experiment_id="1", run_id="0f3a9c"),
        teardown=TeardownSection(
            verified=True, detail={"removed": ["container", "network"], "leftovers": []}
        ),
        events=[*events, TrialEvent(trial_id="tr-1", at=_at(29), kind="teardown", detail={"note": "ปกติ"})],
        **_common(),
    )


@pytest.fixture
def failed() -> ExitReport:
    return ExitReport(
        trial_id="tr-2",
        status="failed",
        created_at=_at(3),
        started_at=T0,
        finished_at=_at(2),
        model=ModelSection(uri="models:/diabetes-risk@candidate", template="mlflow-pyfunc"),
        teardown=TeardownSection(verified=True, detail={"removed": ["network"]}),
        events=[
            TrialEvent(trial_id="tr-2", at=_at(1), kind="admitted"),
            TrialEvent(trial_id="tr-2", at=_at(2), kind="error", detail={"step": "provision"}),
        ],
        error=ErrorSection(
            step="provision",
            type="BackendUnavailableError",
            message="docker engine does not answer at unix:///var/run/docker.sock",
        ),
        **_common(),
    )


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return tmp_path / "keys"


def _write(report: ExitReport, tmp_path: Path, keys: Path) -> ReportPaths:
    # The PDF has its own tests (test_report_pdf.py); here it would only cost time.
    return write_report(report, tmp_path / "reports" / report.trial_id, keys, pdf=False)


def test_shipped_schema_matches_model() -> None:
    jsonschema.Draft202012Validator.check_schema(export_schema())
    assert json.loads(SCHEMA_PATH.read_text(encoding="utf-8")) == export_schema()
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text()
    assert main(["--check"]) == 0


@pytest.mark.parametrize("which", ["completed", "failed"])
def test_written_report_validates_and_is_canonical(
    which: str, request: pytest.FixtureRequest, tmp_path: Path, keys: Path
) -> None:
    report: ExitReport = request.getfixturevalue(which)
    paths = _write(report, tmp_path, keys)
    raw = Path(paths.json_).read_bytes()
    document = json.loads(raw)
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))).validate(document)
    assert raw == canonical_json(report)
    assert raw == canonical_json(load_report(paths.json_))
    assert raw == json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert document["schema"] == "regsandbox/exit-report/v1"
    assert document["created_at"].endswith("Z") and "+00:00" not in raw.decode()
    assert "เบาหวาน".encode() in raw  # UTF-8 as is, not \\u escapes
    assert paths.pdf is None and Path(paths.signature).exists() and Path(paths.html).exists()
    assert paths.envelope and Path(paths.envelope).name == "report.intoto.jsonl"


def test_non_finite_values_are_stored_as_null(completed: ExitReport, tmp_path: Path, keys: Path) -> None:
    document = json.loads(Path(_write(completed, tmp_path, keys).json_).read_bytes())
    assert document["metrics"]["values"]["perf/auprc"] is None
    fairness = next(m for m in document["monitors"] if m["monitor"] == "fairness")
    assert fairness["tables"]["subgroups/country"][2]["auroc"] is None


def test_signature_verifies_and_every_flipped_byte_fails(
    completed: ExitReport, tmp_path: Path, keys: Path
) -> None:
    paths = _write(completed, tmp_path, keys)
    report, sig, pub = Path(paths.json_), Path(paths.signature), Path(paths.public_key)
    assert verify(report, sig, pub)
    original = report.read_bytes()
    positions = sorted({0, len(original) - 1, *range(0, len(original), 97)})
    assert len(positions) > 20
    for position in positions:
        tampered = bytearray(original)
        tampered[position] ^= 0x01
        report.write_bytes(bytes(tampered))
        assert not verify(report, sig, pub), f"byte {position} changed but the report still verifies"
    report.write_bytes(original)
    assert verify(report, sig, pub)


def test_tampered_signature_or_foreign_key_fails(completed: ExitReport, tmp_path: Path, keys: Path) -> None:
    paths = _write(completed, tmp_path, keys)
    report, sig, pub = Path(paths.json_), Path(paths.signature), Path(paths.public_key)
    raw = bytearray(base64.b64decode(sig.read_bytes()))
    raw[10] ^= 0x80
    sig.write_bytes(base64.b64encode(bytes(raw)))
    assert not verify(report, sig, pub)
    sig.write_bytes(b"not base64 at all!")
    assert (verification_problem(report, sig, pub) or "").startswith("signature is not base64")
    sig.write_bytes(base64.b64encode(b"\0" * 63))
    assert "expected 64" in (verification_problem(report, sig, pub) or "")
    write_report(completed, tmp_path / "again", keys, pdf=False)  # restores a good signature elsewhere
    other = load_or_create_key(tmp_path / "other-keys")
    assert other is not None
    assert not verify(
        tmp_path / "again" / "report.json",
        tmp_path / "again" / "report.json.sig",
        tmp_path / "other-keys" / PUBLIC_KEY_NAME,
    )


def test_signed_but_not_canonical_bytes_fail(completed: ExitReport, tmp_path: Path, keys: Path) -> None:
    pretty = json.dumps(json.loads(canonical_json(completed)), indent=2).encode()
    report, sig = tmp_path / "pretty.json", tmp_path / "pretty.json.sig"
    report.write_bytes(pretty)
    sig.write_bytes(base64.b64encode(sign(pretty, keys)))
    assert verification_problem(report, sig, keys / PUBLIC_KEY_NAME) == (
        "report bytes are signed but not in canonical form"
    )


def test_keys_are_created_once_with_private_permissions(keys: Path) -> None:
    first = load_or_create_key(keys)
    second = load_or_create_key(keys)
    assert first.private_bytes_raw() == second.private_bytes_raw()
    assert stat.S_IMODE((keys / PRIVATE_KEY_NAME).stat().st_mode) == 0o600
    assert (keys / PUBLIC_KEY_NAME).read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert len(sign(b"x", keys)) == 64


def test_signed_reports_are_immutable(completed: ExitReport, tmp_path: Path, keys: Path) -> None:
    first = _write(completed, tmp_path, keys)
    assert _write(completed, tmp_path, keys) == first  # identical content: idempotent
    changed = completed.model_copy(update={"created_at": _at(31)})
    with pytest.raises(ReportIntegrityError, match="immutable"):
        _write(changed, tmp_path, keys)
    write_report(changed, Path(first.json_).parent, keys, overwrite=True, pdf=False)
    assert verify(first.json_, first.signature, first.public_key)
    assert load_report(first.json_).created_at == _at(31)


def test_html_has_matrix_results_and_figures(completed: ExitReport, tmp_path: Path, keys: Path) -> None:
    html = Path(_write(completed, tmp_path, keys).html).read_text(encoding="utf-8")
    assert 'id="verdict-matrix"' in html
    assert 'data-jurisdiction="SG" data-verdict="pass"' in html
    assert 'data-jurisdiction="TH" data-verdict="conditional"' in html
    assert "conditional: blocking criteria pass, an advisory one fails" in html
    # One row per criterion, a cell per jurisdiction: SG and TH share the three core criteria.
    assert html.count('class="criterion"') == 3 + 1
    assert '<tr class="criterion" data-criterion="ece-max">' in html
    assert 'data-jurisdiction="TH" data-outcome="fail"' in html
    assert 'data-jurisdiction="SG" data-outcome="fail"' not in html
    assert "[0.820, 0.860]" in html  # 95% CI column
    for figure in ("fig-latency", "fig-calibration", "fig-subgroup-sex", "fig-subgroup-country"):
        assert f'<svg id="{figure}"' in html
    assert 'class="threshold"' in html and "threshold 0.8" in html
    assert "insufficient, n&lt;100" in html
    assert "0f3a9c" in html and "182.500" in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "").replace(
        "http://127.0.0.1:8765/trials/tr-1", ""
    )  # no external assets


def test_failed_report_html_shows_the_error(failed: ExitReport, tmp_path: Path, keys: Path) -> None:
    paths = _write(failed, tmp_path, keys)
    assert verify(paths.json_, paths.signature, paths.public_key)
    html = Path(paths.html).read_text(encoding="utf-8")
    assert 'id="error"' in html and "BackendUnavailableError" in html
    assert "docker engine does not answer" in html and "<code>provision</code>" in html
    assert 'data-jurisdiction="SG" data-verdict="not assessed"' in html
    assert "<svg" not in html
    assert "No subgroup evidence was produced." in html


def test_model_rejects_inconsistent_reports(failed: ExitReport, completed: ExitReport) -> None:
    base = failed.model_dump(by_alias=True)
    with pytest.raises(ValidationError, match="must say why"):
        ExitReport.model_validate({**base, "error": None})
    with pytest.raises(ValidationError, match="verdicts must equal"):
        ExitReport.model_validate({**completed.model_dump(by_alias=True), "verdicts": {"SG": "fail"}})
    with pytest.raises(ValidationError, match="timezone-aware"):
        ExitReport.model_validate({**base, "created_at": dt.datetime(2026, 1, 1)})  # noqa: DTZ001
    with pytest.raises(ValidationError, match="Extra inputs"):
        ExitReport.model_validate({**base, "surprise": 1})
    with pytest.raises(ValidationError):
        ExitReport.model_validate({**base, "schema": "regsandbox/exit-report/v0"})
    with pytest.raises(ValidationError):
        MlflowSection(tracking_uri="x", experiment_id="1", run_id="r", run_url="javascript:alert(1)")
