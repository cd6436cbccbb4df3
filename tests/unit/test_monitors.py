"""Monitors against reference implementations (scikit-learn, numpy) and their streaming contract."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    roc_auc_score,
)

from monitors import (
    DriftMonitor,
    EvalBatch,
    OperationalMonitor,
    PerformanceMonitor,
    SubgroupMonitor,
    bootstrap,
    default_monitors,
    findings,
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
    assert len(set(y)) == 2, "each fixed draw must hold both classes, or the comparison proves nothing"
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


@pytest.mark.parametrize(("n", "seed", "decimals"), [(10, 1, 1), (200, 2, 1), (3000, 3, 2), (500, 4, 0)])
def test_average_precision_matches_sklearn_with_ties(n, seed, decimals):
    y, s = cases(n, seed, decimals=decimals)
    assert len(set(y)) == 2, "each fixed draw must hold both classes, or the comparison proves nothing"
    assert stats.average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_average_precision_none_without_positives():
    assert stats.average_precision(np.zeros(5), np.linspace(0, 1, 5)) is None


def test_bootstrap_ci_contains_estimate_and_narrows_with_n():
    widths = []
    for n in (200, 5000):
        y, s = cases(n, 7)
        point = stats.auroc(y, s)
        ci = bootstrap.bootstrap_ci(stats.auroc, y, s, n_boot=200, seed=0)
        assert ci is not None
        assert ci[0] <= point <= ci[1]
        widths.append(ci[1] - ci[0])
    assert widths[1] < widths[0] / 2


def _cell_intervals(y, s, n_boot, max_groups=bootstrap.MAX_GROUPS, seed=3):
    pos, neg = stats.split(y, s)
    cells = bootstrap.build_cells(*stats.levels(pos, neg), max_groups=max_groups)
    point = {"auroc": stats.auroc(y, s), "auprc": stats.average_precision(y, s), "brier": stats.brier(y, s)}
    point["accuracy"] = stats.accuracy(y, s)
    return bootstrap.bootstrap_intervals(cells, point, n_boot=n_boot, seed=seed)


@pytest.mark.parametrize(
    ("name", "fn"), [("auroc", stats.auroc), ("brier", stats.brier), ("accuracy", stats.accuracy)]
)
def test_cell_bootstrap_has_the_distribution_of_case_resampling(name, fn):
    # Multinomial counts over (score, class) cells are how case resampling distributes; both
    # intervals estimate the same quantiles, so they agree up to Monte-Carlo error.
    y, s = cases(300, 8)
    fast = _cell_intervals(y, s, n_boot=4000)[name]
    slow = bootstrap.bootstrap_ci(fn, y, s, n_boot=4000, seed=3)
    assert fast == pytest.approx(slow, abs=0.006)


def test_pooled_cells_give_nearly_the_exact_interval():
    y, s = cases(3000, 9, signal=0.8, decimals=8)
    assert np.unique(s).size > 2500
    levels = stats.levels(*stats.split(y, s))
    exact_cells = bootstrap.build_cells(*levels, max_groups=None)
    pooled_cells = bootstrap.build_cells(*levels, max_groups=256)
    exact = bootstrap.metrics_from_counts(exact_cells, exact_cells.n_pos[None], exact_cells.n_neg[None])
    pooled = bootstrap.metrics_from_counts(pooled_cells, pooled_cells.n_pos[None], pooled_cells.n_neg[None])
    # Pooling neighbouring scores moves the statistics far less than their sampling error ...
    for name in ("auroc", "auprc", "brier", "accuracy", "ece", "slope", "intercept"):
        assert pooled[name][0] == pytest.approx(exact[name][0], abs=2e-3), name
    assert pooled["accuracy"][0] == pytest.approx(stats.accuracy(y, s), abs=1e-12)
    assert exact["auroc"][0] == pytest.approx(stats.auroc(y, s), abs=1e-12)
    # ... so the intervals agree up to Monte-Carlo error.
    exact_ci = _cell_intervals(y, s, n_boot=400, max_groups=None)
    pooled_ci = _cell_intervals(y, s, n_boot=400, max_groups=256)
    for name in ("auroc", "auprc", "brier", "accuracy"):
        assert pooled_ci[name] == pytest.approx(exact_ci[name], abs=0.006), name


def test_bootstrap_ci_none_without_evidence():
    assert bootstrap.bootstrap_ci(stats.auroc, np.ones(50), np.linspace(0, 1, 50)) is None
    assert bootstrap.bootstrap_ci(stats.auroc, [], []) is None
    assert _cell_intervals(np.ones(50), np.linspace(0, 1, 50), n_boot=100).get("auroc") is None


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
    assert res.values["perf/auprc"] == pytest.approx(average_precision_score(y[keep], s[keep]))
    assert res.values["perf/prevalence"] == pytest.approx(y[keep].mean())
    assert res.values["perf/cases"] == keep.sum()
    assert res.values["perf/unscored_rate"] == pytest.approx(0.05)
    for key in (
        "perf/auroc",
        "perf/auprc",
        "perf/accuracy",
        "perf/brier",
        "calibration/slope",
        "calibration/ece",
    ):
        lo, hi = res.intervals[key]
        assert lo <= res.values[key] <= hi, key
    (tn, fp), (fn, tp) = confusion_matrix(y[keep], s[keep] >= 0.5)
    rows = {r["actual"]: r for r in res.tables["confusion_matrix"]}
    assert (rows["negative"]["predicted_negative"], rows["negative"]["predicted_positive"]) == (tn, fp)
    assert (rows["positive"]["predicted_negative"], rows["positive"]["predicted_positive"]) == (fn, tp)


def miscalibrated(n: int, seed: int, slope: float, shift: float, decimals: int = 6):
    """Scores whose logit is ``(true logit - shift) / slope``: too extreme (slope < 1) or too timid."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(-0.5, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype(int)
    s = 1 / (1 + np.exp(-(true_logit - shift) / slope))
    return y, np.round(s, decimals)


