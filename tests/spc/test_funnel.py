"""Funnel plots: limits, overdispersion and small denominators, worked by hand.

Formulas: Spiegelhalter DJ, "Funnel plots for comparing institutional performance", Stat Med
2005;24:1185-1202, Table I (proportion: target p0, s(n) = sqrt(p0 (1 - p0) / n); rate: s(n) =
sqrt(l0 / n); normal: s(n) = sigma / sqrt(n)); limits target +- z s(n), z = 1.959964 (95%) and
3.090232 (99.8%). Overdispersion: Spiegelhalter DJ, "Handling over-dispersion of performance
indicators", Qual Saf Health Care 2005;14:347-351: z-scores winsorised at 10% in each tail,
phi = mean(z_w^2), limits target +- z sqrt(phi) s(n) when phi > 1; additive
tau^2 = (I phi - (I - 1)) / (sum w - sum w^2 / sum w), w = 1 / s^2.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from qi_helpers.errors import ConfigError
from qi_helpers.spc.funnel import dispersion, funnel, funnel_table
from qi_helpers.spc.funnel_plots import (
    distance_from_best,
    funnel_caption,
    funnel_outliers,
    plot_funnel,
)

# Four practices, HbA1c tested: 25/100, 60/200, 20/50, 45/150 -> p0 = 150/500 = 0.3.
UNITS = pd.DataFrame(
    {
        "microsystem_id": ["A", "B", "C", "D"],
        "numerator": [25, 60, 20, 45],
        "denominator": [100, 200, 50, 150],
    }
)


def test_proportion_limits_match_the_hand_computed_values():
    r = funnel(UNITS, family="proportion", overdispersion=None).set_index("microsystem_id")
    # p0 = 0.3; sqrt(p0 (1 - p0)) = sqrt(0.21) = 0.4582575695
    assert r["target"].eq(0.3).all()
    # A, n = 100: s = 0.4582575695 / 10 = 0.04582575695
    #   95%:   0.3 -+ 1.959963985 * 0.04582575695 = 0.3 -+ 0.0898168332
    #   99.8%: 0.3 -+ 3.090232306 * 0.04582575695 = 0.3 -+ 0.1416122346
    #   z = (0.25 - 0.3) / 0.04582575695 = -1.091089451
    assert r.at["A", "lower_95"] == pytest.approx(0.2101831668, abs=1e-9)
    assert r.at["A", "upper_95"] == pytest.approx(0.3898168332, abs=1e-9)
    assert r.at["A", "lower_998"] == pytest.approx(0.1583877654, abs=1e-9)
    assert r.at["A", "upper_998"] == pytest.approx(0.4416122346, abs=1e-9)
    assert r.at["A", "z"] == pytest.approx(-1.091089451, abs=1e-9)
    # C, n = 50: s = 0.4582575695 / sqrt(50) = 0.06480740698; 95%: 0.3 -+ 0.1270201836
    #   z = 0.1 / 0.06480740698 = 1.543033500
    assert r.at["C", "lower_95"] == pytest.approx(0.1729798164, abs=1e-9)
    assert r.at["C", "upper_95"] == pytest.approx(0.4270201836, abs=1e-9)
    assert r.at["C", "z"] == pytest.approx(1.543033500, abs=1e-9)
    assert not r["outside_95"].any()
    # improvement up: A below the target is worse, C above it better, B and D on it
    assert r["direction"].tolist() == ["worse", "", "better", ""]


def test_four_units_are_not_overdispersed():
    # z^2: A 0.0025 / (0.21 / 100) = 1.19047619, C 0.01 / (0.21 / 50) = 2.38095238, B = D = 0.
    # Sorted z: [-1.0911, 0, 0, 1.5430]; 10th percentile at position 0.3: -0.7 * 1.0911;
    # 90th at position 2.7: 0.7 * 1.5430. Winsorised squares: 0.49 * 1.1905 + 0.49 * 2.3810
    # = 0.58333 + 1.16667 = 1.75; phi = 1.75 / 4 = 0.4375 < 1: limits not widened.
    r = funnel(UNITS, family="proportion", min_units=1)
    assert r["phi"].iloc[0] == pytest.approx(0.4375, abs=1e-9)
    assert r.set_index("microsystem_id").at["A", "lower_95"] == pytest.approx(0.2101831668)


def test_dispersion_ratio_and_tau2_on_a_hand_example():
    z = np.array([-3, -1, 0, 1, 2, 4, 0.5, -0.5, 1.5, -2.0])
    # Sorted: -3 -2 -1 -0.5 0 0.5 1 1.5 2 4. 10th percentile at position 0.9: -3 + 0.9 = -2.1;
    # 90th at position 8.1: 2 + 0.1 * 2 = 2.2. -3 -> -2.1 and 4 -> 2.2. Squares:
    # 4.41 + 4 + 1 + 0.25 + 0 + 0.25 + 1 + 2.25 + 4 + 4.84 = 22.0; phi = 22 / 10 = 2.2.
    # tau^2 with w = 100 each: (10 * 2.2 - 9) / (1000 - 10 * 100^2 / 1000) = 13 / 900.
    phi, tau2 = dispersion(z, weights=np.full(10, 100.0))
    assert phi == pytest.approx(2.2, abs=1e-12)
    assert tau2 == pytest.approx(13 / 900, abs=1e-12)
    # Without winsorising: mean of the raw squares = (9+1+0+1+4+16+0.25+0.25+2.25+4)/10 = 3.775
    assert dispersion(z, winsor=0.0)[0] == pytest.approx(3.775)
    # Under-dispersed: no tau^2 (I phi <= I - 1)
    assert dispersion(np.array([0.1, -0.1, 0.2]), weights=np.ones(3))[1] == 0.0


def _overdispersed_units() -> pd.DataFrame:
    # Ten practices of 400 cases each, 40% to 80% tested: far more spread than chance.
    tested = [160, 180, 200, 220, 240, 250, 260, 280, 300, 320]
    return pd.DataFrame(
        {"microsystem_id": [f"P{i}" for i in range(10)], "numerator": tested, "denominator": 400}
    )


def test_multiplicative_adjustment_widens_the_limits_by_sqrt_phi():
    units = _overdispersed_units()
    chance = funnel(units, family="proportion", overdispersion=None)
    widened = funnel(units, family="proportion")
    # p0 = 2410 / 4000 = 0.6025; s = sqrt(0.6025 * 0.3975 / 400) = 0.0244706
    p0, s = 0.6025, math.sqrt(0.6025 * 0.3975 / 400)
    assert chance["upper_95"].iloc[0] == pytest.approx(p0 + 1.959963985 * s, abs=1e-9)
    phi = widened["phi"].iloc[0]
    # z_i = (y_i - 0.6025) / s: from (0.4 - 0.6025) / s = -8.275 to (0.8 - 0.6025) / s = 8.071
    assert phi > 1
    assert widened["upper_95"].iloc[0] == pytest.approx(
        p0 + 1.959963985 * math.sqrt(phi) * s, abs=1e-9
    )
    # Adjusted z = raw z / sqrt(phi); fewer units flagged than with the limits of chance.
    assert widened["z"].iloc[0] == pytest.approx(chance["z"].iloc[0] / math.sqrt(phi))
    assert widened["outside_998"].sum() < chance["outside_998"].sum()


def test_additive_adjustment_adds_tau2_to_every_variance():
    units = _overdispersed_units()
    r = funnel(units, family="proportion", overdispersion="additive")
    p0, s2 = 0.6025, 0.6025 * 0.3975 / 400
    tau2 = r["tau2"].iloc[0]
    assert tau2 > 0
    assert r["upper_998"].iloc[0] == pytest.approx(
        p0 + 3.090232306 * math.sqrt(s2 + tau2), abs=1e-9
    )


def test_rate_and_mean_limits():
    # Falls: 12 in 1,000 and 8 in 3,000 patient-days -> l0 = 20 / 4000 = 0.005;
    # s(1000) = sqrt(0.005 / 1000) = 0.002236068; 95% upper 0.005 + 1.959964 * 0.002236068.
    rates = pd.DataFrame(
        {"microsystem_id": ["W1", "W2"], "numerator": [12, 8], "denominator": [1000, 3000]}
    )
    # (threshold 1: the small-cell rule is tested on its own below)
    r = funnel(rates, family="rate", overdispersion=None, threshold=1)
    assert r["upper_95"].iloc[0] == pytest.approx(0.005 + 1.959963985 * 0.002236068, abs=1e-9)
    assert r["lower_95"].iloc[0] == pytest.approx(0.005 - 1.959963985 * 0.002236068, abs=1e-9)
    # Length of stay: unit 1 values 2, 4, 6 (sum 12, squares 56); unit 2 values 5, 7 (12, 74).
    # Mean of all = 24 / 5 = 4.8. Within SS: 56 - 144/3 = 8 and 74 - 144/2 = 2; pooled
    # variance = 10 / (2 + 1) = 3.3333, sigma = 1.825742. s(3) = 1.825742 / sqrt(3) = 1.054093.
    means = pd.DataFrame(
        {
            "microsystem_id": ["W1", "W2"],
            "numerator": [12, 12],
            "denominator": [3, 2],
            "sum_squares": [56, 74],
        }
    )
    m = funnel(means, family="mean", overdispersion=None, threshold=1)
    assert m["target"].iloc[0] == pytest.approx(4.8)
    assert m["upper_95"].iloc[0] == pytest.approx(4.8 + 1.959963985 * 1.054092553, abs=1e-8)
    assert m["z"].iloc[0] == pytest.approx((4.0 - 4.8) / 1.054092553, abs=1e-8)


def test_a_small_denominator_is_withheld_and_left_out_of_the_target():
    # E: 5 of 5 (below the threshold of 11): withheld, never judged, and not in the target,
    # so the target (150/500) and the shown units cannot give E's count away by subtraction.
    units = pd.concat(
        [UNITS, pd.DataFrame({"microsystem_id": ["E"], "numerator": [5], "denominator": [5]})],
        ignore_index=True,
    )
    r = funnel(units, family="proportion", threshold=11, min_units=1).set_index("microsystem_id")
    assert r.at["E", "small_denominator"] and r.at["E", "withheld"]
    assert math.isnan(r.at["E", "z"])
    assert not r.at["E", "outside_95"] and not r.at["E", "outside_998"]
    assert r.at["E", "direction"] == ""
    p0 = 150 / 500
    assert r.at["A", "target"] == pytest.approx(p0)
    z = [(y - p0) / math.sqrt(p0 * (1 - p0) / n) for y, n in ((0.25, 100), (0.3, 200),
                                                             (0.4, 50), (0.3, 150))]  # fmt: skip
    assert r.at["A", "phi"] == pytest.approx(dispersion(np.array(z))[0])


@pytest.mark.parametrize(
    ("numerator", "denominator", "withheld"),
    [
        (3, 400, True),  # 3 events: value x denominator gives away a count under 11
        (394, 400, True),  # 6 cases without the event, the complement
        (0, 400, False),  # none: nothing to give away
        (400, 400, False),  # all of them (0 without): nothing small
        (11, 400, False),  # at the threshold
        (389, 400, False),  # 11 without
    ],
)
def test_a_proportion_that_gives_away_a_small_count_is_withheld(numerator, denominator, withheld):
    units = pd.concat(
        [UNITS, pd.DataFrame({"microsystem_id": ["F"], "numerator": [numerator],
                              "denominator": [denominator]})],
        ignore_index=True,
    )  # fmt: skip
    r = funnel(units, family="proportion", threshold=11, min_units=1).set_index("microsystem_id")
    assert r.at["F", "withheld"] == withheld
    assert not r.at["F", "small_denominator"]
    shown = (150 + (0 if withheld else numerator)) / (500 + (0 if withheld else denominator))
    assert r.at["A", "target"] == pytest.approx(shown)
    assert math.isnan(r.at["F", "z"]) == withheld


def test_a_rate_with_few_events_is_withheld_but_a_mean_is_not():
    units = pd.concat(
        [UNITS, pd.DataFrame({"microsystem_id": ["G"], "numerator": [4], "denominator": [300]})],
        ignore_index=True,
    )
    rate = funnel(units, family="rate", threshold=11, min_units=1).set_index("microsystem_id")
    assert rate.at["G", "withheld"]
    means = units.assign(sum_squares=units["numerator"] ** 2)  # a mean's numerator is a sum
    mean = funnel(means, family="mean", threshold=11, min_units=1).set_index("microsystem_id")
    assert not mean.at["G", "withheld"]


def test_bad_options_are_refused_with_their_name():
    with pytest.raises(ConfigError, match="overdispersion"):
        funnel(UNITS, family="proportion", overdispersion="both")
    with pytest.raises(ConfigError, match="family"):
        funnel(UNITS, family="ratio")


def _series() -> pd.DataFrame:
    """A weekly series: four practices over 15 weeks, one (P4) far worse, and a small one."""
    weeks = pd.date_range("2024-01-01", periods=15, freq="W-MON")
    rows = []
    for ms, tested, cases in (("P1", 16, 20), ("P2", 15, 20), ("P3", 17, 20), ("P4", 6, 20),
                              ("P5", 8, 20), ("P6", 16, 20), ("S1", 0, 0)):  # fmt: skip
        for i, week in enumerate(weeks):
            n = 1 if ms == "S1" and i >= 10 else cases  # S1: 5 cases in the window
            k = 1 if ms == "S1" and i >= 10 else tested
            if n:
                rows.append((ms, "hba1c", week, k, n, n, k / n, k))
    columns = ["microsystem_id", "measure_id", "period", "numerator", "denominator", "n_cases",
               "value", "sum_squares"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


MEASURES = pd.DataFrame(
    {
        "measure_id": ["hba1c"],
        "name": ["HbA1c tested"],
        "chart": ["p"],
        "improvement": ["up"],
        "multiply": [100],
        "unit": ["%"],
        "kind": ["primary_care"],
    }  # fmt: skip
)
REGISTRY = pd.DataFrame(
    {
        "microsystem_id": ["P1", "P2", "P3", "P4", "P5", "P6", "S1", "W1"],
        "kind": ["primary_care"] * 7 + ["inpatient_ward"],
    }  # fmt: skip
)


def test_funnel_table_uses_the_last_periods_and_the_shown_scale():
    table = funnel_table(_series(), MEASURES, REGISTRY, periods=13).set_index("microsystem_id")
    # 13 weeks of 20 cases = 260 cases; P1: 16 of 20 a week = 80%
    assert table.at["P1", "denominator"] == 260
    assert table.at["P1", "value"] == pytest.approx(80.0)
    assert table.at["S1", "denominator"] == 5  # weeks 11 to 15 of S1, one case each
    assert table.at["S1", "small_denominator"] and table.at["S1", "withheld"]
    # target, S1 withheld: 13 * (16 + 15 + 17 + 6 + 8 + 16) / (13 * 120) as a percentage
    assert table.at["P1", "target"] == pytest.approx(100 * 78 / 120)
    assert table.at["P4", "direction"] == "worse" and table.at["P4", "z"] < 0
    # six practices from 30% to 85% vary far more than chance: the limits were widened
    assert table.at["P1", "phi"] > 1 and table.at["P1", "overdispersion"] == "multiplicative"


def test_outlier_table_reads_as_text_worst_first():
    table = funnel_table(_series(), MEASURES, REGISTRY, periods=13, overdispersion=None)
    outliers = funnel_outliers(table, names=MEASURES.set_index("measure_id")["name"])
    assert list(outliers.columns[:3]) == ["Measure", "Kind", "Microsystem"]
    assert outliers["Microsystem"].iloc[0] == "P4"  # 30% against about 60%: the worst
    assert set(outliers["Microsystem"]) >= {"P4", "P5"}
    assert "S1" not in set(outliers["Microsystem"])
    assert outliers["Measure"].iloc[0] == "HbA1c tested"
    assert outliers["Outside"].iloc[0] == "99.8%"
    assert outliers["Better or worse"].iloc[0] == "worse"
    assert not outliers.isna().any().any()


def test_outlier_table_never_shows_a_small_denominator():
    table = funnel_table(_series(), MEASURES, REGISTRY, periods=13, overdispersion=None)
    # Pretend S1 was flagged (it never is): its 5 cases must still read "<11".
    table.loc[table["microsystem_id"] == "S1", "outside_95"] = True
    outliers = funnel_outliers(table, threshold=11)
    assert outliers.loc[outliers["Microsystem"] == "S1", "Denominator"].tolist() == ["<11"]


def test_distance_from_best_ranks_the_furthest_first():
    table = funnel_table(_series(), MEASURES, REGISTRY, periods=13)
    gaps = distance_from_best(table, "hba1c")
    assert gaps["microsystem_id"].iloc[0] == "P4"
    assert gaps["best_microsystem_id"].iloc[0] == "P3"  # 85%, the highest (improvement up)
    assert gaps["gap_to_best"].iloc[0] == pytest.approx(85.0 - 30.0)
    assert "S1" not in set(gaps["microsystem_id"])  # too small to be compared


def test_plot_and_caption_say_what_the_funnel_shows():
    table = funnel_table(_series(), MEASURES, REGISTRY, periods=13, overdispersion=None)
    fig = plot_funnel(table, "hba1c", name="HbA1c tested", unit="%")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "P4" in texts and "S1" not in texts
    caption = funnel_caption(table, "hba1c", name="HbA1c tested", unit="%")
    assert "7 primary care microsystems" in caption
    assert "P4 (worse)" in caption
    assert "1 microsystem not shown: fewer than 11 cases" in caption
    with pytest.raises(ConfigError, match="no funnel for measure 'nope'"):
        plot_funnel(table, "nope")


def test_a_long_measure_name_keeps_the_plot_readable():
    """A measure named by a paragraph (the hostile project's) is wrapped to three lines in the
    title instead of squeezing the plot to nothing."""
    import warnings

    from qi_helpers.chart_display import chart_png

    table = funnel_table(_series(), MEASURES, REGISTRY, periods=13, overdispersion=None)
    name = " ".join(["HbA1c tested in a diabetic review with a very long name"] * 30)
    fig = plot_funnel(table, "hba1c", name=name, unit="%")
    title = fig.axes[0].get_title(loc="left")
    assert title.count("\n") == 2 and title.endswith("\u2026")
    assert all(len(line) <= 80 for line in title.splitlines())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "constrained_layout not applied" would fail here
        assert chart_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.axes[0].get_position().height > 0.3  # the plot keeps most of the figure
