"""Pilot selection on the demo: the planted pilots come first, the planted problems do not.

The registry and membership come from the demo's truth tables (what workbook 01 should find), so
these tests judge workbook 02's method on its own. Weights and k are the committed parameters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from qi_helpers.changes import assign_microsystems, measure_series
from qi_helpers.errors import ConfigError, QIError
from qi_helpers.identify.mix import mix_profiles
from qi_helpers.pilots import (
    CRITERIA,
    baseline_charts,
    criteria,
    pilot_cards,
    pilot_summary,
    plot_criteria_heatmap,
    plot_pilot_baselines,
    rank,
    readiness_by_microsystem,
    representativeness,
    sensitivity,
    shortlist,
)
from qi_helpers.privacy.html import clean_html
from qi_helpers.project import load_yaml
from qi_helpers.widgets import pilot_explorer

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = load_yaml(ROOT / "parameters" / "project.yaml")["pilots"]
K = SETTINGS["k"]
WEIGHTS = SETTINGS["weights"]
OPTIONS = {
    "baseline_periods": SETTINGS["baseline_periods"],
    "as_of": SETTINGS["as_of"],
    "effect": SETTINGS["effect"],
    "rules": SETTINGS["rules"],
    "sims": 300,
}


def pilot_inputs(tables: dict[str, pd.DataFrame]) -> dict:
    """What workbook 02 reads, built from a demo's truth tables (as workbook 01 should find)."""
    truth = tables["truth_microsystems"]
    registry = truth[["microsystem_id", "name", "kind", "site"]]
    membership = {
        "staff": tables["truth_membership"][["staff_id", "microsystem_id", "share"]],
        "locations": truth[["locations", "microsystem_id"]]
        .rename(columns={"locations": "location"})
        .assign(share=1.0),
    }
    cases = assign_microsystems(tables["measure_events"], membership, period="week")
    series = measure_series(cases, tables["measures"], tables["observations"], period="week")
    ready = readiness_by_microsystem(tables["readiness"], membership["staff"])
    profiles = mix_profiles(tables["staff"], membership, tables["activities"])
    return {
        "registry": registry,
        "series": series,
        "readiness": ready,
        "profiles": profiles,
        "measures": tables["measures"],
        "truth": truth,
        "effects": tables["truth_effects"],
    }


def score_criteria(inputs: dict, measure_id: str, **extra) -> pd.DataFrame:
    return criteria(
        inputs["registry"], inputs["series"], inputs["readiness"], measure_id=measure_id,
        measures=inputs["measures"], profiles=inputs["profiles"], **{**OPTIONS, **extra},
    )  # fmt: skip


@pytest.fixture(scope="module")
def demo(demo_tables):
    return pilot_inputs(demo_tables)


@pytest.fixture(scope="module")
def scored(demo):
    cache: dict[str, pd.DataFrame] = {}

    def get(measure_id: str, **extra) -> pd.DataFrame:
        key = measure_id + repr(sorted(extra.items()))
        if key not in cache:
            cache[key] = score_criteria(demo, measure_id, **extra)
        return cache[key]

    return get


def rank_of(ranked: pd.DataFrame, microsystem_id: str) -> int:
    return int(ranked.loc[ranked["microsystem_id"] == microsystem_id, "rank"].iloc[0])


PLANTED_PILOTS = [
    ("NOR-PC1", "pc_hba1c_tested"),
    ("RIV-PC1", "pc_ttna"),
    ("RIV-W1", "ward_los"),
    ("NOR-W1", "ward_falls"),
    ("HIL-LAB", "lab_tat"),
]


def test_the_planted_pilots_are_the_ones_listed_here(demo):
    eff = demo["effects"]
    planted = set(map(tuple, eff.loc[eff["planted_as"] == "pilot", ["microsystem_id", "measure_id"]]
                      .to_numpy()))  # fmt: skip
    assert set(PLANTED_PILOTS) == planted


@pytest.mark.parametrize(("microsystem_id", "measure_id"), PLANTED_PILOTS)
def test_planted_pilots_rank_in_the_top_k(scored, microsystem_id, measure_id):
    table = scored(measure_id)
    # planted as good pilots: a baseline with common-cause variation only
    assert table.set_index("microsystem_id").at[microsystem_id, "stable_baseline"] == 1.0
    ranked = rank(table, WEIGHTS, k=K)
    assert rank_of(ranked, microsystem_id) <= K
    assert ranked.loc[ranked["microsystem_id"] == microsystem_id, "selected"].iloc[0]