def sklearn_recalibration(y, s):
    """Reference: unpenalised logistic regression of y on logit(s), and the root of the offset model."""
    from scipy.optimize import brentq
    from sklearn.linear_model import LogisticRegression

    p = np.clip(s, 1e-7, 1 - 1e-7)  # the monitor's documented clip for scores of exactly 0 or 1
    x = np.log(p / (1 - p))
    fit = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(x[:, None], y)
    intercept = brentq(lambda a: float((y - 1 / (1 + np.exp(-(a + x)))).sum()), -10, 10, xtol=1e-12)
    return float(fit.coef_[0][0]), intercept


@pytest.mark.parametrize(("slope", "shift", "decimals"), [(1.0, 0.0, 6), (0.7, 0.5, 6), (1.3, -0.4, 2)])
def test_calibration_matches_sklearn_and_scipy(slope, shift, decimals):
    y, s = miscalibrated(4000, 30, slope, shift, decimals)
    mon = PerformanceMonitor()
    for step, part in enumerate(np.array_split(np.arange(y.size), 3)):
        mon.update(batch(y[part], s[part]), step)
    res = mon.result()
    want_slope, want_intercept = sklearn_recalibration(y, s)
    assert res.values["calibration/slope"] == pytest.approx(want_slope, abs=1e-6)
    assert res.values["calibration/intercept"] == pytest.approx(want_intercept, abs=1e-6)
    # The recovered slope is roughly the miscalibration put in.
    assert res.values["calibration/slope"] == pytest.approx(slope, rel=0.15)


