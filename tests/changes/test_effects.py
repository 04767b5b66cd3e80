"""Effect estimates and time to detect: against published values, scipy and simulation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from qi_helpers.changes.effects import (
    difference_in_means,
    difference_in_proportions,
    effect_direction,
    effect_kind,
    estimate_effect,
    periods_to_signal,
    rate_ratio,
)


def test_newcombe_interval_matches_the_published_example():
    # Newcombe (1998) Stat Med 17:873, Table II example (a): 56/70 - 48/80, method 10
    d, lo, hi = difference_in_proportions(48, 80, 56, 70)
    assert round(d, 4) == 0.2000
    assert round(lo, 4) == 0.0524
    assert round(hi, 4) == 0.3339


def test_newcombe_interval_stays_inside_minus_one_to_one_at_the_extremes():
    d, lo, hi = difference_in_proportions(0, 10, 10, 10)
    assert d == 1.0
    assert -1 <= lo < d <= hi <= 1


def test_welch_interval_matches_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 2, 25), rng.normal(12, 3, 40)
    d, lo, hi = difference_in_means(a, b)
    ref = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert d == pytest.approx(b.mean() - a.mean())
    assert (lo, hi) == pytest.approx((ref.low, ref.high))


def test_rate_ratio_is_the_ratio_of_rates_with_an_exact_conditional_interval():
    # Rothman, Greenland & Lash (2008): 41 cases in 28,010 person-years vs 15 in 19,017.
    # Given the 56 cases, those in the second group are binomial with pi = t1 RR / (t0 + t1 RR);
    # the Clopper-Pearson limits of 41/56 are beta quantiles: Beta(41, 16) at 0.025 and
    # Beta(42, 15) at 0.975, and RR = pi / (1 - pi) x 19,017 / 28,010.
    rr, lo, hi = rate_ratio(15, 19_017, 41, 28_010)
    assert rr == pytest.approx((41 / 28_010) / (15 / 19_017))
    assert round(rr, 2) == 1.86
    p_lo, p_hi = stats.beta.ppf(0.025, 41, 16), stats.beta.ppf(0.975, 42, 15)
    scale = 19_017 / 28_010
    assert lo == pytest.approx(p_lo / (1 - p_lo) * scale, rel=1e-9)
    assert hi == pytest.approx(p_hi / (1 - p_hi) * scale, rel=1e-9)
    assert (round(lo, 2), round(hi, 2)) == (1.01, 3.61)  # wider than the Wald 1.03 to 3.35


def test_rate_ratio_without_events_on_one_side_has_an_open_interval():
    # 0 events before, 5 after: the point estimate stays finite (0.5 added to both counts),
    # the exact interval's upper limit is infinite and its lower limit that of pi = 5/5
    # (Clopper-Pearson lower limit 0.025^(1/5) = 0.478, RR = 0.478 / 0.522 = 0.916).
    rr, lo, hi = rate_ratio(0, 100.0, 5, 100.0)
    assert rr == pytest.approx(11.0) and hi == math.inf
    assert lo == pytest.approx(0.025 ** (1 / 5) / (1 - 0.025 ** (1 / 5)), rel=1e-9)


def test_intervals_cover_the_truth_about_95_percent_of_the_time():
    rng = np.random.default_rng(11)
    sims = 600
    cover_p = cover_u = 0
    for _ in range(sims):
        x0, x1 = rng.binomial(400, 0.30), rng.binomial(300, 0.40)
        _, lo, hi = difference_in_proportions(x0, 400, x1, 300)
        cover_p += lo <= 0.10 <= hi
        e0, e1 = rng.poisson(0.02 * 3000), rng.poisson(0.012 * 2500)
        _, lo, hi = rate_ratio(e0, 3000, e1, 2500)
        cover_u += lo <= 0.6 <= hi
    assert 0.92 <= cover_p / sims <= 0.98
    assert 0.92 <= cover_u / sims <= 0.98


def test_the_kind_of_effect_follows_the_chart():
    assert effect_kind("p") == "difference in proportions"
    assert effect_kind("u") == "rate ratio"
    assert effect_kind("c") == "rate ratio"
    assert effect_kind("i") == "difference in means"
    assert effect_kind("xbar") == "difference in means"


def test_estimate_effect_reports_percentage_points_on_the_charted_scale():
    before = pd.DataFrame({"numerator": [30, 35], "denominator": [100, 100], "value": [0.3, 0.35]})
    after = pd.DataFrame({"numerator": [50, 45], "denominator": [100, 100], "value": [0.5, 0.45]})
    got = estimate_effect(before, after, "p", multiply=100)
    assert got["effect_kind"] == "difference in proportions"
    assert got["effect"] == pytest.approx(15.0)
    assert got["effect_low"] < 15 < got["effect_high"] < 100


def test_effect_direction_reads_the_interval_against_no_effect():
    assert effect_direction(0.5, 0.6, 0.9, "rate ratio") == -1
    assert effect_direction(1.5, 1.1, 2.0, "rate ratio") == 1
    assert effect_direction(0.1, -0.1, 0.3, "difference in means") == 0
    assert effect_direction(1.0, np.nan, np.nan, "difference in means") == 0


def test_time_to_signal_of_a_big_shift_is_short_and_of_no_shift_is_unknown():
    assert periods_to_signal(5.0) == 1
    assert math.isnan(periods_to_signal(0.0))
    # a 1-sigma shift: Making Data Count's 7-in-a-row rule needs at least 7 points
    assert 7 <= periods_to_signal(1.0, rules="mdc") <= 30


@settings(max_examples=25, deadline=None)
@given(st.floats(0.3, 3.0), st.floats(0.05, 1.0))
def test_a_bigger_shift_is_never_slower_to_signal(shift, extra):
    small = periods_to_signal(shift, rules="ihi")
    big = periods_to_signal(shift + extra, rules="ihi")
    assert math.isnan(small) or big <= small


def test_rate_ratio_hand_worked_small_counts():
    # 8 falls in 4 weeks before, 2 in 4 weeks after: RR = 0.25. Given the 10 falls, those after
    # are binomial(10, pi); Clopper-Pearson for 2/10: Beta(2, 9) at 0.025 = 0.02521 and
    # Beta(3, 8) at 0.975 = 0.55610, so RR from 0.02521 / 0.97479 = 0.0259 to
    # 0.55610 / 0.44390 = 1.253 (the Wald interval was 0.053 to 1.18).
    rr, lo, hi = rate_ratio(8, 4, 2, 4)
    assert rr == 0.25
    assert (round(lo, 4), round(hi, 3)) == (0.0259, 1.253)
    ci = stats.binomtest(2, 10).proportion_ci(method="exact")  # scipy's own exact interval
    assert lo == pytest.approx(ci.low / (1 - ci.low), rel=1e-9)
    assert hi == pytest.approx(ci.high / (1 - ci.high), rel=1e-9)


@pytest.mark.parametrize("per_period", [1, 2, 4, 10])
def test_rate_ratio_covers_at_least_94_percent_for_rare_events(per_period):
    # Falls at 1 to 10 a week: 20 baseline weeks, 10 weeks after a change that cuts them by 40%
    # (and one that changes nothing). The exact conditional interval must cover the true ratio
    # at least 94% of the time (Wald on the log scale with +0.5 fell short here).
    rng = np.random.default_rng(per_period)
    sims = 1000
    for true_rr in (0.6, 1.0):
        e0 = rng.poisson(per_period * 20, sims)
        e1 = rng.poisson(per_period * true_rr * 10, sims)
        cover = 0
        for a, b in zip(e0, e1, strict=True):
            _, lo, hi = rate_ratio(a, 20, b, 10)
            cover += bool(lo <= true_rr <= hi)
        assert cover / sims >= 0.94, (per_period, true_rr, cover / sims)
