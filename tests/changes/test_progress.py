"""Progress scores from evidence: each step on hand-built cases, no look-ahead, the balancing
cap, the coach's scores file, the index cell, and the demo's planted pilots."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qi_helpers.changes import (
    PROGRESS_SCALE,
    progress_scores,
    progress_steps,
    progress_text,
    read_progress_overrides,
    with_overrides,
)
from qi_helpers.errors import ConfigError
from qi_helpers.publish.progress_cell import history_img, history_svg, history_text

sys.path.insert(0, str(Path(__file__).parent))
from test_changes import analyse_demo  # noqa: E402

MS = "A"
DIAGRAM = pd.DataFrame(
    {
        "microsystem_id": [MS, ""],
        "aim": ["Shorter waits by 2025", "The organisation's aim"],
        "primary_driver": ["p", "p"],
        "secondary_driver": ["s", "s"],
        "change": ["C", "C"],
        "measure_id": ["wait", "wait"],
    }
)
MEASURES = pd.DataFrame(
    {"measure_id": ["wait"], "target": [7.0], "improvement": ["down"], "name": ["Wait"]}
)


def cycle(start, end=None, decision="adapt", change="C", ms=MS):
    return {"microsystem_id": ms, "cycle_id": f"{ms}-{start}", "change": change,
            "start": pd.Timestamp(start), "end": pd.Timestamp(end) if end else pd.NaT,
            "decision": decision}  # fmt: skip


def verdict(measure, family, since, result="improved", change="C", flag=False, after=np.nan):
    return {"microsystem_id": MS, "measure_id": measure, "name": measure.title(),
            "family": family, "change": change, "verdict": result,
            "verdict_since": pd.Timestamp(since), "balancing_flag": flag, "after_mean": after,
            "last_period": pd.Timestamp("2025-06-02")}  # fmt: skip


def score_in(month, *, drivers=None, pdsa=(), results=(), tracking=None, measures=None):
    table = progress_scores(
        [MS], drivers=drivers, pdsa=pd.DataFrame(list(pdsa)) if pdsa else None,
        results=pd.DataFrame(list(results)) if results else None, measures=measures,
        tracking=tracking, first="2024-01-01", last="2025-06-30",
    )  # fmt: skip
    row = table[table["month"] == pd.Timestamp(month)].iloc[0]
    return float(row["score"]), str(row["evidence"])


CYCLES = [cycle("2024-03-04", "2024-03-22", "adapt"), cycle("2024-04-01", "2024-06-28", "adopt")]
IMPROVED = [verdict("wait", "outcome", "2024-05-06")]


# ---- each step of the scale, built by hand ---------------------------------------------------


def test_1_forming_nothing_but_the_microsystem():
    score, words = score_in("2024-05-01")
    assert score == 1.0 and words.startswith("1.0 forming:")


def test_1_5_planning_needs_its_own_driver_diagram():
    assert score_in("2024-01-01", drivers=DIAGRAM)[0] == 1.5
    assert "Shorter waits by 2025" in score_in("2024-01-01", drivers=DIAGRAM)[1]
    assert score_in("2024-01-01", drivers=DIAGRAM.iloc[[1]])[0] == 1.0  # the organisation's


def test_2_activity_from_the_month_a_cycle_begins():
    pdsa = [cycle("2024-03-04")]
    assert score_in("2024-02-01", drivers=DIAGRAM, pdsa=pdsa)[0] == 1.5
    score, words = score_in("2024-03-01", drivers=DIAGRAM, pdsa=pdsa)
    assert score == 2.0
    assert "1 PDSA cycle of 'C' begun by Mar 2024" in words


def test_2_5_changes_tested_when_a_cycle_ends_with_a_decision():
    score, words = score_in("2024-03-01", pdsa=CYCLES)
    assert score == 2.5
    assert words == (
        "2.5 changes tested: 1 PDSA cycle of 'C' completed by Mar 2024; "
        "no measure shows a signal yet"
    )
    undecided = [cycle("2024-03-04", "2024-03-22", decision="")]
    assert score_in("2024-04-01", pdsa=undecided)[0] == 2.0


def test_3_modest_improvement_on_a_process_measure():
    results = [verdict("calls", "process", "2024-05-06")]
    assert score_in("2024-04-01", pdsa=CYCLES, results=results)[0] == 2.5
    score, words = score_in("2024-05-01", pdsa=CYCLES, results=results)
    assert score == 3.0
    assert "'Calls' improved after 'C' (since May 2024)" in words


def test_3_5_improvement_on_an_outcome_an_aim_measure_or_two_measures():
    assert score_in("2024-05-01", pdsa=CYCLES, results=IMPROVED)[0] == 3.5
    aim_process = [verdict("wait", "process", "2024-05-06")]
    assert score_in("2024-05-01", drivers=DIAGRAM, pdsa=CYCLES, results=aim_process)[0] == 3.5
    two = [verdict("calls", "process", "2024-05-06"), verdict("notes", "process", "2024-05-13")]
    assert score_in("2024-05-01", pdsa=CYCLES, results=two)[0] == 3.5


def test_4_significant_after_3_months_on_the_aim_measure():
    args = dict(drivers=DIAGRAM, pdsa=CYCLES, results=IMPROVED)
    assert score_in("2024-07-01", **args)[0] == 3.5  # since 6 May: not 3 months by 31 Jul
    score, words = score_in("2024-08-01", **args)
    assert score == 4.0
    assert "the aim's measure 'Wait' improved after 'C' since May 2024" in words


def test_4_5_sustainable_after_6_months_without_loss():
    args = dict(drivers=DIAGRAM, pdsa=CYCLES, results=IMPROVED)
    assert score_in("2024-10-01", **args)[0] == 4.0
    score, words = score_in("2024-11-01", **args)
    assert score == 4.5 and "held 6 months or more with no loss" in words
    lost = pd.DataFrame(
        {"microsystem_id": [MS], "change": ["C"], "verdict": ["lost"],
         "as_of": [pd.Timestamp("2024-10-14")]}
    )  # fmt: skip
    score, words = score_in("2024-11-01", tracking=lost, **args)
    assert score == 4.0 and "'C' lost in tracking" in words


def test_5_outstanding_needs_the_target_met_and_the_spread_holding():
    met = [verdict("wait", "outcome", "2024-05-06", after=6.5)]
    missed = [verdict("wait", "outcome", "2024-05-06", after=8.0)]
    args = dict(drivers=DIAGRAM, pdsa=CYCLES, measures=MEASURES)
    holding = pd.DataFrame(
        {"microsystem_id": ["B"], "change": ["C"], "verdict": ["improved and holding"],
         "as_of": [pd.Timestamp("2025-02-03")]}
    )  # fmt: skip
    score, words = score_in("2025-06-01", results=met, **args)  # the target met, no spread
    assert score == 4.5 and words.endswith("is met; not 5: not spread to another team yet")
    score, words = score_in("2025-06-01", results=missed, tracking=holding, **args)
    assert score == 4.5 and "spread and holding in B" in words
    assert words.endswith("not 5: the target of 'Wait' not met")
    score, words = score_in("2025-06-01", results=met, tracking=holding, **args)
    assert score == 5.0 and "is met" in words and "spread and holding in B" in words
    # the level is known at the measure's last period (Jun 2025), the spread from Feb 2025
    assert score_in("2025-05-01", results=met, tracking=holding, **args)[0] == 4.5
    # a measure without a target: the spread that holds is the evidence still needed
    no_target = dict(drivers=DIAGRAM, pdsa=CYCLES)
    assert score_in("2025-02-01", results=missed, tracking=holding, **no_target)[0] == 5.0
    assert score_in("2025-01-01", results=missed, tracking=holding, **no_target)[0] == 4.5


def test_a_worse_balancing_measure_caps_the_score_at_3():
    results = [*IMPROVED, verdict("readmit", "balancing", "2024-06-03", "worsened", flag=True)]
    args = dict(drivers=DIAGRAM, pdsa=CYCLES, results=results)
    assert score_in("2024-05-01", **args)[0] == 3.5
    score, words = score_in("2025-06-01", **args)
    assert score == 3.0
    assert "capped at 3.0 because the balancing measure 'Readmit' is worse after 'C'" in words


def test_every_score_is_on_the_scale_and_named():
    table = progress_scores([MS], drivers=DIAGRAM, pdsa=pd.DataFrame(CYCLES),
                            results=pd.DataFrame(IMPROVED))  # fmt: skip
    assert set(table["score"]) <= set(PROGRESS_SCALE)
    assert (table["label"] == table["score"].map(PROGRESS_SCALE)).all()
    assert table["month"].iloc[0] == pd.Timestamp("2024-02-01")  # the month before a cycle


# ---- no look-ahead ---------------------------------------------------------------------------


def _truncated(pdsa, results, tracking, end):
    pdsa = pdsa[pdsa["start"] <= end].assign(end=pdsa["end"].where(pdsa["end"] <= end))
    results = results[results["verdict_since"] <= end]
    tracking = tracking[tracking["as_of"] <= end]
    return pdsa, results, tracking


def test_a_month_scored_with_only_what_was_known_then_scores_the_same():
    pdsa = pd.DataFrame(CYCLES)
    results = pd.DataFrame(
        [*IMPROVED, verdict("readmit", "balancing", "2025-03-03", "worsened", flag=True)]
    )
    tracking = pd.DataFrame(
        {"microsystem_id": ["B"], "change": ["C"], "verdict": ["improved and holding"],
         "as_of": [pd.Timestamp("2025-01-06")]}
    )  # fmt: skip
    full = progress_scores([MS], drivers=DIAGRAM, pdsa=pdsa, results=results, tracking=tracking,
                           first="2024-01-01", last="2025-06-30")  # fmt: skip
    assert full["score"].nunique() >= 6
    for month in full["month"]:
        end = month + pd.offsets.MonthEnd(0)
        p, r, t = _truncated(pdsa, results, tracking, end)
        known = progress_scores([MS], drivers=DIAGRAM, pdsa=p, results=r, tracking=t,
                                first="2024-01-01", last=end)  # fmt: skip
        assert known["score"].iloc[-1] == full.loc[full["month"] == month, "score"].iloc[0]


# ---- a coach's scores ------------------------------------------------------------------------


def _file(tmp_path, text):
    path = tmp_path / "progress_scores.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_coach_score_holds_from_its_month_and_both_are_shown(tmp_path):
    reason = "aim reached in the last audit, not in our data yet"
    header = "microsystem_id,month,score,reason,coach\n# a comment row\n"
    text = f'{header}A,2024-05,3.5,"{reason}",Kim\n'
    path = _file(tmp_path, text)
    overrides = read_progress_overrides(path, ["A", "B"])
    table = progress_scores([MS], pdsa=pd.DataFrame(CYCLES), first="2024-03-01", last="2024-06-30")
    shown = with_overrides(table, overrides).set_index("month")
    assert math.isnan(shown.loc["2024-04-01", "coach_score"])
    assert shown.loc["2024-06-01", "coach_score"] == 3.5
    assert shown.loc["2024-06-01", "coach"] == "Kim"
    row = shown.loc["2024-06-01"]
    assert progress_text(row["score"], row["coach_score"], row["coach_reason"]) == (
        "computed 2.5, coach 3.5: 'aim reached in the last audit, not in our data yet'"
    )
    assert read_progress_overrides(tmp_path / "none.csv", ["A"]).empty


@pytest.mark.parametrize(
    ("line", "column", "row"),
    [
        ("A,2024-05,3.2,a reason,", "column score, row(s) 3", "progress scale"),
        ("Z,2024-05,3.5,a reason,", "column microsystem_id, row(s) 3", "not a known"),
        ("A,2024-05,3.5,,", "column reason, row(s) 3", "empty"),
        ("A,May 2024,3.5,a reason,", "column month, row(s) 3", "not a month"),
    ],
)
def test_a_bad_coach_score_is_named_by_file_column_and_row(tmp_path, line, column, row):
    path = _file(tmp_path, f"microsystem_id,month,score,reason,coach\nA,2024-04,2,ok,\n{line}\n")
    with pytest.raises(ConfigError) as err:
        read_progress_overrides(path, ["A"])
    assert str(path) in str(err.value) and column in str(err.value) and row in str(err.value)


def test_a_coach_file_without_a_reason_column_is_refused(tmp_path):
    path = _file(tmp_path, "microsystem_id,month,score\nA,2024-05,3\n")
    with pytest.raises(ConfigError, match="missing column.*reason"):
        read_progress_overrides(path, ["A"])


# ---- the index cell --------------------------------------------------------------------------


def test_the_history_chart_draws_each_step_and_says_it_in_words():
    months = pd.date_range("2024-01-01", periods=36, freq="MS")
    scores = [1.5] * 5 + [2.0] * 2 + [2.5] * 3 + [3.5] * 3 + [4.0] * 3 + [4.5] * 20
    history = pd.DataFrame({"microsystem_id": "A", "month": months, "score": scores})
    svg = history_svg(history)
    assert svg.startswith("<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 96 24'>")
    steps = re.search(r"<path d='(M0 20[^']*)' fill='none'", svg).group(1)  # 1.5 at y = 20
    assert steps.count("V") == 5  # one vertical stroke per move
    assert steps.endswith("V4H96")  # 4.5 of 1..5 on 24 px, 2 px margins: y = 22 - 3.5 / 4 * 20
    img = history_img(history)
    assert img.startswith('<img class="qi-prog" src="data:image/svg+xml,%3Csvg xmlns=')
    assert 'alt="Progress score by month, from 1.5 in Jan 2024 to 4.5 in Dec 2026"' in img
    assert "<" not in img[1:] and '"' not in svg  # one element, no markup
    text = history_text(history)
    assert (
        text == "1.5 Jan 2024, 2.0 Jun 2024, 2.5 Aug 2024, 3.5 Nov 2024, 4.0 Feb 2025, 4.5 May 2025"
    )
    # small enough for 500 microsystems in an index under 1 MB
    assert len(img) + len(text) < 400  # and a score that never moved has no chart


# ---- the demo's planted pilots ---------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_progress(demo_tables):
    tested = sorted(set(demo_tables["pdsa"]["microsystem_id"]))
    results = analyse_demo(demo_tables, [*tested, "HIL-PC2"])
    ids = sorted(demo_tables["truth_microsystems"]["microsystem_id"])
    scores = progress_scores(ids, drivers=demo_tables["drivers"], pdsa=demo_tables["pdsa"],
                             results=results, measures=demo_tables["measures"])  # fmt: skip
    return scores


def test_the_planted_pilots_reach_the_scores_their_truth_implies(demo_tables, demo_progress):
    truth = demo_tables["truth_effects"]
    last = demo_progress[demo_progress["month"] == demo_progress["month"].max()]
    now = dict(zip(last["microsystem_id"], last["score"], strict=True))
    words = dict(zip(last["microsystem_id"], last["evidence"], strict=True))
    planted = truth.groupby("microsystem_id")["planted_as"].agg(set)
    pilots = [ms for ms, kinds in planted.items() if kinds == {"pilot"}]
    assert len(pilots) == 4
    # a change that works on the aim's measure, sustained: improvement at least, and most
    # pilots (those whose chart has shown it for 3 months) significant or better
    assert all(now[ms] >= 3.5 for ms in pilots)
    assert sum(now[ms] >= 4.0 for ms in pilots) >= 3
    for ms in [m for m, kinds in planted.items() if "harm" in kinds]:
        assert now[ms] == 3.0 and "capped at 3.0" in words[ms]
    for ms in [m for m, kinds in planted.items() if kinds == {"failed"}]:
        assert now[ms] == 2.5  # tested, abandoned, nothing improved
    for ms in [m for m, kinds in planted.items() if kinds == {"adopter"}]:
        assert now[ms] >= 2.5
    untouched = set(now) - set(demo_tables["pdsa"]["microsystem_id"])
    untouched -= set(demo_tables["drivers"]["microsystem_id"].fillna(""))
    assert untouched and all(now[ms] == 1.0 for ms in untouched)


def test_the_planted_pilots_never_lose_ground(demo_tables, demo_progress):
    pilots = demo_tables["truth_effects"].query("planted_as == 'pilot'")["microsystem_id"]
    for ms in pilots:
        scores = demo_progress.loc[demo_progress["microsystem_id"] == ms, "score"]
        assert scores.is_monotonic_increasing
    steps = progress_steps(demo_progress)
    assert len(steps) < len(demo_progress) / 3


def test_qi_init_writes_a_coach_scores_file_that_reads_as_empty(tmp_path):
    from qi_helpers.data.scaffold import init_project
    from qi_helpers.project import PROGRESS_SCORES_FILE

    init_project(tmp_path / "new")
    path = tmp_path / "new" / PROGRESS_SCORES_FILE
    assert "reason" in path.read_text(encoding="utf-8").splitlines()[0]
    assert read_progress_overrides(path, ["RIV-PC1"]).empty
    example = path.read_text(encoding="utf-8").splitlines()[2].lstrip("# ")
    path.write_text(path.read_text(encoding="utf-8") + example + "\n", encoding="utf-8")
    assert read_progress_overrides(path, ["RIV-PC1"])["score"].tolist() == [3.5]


def test_an_adopter_does_not_count_another_adopters_gain_as_its_own_spread():
    tracking = pd.DataFrame(
        {"microsystem_id": [MS, "B"], "change": ["C", "C"],
         "verdict": ["improved and holding", "improved and holding"],
         "as_of": [pd.Timestamp("2025-02-03")] * 2}
    )  # fmt: skip
    score, words = score_in("2025-03-01", drivers=DIAGRAM, pdsa=CYCLES, results=IMPROVED,
                            tracking=tracking)  # fmt: skip
    assert score == 4.5 and "spread and holding" not in words


def test_an_aim_measure_worse_stops_the_score_at_3_5_and_says_why():
    results = [*IMPROVED, verdict("wait2", "outcome", "2024-06-03", "worsened")]
    drivers = pd.concat([DIAGRAM, DIAGRAM.iloc[[0]].assign(measure_id="wait2")])
    score, words = score_in("2025-01-01", drivers=drivers, pdsa=CYCLES, results=results)
    assert score == 3.5 and "not 4: the aim's measure 'Wait2' is worse" in words


def test_a_teams_history_reads_month_score_and_evidence():
    from qi_helpers.changes import progress_history
    from qi_helpers.readable_tables import readable_html

    table = progress_scores([MS], drivers=DIAGRAM, pdsa=pd.DataFrame(CYCLES),
                            results=pd.DataFrame(IMPROVED), last="2024-11-30")  # fmt: skip
    history = progress_history(table)
    assert history["month"].tolist() == [
        "Feb 2024", "Mar 2024", "May 2024", "Aug 2024", "Nov 2024"
    ]  # fmt: skip
    assert history["progress_score"].tolist() == [1.5, 2.5, 3.5, 4.0, 4.5]
    html = readable_html(history)  # as the page shows it: one decimal, the scale in the header
    assert "Score (1-5)" in html and ">4.0<" in html and "4.00" not in html
    assert history["evidence"].iloc[1].startswith("2.5 changes tested: 1 PDSA cycle of 'C'")