def test_ece_and_reliability_bins_match_sklearn_calibration_curve():
    from sklearn.calibration import calibration_curve

    y, s = miscalibrated(5000, 31, 0.8, 0.6, decimals=2)  # many scores exactly on bin edges
    mon = PerformanceMonitor()
    mon.update(batch(y, s), 0)
    res = mon.result()
    prob_true, prob_pred = calibration_curve(y, s, n_bins=10, strategy="uniform")
    bins = res.figures["calibration"]["bins"]
    assert [b["observed"] for b in bins] == pytest.approx(prob_true.tolist())
    assert [b["mean_predicted"] for b in bins] == pytest.approx(prob_pred.tolist())
    # scikit-learn's binning: edges 0.1 ... 0.9, a score on an edge in the lower bin.
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], s), minlength=10)
    assert [b["count"] for b in bins] == counts[counts > 0].tolist()
    want_ece = float((counts[counts > 0] * np.abs(prob_true - prob_pred)).sum() / y.size)
    assert res.values["calibration/ece"] == pytest.approx(want_ece, abs=1e-12)
    assert res.figures["calibration"]["ece"] == res.values["calibration/ece"]
    assert res.tables["calibration_bins"] == bins


def test_calibration_none_with_one_class_or_separable_scores():
    mon = PerformanceMonitor()
    mon.update(batch(np.ones(50), np.linspace(0.1, 0.9, 50)), 0)
    assert mon.result().values["calibration/slope"] is None
    separable = PerformanceMonitor()
    separable.update(batch(np.r_[np.zeros(50), np.ones(50)], np.r_[np.full(50, 0.2), np.full(50, 0.8)]), 0)
    res = separable.result()
    assert res.values["perf/auroc"] == 1.0
    assert res.values["calibration/slope"] is None
    assert any("did not converge" in n for n in res.notes)


def test_streamed_calibration_is_close_to_the_final_fit():
    y, s = miscalibrated(20_000, 32, 0.8, 0.3, decimals=9)  # continuous scores: groups are pooled
    mon = PerformanceMonitor()
    last = mon.update(batch(y, s), 0)
    streamed = {p.key: p.value for p in last}
    final = mon.result().values
    assert streamed["calibration/slope"] == pytest.approx(final["calibration/slope"], abs=2e-3)
    assert streamed["calibration/intercept"] == pytest.approx(final["calibration/intercept"], abs=2e-3)
    for key in ("perf/auroc", "perf/auprc", "perf/brier", "calibration/ece"):
        assert streamed[key] == final[key], key


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
    assert [(p.key, p.value) for p in points] == [("fairness/insufficient_groups/ethnicity", 1.0)]
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


def test_latency_histogram_has_the_keys_the_report_draws():
    mon = OperationalMonitor()
    mon.update(batch([], [], latency=[10.0, 20.0, 400.0], ok=[True, True, False]), 0)
    hist = mon.result().figures["latency_histogram"]
    assert hist["edges"] == hist["bin_edges_ms"] and len(hist["edges"]) == len(hist["counts"]) + 1


def test_default_monitors():
    mons = default_monitors(["sex", "country"], min_group_size=50)
    assert [m.name for m in mons] == ["performance", "fairness", "operational"]
    assert mons[1].min_group_size == 50
    reference = pd.DataFrame({"bmi": [20.0, 25.0, 30.0], "sex": ["female", "male", "male"]})
    mons = default_monitors(["sex"], reference=reference, features=["bmi", "sex"])
    assert [m.name for m in mons] == ["performance", "fairness", "operational", "drift"]
    with pytest.raises(ValueError, match="features"):
        default_monitors(["sex"], reference=reference)


# --- drift ---------------------------------------------------------------------------------------


def psi_reference(ref: np.ndarray, trial: np.ndarray, n_bins: int = 10, eps: float = 1e-4) -> float:
    """PSI written out plainly: decile edges of the reference, a loop over bins."""
    edges = sorted(set(np.quantile(ref, [i / n_bins for i in range(1, n_bins)]).tolist()))
    bounds = [-np.inf, *edges, np.inf]
    total = 0.0
    for lo, hi in itertools.pairwise(bounds):
        r = max(np.mean((ref >= lo) & (ref < hi)), eps)
        t = max(np.mean((trial >= lo) & (trial < hi)), eps)
        total += (t - r) * np.log(t / r)
    return float(total)


