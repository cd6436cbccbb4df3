"""Monitors against reference implementations (scikit-learn, numpy) and their streaming contract."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, brier_score_loss, confusion_matrix, roc_auc_score

from monitors import (
    EvalBatch,
    OperationalMonitor,
    PerformanceMonitor,
    SubgroupMonitor,
    default_monitors,
    stats,
)


def cases(n: int, seed: int = 0, signal: float = 1.0, decimals: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Labels and rounded (hence tied) scores that carry some signal."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(size=n))))
    return y, np.round(s, decimals)


def batch(y, s, attributes=None, latency=None, ok=None) -> EvalBatch:
    n_req = 0 if latency is None else len(latency)
    return EvalBatch(
        y_true=np.asarray(y, dtype=float),
        y_score=np.asarray(s, dtype=float),
        attributes={k: np.asarray(v, dtype=object) for k, v in (attributes or {}).items()},
        latency_ms=np.zeros(0) if latency is None else np.asarray(latency, dtype=float),
        ok=np.ones(n_req, dtype=bool) if ok is None else np.asarray(ok, dtype=bool),
    )


# --- stats ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "seed", "decimals"), [(10, 1, 1), (200, 2, 1), (3000, 3, 2), (500, 4, 0)])
def test_auroc_matches_sklearn_with_ties(n, seed, decimals):
    y, s = cases(n, seed, decimals=decimals)
    if len(set(y)) < 2:
        pytest.skip("degenerate draw")
    assert stats.auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_auroc_is_none_with_one_class_or_no_cases():
    assert stats.auroc(np.ones(20), np.linspace(0, 1, 20)) is None
    assert stats.auroc(np.zeros(0), np.zeros(0)) is None


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_accuracy_brier_confusion_match_sklearn(threshold):
    y, s = cases(1000, 5)
    pred = (s >= threshold).astype(int)
    assert stats.accuracy(y, s, threshold) == pytest.approx(accuracy_score(y, pred))
    assert stats.brier(y, s) == pytest.approx(brier_score_loss(y, s))
    (tn, fp), (fn, tp) = confusion_matrix(y, pred)
    assert stats.confusion(y, s, threshold) == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
    tpr, fpr = stats.tpr_fpr(y, s, threshold)
    assert tpr == pytest.approx(tp / (tp + fn))
    assert fpr == pytest.approx(fp / (fp + tn))


def test_tpr_fpr_none_without_the_class():
    assert stats.tpr_fpr(np.zeros(5), np.full(5, 0.9)) == (None, 1.0)


@pytest.mark.parametrize("q", [0, 50, 95, 99, 100])
def test_percentile_matches_numpy(q):
    x = np.random.default_rng(6).gamma(2.0, 50.0, 777)
    assert stats.percentile(x, q) == pytest.approx(np.percentile(x, q))
    assert stats.percentile([], q) is None


def test_bootstrap_ci_contains_estimate_and_narrows_with_n():
    widths = []
    for n in (200, 5000):
        y, s = cases(n, 7)
        point = stats.auroc(y, s)
        ci = stats.bootstrap_ci(stats.auroc, y, s, n_boot=200, seed=0)
        assert ci is not None
        assert ci[0] <= point <= ci[1]
        widths.append(ci[1] - ci[0])
    assert widths[1] < widths[0] / 2


def test_vectorised_bootstrap_equals_generic_loop():
    y, s = cases(300, 8)
    fast = stats.bootstrap_ci(stats.auroc, y, s, n_boot=100, seed=3)
    slow = stats.bootstrap_ci(lambda a, b: stats.auroc(a, b), y, s, n_boot=100, seed=3)
    assert fast == pytest.approx(slow, abs=1e-12)


def test_bootstrap_ci_none_without_evidence():
    assert stats.bootstrap_ci(stats.auroc, np.ones(50), np.linspace(0, 1, 50)) is None
    assert stats.bootstrap_ci(stats.auroc, [], []) is None


# --- performance ---------------------------------------------------------------------------------


def test_performance_values_match_sklearn_and_skip_unscored():
    y, s = cases(2000, 9)
    s = s.astype(float)
    s[::20] = np.nan
    mon = PerformanceMonitor()
    mon.update(batch(y, s), step=0)
    res = mon.result()
    keep = np.isfinite(s)
    assert res.values["perf/auroc"] == pytest.approx(roc_auc_score(y[keep], s[keep]))
    assert res.values["perf/accuracy"] == pytest.approx(accuracy_score(y[keep], s[keep] >= 0.5))
    assert res.values["perf/brier"] == pytest.approx(brier_score_loss(y[keep], s[keep]))
    assert res.values["perf/cases"] == keep.sum()
    assert res.values["perf/unscored_rate"] == pytest.approx(0.05)
    lo, hi = res.intervals["perf/auroc"]
    assert lo <= res.values["perf/auroc"] <= hi
    (tn, fp), (fn, tp) = confusion_matrix(y[keep], s[keep] >= 0.5)
    rows = {r["actual"]: r for r in res.tables["confusion_matrix"]}
    assert (rows["negative"]["predicted_negative"], rows["negative"]["predicted_positive"]) == (tn, fp)
    assert (rows["positive"]["predicted_negative"], rows["positive"]["predicted_positive"]) == (fn, tp)


def test_performance_figures():
    y, s = cases(3000, 10, decimals=4)
    mon = PerformanceMonitor()
    mon.update(batch(y, s), 0)
    figs = mon.result().figures
    roc = figs["roc"]
    assert len(roc["fpr"]) == len(roc["tpr"]) <= 101
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0.0, 0.0, 1.0, 1.0)
    cal = figs["calibration"]
    assert len(cal["count"]) == len(cal["mean_predicted"]) == len(cal["observed_rate"]) == 10
    assert sum(cal["count"]) == 3000
    for lo, hi, mean in zip(cal["bin_edges"], cal["bin_edges"][1:], cal["mean_predicted"], strict=False):
        assert mean is None or lo <= mean <= hi


def test_performance_points_omit_auroc_while_one_class():
    mon = PerformanceMonitor()
    points = mon.update(batch(np.ones(10), np.full(10, 0.8)), step=0)
    keys = {p.key for p in points}
    assert "perf/auroc" not in keys
    assert {"perf/accuracy", "perf/brier", "perf/cases"} <= keys
    points = mon.update(batch(np.zeros(10), np.full(10, 0.2)), step=1)
    by_key = {p.key: p for p in points}
    assert by_key["perf/auroc"].value == 1.0
    assert by_key["perf/cases"].value == 20
    assert all(p.step == 1 for p in points)


def test_performance_streaming_equals_one_batch():
    y, s = cases(1500, 11)
    whole = PerformanceMonitor()
    whole.update(batch(y, s), 0)
    streamed = PerformanceMonitor()
    for step, (a, b) in enumerate(itertools.pairwise([0, 100, 101, 700, 1500])):
        streamed.update(batch(y[a:b], s[a:b]), step)
    assert streamed.result() == whole.result()


# --- fairness ------------------------------------------------------------------------------------


def subgroup_data(seed: int = 12):
    """Three large ethnic groups (one where the model is weak) and one group too small to assess."""
    rng = np.random.default_rng(seed)
    groups = np.array(["chinese"] * 600 + ["malay"] * 600 + ["indian"] * 600 + ["other"] * 40, dtype=object)
    y = rng.integers(0, 2, groups.size)
    signal = np.where(groups == "malay", 0.4, 1.5)
    s = 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(size=groups.size))))
    sex = rng.choice(["F", "M"], groups.size)
    return y, np.round(s, 3), {"ethnicity": groups, "sex": sex}


def test_subgroup_metrics_and_insufficient_group_ignored():
    y, s, attrs = subgroup_data()
    mon = SubgroupMonitor(["ethnicity", "sex"], min_group_size=100)
    mon.update(batch(y, s, attrs), 0)
    res = mon.result()
    rows = {r["group"]: r for r in res.tables["subgroups/ethnicity"]}
    assert rows["other"]["status"] == "insufficient evidence"
    assert all(rows[g]["status"] == "assessed" for g in ("chinese", "malay", "indian"))
    big = ["chinese", "malay", "indian"]
    eth = attrs["ethnicity"]
    aurocs = {g: roc_auc_score(y[eth == g], s[eth == g]) for g in big}
    for g in big:
        assert rows[g]["auroc"] == pytest.approx(aurocs[g])
        assert rows[g]["n"] == 600 and rows[g]["positives"] == int(y[eth == g].sum())
    assert res.values["fairness/auroc_gap/ethnicity"] == pytest.approx(
        max(aurocs.values()) - min(aurocs.values())
    )
    assert res.values["fairness/worst_group_auroc/ethnicity"] == pytest.approx(aurocs["malay"])
    tprs = [rows[g]["tpr"] for g in big]
    fprs = [rows[g]["fpr"] for g in big]
    assert res.values["fairness/tpr_gap/ethnicity"] == pytest.approx(max(tprs) - min(tprs))
    assert res.values["fairness/fpr_gap/ethnicity"] == pytest.approx(max(fprs) - min(fprs))
    assert res.values["fairness/eq_odds_diff/ethnicity"] == pytest.approx(
        max(max(tprs) - min(tprs), max(fprs) - min(fprs))
    )
    assert any(n.startswith("ethnicity: lowest AUROC in 'malay'") for n in res.notes)
    assert any("'other' (n=40" in n for n in res.notes)


def test_gap_is_none_when_fewer_than_two_groups_qualify():
    y, s, attrs = subgroup_data()
    # "chinese" has 600 cases, "rest" 1240: with a bar of 1000 exactly one group qualifies.
    attrs = {"ethnicity": np.where(attrs["ethnicity"] == "chinese", "chinese", "rest").astype(object)}
    mon = SubgroupMonitor(["ethnicity"], min_group_size=1000)
    points = mon.update(batch(y, s, attrs), 0)
    assert points == []
    res = mon.result()
    for metric in ("auroc_gap", "tpr_gap", "fpr_gap", "eq_odds_diff", "worst_group_auroc"):
        assert res.values[f"fairness/{metric}/ethnicity"] is None
    status = {r["group"]: r["status"] for r in res.tables["subgroups/ethnicity"]}
    assert status == {"chinese": "insufficient evidence", "rest": "assessed"}


def test_single_class_group_does_not_qualify():
    y = np.r_[np.zeros(200), np.random.default_rng(0).integers(0, 2, 400)]
    s = np.random.default_rng(1).random(600)
    attrs = {"sex": np.array(["F"] * 200 + ["M"] * 200 + ["X"] * 200, dtype=object)}
    res_mon = SubgroupMonitor(["sex"], min_group_size=100)
    res_mon.update(batch(y, s, attrs), 0)
    rows = {r["group"]: r for r in res_mon.result().tables["subgroups/sex"]}
    assert rows["F"]["status"] == "insufficient evidence"
    assert rows["F"]["auroc"] is None and rows["F"]["tpr"] is None


def test_subgroup_streaming_equals_one_batch_and_points_are_cumulative():
    y, s, attrs = subgroup_data(13)
    whole = SubgroupMonitor(["ethnicity", "sex"])
    whole_points = whole.update(batch(y, s, attrs), 0)
    streamed = SubgroupMonitor(["ethnicity", "sex"])
    order = np.random.default_rng(0).permutation(y.size)  # every batch mixes groups
    y, s, attrs = y[order], s[order], {k: v[order] for k, v in attrs.items()}
    cuts = [0, 50, 900, 1800, y.size]
    for step, (a, b) in enumerate(itertools.pairwise(cuts)):
        last_points = streamed.update(batch(y[a:b], s[a:b], {k: v[a:b] for k, v in attrs.items()}), step)
    got, want = streamed.result(), whole.result()
    assert got.values == pytest.approx(want.values)
    assert got.notes == want.notes
    assert {p.key: p.value for p in last_points} == pytest.approx({p.key: p.value for p in whole_points})
    assert "fairness/eq_odds_diff/sex" in {p.key for p in last_points}


def test_missing_attribute_values_form_a_visible_group():
    mon = SubgroupMonitor(["country"], min_group_size=1)
    mon.update(
        batch([0, 1, 0], [0.1, 0.9, 0.5], {"country": np.array(["SG", None, np.nan], dtype=object)}), 0
    )
    groups = {r["group"]: r["n"] for r in mon.result().tables["subgroups/country"]}
    assert groups == {"SG": 1, "unknown": 2}


# --- operational ---------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_operational_percentiles_errors_and_throughput():
    rng = np.random.default_rng(14)
    latency = rng.gamma(2.0, 60.0, 1000)
    ok = rng.random(1000) > 0.03
    clock = FakeClock()
    mon = OperationalMonitor(clock=clock)
    first = mon.update(batch([], [], latency=latency[:400], ok=ok[:400]), 0)
    assert "ops/throughput_rps" not in {p.key for p in first}
    clock.now += 20.0
    mon.update(batch([], [], latency=latency[400:], ok=ok[400:]), 1)
    res = mon.result()
    for q in (50, 95, 99):
        assert res.values[f"latency/p{q}_ms"] == pytest.approx(np.percentile(latency, q))
    assert res.values["ops/error_rate"] == pytest.approx(1 - ok.mean())
    assert res.values["ops/requests"] == 1000
    assert res.values["ops/throughput_rps"] == pytest.approx(1000 / 20.0)
    hist = res.figures["latency_histogram"]
    assert len(hist["bin_edges_ms"]) == len(hist["counts"]) + 1
    assert sum(hist["counts"]) == 1000


def test_operational_without_requests_gives_no_numbers():
    res = OperationalMonitor().result()
    assert res.values["latency/p95_ms"] is None
    assert res.values["ops/error_rate"] is None
    assert "latency_histogram" not in res.figures


def test_default_monitors():
    mons = default_monitors(["sex", "country"], min_group_size=50)
    assert [m.name for m in mons] == ["performance", "fairness", "operational"]
    assert mons[1].min_group_size == 50
