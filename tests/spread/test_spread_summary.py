"""Summary first for workbook 04 (issue 20): one card per change, on hand-built tables.

The expected counts, orders and sentences are worked out by hand from the rows below: what
improved or worsened where (the evidence), how many adopters each wave of the plan holds, the
adopters counted by sustain verdict, and who comes first for attention (worsened, then gain
lost, then no signal yet 13 periods or more after adoption, longest first).
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from qi_helpers.errors import DataError
from qi_helpers.privacy.html import clean_html
from qi_helpers.spread import spread_cards, spread_summary, wave_summary

RECALL, CARVE = "Recall register", "Carve-out scheduling"


def _results() -> pd.DataFrame:
    rows = [
        ("P1", "m1", "HbA1c tested", RECALL, "improved"),
        ("P3", "m1", "HbA1c tested", RECALL, "no signal yet"),
        ("P2", "m2", "Waits", CARVE, "improved"),
        ("P2", "m3", "Returns", CARVE, "worsened"),  # a balancing measure: held back
        ("Q", "m1", "HbA1c tested", None, "baseline only"),
    ]
    columns = ["microsystem_id", "measure_id", "name", "change", "verdict"]
    return pd.DataFrame(rows, columns=columns).assign(reason="from the chart")


def _plan() -> pd.DataFrame:
    starts = {1: "2026-01-05", 2: "2026-03-30", 3: "2026-06-22"}
    categories = {1: "early adopters", 2: "early majority", 3: "late majority"}
    rows = [(RECALL, ms, w) for ms, w in (("A1", 1), ("A2", 1), ("A3", 2), ("A4", 3))]
    plan = pd.DataFrame(rows, columns=["change", "microsystem_id", "wave"])
    plan["adopter_category"] = plan["wave"].map(categories)
    plan["wave_start"] = pd.to_datetime(plan["wave"].map(starts))
    plan["wave_end"] = plan["wave_start"] + pd.Timedelta(weeks=12)
    return plan


def _sustained() -> pd.DataFrame:
    rows = [
        ("A1", "lost", 30),
        ("A2", "improved and holding", 25),
        ("A5", "no signal yet", 20),
        ("A6", "no signal yet", 5),  # too soon to worry
        ("A7", "worsened", 10),
        ("A8", "too little data", 2),
        ("A9", "no signal yet", 14),
    ]
    table = pd.DataFrame(rows, columns=["microsystem_id", "verdict", "n_after"])
    return table.assign(change=RECALL, name="HbA1c tested")


def test_one_row_per_change_counted_by_hand():
    table = spread_summary(_results(), _plan(), _sustained()).set_index("change")
    assert list(table.index) == [RECALL, CARVE]  # ready first, then held back
    recall = table.loc[RECALL]
    assert recall["status"] == "ready to spread"
    assert recall["evidence"] == "HbA1c tested improved in P1"
    assert (recall["adopters"], recall["waves"], recall["adopted"]) == (4, 3, 7)
    counts = recall[["holding", "lost", "no_signal_yet", "worsened", "too_little_data"]]
    assert counts.tolist() == [1, 1, 3, 1, 1]
    assert recall["first_start"] == pd.Timestamp("2026-01-05")
    assert recall["attention"] == (
        "A7 (worsened, HbA1c tested); A1 (gain lost, HbA1c tested); "
        "A5 (no signal yet after 20 periods, HbA1c tested); and 1 more"
    )
    carve = table.loc[CARVE]
    assert carve["status"] == "held back"
    assert carve["evidence"] == "Waits improved in P2; Returns worsened in P2"
    assert (carve["adopters"], carve["waves"], carve["adopted"], carve["attention"]) == (
        0,
        0,
        0,
        "",
    )


def test_waves_count_the_plan_rows():
    waves = wave_summary(_plan())
    assert waves[["wave", "adopters"]].values.tolist() == [[1, 2], [2, 1], [3, 1]]
    assert waves["adopter_category"].tolist() == [
        "early adopters",
        "early majority",
        "late majority",
    ]
    assert wave_summary(pd.DataFrame()).empty


def test_cards_show_the_waves_and_the_counts():
    page = clean_html(spread_cards(_results(), _plan(), _sustained())._repr_html_())
    assert page.count('class="qi-summary-card"') == 2
    recall, carve = page.split('class="qi-summary-card"')[1:]
    assert RECALL in recall and CARVE in carve
    waves = re.findall(
        r"Wave (\d+) \(([a-z ]+)\): <strong>(\d+)</strong> teams?, from ([^<]+)<", page
    )
    assert waves == [
        ("1", "early adopters", "2", "5 Jan 2026"),
        ("2", "early majority", "1", "30 Mar 2026"),
        ("3", "late majority", "1", "22 Jun 2026"),
    ]
    assert '<span class="qi-status qi-status-failed">gain lost</span> <strong>1</strong>' in recall
    assert (
        '<span class="qi-status qi-status-stale">no signal yet</span> <strong>3</strong>' in recall
    )
    assert "Attention first: A7 (worsened" in recall
    assert '<span class="qi-status qi-status-failed">held back</span>' in carve
    assert "Wave" not in carve


def test_nobody_adopted_yet_and_bad_tables():
    table = spread_summary(_results(), _plan(), None).set_index("change")
    assert table.loc[RECALL, "adopted"] == 0 and table.loc[RECALL, "attention"] == ""
    page = spread_cards(_results(), _plan())._repr_html_()
    assert "No adopter in the adoption log yet." in page
    with pytest.raises(DataError, match="results: missing column"):
        spread_summary(_results().drop(columns="name"), _plan())
    with pytest.raises(DataError, match="sustain verdicts: missing column"):
        spread_summary(_results(), _plan(), _sustained().drop(columns="n_after"))
