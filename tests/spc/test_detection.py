"""Time to detect a change: periods_to_detect against a brute-force simulation with qic + signals.

The brute force is the definition written out literally: simulate whole series (baseline, then
the changed process), chart the baseline alone and then the baseline plus 1, 2, ... periods after
the change with ``qic(freeze=B)``, judge the periods after the change with the verdict's own rule
(:func:`qi_helpers.spc.after_baseline.signals_after_baseline`: the later points alone, as
workbook 03 judges a change), and record the first chart that shows a special cause in the
direction of the change (or a directionless part rule). Slow but obviously right.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qi_helpers.errors import QIError
from qi_helpers.spc.after_baseline import runs_within
from qi_helpers.spc.detect import detection_curve, periods_to_detect
from qi_helpers.spc.qic import qic
from qi_helpers.spc.rules import signals


def brute_force_first(
    y: np.ndarray, n: np.ndarray, baseline: int, chart: str, rules: str, direction: int
) -> tuple[np.ndarray, np.ndarray]:
    """First detecting period (0 = none) and baseline stability of each simulated series.

    A chart frozen at the baseline is the same chart whatever comes after the baseline, so the
    chart of the baseline and the first tau periods after the change is the first rows of the
    whole series' chart; the verdict rule judges its last tau rows alone
    (:func:`qi_helpers.spc.after_baseline.signals_after_baseline`: ``runs_within`` then
    ``signals``), here for every series and tau at once, one facet each.
    """
    sims, total = y.shape
    horizon = total - baseline
    charts = {}
    for tau, length in (("base", baseline), ("all", total)):
        df = pd.DataFrame(
            {
                "sim": np.repeat(np.arange(sims), length),
                "x": np.tile(np.arange(1, length + 1), sims),
                "y": y[:, :length].ravel(),
                "n": np.tile(n[:length], sims),
            }
        )
        if chart == "i":
            res = qic(df, x="x", y="y", chart="i", facets="sim", freeze=baseline)
        else:
            df["count"] = np.where(df["n"] > 0, np.rint(df["y"].fillna(0) * df["n"]), 0.0)
            res = qic(df, x="x", y="count", n="n", chart=chart, facets="sim", freeze=baseline)
        charts[tau] = res
    parts = signals(charts["base"], rules=rules).parts
    stable = ~parts.groupby("facet1")["signal"].any().reindex(range(sims)).to_numpy(dtype=bool)
    full = charts["all"]
    tails = []
    for tau in range(1, horizon + 1):  # the tau periods after the change, one facet each
        tail = full[(full["x"] > baseline) & (full["x"] <= baseline + tau)].copy()
        tail["facet2"] = tau
        tails.append(tail)
    tail = runs_within(pd.concat(tails, ignore_index=True).sort_values(["facet1", "facet2"]))
    sig = signals(tail, rules=rules, improvement="up" if direction > 0 else "down")
    pts = sig.points
    hit = (
        (pts["point_type"] == "special_cause_improvement")
        .groupby([pts["facet1"], pts["facet2"]])
        .any()
    )
    part_rules = [c for c in sig.parts.columns if sig.parts[c].dtype == bool]
    part_rules = [c for c in part_rules if c not in ("signal", "runs_signal")]
    if part_rules:  # a part rule without a direction (runs_signal's long run has one)
        hit |= sig.parts.set_index(["facet1", "facet2"])[part_rules].any(axis=1)
    grid = hit.unstack().reindex(index=range(sims), columns=range(1, horizon + 1))
    grid = grid.fillna(False).to_numpy(dtype=bool)
    first = np.where(grid.any(axis=1), grid.argmax(axis=1) + 1, 0)
    return first, stable


def simulate(chart, level, changed, n, baseline, sims, seed, sd=1.0):
    """Independent draws for the brute force (not the module's simulator)."""
    rng = np.random.default_rng(seed)
    total = len(n)
    mean = np.r_[np.full(baseline, level), np.full(total - baseline, changed)]
    out = np.empty((sims, total))
    for s in range(sims):
        if chart == "p":
            out[s] = rng.binomial(n.astype(int), mean) / n
        elif chart == "u":
            with np.errstate(invalid="ignore", divide="ignore"):
                out[s] = rng.poisson(mean * n) / n
        else:
            out[s] = rng.normal(mean, sd)
    return out


def brute_force_curve(chart, level, changed, n, baseline, sims, seed, rules, sd=1.0):
    y = simulate(chart, level, changed, n, baseline, sims, seed, sd)
    first, stable = brute_force_first(y, n, baseline, chart, rules, 1 if changed > level else -1)
    first = first[stable]
    horizon = len(n) - baseline
    prob = np.array([np.mean((first > 0) & (first <= t)) for t in range(1, horizon + 1)])
    return prob, np.sqrt(prob * (1 - prob) / first.size), first.size


# (chart, baseline level, relative effect, denominators per period, rules, sd of an i chart)
CASES = [
    ("p", 0.65, 0.25, np.array([30, 25, 28, 22] * 4, dtype=float), "anhoej", None),
    ("u", 0.02, -0.5, np.array([400, 350, 0, 380] * 4, dtype=float), "ihi", None),
    ("i", 10.0, 0.12, np.ones(16), "western_electric", 1.0),
]


@pytest.mark.parametrize(("chart", "level", "effect", "den", "rules", "sd"), CASES)
def test_agrees_with_brute_force_within_monte_carlo_error(chart, level, effect, den, rules, sd):
    horizon = 10
    baseline = len(den)
    n = np.r_[den, den[:horizon]]
    changed = level * (1 + effect)
    bf, bf_se, kept = brute_force_curve(
        chart, level, changed, n, baseline, 110, seed=11, rules=rules, sd=sd or 1.0
    )
    assert kept >= 50  # enough stable baselines for a meaningful comparison
    kwargs = {"sd": sd, "baseline_periods": baseline} if chart == "i" else {}
    curve = detection_curve(
        level, None if chart == "i" else den, effect, chart, rules, sims=3000, seed=2,
        horizon=horizon, **kwargs,
    )  # fmt: skip
    prob = curve["probability"].to_numpy()
    diff = np.abs(prob - bf)
    # the Monte Carlo error of the brute force at the simulated probability (its own estimate
    # is 0 when it saw no detection by then)
    tol = 4 * np.sqrt(curve["se"].to_numpy() ** 2 + prob * (1 - prob) / kept) + 1e-9
    assert np.all(diff <= tol), list(zip(curve["probability"].round(3), bf.round(3), strict=True))
    # the change is seen, and the answer lies where the brute force says it can
    res = periods_to_detect(
        level, None if chart == "i" else den, effect, chart, rules, power=0.5, sims=3000,
        seed=2, horizon=horizon, **kwargs,
    )  # fmt: skip
    periods = res["periods"].iloc[0]
    assert res["within_horizon"].iloc[0]
    earliest = 1 + int(np.argmax(bf + 3 * bf_se >= 0.5))
    latest = 1 + int(np.argmax(bf - 3 * bf_se >= 0.5)) if np.any(bf - 3 * bf_se >= 0.5) else 99
    assert earliest <= periods <= latest


@pytest.mark.parametrize(
    ("chart", "rules"), [("p", "mdc"), ("i", "ihi"), ("u", "anhoej"), ("p", "western_electric")]
)
def test_each_simulated_series_matches_its_qic_chart(chart, rules):
    """Series by series, the vectorised rules give the same first signal as qic + signals."""
    from qi_helpers.spc import detect as detection

    den = [12, 15, 0, 14, 11] * 3 if chart != "i" else None
    level = {"p": 0.4, "u": 0.3, "i": [5.0, 6.1, 4.2, 5.5, 6.0, 4.9, 5.2, 5.8] * 2}[chart]
    setup = detection._setup(level, den, 0.3, chart, rules, 40, 8, True, None, None)
    y = detection._simulate(setup, 40, np.random.default_rng(4))
    args = (y, setup["n"], setup["B"], chart, rules, setup["direction"])
    first, stable = detection._first_detection(*args)
    bf_first, bf_stable = brute_force_first(*args)
    np.testing.assert_array_equal(stable, bf_stable)
    np.testing.assert_array_equal(first[stable], bf_first[stable])


@pytest.mark.parametrize(
    ("baseline", "den", "effect", "chart", "kwargs"),
    [
        (0.1, [100] * 20, 0.8, "p", {"relative": False}),  # 10% -> 90%: UCL is about 19%
        (0.0, None, 10.0, "i", {"relative": False, "sd": 1.0, "baseline_periods": 20}),
        (0.01, [1000] * 20, 3.0, "u", {}),  # 10 -> 40 events; UCL about 19.5 events
    ],
)
def test_a_huge_shift_is_seen_at_the_first_point(baseline, den, effect, chart, kwargs):
    res = periods_to_detect(baseline, den, effect, chart, "anhoej", sims=300, seed=0, **kwargs)
    assert res["periods"].iloc[0] == 1
    assert res["probability"].iloc[0] >= 0.99


def test_a_small_change_in_a_small_team_is_not_seen_within_the_horizon():
    res = periods_to_detect(0.7, [2] * 26, 0.05, "p", "anhoej", sims=300, seed=0, horizon=26)
    assert res["periods"].isna().iloc[0]
    assert not res["within_horizon"].iloc[0]
    assert res["probability"].iloc[0] < 0.8


def test_bigger_changes_and_more_cases_are_seen_sooner():
    small = periods_to_detect(0.6, [20] * 26, 0.15, "p", "anhoej", sims=600, seed=3)
    big = periods_to_detect(0.6, [20] * 26, 0.3, "p", "anhoej", sims=600, seed=3)
    busy = periods_to_detect(0.6, [80] * 26, 0.15, "p", "anhoej", sims=600, seed=3)
    assert big["periods"].iloc[0] < small["periods"].iloc[0]
    assert busy["periods"].iloc[0] < small["periods"].iloc[0]


def test_same_seed_same_answer():
    a = periods_to_detect(0.018, [350] * 26, -0.3, "u", "mdc", sims=400, seed=9)
    b = periods_to_detect(0.018, [350] * 26, -0.3, "u", "mdc", sims=400, seed=9)
    pd.testing.assert_frame_equal(a, b)
    assert a["sims"].iloc[0] == 400


def test_baseline_series_are_summarised_as_qic_would():
    values = np.array([0.5, 0.7, 0.6, 0.4])
    den = np.array([10, 30, 20, 40])
    res = periods_to_detect(values, den, 0.2, "p", "anhoej", sims=50, seed=0)
    assert res["baseline_rate"].iloc[0] == pytest.approx((5 + 21 + 12 + 16) / 100)
    assert res["changed_rate"].iloc[0] == pytest.approx(0.54 * 1.2)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((0.5, [10] * 20, 0.2, "xbar"), {}, "chart must be one of"),
        ((0.5, [10] * 20, 0.2, "p", "nelson"), {}, "rules must be one of"),
        ((1.5, [10] * 20, 0.2, "p"), {}, "proportion"),
        ((0.5, [10.5] * 20, 0.2, "p"), {}, "whole numbers"),
        ((0.5, None, 0.2, "u"), {}, "denominators"),
        ((5.0, None, 0.2, "i"), {}, "sd="),
        ((0.5, [10] * 20, 0.2, "p"), {"power": 1.5}, "power"),
    ],
)
def test_bad_questions_are_explained(args, kwargs, message):
    with pytest.raises(QIError, match=message):
        periods_to_detect(*args, **kwargs)