def test_planted_pilots_rank_in_the_top_k_on_the_medium_demo_too():
    # 101 microsystems, 56 primary care teams: the planted pilots must still stand out, and the
    # planted unstable and low-volume teams must not be picked, whatever the size of the system.
    from qi_helpers.demo.health_system import make_demo

    inputs = pilot_inputs(make_demo(size="medium", seed=0))
    eff = inputs["effects"]
    planted = eff.loc[eff["planted_as"] == "pilot", ["microsystem_id", "measure_id"]]
    assert len(planted) == len(PLANTED_PILOTS)
    truth = inputs["truth"]
    problems = set(truth.loc[truth["unstable"] | truth["low_volume"], "microsystem_id"])
    for measure_id, group in planted.groupby("measure_id"):
        ranked = rank(score_criteria(inputs, measure_id), WEIGHTS, k=K)
        for microsystem_id in group["microsystem_id"]:
            assert rank_of(ranked, microsystem_id) <= K, (measure_id, microsystem_id)
        picked = set(ranked.loc[ranked["selected"], "microsystem_id"])
        assert not picked & problems, measure_id


def test_one_point_beyond_the_limits_halves_stability_until_it_is_explained(demo):
    # Plant an isolated special cause in HIL-PC1's baseline: a week at twice its usual TTNA.
    # (Its other baseline points stay inside the limits, which narrow once the outlier's
    # moving ranges are screened out as qicharts2 does.)
    series = demo["series"].copy()
    week = pd.Timestamp("2024-04-15")
    hit = (
        (series["microsystem_id"] == "HIL-PC1")
        & (series["measure_id"] == "pc_ttna")
        & (pd.to_datetime(series["period"]) == week)
    )
    assert hit.sum() == 1
    series.loc[hit, "value"] = series.loc[hit, "value"] * 2

    def score(**extra) -> pd.Series:
        table = score_criteria({**demo, "series": series}, "pc_ttna", **extra)
        return table.set_index("microsystem_id").loc["HIL-PC1"]

    row = score()
    assert row["stable_baseline"] == 0.5, row["stable_baseline_why"]
    assert row["stable_baseline_value"] == 1
    assert "one point beyond the limits" in row["stable_baseline_why"]
    explained = score(exclude={"HIL-PC1": ["2024-04-15"]})
    assert explained["stable_baseline"] == 1.0
    assert explained["n_periods"] == row["n_periods"] - 1


def test_planted_unstable_and_low_volume_teams_are_not_selected(scored, demo):
    truth = demo["truth"].set_index("microsystem_id")
    unstable = truth.index[truth["unstable"].astype(bool)].tolist()
    low_volume = truth.index[truth["low_volume"].astype(bool)].tolist()
    assert unstable == ["HIL-PC2"] and low_volume == ["HIL-PC3"]
    table = scored("pc_hba1c_tested").set_index("microsystem_id")
    ranked = rank(scored("pc_hba1c_tested"), WEIGHTS, k=K)
    for ms in unstable + low_volume:
        assert rank_of(ranked, ms) > K
    # and for the reasons planted
    assert table.loc["HIL-PC2", "stable_baseline"] == 0.0
    assert (table.drop(index="HIL-PC2")["stable_baseline"] > 0).all()
    ttd = table["time_to_detect_value"]
    assert pd.isna(ttd["HIL-PC3"]) or ttd["HIL-PC3"] == ttd.max()
    assert table.loc["HIL-PC3", "time_to_detect"] == table["time_to_detect"].min()


def test_low_readiness_team_has_the_lowest_readiness(scored, demo):
    truth = demo["truth"]
    low = truth.loc[truth["low_readiness"].astype(bool), "microsystem_id"].tolist()
    table = scored("pc_hba1c_tested").set_index("microsystem_id")
    assert table["readiness"].idxmin() == low[0] == "RIV-PC3"


def test_room_to_improve_is_the_gap_to_the_target(scored):
    table = scored("pc_hba1c_tested").set_index("microsystem_id")
    # target 80%: the gap is 80 minus the baseline level, in percentage points
    assert table["target"].unique().tolist() == [80.0]
    np.testing.assert_allclose(
        table["room_to_improve_value"], (80 - table["baseline"]).clip(lower=0)
    )
    assert table["room_to_improve"].max() == 1.0


def test_best_decile_when_asked(scored):
    table = scored("pc_hba1c_tested", target="best")
    assert (table["target_source"] == "best decile").all()
    assert table["target"].iloc[0] == pytest.approx(table["baseline"].quantile(0.9))


def test_criteria_columns_and_determinism(scored, demo):
    table = scored("pc_hba1c_tested")
    for c in CRITERIA:
        assert {c, f"{c}_value", f"{c}_why"} <= set(table.columns)
        assert table[c].between(0, 1).all()
    again = criteria(
        demo["registry"], demo["series"], demo["readiness"], measure_id="pc_hba1c_tested",
        measures=demo["measures"], profiles=demo["profiles"], **OPTIONS,
    )  # fmt: skip
    pd.testing.assert_frame_equal(table, again)
    assert not any("patient" in c for c in table.columns)


