"""Summary first (issue 20): the effect in words and the cards, on hand-built verdict rows.

The expected sentences are written by hand from the rounding rules: means of a percentage to
the whole number, effects in percentage points with one decimal, other means to three
significant digits, rate ratios with two decimals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qi_helpers.changes.summary import effect_sentence, measure_summary, summary_cards
from qi_helpers.privacy.html import clean_html


def _row(**values):
    row = {
        "measure_id": "m",
        "name": "HbA1c tested",
        "change": "Recall register",
        "baseline_mean": 65.722952,
        "after_mean": 79.183915,
        "effect": 13.460962,
        "effect_low": 10.2041,
        "effect_high": 16.7958,
        "effect_kind": "difference in proportions",
    }
    return {**row, **values}


def test_a_proportion_that_rose_reads_as_the_issue_asks():
    assert effect_sentence(_row(), "%") == (
        "HbA1c tested rose from 66% to 79%, +13.5 points, 95% CI 10.2 to 16.8."
    )


def test_a_mean_that_fell_carries_its_unit():
    row = _row(
        name="Time to third next available appointment",
        baseline_mean=10.78,
        after_mean=8.21,
        effect=-2.57,
        effect_low=-3.912,
        effect_high=-1.204,
        effect_kind="difference in means",
    )
    assert effect_sentence(row, "days") == (
        "Time to third next available appointment fell from 10.8 to 8.21 days, -2.57 days, "
        "95% CI -3.91 to -1.20."
    )


def test_a_rate_ratio_is_named_and_has_no_sign():
    row = _row(
        name="Falls",
        baseline_mean=4.1,
        after_mean=3.37,
        effect=0.8213,
        effect_low=0.612,
        effect_high=1.1,
        effect_kind="rate ratio",
    )
    assert effect_sentence(row, "per 1,000 bed-days") == (
        "Falls fell from 4.10 to 3.37 per 1,000 bed-days, rate ratio 0.82, 95% CI 0.61 to 1.10."
    )


def test_no_effect_yet_says_what_there_is():
    row = _row(change=pd.NA, after_mean=np.nan, effect=np.nan, effect_low=np.nan)
    assert effect_sentence(row, "days") == (
        "HbA1c tested: no change tested yet; the baseline mean is 65.7 days."
    )
    row = _row(after_mean=np.nan, effect=np.nan)
    assert effect_sentence(row, "%") == (
        "HbA1c tested: too little data after Recall register to tell its effect yet; "
        "the baseline mean is 66%."
    )
    # no interval: no "95% CI"
    assert effect_sentence(_row(effect_low=np.nan), "%") == (
        "HbA1c tested rose from 66% to 79%, +13.5 points."
    )


def test_one_card_per_measure_with_the_latest_change_and_value():
    verdicts = pd.DataFrame(
        [
            _row(measure_id="a", verdict="no change", last_value=70.04, change="First try"),
            _row(measure_id="a", verdict="improved", last_value=80.0),
            _row(
                measure_id="b",
                name="Waits",
                verdict="baseline only",
                change=pd.NA,
                baseline_mean=10.78,
                after_mean=np.nan,
                effect=np.nan,
                last_value=8.8,
                effect_kind="difference in means",
            ),
        ]
    ).assign(
        variation_icon=["common_cause", "improvement_high", pd.NA],
        assurance_icon=["inconsistent", "consistent_pass", None],
        last_period=pd.Timestamp("2025-12-22"),
    )
    measures = pd.DataFrame({"measure_id": ["a", "b"], "unit": ["%", "days"]})
    table = measure_summary(verdicts, measures)
    assert table["measure_id"].tolist() == ["a", "b"]
    assert table["verdict"].tolist() == ["improved", "baseline only"]
    assert table["latest"].tolist() == ["80.0%", "8.80 days"]
    assert table["last_period"].tolist() == ["22 Dec 2025", "22 Dec 2025"]
    assert (
        table["sentences"].iloc[1] == "Waits: no change tested yet; the baseline mean is 10.8 days."
    )
    page = summary_cards(verdicts, measures)._repr_html_()
    assert page.count('class="qi-summary-card"') == 2
    assert '<span class="qi-status qi-status-ok">improved</span>' in page
    assert 'class="mdc mdc-improve"' in page and 'class="mdc mdc-pass"' in page
    assert page.count('class="mdc mdc-none"') == 2  # measure b has no icon
    assert clean_html(page).count('class="qi-summary-card"') == 2  # the sanitiser keeps the cards
