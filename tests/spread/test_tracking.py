"""Tracking the spread: the adoption curve and the sustain verdicts of adopters.

The verdicts are checked against hand-built series (improved and holding, lost, no signal, too
little data) and against the demo's planted adopters: those planted with an effect should be
found ``improved and holding`` once the data can show it, those planted without one never.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qi_helpers.errors import DataError
from qi_helpers.spread.tracking import adoption_curve, sustain, sustain_summary

START = pd.Timestamp("2024-01-01")
MEASURES = pd.DataFrame(
    {
        "measure_id": ["wait"],
        "name": ["Waiting time"],
        "chart": ["i"],
        "improvement": ["down"],
        "multiply": [1],
    }
)


def one_series(values: np.ndarray, microsystem_id: str = "A") -> pd.DataFrame:
    """A weekly pre-aggregated series of the ``wait`` measure (an i chart)."""
    periods = START + pd.to_timedelta(7 * np.arange(len(values)), "D")
    return pd.DataFrame(
        {
            "microsystem_id": microsystem_id,
            "measure_id": "wait",
            "period": periods,
            "numerator": np.nan,
            "denominator": np.nan,
            "value": values,
            "n_cases": 1,
        }
    )


def verdict_of(values: np.ndarray, n_baseline: int) -> pd.Series:
    series = one_series(values)
    adoption = pd.DataFrame(
        {
            "microsystem_id": ["A"],
            "change": ["c"],
            "adopted": [START + pd.Timedelta(weeks=n_baseline)],
        }
    )
    ids = pd.DataFrame({"change": ["c"], "measure_id": ["wait"]})
    tracked = sustain(series.iloc[:0], series, MEASURES, adoption, ids)
    assert len(tracked.verdicts) == 1
    return tracked.verdicts.iloc[0]


@pytest.fixture
def noise():
    return np.random.default_rng(7).normal(0, 1, 200)


def test_a_gain_that_holds(noise):
    values = np.concatenate([10 + noise[:40], 7 + noise[40:70]])
    row = verdict_of(values, 40)
    assert row["verdict"] == "improved and holding"
    assert row["n_baseline"] == 40 and row["n_after"] == 30
    assert row["baseline_mean"] == pytest.approx(10, abs=0.5)
    assert row["after_mean"] == pytest.approx(7, abs=0.5)


def test_a_gain_that_returns_to_baseline_is_lost(noise):
    # Improved for 20 weeks, then back at the old level for 12 weeks.
    values = np.concatenate([10 + noise[:40], 7 + noise[40:60], 10 + noise[60:72]])
    row = verdict_of(values, 40)
    assert row["verdict"] == "lost"
    assert "baseline side" in row["reason"]


def test_a_few_points_back_within_the_new_limits_are_not_lost(noise):
    # Three weeks a little worse (8 instead of 7, inside the new limits): common cause.
    values = np.concatenate([10 + noise[:40], 7 + noise[40:66], 8 + noise[66:69] / 4])
    assert verdict_of(values, 40)["verdict"] == "improved and holding"


def test_points_back_at_the_old_level_beyond_the_new_limits_are_lost(noise):
    # Three weeks back at 12, beyond the new upper limit (about 10): a special cause back.
    values = np.concatenate([10 + noise[:40], 7 + noise[40:66], np.full(3, 12.0)])
    row = verdict_of(values, 40)
    assert row["verdict"] == "lost"
    assert "beyond the limits" in row["reason"]


def test_no_change_gives_no_signal_and_short_baselines_too_little_data(noise):
    assert verdict_of(10 + noise[:60], 40)["verdict"] == "no signal yet"
    assert verdict_of(10 + noise[:20], 5)["verdict"] == "too little data"


def test_a_change_for_the_worse(noise):
    assert verdict_of(np.concatenate([10 + noise[:40], 13 + noise[40:60]]), 40)["verdict"] == (
        "worsened"
    )


def test_adoption_curve_counts_targets_and_planned_waves():
    adoption = pd.DataFrame(
        {
            "microsystem_id": ["A", "B", "B"],
            "change": ["c"] * 3,
            "adopted": ["2025-03-03", "2025-05-05", "2025-06-02"],
        }  # fmt: skip
    )
    plan = pd.DataFrame(
        {
            "change": ["c"] * 3,
            "microsystem_id": ["C", "D", "E"],
            "wave": [1, 1, 2],
            "wave_start": pd.to_datetime(["2026-01-05", "2026-01-05", "2026-03-30"]),
            "wave_end": pd.to_datetime(["2026-03-30", "2026-03-30", "2026-06-22"]),
        }
    )
    curve = adoption_curve(adoption, plan)
    actual = curve[curve["kind"] == "actual"]
    planned = curve[curve["kind"] == "planned"]
    assert (curve["targeted"] == 5).all()  # 2 adopted already + 3 planned; B counted once
    assert actual["share"].tolist() == [0.0, 0.2, 0.4]
    assert planned["share"].tolist() == [0.8, 1.0]
    assert planned["wave"].tolist() == [1, 2]
    assert adoption_curve(None, plan)["adopted"].max() == 3


def locations_membership(tables) -> dict[str, pd.DataFrame]:
    ms = tables["truth_microsystems"]
    locations = ms[["locations", "microsystem_id"]].rename(columns={"locations": "location"})
    return {"locations": locations.assign(share=1.0)}


def track(tables):
    """Sustain verdicts of the demo's adopters, on the measure each change's pilot improved."""
    from qi_helpers.changes import assign_microsystems, measure_series

    cases = assign_microsystems(tables["measure_events"], locations_membership(tables))
    series = measure_series(cases, tables["measures"], tables["observations"])
    effects = tables["truth_effects"]
    ids = effects.loc[effects["planted_as"] == "pilot", ["change", "measure_id"]]
    tracked = sustain(cases, series, tables["measures"], tables["adoption"], ids)
    planted = effects[["microsystem_id", "measure_id", "planted_as"]]
    return tracked, tracked.verdicts.merge(planted, on=["microsystem_id", "measure_id"])


def test_small_demo_adopters_with_enough_weeks_hold(demo_tables):
    tracked, verdicts = track(demo_tables)
    assert len(verdicts) == len(demo_tables["adoption"]) == 4
    assert set(verdicts["planted_as"]) == {"adopter"}
    weeks = verdicts.set_index("microsystem_id")
    # Waves 1 and 2 (22-34 weeks since adoption) show their gain; wave 3 (10 weeks) may not yet.
    assert (weeks.loc[weeks["n_after"] >= 20, "verdict"] == "improved and holding").all()
    assert weeks["verdict"].isin(["improved and holding", "no signal yet"]).all()
    assert set(tracked.charts) == {
        (r.microsystem_id, r.change, r.measure_id) for r in tracked.verdicts.itertuples()
    }
    summary = sustain_summary(tracked.verdicts)
    assert summary["adopters"].sum() == 4


@pytest.fixture(scope="module")
def medium_tracking():
    from qi_helpers.demo.health_system import make_demo

    tables = make_demo(size="medium", seed=0)
    return track(tables)


def test_medium_demo_sustain_verdicts_match_the_planted_adopters(medium_tracking):
    _, verdicts = medium_tracking
    assert len(verdicts) == 32
    nulls = verdicts[verdicts["planted_as"] == "adopter_no_effect"]
    assert len(nulls) == 2
    assert not (nulls["verdict"] == "improved and holding").any()
    real = verdicts[verdicts["planted_as"] == "adopter"]
    assert not real["verdict"].isin(["lost", "worsened"]).any()
    first_wave = real[real["n_after"] >= 30]
    assert len(first_wave) == 11
    assert (first_wave["verdict"] == "improved and holding").all()
    enough = real[real["n_after"] >= 20]
    assert (enough["verdict"] == "improved and holding").mean() >= 0.85


def test_an_adoption_log_without_its_columns_says_which_and_what_to_do():
    plan = pd.DataFrame(columns=["change", "microsystem_id", "wave", "wave_start", "wave_end"])
    with pytest.raises(DataError) as caught:
        adoption_curve(pd.DataFrame({"team": ["A"], "change": ["x"]}), plan)
    message = str(caught.value)
    assert message.startswith("adoption: missing column(s) microsystem_id, adopted; found team")
    assert "`columns:` mapping in parameters/project.yaml" in message


# ---- one rule with workbook 03 (issue 18, point 10) ---------------------------------------------


def _tracked(values: list[float], n_baseline: int, improvement: str, **kwargs) -> pd.Series:
    series = one_series(np.asarray(values, dtype=float))
    adoption = pd.DataFrame(
        {"microsystem_id": ["A"], "change": ["c"],
         "adopted": [START + pd.Timedelta(weeks=n_baseline)]}
    )  # fmt: skip
    measures = MEASURES.assign(improvement=improvement)
    ids = pd.DataFrame({"change": ["c"], "measure_id": ["wait"]})
    return sustain(series.iloc[:0], series, measures, adoption, ids, **kwargs).verdicts.iloc[0]


# Baseline: 20 weeks alternating 10 and 12: mean 11, moving ranges all 2, sigma 2 / 1.128 = 1.77,
# limits 11 -+ 5.32 = 5.68 to 16.32. After adoption (higher is better): 17 (beyond the upper
# limit: one point signalling improvement), then 6, 11.1, 6, 11.1, ... (within the limits,
# alternating across the centre line: no run, many crossings). The after-adoption mean is
# (17 + 5 x 6 + 4 x 11.1) / 10 = 9.14, below the baseline's 11. Workbook 03 labels the signal by
# the side with more signalling points (1 improving, 0 concerning): improved. Labelled by the
# pooled mean it was "worsened".
SPLIT = [10.0, 12.0] * 10 + [17.0] + [6.0, 11.1] * 4 + [6.0]


def test_tracking_labels_a_signal_as_workbook_03_does():
    row = _tracked(SPLIT, 20, "up")
    assert row["after_mean"] < row["baseline_mean"]
    assert row["verdict"].startswith("improved"), row["reason"]
    assert "1 point signalling improvement" in row["reason"]


# The same baseline, then 7 points rising within the limits and across the mean: 8, 9, 10, 10.5,
# 11.5, 12.5, 13. Anhøj's rules see no special cause (no point outside, runs of 4 and 3 for 7
# useful points, whose limit is round(log2(7) + 3) = 6; 1 crossing >= qbinom(0.05, 6, 0.5) = 1);
# the Making Data Count trend (7 points all increasing) signals improvement.
RISE = [10.0, 12.0] * 10 + [8.0, 9.0, 10.0, 10.5, 11.5, 12.5, 13.0]


def test_tracking_uses_the_analysis_rule_set():
    assert _tracked(RISE, 20, "up")["verdict"] == "no signal yet"
    assert _tracked(RISE, 20, "up", rules="mdc")["verdict"].startswith("improved")