def categorical_psi_reference(ref: list[str], trial: list[str], eps: float = 1e-4) -> float:
    total = 0.0
    for category in set(ref) | set(trial):
        r = max(ref.count(category) / len(ref), eps)
        t = max(trial.count(category) / len(trial), eps)
        total += (t - r) * np.log(t / r)
    return total


def populations(n_ref: int = 8000, n_trial: int = 3000, seed: int = 40):
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame(
        {
            "bmi": np.round(rng.normal(28.0, 4.0, n_ref), 1),
            "age": rng.integers(18, 90, n_ref),
            "glucose": rng.gamma(9.0, 0.6, n_ref),
            "sex": rng.choice(["female", "male"], n_ref),
            "smoking": rng.integers(0, 2, n_ref),
        }
    )
    trial = {
        "bmi": np.round(rng.normal(24.5, 3.5, n_trial), 1),  # lower BMI: a real shift
        "age": rng.integers(18, 90, n_trial),  # the same distribution
        "glucose": rng.gamma(9.0, 0.62, n_trial),
        "sex": rng.choice(["female", "male", "other"], n_trial, p=[0.55, 0.43, 0.02]),
        "smoking": rng.integers(0, 2, n_trial),
    }
    return reference, trial


def drift_batch(features: dict[str, np.ndarray], idx: np.ndarray | slice) -> EvalBatch:
    part = {k: np.asarray(v)[idx] for k, v in features.items()}
    n = next(iter(part.values())).size
    return EvalBatch(np.zeros(n), np.full(n, 0.5), {}, np.zeros(0), np.zeros(0, dtype=bool), features=part)


def test_drift_matches_reference_psi_and_scipy_ks():
    from scipy.stats import ks_2samp

    reference, trial = populations()
    features = ["bmi", "age", "glucose", "sex", "smoking"]
    mon = DriftMonitor(reference, features)
    mon.update(drift_batch(trial, slice(None)), 0)
    res = mon.result()
    for f in ("bmi", "age", "glucose", "smoking"):
        ref = reference[f].to_numpy(dtype=float)
        assert res.values[f"drift/psi/{f}"] == pytest.approx(psi_reference(ref, trial[f]), abs=1e-12), f
        ks = ks_2samp(ref, trial[f], method="asymp")
        assert res.values[f"drift/ks/{f}"] == pytest.approx(ks.statistic, abs=1e-12), f
        # scipy scales the exact one-sample distribution; this is the asymptotic one with
        # Stephens' correction, so they agree closely rather than exactly.
        assert res.values[f"drift/ks_pvalue/{f}"] == pytest.approx(ks.pvalue, rel=0.05, abs=1e-6), f
    sex_psi = categorical_psi_reference(reference["sex"].tolist(), trial["sex"].tolist())
    assert res.values["drift/psi/sex"] == pytest.approx(sex_psi, abs=1e-12)
    assert "drift/ks/sex" not in res.values
    assert res.values["drift/psi/bmi"] > 0.25  # the shift put in is found ...
    assert res.values["drift/psi/age"] < 0.05  # ... and none where there is none
    assert res.values["drift/max_psi"] == max(v for k, v in res.values.items() if k.startswith("drift/psi/"))
    rows = {r["feature"]: r for r in res.tables["drift"]}
    assert rows["bmi"]["status"] == "major shift" and rows["age"]["status"] == "stable"
    assert rows["sex"]["new_categories"] == ["other"]
    assert rows["bmi"]["trial_mean"] == pytest.approx(trial["bmi"].mean())
    fig = res.figures["drift/bmi"]
    assert sum(fig["reference_share"]) == pytest.approx(1) and len(fig["labels"]) == len(fig["trial_share"])
    assert res.figures["drift_psi"]["features"] == features
    assert any(n.startswith("bmi: major shift") for n in res.notes)


