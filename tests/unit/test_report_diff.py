"""Comparing two exit reports of the same product."""

from __future__ import annotations

import pytest

from monitors.base import MonitorResult
from orchestrator.records import JurisdictionAssessment
from orchestrator.reports import ExitReport, diff_reports
from orchestrator.reports.diff import exceeds
from orchestrator.reports.sample import sample_report


@pytest.fixture(scope="module")
def before() -> ExitReport:
    return sample_report()


def _retrial(before: ExitReport) -> ExitReport:
    """The same product re-trialled: a new model version, AUROC up, latency moved, TH now passes."""
    assert before.model is not None and before.metrics is not None
    values = {**before.metrics.values, "perf/auroc": 0.851, "latency/p95_ms": 37.6, "perf/brier": 0.0851}
    assessments = []
    for a in before.assessments:
        if a.jurisdiction == "TH":
            criteria = [
                c.model_copy(update={"outcome": "pass"}) if c.criterion_id == "perf-auroc-ci-low" else c
                for c in a.criteria
            ]
            a = JurisdictionAssessment.model_validate(
                {**a.model_dump(), "criteria": [c.model_dump() for c in criteria], "verdict": "conditional"}
            )
        assessments.append(a)
    monitors = [
        m
        if m.monitor != "performance"
        else MonitorResult.model_validate({**m.model_dump(), "values": values})
        for m in before.monitors
    ]
    return before.model_copy(
        update={
            "trial_id": "diabetes-risk-screening-77aa0001",
            "model": before.model.model_copy(
                update={"digest": "c" * 64, "resolved": "models:/diabetes-risk/4"}
            ),
            "metrics": before.metrics.model_copy(update={"values": values}),
            "monitors": monitors,
            "assessments": assessments,
            "verdicts": {a.jurisdiction: a.verdict for a in assessments},
        }
    )


def test_identical_reports_have_no_differences(before: ExitReport) -> None:
    diff = diff_reports(before, before)
    assert not diff.changed
    assert diff.to_text().rstrip().endswith("no differences")


def test_retrial_shows_verdict_criterion_metric_and_digest_changes(before: ExitReport) -> None:
    after = _retrial(before)
    diff = diff_reports(before, after)
    assert diff.changed
    assert [(v.jurisdiction, v.before, v.after) for v in diff.verdicts] == [("TH", "fail", "conditional")]
    assert [(c.jurisdiction, c.criterion_id, c.before, c.after) for c in diff.criteria] == [
        ("TH", "perf-auroc-ci-low", "fail", "pass")
    ]
    moved = {m.key: m for m in diff.metrics}
    assert set(moved) == {"perf/auroc"}  # latency +0.1 ms and Brier +0.0002 are within tolerance
    assert moved["perf/auroc"].delta == pytest.approx(0.851 - 0.8249)
    assert [(v.kind, v.name) for v in diff.values] == [("digest", "model")]
    text = diff.to_text()
    assert "TH: fail -> conditional" in text
    assert "TH perf-auroc-ci-low [perf/auroc_ci_low]: fail -> pass" in text
    assert "perf/auroc: 0.8249 -> 0.851 (+0.0261)" in text
    assert "digest model:" in text


def test_tolerance_is_absolute_for_rates_and_relative_for_large_values() -> None:
    assert not exceeds(0.80, 0.805, 0.01) and exceeds(0.80, 0.82, 0.01)
    assert not exceeds(500.0, 504.0, 0.01) and exceeds(500.0, 506.0, 0.01)
    assert exceeds(None, 0.5, 0.01) and exceeds(0.5, None, 0.01) and not exceeds(None, None, 0.01)
    with pytest.raises(ValueError, match="tolerance"):
        diff_reports(sample_report(), sample_report(), tolerance=-1)


def test_criteria_and_jurisdictions_that_appear_or_disappear(before: ExitReport) -> None:
    without_vn = [a for a in before.assessments if a.jurisdiction != "VN"]
    after = before.model_copy(
        update={"assessments": without_vn, "verdicts": {a.jurisdiction: a.verdict for a in without_vn}}
    )
    diff = diff_reports(before, after)
    assert [(v.jurisdiction, v.after) for v in diff.verdicts] == [("VN", None)]
    assert {c.jurisdiction for c in diff.criteria} == {"VN"} and all(c.after is None for c in diff.criteria)
    assert "threshold" not in diff.to_text()  # only a threshold that moved is worth a mention


def test_a_moved_threshold_is_reported(before: ExitReport) -> None:
    tightened = []
    for a in before.assessments:
        criteria = [
            c.model_copy(update={"threshold": 0.85, "outcome": "fail"})
            if c.criterion_id == "perf-auroc"
            else c
            for c in a.criteria
        ]
        tightened.append(a.model_copy(update={"criteria": criteria}))
    diff = diff_reports(before, before.model_copy(update={"assessments": tightened}))
    assert len(diff.criteria) == 6
    assert "SG perf-auroc [perf/auroc]: pass -> fail (threshold 0.8 -> 0.85)" in diff.to_text()


def test_different_products_are_flagged(before: ExitReport) -> None:
    other = before.model_copy(update={"trial": before.trial.model_copy(update={"name": "other-product"})})
    diff = diff_reports(before, other)
    assert any("different trials" in n for n in diff.notes)
    assert ("identity", "trial name") in {(v.kind, v.name) for v in diff.values}
