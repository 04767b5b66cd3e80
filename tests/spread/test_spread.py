"""Spread planning (workbook 04) on the small demo's planted truth and on hand computations.

Workbook 03's verdicts are taken as the planted truth says they should be (``expected_verdict``)
so that these tests check the spread decisions, not the analysis of tests of change.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from qi_helpers.errors import ConfigError, DataError
from qi_helpers.identify.mix import mix_profiles
from qi_helpers.pilots.readiness import readiness_by_microsystem
from qi_helpers.spread import (
    FRAMEWORK_COMPONENTS,
    all_candidates,
    candidates,
    export_plan,
    framework_checklist,
    held_back,
    measure_levels,
    plan,
    similarity,
    successful_changes,
)
from qi_helpers.spread.profiles import SPREAD_MIXES

SPREADING = {
    "Carve-out scheduling",
    "Diabetes recall register with text reminders",
    "Intentional rounding",
    "Lean specimen reception",
}
VERDICT = {"improved": "improved", "worsened": "worsened", "no_change": "no signal yet"}


def truth_membership(tables) -> dict[str, pd.DataFrame]:
    """Workbook 01's membership as the demo planted it (staff, locations; patients by use)."""
    ms = tables["truth_microsystems"]
    locations = ms[["locations", "microsystem_id"]].rename(columns={"locations": "location"})
    locations = locations.assign(share=1.0)
    staff = tables["truth_membership"][["staff_id", "microsystem_id", "share"]]
    acts = tables["activities"][["patient_id", "location"]].merge(locations, on="location")
    counts = acts.groupby(["patient_id", "microsystem_id"]).size().rename("n").reset_index()
    counts["share"] = counts["n"] / counts.groupby("patient_id")["n"].transform("sum")
    patients = counts[["patient_id", "microsystem_id", "share"]]
    return {"staff": staff, "locations": locations, "patients": patients}


