"""The captions of workbook 03's charts: sentences checked against values computed by hand.

The series are built so that every number of the sentence can be worked out on paper: weekly
proportions of 100 cases each, alternating around a level, with points planted outside the
3-sigma limits of a p chart (limits p +/- 3 sqrt(p (1 - p) / n), Provost & Murray, The Health
Care Data Guide, 2011, ch. 6).
"""

from __future__ import annotations

import pandas as pd

from qi_helpers.changes.analysis import analyse
from qi_helpers.changes.captions import (
    change_alt_text,
    change_caption,
    level_text,
    pdsa_caption,
    subgroups_caption,
)

N = 100
PERIODS = pd.date_range("2024-01-01", periods=40, freq="W-MON")  # Mondays, 1 Jan to 30 Sep 2024
MEASURE = pd.Series(
    {"measure_id": "m", "name": "HbA1c tested", "family": "process", "chart": "p",
     "improvement": "up", "multiply": 100, "target": 90.0, "aim": "effective", "balances": "",
     "unit": "%"}
)  # fmt: skip


def _series(numerators: list[int]) -> pd.DataFrame:
    periods = PERIODS[: len(numerators)]
    return pd.DataFrame(
        {"microsystem_id": "X", "measure_id": "m", "period": periods, "numerator": numerators,
         "denominator": N, "value": [k / N for k in numerators], "n_cases": N}
    )  # fmt: skip


def _pdsa(change: str, start: str, decision: str) -> pd.DataFrame:
    return pd.DataFrame(
        [{"microsystem_id": "X", "cycle_id": "X-01", "change": change,
          "start": pd.Timestamp(start), "end": pd.NaT, "decision": decision, "measure_ids": "m"}]
    )  # fmt: skip


def _alternating(a: int, b: int, n: int) -> list[int]:
    return [a if i % 2 == 0 else b for i in range(n)]


def test_the_caption_tells_the_levels_the_points_outside_and_the_verdict():
    # Baseline: 20 weeks alternating 58 and 62 of 100, but week 5 at 80: 1222 of 2000 = 61.1%.
    # Its upper limit: 61.1 + 3 sqrt(0.611 * 0.389 / 100) * 100 = 61.1 + 14.6 = 75.7%, so week 5
    # (80%) is the one point above it. After the change (week 21, Monday 20 May 2024): 20
    # weeks alternating 78 and 82, 1600 of 2000 = 80%, above the baseline's upper limit: the
    # phase shows a special cause and gets its own centre line, 80%, and limits
    # 80 +/- 3 sqrt(0.8 * 0.2 / 100) * 100 = 80 +/- 12, inside which all its points lie.
    baseline = _alternating(58, 62, 20)
    baseline[4] = 80
    item = analyse(_series(baseline + _alternating(78, 82, 20)), MEASURE,
                   _pdsa("Recall register", "2024-05-20", "adopt"))  # fmt: skip
    assert change_caption(item) == (
        "HbA1c tested, weekly percentage, Jan 2024 to Sep 2024: centre line 61% before Recall "
        "register (adopted, from 20 May 2024) and 80% after it; 1 point above the upper limit; "
        "target 90%. Verdict: improved after Recall register."
    )
    alt = change_alt_text(item)
    assert alt.startswith("Control chart (P chart of a percentage). HbA1c tested, weekly")


def test_a_phase_without_a_signal_keeps_the_line_and_a_low_point_is_named():
    # 40 weeks alternating 58 and 62 (60%), but week 30 at 40: the change (week 21) shows no
    # improvement, so the baseline's line is carried on. Baseline limits from its 20 weeks:
    # 60 -/+ 3 sqrt(0.6 * 0.4 / 100) * 100 = 60 -/+ 14.7, so 40% is below the lower limit
    # (45.3%), and the only point outside.
    numerators = _alternating(58, 62, 40)
    numerators[29] = 40
    item = analyse(_series(numerators), MEASURE, _pdsa("Huddle", "2024-05-20", "adapt"))
    caption = change_caption(item)
    assert caption.startswith(
        "HbA1c tested, weekly percentage, Jan 2024 to Sep 2024: centre line 60% before Huddle "
        "(testing, from 20 May 2024) and the same line carried on after it (no new level shown "
        "yet); 1 point below the lower limit; target 90%."
    ), caption


def test_a_run_chart_says_median_and_a_measure_without_data_says_so():
    run = MEASURE.copy()
    run["chart"], run["unit"], run["target"], run["multiply"] = "run", "days", None, 1
    # 10 weeks of 3 days each: the median is 3 days, and no point is off it to make a run.
    values = [3] * 10
    series = _series(values).assign(numerator=values, denominator=1, value=values)
    item = analyse(series, run, _pdsa("Other", "2025-01-06", "adopt").iloc[:0])
    caption = change_caption(item)
    assert caption.startswith("HbA1c tested, weekly, in days, Jan 2024 to Mar 2024: median 3 days")
    empty = analyse(_series([50] * 12).iloc[:0], MEASURE, _pdsa("A", "2024-05-20", "adopt"))
    assert change_caption(empty) == "HbA1c tested: no data to chart yet."


def test_levels_read_as_a_team_says_them():
    assert level_text(65.7229, "%") == "66%"
    assert level_text(9.94, "days") == "9.94 days"
    assert level_text(2766.0, "") == "2,766"


def test_the_pdsa_caption_counts_cycles_changes_and_decisions():
    pdsa = pd.DataFrame(
        {"change": ["A", "A", "B", "C"],
         "start": pd.to_datetime(["2024-08-12", "2024-09-02", "2024-10-07", "2025-03-03"]),
         "decision": ["adapt", "adopt", "abandon", None]}
    )  # fmt: skip
    assert pdsa_caption(pdsa) == (
        "4 PDSA cycles of 3 changes, from 12 Aug 2024 to 3 Mar 2025: 1 adopted, 1 adapted, "
        "1 abandoned, 1 ongoing."
    )
    assert pdsa_caption(pdsa.iloc[:0]) == "No PDSA cycles recorded for this microsystem yet."


def test_the_subgroup_caption_names_the_flagged_groups():
    shown = pd.DataFrame(
        {"measure_id": "m", "change": "A", "name": "HbA1c tested",
         "dimension": ["all", "age_band", "age_band", "deprivation"],
         "subgroup": ["all", "18-64", "65+", "quintile 1"],
         "flag": [False, False, True, False]}
    )  # fmt: skip
    assert subgroups_caption(shown, hidden=2) == (
        "The effect of 1 change in 3 patient subgroups, each beside the whole: 1 subgroup did "
        "not improve when the whole did (age band 65+ (HbA1c tested)); 2 subgroups too small "
        "to show."
    )
