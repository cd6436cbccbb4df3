"""Exit report content: additive v1 sections, backward compatibility, schema, model card, figures."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from monitors.base import MonitorResult
from orchestrator.reports import (
    ExitReport,
    RepresentativenessRow,
    canonical_json,
    load_report,
    parse_report,
    render_html,
    verify,
    write_report,
)
from orchestrator.reports.card import model_card_from_registry
from orchestrator.reports.figures import calibration_svg, drift_svg, latency_histogram_svg
from orchestrator.reports.sample import sample_report
from orchestrator.reports.schema import SCHEMA_PATH

GOLDEN = Path(__file__).with_name("golden")
ADDITIVE_KEYS = ("model_card", "failure_cases", "post_market")


@pytest.fixture(scope="module")
def sample() -> ExitReport:
    return sample_report()


@pytest.fixture(scope="module")
def sample_html(sample: ExitReport) -> str:
    return render_html(sample, report_sha256="0" * 64, key_fingerprint="sha256:" + "1" * 64)


@pytest.mark.parametrize("name", ["completed", "failed"])
def test_reports_written_before_the_new_sections_keep_their_signed_bytes(name: str) -> None:
    raw = (GOLDEN / f"exit-report-v1.0-{name}.json").read_bytes()
    assert canonical_json(parse_report(raw)) == raw
    document = json.loads(raw)
    assert not set(ADDITIVE_KEYS) & set(document)
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    validator.validate(document)


def test_unset_sections_are_left_out_and_set_ones_round_trip(sample: ExitReport) -> None:
    bare = sample.model_copy(update=dict.fromkeys(ADDITIVE_KEYS))
    assert not set(ADDITIVE_KEYS) & set(json.loads(canonical_json(bare)))
    raw = canonical_json(sample)
    document = json.loads(raw)
    assert set(ADDITIVE_KEYS) <= set(document)
    assert {"representativeness", "validation"} <= set(document["data"])
    assert "resources" in document["operations"] and "imdrf_category" in document["trial"]
    assert canonical_json(parse_report(raw)) == raw
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))).validate(document)


def test_sample_report_writes_and_verifies(sample: ExitReport, tmp_path: Path) -> None:
    paths = write_report(sample, tmp_path / "out", tmp_path / "keys", pdf=False)
    assert verify(paths.json_, paths.signature, paths.public_key)
    assert load_report(paths.json_) == sample


def test_representativeness_difference_has_one_sign_convention() -> None:
    row = RepresentativenessRow(
        attribute="age_band", group="60+", observed_share=0.2, target_share=0.23, difference=-0.03
    )
    assert row.difference == pytest.approx(-0.03)
    with pytest.raises(ValidationError, match="observed_share - target_share"):
        RepresentativenessRow(
            attribute="age_band", group="60+", observed_share=0.2, target_share=0.23, difference=0.03
        )


def test_model_card_comes_from_registry_tags_and_description() -> None:
    card = model_card_from_registry(
        name="diabetes-risk",
        version="3",
        source="models:/diabetes-risk/3",
        model_description="Risk score for undiagnosed type 2 diabetes.",
        model_tags={"model_card.developer": "Acme", "model_card.risks": "not for pregnancy", "team": "x"},
        version_tags={"model_card.risks": "not under 18", "model_card.license": "proprietary"},
        created=dt.datetime(2026, 10, 1, 9, tzinfo=dt.UTC),
    )
    assert card is not None
    assert card.developer == "Acme" and card.risks == "not under 18"  # version tags win
    assert card.summary == "Risk score for undiagnosed type 2 diabetes."
    assert card.release == "version 3 registered 2026-10-01"
    assert card.other == {"license": "proprietary"} and card.inputs is None
    nothing = model_card_from_registry(name="m", version="1", source="s", model_tags={"team": "x"})
    assert nothing is None


def test_html_has_every_outline_section(sample_html: str) -> None:
    for section in (
        "cover",
        "summary",
        "verdict-matrix",
        "intended-use",
        "model-card",
        "data",
        "methods",
        "results",
        "subgroups",
        "failure-cases",
        "operations",
        "post-market",
        "reproducibility",
        "annexes",
    ):
        assert f'id="{section}"' in sample_html, section
    for figure in (
        "fig-calibration",
        "fig-roc",
        "fig-pr",
        "fig-latency",
        "fig-drift",
        "fig-representativeness",
    ):
        assert f'<svg id="{figure}"' in sample_html, figure
    assert "Acme Health (fictitious)" in sample_html  # model card
    assert "แนะนำให้ตรวจระดับน้ำตาลในเลือด" in sample_html and 'lang="th"' in sample_html  # failure case
    assert "Recalibrate on SEA data" in sample_html  # planned change
    assert "DNS query answered by Docker" in sample_html  # incident
    assert 'href="http://127.0.0.1:5000/#/experiments/1/runs/053f921cfd2d4783b2401ca49fb60882"' in sample_html


def test_html_of_a_failed_trial_says_what_is_missing(tmp_path: Path) -> None:
    raw = (GOLDEN / "exit-report-v1.0-failed.json").read_bytes()
    html = render_html(parse_report(raw))
    assert "No model card was supplied" in html
    assert "No failure cases were recorded" in html
    assert "No data was prepared before the trial stopped." in html
    assert "<svg" not in html
    assert html.count('class="annex"') == 2  # SG (en) and TH (th): not assessed, still explained


def test_drift_figure_is_drawn_when_present_and_absent_otherwise(sample: ExitReport) -> None:
    drift = {"features": ["bmi", "age", "sbp"], "psi": [0.31, None, 0.12], "ks": [0.07, 0.01]}
    svg = drift_svg(drift)
    assert svg is not None and "bmi" in svg and "fail 0.25" in svg and "KS —" in svg
    assert drift_svg({"features": ["a"], "psi": []}) is None
    assert drift_svg({}) is None
    no_drift = sample.model_copy(update={"monitors": [m for m in sample.monitors if m.monitor != "drift"]})
    html = render_html(no_drift)
    assert 'id="fig-drift"' not in html and 'id="drift"' not in html
    malformed = MonitorResult(monitor="drift", figures={"drift": {"features": "bmi", "psi": 3}})
    html = render_html(sample.model_copy(update={"monitors": [*no_drift.monitors, malformed]}))
    assert 'id="fig-drift"' not in html


def test_figures_accept_both_shapes_monitors_produce() -> None:
    columnar = {"mean_predicted": [0.1, None, 0.5], "observed_rate": [0.12, None, 0.4], "count": [10, 0, 5]}
    rows = {"bins": [{"mean_predicted": 0.1, "observed": 0.12, "count": 10}]}
    assert calibration_svg(columnar) is not None and calibration_svg(rows) is not None
    assert latency_histogram_svg({"bin_edges_ms": [0, 1, 2], "counts": [3, 4]}) is not None
    assert latency_histogram_svg({"edges": [0, 1], "counts": [3, 4]}) is None


def test_figure_labels_are_escaped(sample: ExitReport) -> None:
    hostile = MonitorResult(
        monitor="drift", figures={"drift": {"features": ["<script>x</script>"], "psi": [0.2], "ks": [0.1]}}
    )
    others = [m for m in sample.monitors if m.monitor != "drift"]
    html = render_html(sample.model_copy(update={"monitors": [*others, hostile]}))
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html


def test_results_link_criteria_to_the_mlflow_run(sample_html: str) -> None:
    rows = re.findall(r'<tr class="criterion" data-criterion="([^"]+)">', sample_html)
    assert "perf-auroc" in rows and rows.count("perf-auroc-ci-low") == 2  # TH tightened it: own row
    assert sample_html.count('data-jurisdiction="TH" data-outcome=') >= 13