def test_rank_by_hand():
    table = pd.DataFrame(
        {
            "microsystem_id": ["A", "B", "C", "D"],
            "site": ["x", "x", "y", "y"],
            "kind": ["pc"] * 4,
            "room_to_improve": [1.0, 0.5, 0.0, 0.5],
            "readiness": [0.0, 0.5, 1.0, 0.5],
        }
    )
    ranked = rank(table, {"room_to_improve": 3, "readiness": 1}, k=2)
    # scores: A 0.75, B 0.5, C 0.25, D 0.5 (B before D by id)
    assert ranked["microsystem_id"].tolist() == ["A", "B", "D", "C"]
    assert ranked["score"].tolist() == [0.75, 0.5, 0.5, 0.25]
    assert ranked["selected"].tolist() == [True, True, False, False]
    capped = rank(table, {"room_to_improve": 3, "readiness": 1}, k=2, max_per_site=1)
    assert capped.loc[capped["selected"], "microsystem_id"].tolist() == ["A", "D"]
    assert "site x already has 1 pilot" in capped.set_index("microsystem_id").loc["B", "rationale"]


def test_rank_rejects_bad_weights(scored):
    with pytest.raises(ConfigError, match="time_to_detect"):
        rank(scored("pc_hba1c_tested"), {"volume": 1.0})
    with pytest.raises(ConfigError, match="more than 0"):
        rank(scored("pc_hba1c_tested"), {"readiness": 0.0})


def test_sensitivity(scored):
    table = scored("pc_hba1c_tested")
    still = sensitivity(table, WEIGHTS, spread=0.0, draws=20, k=K)
    assert (still["share_selected"] == still["selected"].astype(float)).all()
    sens = sensitivity(table, WEIGHTS, spread=0.5, draws=300, seed=1, k=K)
    assert sens["share_selected"].between(0, 1).all()
    assert sens["share_selected"].sum() == pytest.approx(K)  # k picks in every draw
    top = sens.set_index("microsystem_id")
    assert top.loc["NOR-PC1", "share_selected"] >= 0.9
    assert top.loc["HIL-PC2", "share_selected"] <= 0.1
    pd.testing.assert_frame_equal(sens, sensitivity(table, WEIGHTS, spread=0.5, draws=300, seed=1))


def test_representativeness_by_hand():
    registry = pd.DataFrame({"microsystem_id": ["a", "b", "c", "z"], "kind": ["k"] * 3 + ["w"]})
    profiles = pd.DataFrame(
        {
            "microsystem_id": ["a", "b", "c", "z"],
            "role: x": [1.0, 1.0, 0.0, 1.0],
            "role: y": [0.0, 0.0, 1.0, 0.0],
        }
    )
    rep = representativeness(profiles, registry).set_index("microsystem_id")
    # a's peers b and c average to (0.5, 0.5): cosine with (1, 0) is 1/sqrt(2)
    assert rep.loc["a", "similarity"] == pytest.approx(1 / np.sqrt(2))
    assert rep.loc["c", "similarity"] == pytest.approx(0.0)
    assert rep.loc["c", "similarity"] < rep.loc["a", "similarity"]
    assert np.isnan(rep.loc["z", "similarity"]) and rep.loc["z", "peers"] == 0
    # the same profiles in the long form workbook 01 writes (profiles.parquet)
    long = profiles.melt("microsystem_id", var_name="category", value_name="share")
    long["dimension"] = "role"
    long["category"] = long["category"].str.removeprefix("role: ")
    again = representativeness(long, registry).set_index("microsystem_id")
    np.testing.assert_allclose(again["similarity"], rep["similarity"])


def test_mix_profiles_are_shares(demo):
    prof = demo["profiles"].set_index("microsystem_id")
    for block in ("role", "activity"):
        cols = [c for c in prof.columns if c.startswith(block + ":")]
        np.testing.assert_allclose(prof[cols].sum(axis=1), 1.0)
    # the low-volume team has no healthcare assistant (planted role mix)
    assert prof.loc["HIL-PC3", "role: healthcare assistant"] == 0


def test_figures_and_explorer(scored, demo):
    table = scored("pc_hba1c_tested")
    ranked = rank(table, WEIGHTS, k=K)
    heat = plot_criteria_heatmap(ranked)
    assert isinstance(heat, Figure)
    charts = baseline_charts(
        demo["series"], ranked, measure_id="pc_hba1c_tested", measures=demo["measures"], top=4,
        baseline_periods=OPTIONS["baseline_periods"], as_of=OPTIONS["as_of"],
    )  # fmt: skip
    assert list(dict.fromkeys(charts["facet1"])) == ranked["microsystem_id"].head(4).tolist()
    assert charts.groupby("facet1", observed=True).size().max() <= OPTIONS["baseline_periods"]
    fig = plot_pilot_baselines(charts)
    assert len(fig.axes) == 4
    batch = pilot_explorer(table, WEIGHTS, k=K, interactive=False)
    pd.testing.assert_frame_equal(batch, shortlist(ranked))
    box = pilot_explorer(table, WEIGHTS, k=K, interactive=True)
    assert set(box.controls) == {*CRITERIA, "k"}
    assert box.controls["readiness"].value == WEIGHTS["readiness"]
    box.controls["k"].value = 1  # moving a slider re-ranks without error


