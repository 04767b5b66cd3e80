"""Hand-worked series for the conventions the independent references hold us to (issue 18).

Making Data Count (MDC) rules as NHSRplotthedots 0.2.2 applies them (its README in
``../shared/reference/nhsrplotthedots``, conventions 4, 6 and 7), the accurate mean of every
centre line (R's ``mean()``), and qicharts2's MR chart, which never sets its runs signal.
Each series is small enough to check by hand; the derivation is in the comments.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd

from qi_helpers.spc.qic import qic
from qi_helpers.spc.rules import signals


def _chart(y: list[float]) -> pd.DataFrame:
    """A hand-made qic() result: centre line 0, sigma 1 (limits -+3, 2-sigma lines -+2)."""
    k = len(y)
    return pd.DataFrame(
        {
            "x": np.arange(1, k + 1),
            "facet1": 1,
            "facet2": 1,
            "part": 1,
            "y": np.asarray(y, dtype=float),
            "cl": 0.0,
            "ucl": 3.0,
            "lcl": -3.0,
            "ucl_95": 2.0,
            "lcl_95": -2.0,
            "include": True,
        }
    )


# ---- 1. two of three: the third point must lie on the same side of the mean -------------------


def test_mdc_two_of_three_needs_the_third_point_on_the_same_side() -> None:
    # Points 2 and 4 lie in the near zone above the mean (2 < 2.5 < 3); point 3 lies below the
    # mean. The windows holding both (2-4) have a point across the mean, so NHSRplotthedots
    # (issues #143, #153, #194; README convention 7, case two_of_three_third_across_mean) flags
    # nothing. Points 7 and 9 are the same with the middle point 8 above the mean: flagged.
    y = [0.5, 2.5, -0.5, 2.5, 0.5, -0.5, 2.5, 0.5, 2.5, -0.5]
    pts = signals(_chart(y), rules="mdc", improvement="up").points
    assert list(np.flatnonzero(pts["two_of_three"]) + 1) == [7, 9]
    assert pts["point_type"].iloc[[1, 3]].eq("common_cause").all()
    assert pts["point_type"].iloc[[6, 8]].eq("special_cause_improvement").all()


def test_mdc_two_of_three_on_the_mean_breaks_it() -> None:
    # The middle point lies exactly on the mean: not strictly on the side of the near-zone points.
    pts = signals(_chart([0.5, -2.5, 0.0, -2.5, 0.5]), rules="mdc", improvement="up").points
    assert not pts["signal"].any()


# ---- 2. two of three: a point beyond a limit is not "close" -------------------------------------


def test_mdc_two_of_three_ignores_a_point_beyond_the_limit() -> None:
    # Point 2 (3.5) is beyond the upper limit, point 3 (2.5) in the near zone, point 4 above the
    # mean. Only one point lies in the 2-3 sigma zone, so two of three does not fire; point 2 is
    # outside the limits and point 3 is common cause (README convention 7, issue #153, case
    # two_of_three_outside_plus_one_near).
    pts = signals(_chart([0.5, 3.5, 2.5, 0.5, -0.5]), rules="mdc", improvement="up").points
    assert not pts["two_of_three"].any()
    assert list(pts["point_type"]) == [
        "common_cause", "special_cause_improvement", "common_cause", "common_cause",
        "common_cause",
    ]  # fmt: skip


# ---- 3. the centre line is an accurate mean ------------------------------------------------------

# Sixteen one-decimal values whose exact mean is 5 (sum 80.0: 5.9 + 4.3 + 3.8 + 4.1 + 7 x 5.0
# + 6.2 + 6.2 + 4.1 + 3.8 + 6.6). Summed left to right in doubles they give 79.99999999999999,
# a mean of 4.999999999999999, which puts the seven points equal to 5 above the centre line.
ON_MEAN = [5.9, 4.3, 3.8, 4.1] + [5.0] * 7 + [6.2, 6.2, 4.1, 3.8, 6.6]


def test_points_equal_to_an_exact_mean_lie_on_the_centre_line() -> None:
    assert sum(Fraction(str(v)) for v in ON_MEAN) / len(ON_MEAN) == 5  # exact mean 5
    res = qic(pd.DataFrame({"y": ON_MEAN}), "y", chart="i")
    assert res["cl"].iloc[0] == 5.0 == math.fsum(ON_MEAN) / len(ON_MEAN)
    # Anhøj: the seven points on the centre line are not useful observations (16 - 7 = 9)
    assert res["n_useful"].iloc[0] == 9
    # MDC: points on the mean break a run, so the seven 5.0s are no shift
    pts = signals(res, rules="mdc", improvement="up").points
    assert not pts["shift"].any()
    assert res["runs_signal"].eq(False).all()


def test_every_mean_centre_line_is_accurate() -> None:
    # The same values as the second part of an I chart (each part has its own mean) and as a
    # c chart (whose centre line is the mean count): both centre lines are exactly 5.
    y = [1.0, 2.0, 3.0, 4.0] + ON_MEAN
    parts = qic(pd.DataFrame({"y": y}), "y", chart="i", part=[4])
    assert parts["cl"].iloc[4:].eq(5.0).all()
    assert parts["n_useful"].iloc[4] == 9
    counts = qic(pd.DataFrame({"y": ON_MEAN}), "y", chart="c")
    assert counts["cl"].eq(5.0).all()


# ---- 4. a peak shared by a rising and a falling trend is falling ---------------------------


def test_mdc_peak_between_two_trends_takes_the_falling_trend() -> None:
    # Points 1-7 rise (-3 ... 3) and 7-13 fall (3 ... -2.5): point 7 (the peak) belongs to both.
    # NHSRplotthedots gives a trend point the direction of the step after it when the next point
    # is also a trend point (README convention 6, case trend_peak_shared): the peak is falling,
    # so with higher better it is concern. Limits are wide (sigma 10) so only trends fire.
    y = [-3, -2, -1, -0.5, 1, 2, 3, 2.5, 1.5, 0.7, -0.6, -1.5, -2.5]
    res = _chart(y).assign(ucl=30.0, lcl=-30.0, ucl_95=20.0, lcl_95=-20.0)
    pts = signals(res, rules="mdc", improvement="up").points
    assert pts["trend"].all()
    assert list(pts["direction"]) == ["high"] * 6 + ["low"] * 7
    assert pts["point_type"].iloc[6] == "special_cause_concern"


def test_mdc_trough_between_two_trends_takes_the_rising_trend() -> None:
    # The mirror image: the trough (point 7) is a rising point.
    y = [3, 2, 1, 0.5, -1, -2, -3, -2.5, -1.5, -0.7, 0.6, 1.5, 2.5]
    res = _chart(y).assign(ucl=30.0, lcl=-30.0, ucl_95=20.0, lcl_95=-20.0)
    pts = signals(res, rules="mdc", improvement="down").points
    assert list(pts["direction"]) == ["low"] * 6 + ["high"] * 7


# ---- 5. the MR chart never signals on its runs ---------------------------------------------------


def test_mr_chart_reports_runs_but_never_signals_them() -> None:
    # y alternates 0, 1 for 12 points then 0, 5 for 12: the moving ranges are twelve 1s then
    # eleven 5s (23 in all, mean 67 / 23 = 2.91). The longest run (12 below the centre line)
    # exceeds round(log2(23) + 3) = 8, so the runs figures show a shift, but qicharts2 never sets
    # the runs signal of an MR chart (moving ranges are autocorrelated).
    y = [0, 1] * 6 + [0, 5] * 6
    res = qic(pd.DataFrame({"y": y}), "y", chart="mr")
    assert res["longest_run"].iloc[0] == 12
    assert res["longest_run_max"].iloc[0] == 8
    assert not res["runs_signal"].any()
    sig = signals(res, rules="anhoej")
    assert not sig.points["long_run"].any()
    assert not sig.parts["few_crossings"].any()