def truth_results(tables) -> pd.DataFrame:
    """The verdicts workbook 03 should reach, one row per planted effect."""
    effects = tables["truth_effects"]
    effects = effects[effects["change"].fillna("") != ""]
    measures = tables["measures"].set_index("measure_id")
    rows = []
    for e in effects.itertuples():
        factor = float(measures.loc[e.measure_id, "multiply"])
        rows.append(
            dict(
                microsystem_id=e.microsystem_id,
                measure_id=e.measure_id,
                name=measures.loc[e.measure_id, "name"],
                family=measures.loc[e.measure_id, "family"],
                change=e.change,
                start=pd.Timestamp(e.start),
                verdict=VERDICT[e.expected_verdict],
                baseline_mean=e.baseline * factor,
                after_mean=e.expected * factor,
                last_period=pd.Timestamp("2025-12-22"),
                reason="planted",
            )
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def spread_inputs(demo_tables):
    from qi_helpers.changes import assign_microsystems, measure_series

    membership = truth_membership(demo_tables)
    registry = demo_tables["truth_microsystems"][["microsystem_id", "name", "kind", "site"]]
    results = truth_results(demo_tables)
    readiness = readiness_by_microsystem(demo_tables["readiness"], membership["staff"])
    profiles = mix_profiles(
        demo_tables["staff"],
        membership,
        demo_tables["activities"],
        demo_tables["patients"],
        style=SPREAD_MIXES,
    )
    cases = assign_microsystems(
        demo_tables["measure_events"], {"locations": membership["locations"]}
    )
    series = measure_series(cases, demo_tables["measures"], demo_tables["observations"])
    levels = measure_levels(series, demo_tables["measures"])
    return dict(
        registry=registry,
        results=results,
        readiness=readiness,
        profiles=profiles,
        levels=levels,
        measures=demo_tables["measures"],
    )


@pytest.fixture(scope="module")
def demo_candidates(spread_inputs):
    s = spread_inputs
    return all_candidates(
        s["registry"],
        s["profiles"],
        s["results"],
        s["readiness"],
        levels=s["levels"],
        measures=s["measures"],
    )


def test_successful_changes_get_a_plan_failed_and_harmful_do_not(spread_inputs, demo_candidates):
    results = spread_inputs["results"]
    assert set(successful_changes(results)["change"]) == SPREADING
    spread_plan = plan(demo_candidates, waves=3, start="2026-01-05")
    assert set(spread_plan["change"]) == SPREADING
    assert "Call-back scripting" not in set(spread_plan["change"])
    assert "Criteria-led discharge" not in set(spread_plan["change"])
    harmful = held_back(results)
    assert set(harmful["change"]) == {"Criteria-led discharge"}
    assert set(harmful["measure_id"]) == {"ward_readmit30"}


def test_candidates_are_the_other_teams_of_the_pilots_kind(spread_inputs, demo_candidates):
    truth = spread_inputs["registry"].set_index("microsystem_id")
    results = spread_inputs["results"]
    for change, own in demo_candidates.groupby("change"):
        tested = set(results.loc[results["change"] == change, "microsystem_id"])
        pilot_kind = set(truth.loc[list(tested), "kind"])
        same_kind = set(truth.index[truth["kind"].isin(pilot_kind)])
        assert set(own["microsystem_id"]) == same_kind - tested, change
        assert own["reason"].str.len().gt(0).all()


def test_low_readiness_team_is_in_the_last_wave(demo_tables, demo_candidates):
    low = demo_tables["truth_microsystems"].query("low_readiness")["microsystem_id"].item()
    spread_plan = plan(demo_candidates, waves=3, start="2026-01-05")
    for change in ("Carve-out scheduling", "Diabetes recall register with text reminders"):
        own = spread_plan[spread_plan["change"] == change]
        row = own[own["microsystem_id"] == low]
        assert row["wave"].item() == own["wave"].max(), change
        assert row["adopter_category"].item() == "late majority"


def test_teams_of_the_same_kind_are_more_alike(spread_inputs):
    sims = similarity(spread_inputs["profiles"], ["NOR-PC1"]).set_index("microsystem_id")
    kind = spread_inputs["registry"].set_index("microsystem_id")["kind"]
    pc = sims.loc[kind[kind == "primary_care"].index.drop("NOR-PC1"), "similarity"]
    other = sims.loc[kind[kind != "primary_care"].index, "similarity"]
    assert pc.min() > other.max()
    assert sims.loc["NOR-PC1", "similarity"] == pytest.approx(1.0)


def test_similarity_is_the_overlap_of_the_mixes():
    profiles = pd.DataFrame(
        {
            "microsystem_id": ["A", "B", "C"],
            "role:nurse": [0.5, 1.0, 0.0],
            "role:doctor": [0.5, 0.0, 1.0],
            "activity:visit": [1.0, 1.0, 1.0],
        }
    )
    sims = similarity(profiles, ["A"]).set_index("microsystem_id")
    # Overlap of (0.5, 0.5) and (1, 0) is min(0.5, 1) + min(0.5, 0) = 0.5.
    assert sims.loc["B", "similarity_role"] == pytest.approx(0.5)
    assert sims.loc["C", "similarity_activity"] == pytest.approx(1.0)
    assert sims.loc["B", "similarity"] == pytest.approx(0.75)


def test_projected_impact_closes_the_pilots_share_of_the_gap():
    registry = pd.DataFrame(
        {
            "microsystem_id": ["P", "X", "Y"],
            "name": ["p", "x", "y"],
            "kind": ["pc"] * 3,
            "site": ["s"] * 3,
        }
    )
    results = pd.DataFrame(
        {
            "microsystem_id": ["P"],
            "measure_id": ["m"],
            "name": ["Tested"],
            "change": ["c"],
            "verdict": ["improved"],
            "baseline_mean": [60.0],
            "after_mean": [75.0],
        }
    )
    measures = pd.DataFrame(
        {
            "measure_id": ["m"],
            "name": ["Tested"],
            "family": ["process"],
            "chart": ["p"],
            "improvement": ["up"],
            "target": [80.0],
            "multiply": [100],
            "unit": ["%"],
        }
    )
    levels = pd.DataFrame(
        {
            "microsystem_id": ["X", "Y"],
            "measure_id": ["m", "m"],
            "level": [70.0, 85.0],
            "weekly_volume": [20.0, 20.0],
            "n_periods": [26, 26],
        }  # fmt: skip
    )
    readiness = pd.DataFrame(
        {
            "microsystem_id": ["X", "Y"],
            "readiness": [2.0, 2.0],
            "readiness_score": [0.5, 0.5],
            "respondents": [5, 5],
        }  # fmt: skip
    )
    table = candidates(
        registry, None, results, readiness, change="c", levels=levels, measures=measures
    ).set_index("microsystem_id")
    # The pilot closed 15 of its 20 points to target (75%); X has 10 to go: +7.5 points.
    assert table.loc["X", "projected_level"] == pytest.approx(77.5)
    # 7.5 points of 20 cases a week: 1.5 more cases a week reach the standard.
    assert table.loc["X", "projected_impact"] == pytest.approx(1.5)
    assert table.loc["Y", "projected_change"] == pytest.approx(0.0)
    assert "already at target" in table.loc["Y", "reason"]
    assert table.index[0] == "X"  # more to gain, same readiness: first


def test_waves_split_evenly_and_dates_follow_the_wave_length():
    table = pd.DataFrame({"change": ["c"] * 7, "microsystem_id": list("ABCDEFG")})
    by_waves = plan(table, waves=3, start="2026-01-05", wave_length_weeks=10)
    assert by_waves.groupby("wave").size().tolist() == [3, 2, 2]
    assert by_waves["microsystem_id"].tolist() == list("ABCDEFG")  # order kept
    starts = sorted(by_waves["wave_start"].unique())
    assert [str(pd.Timestamp(d).date()) for d in starts] == [
        "2026-01-05",
        "2026-03-16",
        "2026-05-25",
    ]
    by_size = plan(table, wave_size=2, start="2026-01-05")
    assert by_size.groupby("wave").size().tolist() == [2, 2, 2, 1]
    with pytest.raises(ConfigError, match="waves"):
        plan(table, waves=0, start="2026-01-05")
    with pytest.raises(ConfigError, match="ISO date"):
        plan(table, waves=2, start="next spring")


def test_same_inputs_give_the_same_plan(spread_inputs, demo_candidates):
    s = spread_inputs
    again = all_candidates(
        s["registry"],
        s["profiles"],
        s["results"],
        s["readiness"],
        levels=s["levels"],
        measures=s["measures"],
    )
    first = plan(demo_candidates, waves=3, start="2026-01-05")
    second = plan(again, waves=3, start="2026-01-05")
    pd.testing.assert_frame_equal(first, second)


def test_framework_checklist_shows_what_is_missing():
    table = framework_checklist(
        {
            "leadership": {"status": "done", "owner": "Director"},
            "set_up": {"status": "in progress", "owner": "QI lead"},
        }
    )
    assert table["component"].tolist() == list(FRAMEWORK_COMPONENTS)
    missing = table.set_index("component")["missing"]
    assert missing["leadership"] == ""
    assert missing["set_up"] == "in progress"
    assert missing["knowledge_management"] == "not started; no owner"
    with pytest.raises(ConfigError, match="unknown component"):
        framework_checklist({"leadrship": {"status": "done"}})
    with pytest.raises(ConfigError, match="status"):
        framework_checklist({"leadership": {"status": "finished"}})


def test_project_checklist_parameter_is_valid():
    from qi_helpers.project import load_yaml

    config = load_yaml(Path(__file__).resolve().parents[2] / "parameters" / "project.yaml")
    table = framework_checklist(config["spread"]["framework"])
    assert len(table) == 7
    assert (table["missing"] != "").any()  # the demo shows gaps to a coach


def test_export_is_formula_safe_and_has_no_patient_data(tmp_path, demo_tables, demo_candidates):
    table = demo_candidates.copy()
    table.loc[0, "name"] = '=HYPERLINK("http://x.example","click")'
    table.loc[1, "reason"] = "+1 more"
    spread_plan = plan(table, waves=2, start="2026-01-05")
    csv_path = export_plan(spread_plan, tmp_path / "plan.csv")
    text = csv_path.read_text(encoding="utf-8")
    assert "'=HYPERLINK" in text and "'+1 more" in text
    exported = pd.read_csv(csv_path, dtype=str)
    for column in exported:
        assert not exported[column].fillna("").str.match(r"^[=+\-@]").any(), column
    patient_ids = set(demo_tables["patients"]["patient_id"])
    assert not any(pid in text for pid in list(patient_ids)[:2000])
    xlsx = pd.read_excel(export_plan(spread_plan, tmp_path / "plan.xlsx"), dtype=str)
    assert len(xlsx) == len(spread_plan)
    assert xlsx["name"].str.startswith("'=").any()
    with pytest.raises(ConfigError, match="csv"):
        export_plan(spread_plan, tmp_path / "plan.pdf")


def test_explorer_replans_in_batch_and_builds_controls(demo_candidates):
    from matplotlib.figure import Figure

    from qi_helpers.widgets.spread import spread_explorer

    figure, table = spread_explorer(demo_candidates, start="2026-01-05", waves=2, interactive=False)
    assert isinstance(figure, Figure)
    assert table["wave"].max() == 2
    box = spread_explorer(demo_candidates, start="2026-01-05", waves=3, interactive=True)
    assert set(box.controls) == {"waves", "wave_size", "wave_length_weeks"}
    box.controls["wave_size"].value = 1  # re-plans without error


def test_workbook_01_long_profiles_compare_like_our_own():
    from qi_helpers.spread import wide_profiles

    long = pd.DataFrame(
        {
            "microsystem_id": ["A", "A", "B", "A", "B", "A", "B"],
            "dimension": ["role", "role", "role", "sex", "sex", "condition", "condition"],
            "category": ["GP", "nurse", "GP", "F", "M", "diabetes", "diabetes"],
            "share": [0.5, 0.5, 1.0, 1.0, 1.0, 0.1, 0.3],
        }
    )
    wide = wide_profiles(long).set_index("microsystem_id")
    assert set(wide.columns) == {"role:GP", "role:nurse", "patient:sex F", "patient:sex M"}
    sims = similarity(wide.reset_index(), ["A"]).set_index("microsystem_id")
    assert sims.loc["B", "similarity_role"] == pytest.approx(0.5)
    assert sims.loc["B", "similarity_patient"] == pytest.approx(0.0)


def test_a_results_table_without_its_columns_says_which_and_what_to_do():
    with pytest.raises(DataError) as caught:
        successful_changes(pd.DataFrame({"microsystem_id": ["A"], "change": ["x"]}))
    message = str(caught.value)
    assert message.startswith("results: missing column(s) measure_id, verdict; found ")
    assert "microsystem_id, change." in message and "Run the workbook that writes it" in message
