"""Workbook 03's verdict rules on hand-worked series (issue 18, points 6 and 8).

Only a special cause after the change makes a verdict ``improved`` or ``worsened`` (the docstring
of :func:`qi_helpers.changes.analysis.analyse`, workbook 03's text and its verdict legend); the
95% interval of the effect alone never does. Without a signal the note says what is true: how many
more periods the chart needs, or that the change seen so far is too small to tell from noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qi_helpers.changes import analyse


def _series(numerators: list[int], n: int = 100) -> pd.DataFrame:
    periods = pd.date_range("2024-01-01", periods=len(numerators), freq="W-MON")
    num = np.asarray(numerators)
    return pd.DataFrame(
        {"microsystem_id": "X", "measure_id": "m", "period": periods, "numerator": num,
         "denominator": n, "value": num / n, "n_cases": n}
    )  # fmt: skip


def _measure(improvement: str, target: float | None = None) -> pd.Series:
    return pd.Series(
        {"measure_id": "m", "name": "M", "family": "outcome", "chart": "p",
         "improvement": improvement, "multiply": 100, "target": target, "aim": "effective",
         "balances": ""}
    )  # fmt: skip


def _pdsa(start: pd.Timestamp) -> pd.DataFrame:
    return pd.DataFrame(
        [{"microsystem_id": "X", "cycle_id": "X-01", "change": "A", "start": start,
          "end": pd.NaT, "decision": "adapt", "measure_ids": "m"}]
    )  # fmt: skip


# 40 weeks at exactly 30 of 100, then 20 weeks alternating 33 and 21 of 100 (the issue's series).
# Frozen p chart: cl 30%, sigma sqrt(0.3 x 0.7 / 100) = 4.58 points, limits 16.3% to 43.7%: no
# point after the change is beyond them (21 > 16.3). The 20 later points alternate above and
# below the centre line: 19 crossings (Anhøj's minimum for 20 useful points is 6) and runs of 1
# (the maximum is round(log2(20) + 3) = 7). No rule fires. The effect is 27 - 30 = -3 points with
# a 95% interval wholly below 0 ([-5.4, -0.6]): a hint, not a verdict.
ISSUE_SERIES = [30] * 40 + [33, 21] * 10


def test_no_special_cause_no_improved_verdict_whatever_the_interval() -> None:
    series = _series(ISSUE_SERIES)
    start = series["period"].iloc[40]
    for improvement in ("up", "down"):
        row = analyse(series, _measure(improvement), _pdsa(start)).verdicts.iloc[0]
        assert row["effect"] == pytest.approx(-3.0)
        assert row["effect_high"] < 0  # the interval excludes no change ...
        assert row["verdict"] == "no signal yet", (improvement, row["reason"])  # ... no verdict
        assert "95% interval" in row["reason"]


def test_a_chart_long_enough_says_the_change_is_too_small_not_one_more_period() -> None:
    # 30 weeks at exactly 30 of 100, then 60 weeks alternating 37 and 29 of 100 (mean 33: +3
    # points, 0.65 sigma of the frozen chart, limits 16.3% to 43.7%). No point is beyond the
    # limits and the later points alternate around the centre line (79 crossings, runs of 1), so
    # no rule fires. A chart with Anhøj's rules shows a 0.65-sigma gain within about 46 periods
    # 80% of the time (the simulation of periods_needed); after 80 periods "about 1 more
    # periods" (what it said before) would be false: the gain seen so far is too small to detect.
    series = _series([30] * 30 + [37, 29] * 40)
    start = series["period"].iloc[30]
    row = analyse(series, _measure("up"), _pdsa(start)).verdicts.iloc[0]
    assert row["verdict"] == "no signal yet"
    assert "1 more period" not in row["reason"]
    assert np.isnan(row["periods_needed"])
    assert "too small to detect" in row["reason"], row["reason"]
    assert "could show a rise of about" in row["reason"]


def test_a_verdict_is_dated_from_the_period_its_chart_first_showed_it() -> None:
    # 30 weeks at exactly 30 of 100 (frozen p chart: cl 30%, limits 16.3% to 43.7%), then ten
    # weeks alternating 38 and 28 (no point beyond the limits, a crossing every week: no rule
    # fires), then one week at 50 (beyond the upper limit) and ten more alternating. Judged on
    # the data up to each week, the chart shows the improvement from week 40 (the 50) on, and
    # not before: ``verdict_since`` is that week's period, never a later or an earlier one.
    series = _series([30] * 30 + [38, 28] * 5 + [50] + [28, 38] * 4 + [28])
    row = analyse(series, _measure("up"), _pdsa(series["period"].iloc[30])).verdicts.iloc[0]
    assert row["verdict"] == "improved"
    assert row["verdict_since"] == series["period"].iloc[40]
    cut = series.iloc[:40]  # the data up to the week before: no verdict yet
    before = analyse(cut, _measure("up"), _pdsa(series["period"].iloc[30])).verdicts.iloc[0]
    assert before["verdict"] == "no signal yet" and pd.isna(before["verdict_since"])