def test_unknown_measure_is_explained(demo):
    with pytest.raises(QIError, match="not in the measure catalogue"):
        criteria(demo["registry"], demo["series"], demo["readiness"], measure_id="nope",
                 measures=demo["measures"])  # fmt: skip


# ---- Summary first (issue 20): one card per chosen pilot ----------------------------------------


def test_pilot_cards_on_the_demo_show_the_planted_pilot_first_among_k(scored, demo):
    # The demo plants NOR-PC1 as the pilot of the recall register (pc_hba1c_tested, the measure
    # of the committed parameters), with a baseline of common-cause variation only.
    eff = demo["effects"]
    planted = eff.loc[
        (eff["planted_as"] == "pilot") & (eff["measure_id"] == SETTINGS["measure_id"]),
        "microsystem_id",
    ].tolist()
    assert planted == ["NOR-PC1"]
    ranked = rank(scored(SETTINGS["measure_id"]), WEIGHTS, k=K)
    cards = pilot_cards(ranked, WEIGHTS)
    table = cards.table
    assert len(table) == K and table["pick"].tolist() == list(range(1, K + 1))
    chosen = ranked.loc[ranked["selected"], "microsystem_id"].tolist()
    assert set(table["microsystem_id"]) == set(chosen)
    row = table.set_index("microsystem_id").loc["NOR-PC1"]
    assert row["baseline"] == "stable baseline"
    assert row["kind"] == "primary care" and row["site"]
    assert row["readiness"].startswith("mean ") and " of 3 " in row["readiness"]
    assert "to gain" in row["room_to_improve"] or "already there" in row["room_to_improve"]
    page = clean_html(cards._repr_html_())  # what the page keeps of it
    assert page.count('class="qi-summary-card"') == K
    assert f"Pick {row['pick']} of {K}" in page and "(NOR-PC1)" in page


def test_pilot_summary_by_hand():
    weights = {
        "room_to_improve": 0.25,
        "stable_baseline": 0.2,
        "time_to_detect": 0.2,
        "readiness": 0.25,
        "representativeness": 0.1,
    }
    table = pd.DataFrame(
        {
            "microsystem_id": ["A", "B"],
            "name": ["Alpha team", "Beta team"],
            "kind": ["primary_care"] * 2,
            "site": ["North"] * 2,
            "room_to_improve": [0.8, 0.1],
            "stable_baseline": [1.0, 0.5],
            "time_to_detect": [0.5, 0.5],
            "readiness": [0.6, 0.2],
            "representativeness": [0.2, 0.9],
            "representativeness_why": ["least alike in its patients", "close to its peers"],
            "readiness_why": ["mean 2.20 of 3", "mean 1.40 of 3"],
            "room_to_improve_why": ["16 points to gain", "2 points to gain"],
            "too_few_respondents": [False, True],
        }
    )
    ranked = rank(table, weights, k=2)
    summary = pilot_summary(ranked, weights).set_index("microsystem_id")
    # A: weighted parts 0.25*0.8 = 0.20, 0.2*1 = 0.20, 0.2*0.5 = 0.10, 0.25*0.6 = 0.15,
    # 0.1*0.2 = 0.02; score 0.67; the three largest, ties in the order of the criteria.
    assert summary.loc["A", "score"] == pytest.approx(0.67)
    assert summary.loc["A", "score_parts"] == (
        "room to improve 0.20, stable baseline 0.20, team readiness 0.15"
    )
    assert summary.loc["A", "watch"] == "representativeness (0.20): least alike in its patients"
    assert summary.loc["A", "baseline"] == "stable baseline" and summary.loc["A", "survey"] == ""
    # B: 0.025 + 0.1 + 0.1 + 0.05 + 0.09 = 0.365; weak on room (0.10) and readiness (0.20)
    assert summary.loc["B", "score"] == pytest.approx(0.365)
    assert summary.loc["B", "watch"] == (
        "room to improve (0.10), team readiness (0.20): 2 points to gain"
    )
    assert summary.loc["B", "baseline"] == "one point to explain"
    assert summary.loc["B", "survey"] == "few survey answers"
    assert summary["pick"].tolist() == [1, 2] and summary.loc["A", "kind"] == "primary care"
    with pytest.raises(QIError, match="selected"):
        pilot_summary(table, weights)  # not ranked: the error names the missing columns