def test_ks_pvalue_close_to_scipy_exact_for_small_samples():
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(41)
    for _ in range(5):
        ref, trial = rng.normal(size=400), rng.normal(size=150)
        reference = pd.DataFrame({"x": ref})
        mon = DriftMonitor(reference, ["x"])
        mon.update(drift_batch({"x": trial}, slice(None)), 0)
        got = mon.result().values["drift/ks_pvalue/x"]
        assert got == pytest.approx(ks_2samp(ref, trial).pvalue, abs=0.02)


def test_drift_streaming_equals_one_batch():
    reference, trial = populations(seed=42)
    features = ["bmi", "age", "glucose", "sex"]
    whole = DriftMonitor(reference, features)
    whole_points = whole.update(drift_batch(trial, slice(None)), 0)
    streamed = DriftMonitor(reference, features)
    for step, (a, b) in enumerate(itertools.pairwise([0, 10, 1000, 1001, 3000])):
        last = streamed.update(drift_batch(trial, slice(a, b)), step)
    assert streamed.result().values == pytest.approx(whole.result().values, abs=1e-12)
    assert {p.key: p.value for p in last} == pytest.approx({p.key: p.value for p in whole_points}, abs=1e-12)


def test_drift_missing_values_and_bad_input():
    reference, _ = populations(n_ref=500)
    mon = DriftMonitor(reference, ["bmi", "sex"])
    mon.update(
        drift_batch(
            {"bmi": np.array([24.0, np.nan, 30.0]), "sex": np.array(["male", None, "x"], dtype=object)},
            slice(None),
        ),
        0,
    )
    rows = {r["feature"]: r for r in mon.result().tables["drift"]}
    assert rows["bmi"]["trial_missing"] == 1 and rows["bmi"]["trial_n"] == 2
    assert rows["sex"]["trial_missing"] == 1 and "unknown" in rows["sex"]["new_categories"]
    with pytest.raises(ValueError, match="no features"):
        mon.update(batch([0.0], [0.5]), 1)
    with pytest.raises(ValueError, match="lacks feature"):
        mon.update(drift_batch({"bmi": np.array([1.0])}, slice(None)), 1)
    with pytest.raises(ValueError, match="reference population lacks"):
        DriftMonitor(reference, ["height"])


def test_concat_keeps_features():
    a = drift_batch({"bmi": np.array([20.0, 21.0])}, slice(None))
    b = drift_batch({"bmi": np.array([22.0])}, slice(None))
    joined = EvalBatch.concat([a, b])
    assert joined.features is not None and joined.features["bmi"].tolist() == [20.0, 21.0, 22.0]
    assert EvalBatch.concat([batch([0], [0.1]), batch([1], [0.9])]).features is None
    with pytest.raises(ValueError, match="with and without features"):
        EvalBatch.concat([a, batch([0], [0.1])])


# --- findings ------------------------------------------------------------------------------------


def test_findings_name_the_subgroup_and_the_feature():
    y, s, attrs = subgroup_data()
    mon = SubgroupMonitor(["ethnicity", "sex"])
    mon.update(batch(y, s, attrs), 0)
    reference, trial = populations()
    drift = DriftMonitor(reference, ["bmi", "age"])
    drift.update(drift_batch(trial, slice(None)), 0)
    found = findings([mon.result(), drift.result()])
    gap = found["fairness/auroc_gap/ethnicity"]
    assert "ethnicity 'malay'" in gap and "gap" in gap
    assert "'other' (n=40" in found["fairness/insufficient_groups/ethnicity"]
    assert "'malay'" in found["fairness/worst_group_auroc/ethnicity"]
    assert "feature 'bmi'" in found["drift/max_psi"]
