"""Rule sets of :mod:`qi_helpers.spc.rules` on hand-worked series.

Each test states the rule and its source; expected flags are worked out by hand in comments.
Zone rules are tested on hand-made result frames (centre line 0, sigma 1) so the zones are exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qi_helpers.errors import QIError
from qi_helpers.spc.qic import qic
from qi_helpers.spc.rules import point_types, signals
from qi_helpers.spc.runs import box_signal, runs_limits

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "qicharts2_synthetic" / "ref"


def zone_frame(y: list[float], cl: float = 0.0, sigma: float = 1.0, target=np.nan) -> pd.DataFrame:
    """A qic()-shaped result with fixed centre line and limits cl +- 2/3 sigma."""
    n = len(y)
    return pd.DataFrame(
        {
            "x": np.arange(1, n + 1),
            "facet1": 1,
            "facet2": 1,
            "part": 1,
            "y": np.asarray(y, dtype=float),
            "cl": cl,
            "ucl": cl + 3 * sigma,
            "ucl_95": cl + 2 * sigma,
            "lcl": cl - 3 * sigma,
            "lcl_95": cl - 2 * sigma,
            "include": True,
            "target": target,
        }
    )


def flagged(sig, rule: str) -> list[int]:
    """1-based positions flagged by a rule."""
    return (np.flatnonzero(sig.points[rule].to_numpy()) + 1).tolist()


# ---- Anhøj runs analysis: critical values and box rules against qicharts2's tables ------------


def test_runs_limits_match_qicharts2_table() -> None:
    # Anhøj & Olesen 2014: longest run > round(log2(n) + 3), crossings < qbinom(0.05, n - 1, .5);
    # reference values from qicharts2's internal runs.analysis() for n = 1..1000.
    ref = pd.read_csv(FIXTURES / "anhoej_limits_1_1000.csv")
    longest, crossings = runs_limits(ref["n.useful"].to_numpy())
    np.testing.assert_array_equal(longest, ref["longest.run.max"].to_numpy())
    np.testing.assert_array_equal(crossings, ref["n.crossings.min"].to_numpy())


@pytest.mark.parametrize("method", ["anhoej", "bestbox", "cutbox"])
def test_runs_signal_grid_matches_qicharts2(method: str) -> None:
    # crsignal() decision for every n (10..30), crossings and longest run (qicharts2 0.8.1);
    # box rules: Anhøj & Wentzel-Larsen 2018.
    grid = pd.read_csv(FIXTURES / "runs_signal_grid_n10_30.csv")
    n = grid["n"].to_numpy()
    cr = grid["n.crossings"].to_numpy().astype(float)
    lr = grid["longest.run"].to_numpy().astype(float)
    if method == "anhoej":
        lmax, cmin = runs_limits(n)
        got = (lr > lmax) | (cr < cmin)
    else:
        got = box_signal(n, cr, lr, method) == 1
    np.testing.assert_array_equal(got, grid[f"signal.{method}"].to_numpy())


def test_anhoej_point_flags() -> None:
    # 12 points with a fixed centre line 0: n_useful = 12 -> longest_run_max = round(log2 12 + 3)
    # = 7. Points 3..10 are a run of 8 above (> 7): flagged; points on the line are skipped.
    y = [-1, -1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1]
    res = qic(pd.DataFrame({"y": y}), y="y", cl=0)
    assert res["longest_run_max"].iloc[0] == 7
    sig = signals(res, "anhoej", improvement="up")
    assert flagged(sig, "long_run") == [3, 4, 5, 6, 7, 8, 9, 10]
    assert sig.parts["runs_signal"].tolist() == [True]
    assert set(sig.points["point_type"].iloc[2:10]) == {"special_cause_improvement"}
    assert sig.points["point_type"].iloc[0] == "common_cause"


# ---- IHI run chart rules (Perla, Provost & Murray 2011, BMJ Qual Saf 20:46-51) ----------------


def test_ihi_shift_skips_points_on_the_median() -> None:
    # Rule 1 (shift): 6 or more consecutive points above (or below) the median; "values falling
    # on the median neither add to nor break a run". Median fixed at 3: points 6, 7, 9..12 are
    # above and point 8 is on the median -> a shift of 6 (points 6, 7, 9, 10, 11, 12). The five
    # points below (13..17) are not a shift.
    y = [2, 4, 2, 4, 2, 4, 4, 3, 4, 4, 4, 4, 2, 2, 2, 2, 2, 4]
    sig = signals(qic(pd.DataFrame({"y": y}), y="y", cl=3), "ihi")
    assert flagged(sig, "shift") == [6, 7, 9, 10, 11, 12]


def test_ihi_trend_ignores_like_values() -> None:
    # Rule 2 (trend): 5 or more consecutive points all going up or all going down; "if the value
    # of two or more successive points is the same, ignore one of the points when counting".
    # Points 4..9 = 1, 2, 3, 3, 4, 5 -> with the repeated 3 (point 7) ignored, 5 points going
    # up: points 4, 5, 6, 8, 9 flagged. Points 9..13 = 5, 5, 2.5, 2, 1.5: the repeated 5 is
    # ignored, so the fall is 5, 2.5, 2, 1.5 = 4 points -> no downward trend.
    y = [5, 5, 5, 1, 2, 3, 3, 4, 5, 5, 2.5, 2, 1.5, 3, 3]
    sig = signals(qic(pd.DataFrame({"y": y}), y="y", cl=3.2), "ihi", improvement="down")
    assert flagged(sig, "trend") == [4, 5, 6, 8, 9]
    assert sig.points["direction"].iloc[3] == "high"
    assert sig.points["point_type"].iloc[4] == "special_cause_concern"


def test_ihi_too_few_and_too_many_runs() -> None:
    # Rule 3: compare the number of runs with Perla's Table 1: for 20 useful observations fewer
    # than 6 runs is too few and more than 16 too many.
    # Five blocks of 4 points alternately above / below a centre line of 0: 5 runs < 6.
    blocks = [1, 1, 1, 1, -1, -1, -1, -1] * 2 + [1, 1, 1, 1]
    sig = signals(qic(pd.DataFrame({"y": blocks}), y="y", cl=0), "ihi")
    assert sig.parts[["too_few_runs", "too_many_runs"]].iloc[0].tolist() == [True, False]
    assert flagged(sig, "shift") == []  # no run of 6
    # Six blocks (4, 4, 3, 3, 3, 3): 6 runs, not fewer than 6 -> no signal.
    six = [1] * 4 + [-1] * 4 + [1] * 3 + [-1] * 3 + [1] * 3 + [-1] * 3
    sig = signals(qic(pd.DataFrame({"y": six}), y="y", cl=0), "ihi")
    assert not sig.parts["too_few_runs"].iloc[0]
    # 20 points alternating: 20 runs > 16 -> too many.
    alt = [1, -1] * 10
    sig = signals(qic(pd.DataFrame({"y": alt}), y="y", cl=0), "ihi")
    assert sig.parts[["too_few_runs", "too_many_runs"]].iloc[0].tolist() == [False, True]
    # 17 runs at n = 20: still too many; 16 runs: not.
    sixteen = [1, -1] * 7 + [1] * 3 + [-1] * 3
    res = qic(pd.DataFrame({"y": sixteen}), y="y", cl=0)
    assert int(res["n_crossings"].iloc[0]) + 1 == 16
    assert not signals(res, "ihi").parts["too_many_runs"].iloc[0]


def test_ihi_astronomical_point_uses_limits() -> None:
    # Rule 4 (astronomical data point): operationalised as a point outside the control limits.
    sig = signals(zone_frame([0, 1, -1, 3.5, 0, -3.2, 0]), "ihi", improvement="up")
    assert flagged(sig, "astronomical") == [4, 6]
    assert sig.points["point_type"].iloc[[3, 5]].tolist() == [
        "special_cause_improvement",
        "special_cause_concern",
    ]


# ---- NHS England Making Data Count (2019; NHSRplotthedots) ------------------------------------


def test_mdc_shift_of_seven_broken_by_point_on_mean() -> None:
    # "Shift: 7 or more consecutive points above or below the mean"; a point on the mean is on
    # neither side. Points 1..6 above, 7 on the mean, 8..14 above -> only 8..14 is a shift.
    y = [0.5] * 6 + [0] + [0.5] * 7 + [-0.5]
    sig = signals(zone_frame(y), "mdc", improvement="down")
    assert flagged(sig, "shift") == list(range(8, 15))
    assert set(sig.points["point_type"].iloc[7:14]) == {"special_cause_concern"}
    assert sig.points["point_type"].iloc[0] == "common_cause"


def test_mdc_trend_of_seven_and_ties() -> None:
    # "Trend: 7 or more consecutive points all increasing or all decreasing". Points 2..8 rise
    # (7 points) -> flagged. Points 10..16 rise by 6 steps but 12 -> 13 is a tie: no trend.
    y = [0, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 0, -1.4, -1.2, -1, -1, -0.8, -0.6, -0.4]
    sig = signals(zone_frame(y), "mdc", improvement="up")
    assert flagged(sig, "trend") == [2, 3, 4, 5, 6, 7, 8]
    assert set(sig.points["direction"].iloc[1:8]) == {"high"}


def test_mdc_two_of_three_beyond_two_sigma() -> None:
    # "Two out of three consecutive points near a process limit (beyond 2 sigma), same side".
    # Points 3 and 5 are beyond +2 sigma within the window 3..5 -> both flagged (4 is not beyond).
    # Points 8 (+2.5) and 9 (-2.5) are on opposite sides -> no signal.
    y = [0, 0, 2.5, 1, 2.2, 0, 0, 2.5, -2.5, 0]
    sig = signals(zone_frame(y), "mdc", improvement="up")
    assert flagged(sig, "two_of_three") == [3, 5]
    assert flagged(sig, "outside_limits") == []


def test_mdc_variation_and_assurance_icons() -> None:
    # Variation icon from the last point; assurance from its limits against the target
    # (improvement up: lcl > target -> consistent pass; ucl < target -> consistent fail).
    y = [0.1, -0.1] * 5 + [3.5]
    sig = signals(zone_frame(y, target=-4), "mdc", improvement="up")
    assert sig.series[["variation", "assurance"]].iloc[0].tolist() == [
        "improvement_high",
        "consistent_pass",
    ]
    sig = signals(zone_frame(y), "mdc", improvement="down", target=4)
    assert sig.series[["variation", "assurance"]].iloc[0].tolist() == [
        "concern_high",
        "consistent_pass",
    ]
    sig = signals(zone_frame(y), "mdc", improvement="up", target=4)
    assert sig.series["assurance"].iloc[0] == "consistent_fail"
    sig = signals(zone_frame(y), "mdc", improvement="up", target=1)
    assert sig.series["assurance"].iloc[0] == "inconsistent"
    sig = signals(zone_frame(y[:-1] + [-3.5]), "mdc", improvement=None)
    assert sig.series[["variation", "assurance"]].iloc[0].tolist() == ["neutral_low", None]
    sig = signals(zone_frame(y[:-1] + [0]), "mdc", improvement="up")
    assert sig.series[["variation", "assurance"]].iloc[0].tolist() == ["common_cause", None]


def test_point_types_convenience_is_aligned() -> None:
    res = zone_frame([0, 3.5, 0, -3.5]).set_index(pd.Index([10, 11, 12, 13]))
    pt = point_types(res, "mdc", "up")
    assert pt.index.tolist() == [10, 11, 12, 13]
    assert pt.tolist() == [
        "common_cause",
        "special_cause_improvement",
        "common_cause",
        "special_cause_concern",
    ]


# ---- Western Electric (1956 handbook; Montgomery 2009, section 5.3.6) -------------------------


def test_western_electric_four_zone_rules() -> None:
    # Rule 1: one point beyond 3 sigma (point 2).
    # Rule 2: two of three consecutive points beyond 2 sigma on the same side (points 5, 7).
    # Rule 3: four of five consecutive points beyond 1 sigma on the same side (points 10..13 at
    # -1.5; point 9 at -0.5 is not beyond).
    # Rule 4: eight consecutive points on one side of the centre line (points 16..23).
    y = [0, 3.5, 0, 0, 2.5, 0.5, 2.1, 0, -0.5, -1.5, -1.5, -1.5, -1.5, 0.2, -0.3]
    y += [0.4, 0.2, 0.3, 0.1, 0.6, 0.2, 0.3, 0.4, -0.2]
    sig = signals(zone_frame(y), "western_electric")
    assert flagged(sig, "beyond_3sigma") == [2]
    assert flagged(sig, "two_of_three_2sigma") == [5, 7]
    assert flagged(sig, "four_of_five_1sigma") == [10, 11, 12, 13]
    assert flagged(sig, "eight_one_side") == list(range(16, 24))
    assert sig.parts["signal"].tolist() == [True]


def test_rules_respect_parts_and_exclusions() -> None:
    # A run of 8 split by a part boundary after point 4 is two runs of 4: no rule 4 signal.
    res = zone_frame([0.5] * 8 + [-0.5])
    res["part"] = [1] * 4 + [2] * 5
    sig = signals(res, "western_electric")
    assert flagged(sig, "eight_one_side") == []
    assert len(sig.parts) == 2
    # An excluded point is never flagged.
    res = zone_frame([0, 3.5, 0])
    res["include"] = [True, False, True]
    assert flagged(signals(res, "western_electric"), "beyond_3sigma") == []


def test_signals_leaves_result_unchanged_and_checks_input() -> None:
    res = zone_frame([0, 3.5, 0])
    before = res.copy()
    signals(res, "mdc", "up")
    pd.testing.assert_frame_equal(res, before)
    with pytest.raises(QIError, match="rule set"):
        signals(res, "nelson")
    with pytest.raises(QIError, match="improvement"):
        signals(res, "mdc", improvement="higher")
    with pytest.raises(QIError, match="columns missing"):
        signals(res.drop(columns="ucl"), "mdc")
