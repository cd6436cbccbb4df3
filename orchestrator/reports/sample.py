"""A complete, fictitious exit report of demo size, with every section filled.

It shows the format to people who have not run a trial, and it is what benchmarks and the
rendering tests use: six jurisdictions, thirteen criteria each, subgroup tables, drift,
calibration, ROC, latency, a model card, representativeness, failure cases in Thai and
Vietnamese, and a post-market plan. Every number is invented. ``python -m
orchestrator.reports.sample OUT_DIR`` writes and signs it with a throw-away key.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from monitors.base import MonitorResult
from orchestrator.records import CriterionOutcome, JurisdictionAssessment, TrialEvent
from orchestrator.reports.model import (
    DataSection,
    DataValidation,
    EndpointSection,
    ExitReport,
    IsolationControl,
    IsolationSection,
    MakeupRow,
    MetricsSection,
    MlflowSection,
    ModelSection,
    OperationsSection,
    ReproducibilitySection,
    TeardownSection,
    TrialSection,
)
from orchestrator.reports.sections import (
    ContractCheck,
    FailureCase,
    Incident,
    ModelCard,
    MonitoringItem,
    PlannedChange,
    PostMarketSection,
    RepresentativenessRow,
)

T0 = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)
CODES = ("SG", "MY", "TH", "ID", "PH", "VN")
ATTRIBUTES = {
    "sex": ["female", "male"],
    "age_band": ["18-39", "40-59", "60+"],
    "ethnicity": ["chinese", "malay", "indian", "thai", "kinh", "javanese", "filipino", "other"],
    "country": list(CODES),
}
_CORE = [  # (id, metric, comparator, threshold, severity)
    ("perf-auroc", "perf/auroc", ">=", 0.80, "blocking"),
    ("perf-auroc-ci-low", "perf/auroc_ci_low", ">=", 0.75, "blocking"),
    ("calibration-ece", "calibration/ece", "<=", 0.05, "advisory"),
    ("latency-p95", "latency/p95_ms", "<=", 500.0, "advisory"),
    ("error-rate", "ops/error_rate", "<=", 0.01, "blocking"),
    ("drift-max-psi", "drift/max_psi", "<=", 0.25, "advisory"),
    *[(f"fairness-auroc-gap-{a}", f"fairness/auroc_gap/{a}", "<=", 0.05, "advisory") for a in ATTRIBUTES],
    *[
        (f"fairness-eq-odds-{a}", f"fairness/eq_odds_diff/{a}", "<=", 0.10, "advisory")
        for a in ("sex", "age_band")
    ],
    ("unscored-rate", "perf/unscored_rate", "<=", 0.01, "advisory"),
]


def _values(rng: random.Random) -> dict[str, float]:
    values = {
        "perf/auroc": 0.8249,
        "perf/auroc_ci_low": 0.8046,
        "perf/accuracy": 0.896,
        "perf/brier": 0.0849,
        "perf/unscored_rate": 0.0,
        "calibration/ece": 0.071,
        "latency/p50_ms": 12.9,
        "latency/p95_ms": 37.5,
        "latency/p99_ms": 95.3,
        "ops/error_rate": 0.0,
        "drift/max_psi": 0.31,
    }
    for attribute in ATTRIBUTES:
        values[f"fairness/auroc_gap/{attribute}"] = round(rng.uniform(0.0, 0.12), 4)
        values[f"fairness/eq_odds_diff/{attribute}"] = round(rng.uniform(0.0, 0.09), 4)
    return values


def _outcome(value: float, comparator: str, threshold: float) -> str:
    return "pass" if (value >= threshold if comparator == ">=" else value <= threshold) else "fail"


def _assessments(values: dict[str, float]) -> list[JurisdictionAssessment]:
    assessments = []
    for index, code in enumerate(CODES):
        criteria = []
        for cid, metric, comparator, threshold, severity in _CORE:
            if code == "TH" and cid == "perf-auroc-ci-low":
                threshold = 0.81  # a tightened national delta, so the matrix shows a divergence
            value = values[metric]
            criteria.append(
                CriterionOutcome(
                    criterion_id=cid,
                    metric=metric,
                    comparator=comparator,
                    threshold=threshold,
                    severity=severity,
                    provenance="convention" if "psi" in metric else "proposed",
                    reference="regsandbox proposed default; no SEA regulator publishes this threshold"
                    if "psi" not in metric
                    else "PSI 0.10 warn / 0.25 act: credit-risk industry convention",
                    observed=value,
                    interval=(0.8046, 0.8422) if metric == "perf/auroc" else None,
                    outcome=_outcome(value, comparator, threshold),
                    inherited_from="asean-core" if code != "TH" or cid != "perf-auroc-ci-low" else None,
                )
            )
        if index % 2:
            criteria = criteria[:-1]  # not every profile carries every advisory criterion
        blocking_failed = any(c.outcome == "fail" and c.severity == "blocking" for c in criteria)
        any_failed = any(c.outcome == "fail" for c in criteria)
        verdict = "fail" if blocking_failed else "conditional" if any_failed else "pass"
        assessments.append(
            JurisdictionAssessment(
                jurisdiction=code,
                profile_id=code.lower(),
                profile_version="0.1.0",
                profile_digest=f"{index:x}" * 64,
                verdict=verdict,
                rule=f"{verdict}: blocking criteria {'fail' if blocking_failed else 'pass'}; "
                f"{'some' if any_failed else 'no'} advisory criteria fail",
                criteria=criteria,
            )
        )
    return assessments


def _monitors(rng: random.Random, values: dict[str, float]) -> list[MonitorResult]:
    subgroups: dict[str, list[dict[str, Any]]] = {}
    for attribute, groups in ATTRIBUTES.items():
        subgroups[f"subgroups/{attribute}"] = [
            {
                "group": g,
                "n": 60 if g == "other" else rng.randint(300, 2500),
                "positives": rng.randint(20, 250),
                "auroc": None if g == "other" else round(rng.uniform(0.73, 0.86), 4),
                "tpr": round(rng.uniform(0.0, 0.1), 4),
                "fpr": round(rng.uniform(0.0, 0.01), 4),
                "status": "insufficient" if g == "other" else "assessed",
            }
            for g in groups
        ]
    features = ["age", "bmi", "waist_cm", "sbp", "fasting_glucose", "hba1c", "family_history", "smoker"]
    psi = [round(rng.uniform(0.01, 0.2), 3) for _ in features]
    psi[1] = 0.31  # BMI: the reference population is heavier than the SEA trial population
    ks = [round(rng.uniform(0.01, 0.25), 3) for _ in features]
    fpr = [i / 100 for i in range(101)]
    edges = [6.0 + 3.2 * i for i in range(31)]
    counts = [int(400 * math.exp(-((i - 3) ** 2) / 8)) + (2 if i > 25 else 0) for i in range(30)]
    calibration = {
        "bin_edges": [i / 10 for i in range(11)],
        "mean_predicted": [0.02, 0.14, 0.24, 0.34, 0.44, 0.55, 0.65, 0.79, None, None],
        "observed_rate": [0.06, 0.31, 0.46, 0.56, 0.59, 0.83, 0.67, 1.0, None, None],
        "count": [4359, 383, 153, 59, 27, 12, 6, 1, 0, 0],
    }
    perf_keys = ("perf/", "calibration/")
    return [
        MonitorResult(
            monitor="performance",
            values={k: v for k, v in values.items() if k.startswith(perf_keys)},
            intervals={"perf/auroc": (0.8046, 0.8422)},
            figures={
                "calibration": calibration,
                "roc": {"fpr": fpr, "tpr": [min(1.0, f**0.35) for f in fpr], "auroc": values["perf/auroc"]},
                "precision_recall": {
                    "recall": [i / 50 for i in range(51)],
                    "precision": [max(0.106, 0.9 - 0.8 * (i / 50) ** 0.7) for i in range(51)],
                    "auprc": 0.52,
                    "prevalence": 0.106,
                },
            },
            notes=["5000 scored cases; 0 case(s) without a usable score were excluded."],
        ),
        MonitorResult(
            monitor="fairness",
            values={k: v for k, v in values.items() if k.startswith("fairness/")},
            tables=subgroups,
            notes=["ethnicity: insufficient evidence for 'other' (n=60); excluded from the gaps"],
        ),
        MonitorResult(
            monitor="operational",
            values={k: v for k, v in values.items() if k.startswith(("latency/", "ops/"))},
            figures={"latency_histogram": {"edges": edges, "bin_edges_ms": edges, "counts": counts}},
            notes=["100 request(s), 0 not ok."],
        ),
        MonitorResult(
            monitor="drift",
            values={"drift/max_psi": values["drift/max_psi"]},
            figures={
                "drift_psi": {"features": features, "psi": psi, "ks": ks, "moderate": 0.1, "major": 0.25}
            },
            notes=["bmi: major shift (PSI 0.31), largest change in [18.5, 23)"],
        ),
    ]


def _data() -> DataSection:
    makeup = [
        MakeupRow(attribute=a, group=g, n=5000 // len(groups), share=1 / len(groups))
        for a, groups in ATTRIBUTES.items()
        for g in groups
    ]
    targets = {"18-39": 0.40, "40-59": 0.37, "60+": 0.23}
    observed = {"18-39": 0.4504, "40-59": 0.3482, "60+": 0.2014}
    representativeness = [
        RepresentativenessRow(
            attribute="age_band",
            group=g,
            observed_share=observed[g],
            target_share=targets[g],
            difference=round(observed[g] - targets[g], 6),
        )
        for g in targets
    ]
    checks = [
        ContractCheck(name="expect_column_values_to_be_between", column="age", success=True, detail="18-100"),
        ContractCheck(name="expect_column_values_to_not_be_null", column="bmi", success=True),
        ContractCheck(name="expect_column_values_to_be_in_set", column="country", success=True),
    ]
    return DataSection(
        source="synthetic",
        generator="sea-population",
        rows=5000,
        seed=7,
        digest="b06dc2959e044ddf249694df0e1ed3c6e8530bc90108ac60bcfe77496e5eabd2",
        label="diabetes",
        sensitive_attributes=list(ATTRIBUTES),
        makeup=makeup,
        validation=DataValidation(suite="clinical-tabular", success=True, evaluated=3, checks=checks),
        representativeness=representativeness,
    )


def sample_report(seed: int = 7) -> ExitReport:
    """The fictitious demo report (deterministic for a given seed)."""
    rng = random.Random(seed)  # noqa: S311 - invented numbers for a showcase, not security
    values = _values(rng)
    assessments = _assessments(values)
    kinds = [
        "submitted",
        "admitted",
        "data_ready",
        "provisioned",
        "deployed",
        "observing",
        "assessed",
        "teardown",
    ]
    trial_id = "diabetes-risk-screening-5a3c9e01"
    spec = {
        "name": "diabetes-risk-screening",
        "sponsor": "acme-health",
        "model": {"uri": "models:/diabetes-risk@candidate", "template": "mlflow-pyfunc"},
        "jurisdictions": list(CODES),
    }
    return ExitReport(
        trial_id=trial_id,
        status="completed",
        created_at=T0 + dt.timedelta(minutes=20),
        started_at=T0,
        finished_at=T0 + dt.timedelta(minutes=19),
        trial=TrialSection(
            name="diabetes-risk-screening",
            sponsor="acme-health",
            intended_use="Flag adults at risk of undiagnosed type 2 diabetes in primary care",
            risk_class="C",
            jurisdictions=list(CODES),
            spec=spec,
            imdrf_category="II",
        ),
        model=ModelSection(
            uri="models:/diabetes-risk@candidate",
            resolved="models:/diabetes-risk/3",
            digest="4e40a3d420c50645947d67bea8e52fa5bae9d22c11e1209e7812e89803786299",
            template="mlflow-pyfunc",
            image="regsandbox/mlflow-pyfunc:ae3721ede9101111",
            image_digest="sha256:029eb6f28502da6384cb35c7ca700a192047d1ccce8ba56ea03ba55fc9e95185",
            flavors=["python_function", "sklearn"],
        ),
        data=_data(),
        isolation=IsolationSection(
            backend="docker",
            level="container",
            verified=True,
            controls=[
                IsolationControl(
                    control="network: internal (no egress)", applied=True, detail="regsandbox-net"
                ),
                IsolationControl(
                    control="read-only root filesystem", applied=True, detail="tmpfs /tmp noexec"
                ),
                IsolationControl(control="non-root user", applied=True, detail="10001:10001"),
                IsolationControl(control="all capabilities dropped", applied=True, detail="['ALL']"),
            ],
            notes=["Docker's embedded DNS resolver stays reachable inside the sandbox network."],
        ),
        endpoint=EndpointSection(url="http://127.0.0.1:45479", token_hint="PGp8"),  # noqa: S106 - a hint, not a token
        metrics=MetricsSection(values=values, intervals={"perf/auroc": (0.8046, 0.8422)}),
        monitors=_monitors(rng, values),
        assessments=assessments,
        verdicts={a.jurisdiction: a.verdict for a in assessments},
        operations=OperationsSection(
            requests=100,
            errors=0,
            developer_requests=0,
            resources={"peak_memory_mb": 212.4, "memory_limit_mb": 1024.0, "cpu_seconds": 3.1},
            incidents=[
                Incident(
                    kind="isolation",
                    description="DNS query answered by Docker's embedded resolver (known gap)",
                    at=T0 + dt.timedelta(minutes=9),
                )
            ],
        ),
        mlflow=MlflowSection(
            tracking_uri="http://127.0.0.1:5000",
            experiment_id="1",
            run_id="053f921cfd2d4783b2401ca49fb60882",
        ),
        teardown=TeardownSection(
            verified=True, detail={"removed": ["container", "network"], "remaining": []}
        ),
        events=[
            TrialEvent(trial_id=trial_id, at=T0 + dt.timedelta(minutes=2 * i), kind=k)
            for i, k in enumerate(kinds)
        ],
        reproducibility=ReproducibilitySection(
            versions={"python": "3.11.7", "mlflow": "3.17.2", "regsandbox": "0.1.0"},
            seeds={"data": 7, "bootstrap": 0},
            digests={"data": "sha256:b06dc2959e044ddf249694df0e1ed3c6e8530bc90108ac60bcfe77496e5eabd2"},
        ),
        model_card=ModelCard(
            name="diabetes-risk",
            version="3",
            developer="Acme Health (fictitious)",
            release="2026-10-01",
            summary="Gradient-boosted risk score for undiagnosed type 2 diabetes.",
            inputs="age, sex, BMI, waist circumference, blood pressure, family history, smoking",
            outputs="probability of undiagnosed type 2 diabetes (0-1); flag above 0.5",
            training_data="50,000 adults from an upper-income-country cohort, 2010-2019",
            risks="BMI cut-points tuned on a heavier population; not for use under 18 or in pregnancy",
            bias_mitigation="reweighting by sex and age band; no ethnicity-specific calibration",
            maintenance="quarterly recalibration by the developer's ML team",
            source="models:/diabetes-risk/3 (MLflow registry: description and model_card.* tags)",
        ),
        failure_cases=[
            FailureCase(case_id="case-0412", expected=1, predicted=0.08, note="VN, 60+, BMI 23.4: missed"),
            FailureCase(case_id="case-1187", expected=1, predicted=0.11, note="TH, BMI 24.1: missed"),
            FailureCase(
                case_id="chat-th-007",
                expected="แนะนำให้ตรวจระดับน้ำตาลในเลือด",
                predicted="ไม่จำเป็นต้องตรวจ",
                note="คำตอบภาษาไทยไม่ถูกต้อง",
                language="th",
            ),
            FailureCase(
                case_id="chat-vi-003",
                expected="Nên xét nghiệm đường huyết",
                predicted="Không cần xét nghiệm",
                note="Câu trả lời tiếng Việt sai",
                language="vi",
            ),
        ],
        post_market=PostMarketSection(
            monitoring=[
                MonitoringItem(
                    metric="perf/auroc", trigger="< 0.80", frequency="quarterly", action="re-assess"
                ),
                MonitoringItem(
                    metric="drift/max_psi", trigger="> 0.25", frequency="monthly", action="recalibrate"
                ),
            ],
            planned_changes=[
                PlannedChange(
                    description="Recalibrate on SEA data with WHO Asian BMI cut-points (23 / 27.5)",
                    protocol="refit calibration layer only; same features; validate in a new sandbox trial",
                    impact="expected to raise sensitivity at BMI 23-27.5; no new inputs",
                    retrial=True,
                )
            ],
        ),
    )


def main(argv: list[str] | None = None) -> int:
    from orchestrator.reports.writer import write_report

    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else Path("sample-report")
    keys = Path(tempfile.mkdtemp(prefix="regsandbox-sample-keys-"))
    paths = write_report(sample_report(), out, keys, overwrite=True)
    print(paths.model_dump_json(indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
