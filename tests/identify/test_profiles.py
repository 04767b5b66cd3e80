"""The 5 Ps profiles against the demo's planted structure, their safety and their drawing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from qi_helpers.errors import DataError
from qi_helpers.identify.profiles import mix_matrix, profile, write_profiles


def _summary(profiles) -> pd.DataFrame:
    return profiles.summary.set_index("microsystem_id")


def test_one_profile_per_registry_row(profiles, identified):
    assert list(profiles.summary["microsystem_id"]) == list(identified.registry["microsystem_id"])


def test_role_mix_of_each_planted_team(profiles, demo_tables):
    truth = demo_tables["truth_membership"]
    planted = truth[truth["main"]].groupby(["microsystem_id", "role"]).size()
    roles = profiles.mix[profiles.mix["dimension"] == "role"]
    found = roles.set_index(["microsystem_id", "category"])["n"]
    pd.testing.assert_series_equal(
        found.sort_index().astype(int),
        planted.sort_index().astype(int),
        check_names=False,
        check_index_type=False,
    )
    ward = roles[roles["microsystem_id"] == "NOR-W1"].set_index("category")["n"]
    assert ward["staff nurse"] >= 5 and ward["doctor"] == 2 and ward["pharmacist"] == 1


def test_panel_sizes_follow_the_planted_panels(profiles, demo_tables):
    truth = demo_tables["truth_microsystems"].set_index("microsystem_id")
    pc = truth.index[truth["kind"] == "primary_care"]
    found = _summary(profiles).loc[pc, "panel_size"]
    ratio = found / truth.loc[pc, "panel_size"]
    # a registered panel includes people not seen in two years: most, not all, are seen
    assert ratio.between(0.6, 1.05).all()
    assert found.rank().corr(truth.loc[pc, "panel_size"].rank()) > 0.9


def test_ward_patients_are_older_than_primary_care_panels(profiles):
    summary = _summary(profiles)
    older = summary.groupby("kind")["share_65_plus"].median()
    assert older["inpatient_ward"] > 0.5 > 0.35 > older["primary_care"]
    assert summary["share_female"].between(0.4, 0.6).all()
    assert summary["leading_conditions"].str.contains("hypertension").all()


def test_day_of_week_pattern_is_the_planted_one(profiles):
    summary = _summary(profiles)
    # primary care and call centres are closed at weekends; wards work seven days
    closed = summary["kind"].isin(["primary_care", "call_centre"])
    assert (summary.loc[closed, "weekend_share"] == 0).all()
    wards = summary.loc[summary["kind"] == "inpatient_ward", "weekend_share"]
    assert wards.between(0.24, 0.31).all()  # planted 1.9 / 6.95 = 0.27
    assert (summary.loc[closed, "busiest_day"] == "Mon").all()


def test_processes_are_the_planted_pathways(profiles):
    steps = profiles.processes
    lab = steps[steps["microsystem_id"] == "NOR-LAB"].head(2)
    assert set(zip(lab["from_activity"], lab["to_activity"], strict=True)) == {
        ("specimen received", "analysis"),
        ("analysis", "result reported"),
    }
    pc = steps[steps["microsystem_id"] == "NOR-PC1"].iloc[0]
    assert (pc["from_activity"], pc["to_activity"]) == ("booking", "consultation")
    assert (steps["median_minutes"] >= 0).all()
    assert np.allclose(steps.groupby("microsystem_id")["share"].sum(), 1.0)


def test_weekly_run_chart_counts_every_activity_in_the_work_areas(
    profiles, identified, demo_tables
):
    acts = demo_tables["activities"]
    owner = identified.locations.set_index("location")["microsystem_id"]
    expected = acts["location"].map(owner).value_counts().sort_index()
    weekly = profiles.weekly.groupby("facet1")["y"].sum().sort_index()
    pd.testing.assert_series_equal(weekly.astype(int), expected.astype(int), check_names=False)
    assert profiles.weekly.attrs["qic"]["chart"] == "run"
    # 104 complete weeks of demo data
    assert (profiles.weekly.groupby("facet1").size() == 104).all()


def test_no_patient_identifier_anywhere_in_the_profiles(profiles, demo_tables):
    ids = set(demo_tables["patients"]["patient_id"])
    for frame in (profiles.summary, profiles.mix, profiles.processes, profiles.weekly):
        assert "patient_id" not in frame.columns
        for column in frame.columns:
            if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
                assert not ids & set(frame[column].dropna().astype(str))
    encounter = demo_tables["activities"]["encounter_id"].iloc[0]
    assert encounter not in profiles.summary.to_csv()


def test_mix_matrix_gives_shares_for_similarity(profiles):
    roles = mix_matrix(profiles.mix, "role")
    assert np.allclose(roles.sum(axis=1), 1.0)
    activities = mix_matrix(profiles.mix, "activity")
    assert activities.loc["NOR-LAB", "analysis"] > 0.25
    with pytest.raises(DataError, match="unknown dimension"):
        mix_matrix(profiles.mix, "colour")


def test_profiles_are_written_for_workbook_04(profiles, tmp_path):
    paths = write_profiles(profiles, tmp_path)
    assert [p.name for p in paths] == ["profiles.parquet", "profile_summary.parquet"]
    mix = pd.read_parquet(tmp_path / "profiles.parquet")
    assert list(mix.columns) == ["microsystem_id", "p", "dimension", "category", "n", "share"]
    assert {"activity", "role", "age_band", "sex", "condition"} <= set(mix["dimension"])


def test_without_the_patients_table_only_the_panel_is_known(identified, demo_tables):
    result = profile(identified, demo_tables["activities"], demo_tables["staff"])
    assert result.summary["panel_size"].gt(0).all()
    assert result.summary["share_65_plus"].isna().all()
    assert "age_band" not in set(result.mix["dimension"])


def test_profile_card_draws_the_weekly_run_chart(profiles):
    from qi_helpers.identify.figures import plot_profile_card

    fig = plot_profile_card(profiles, "NOR-W1")
    assert isinstance(fig, Figure)
    lines = [line for ax in fig.axes for line in ax.get_lines() if line.get_gid() == "y"]
    assert len(lines) == 1
    chart = profiles.weekly[profiles.weekly["facet1"] == "NOR-W1"]
    assert np.allclose(lines[0].get_ydata(), chart["y"].to_numpy())
    with pytest.raises(DataError, match="no profile"):
        plot_profile_card(profiles, "NOPE")


def test_identify_explorer_reclusters_when_a_slider_moves(demo_tables):
    from qi_helpers.widgets.identify import identify_explorer

    acts, staff = demo_tables["activities"], demo_tables["staff"]
    static = identify_explorer(acts, staff, min_weekly_volume=20, interactive=False)
    assert isinstance(static.items[1], Figure)
    assert len(static.items[2]) == len(demo_tables["truth_microsystems"])
    box = identify_explorer(acts, staff, min_weekly_volume=20, interactive=True)
    assert set(box.controls) == {"min_shared_patients", "resolution", "min_weekly_volume"}
    box.controls["min_weekly_volume"].value = 0.0
    assert box.controls["min_weekly_volume"].value == 0.0


def test_published_summary_hides_small_patient_numbers(profiles):
    from qi_helpers.identify.published import published_summary

    raw = profiles.summary.set_index("microsystem_id")
    # the demo's panels are large: at the default threshold nothing is hidden
    same = published_summary(profiles).set_index("microsystem_id")
    assert (same["panel_size"] == raw["panel_size"]).all()
    assert same["purpose"].equals(raw["purpose"])
    # a threshold above the median panel hides the smaller panels, their shares and conditions
    panels = raw.loc[raw["panel_size"] > 0, "panel_size"]
    threshold = int(panels.median()) + 1
    shown = published_summary(profiles, threshold).set_index("microsystem_id")
    label = f"<{threshold}"
    for ms, size in panels.items():
        row = shown.loc[ms]
        if size < threshold:
            assert row["panel_size"] == label
            assert pd.isna(row["share_female"]) and pd.isna(row["share_65_plus"])
            assert f"{size:,}" not in row["purpose"] and label in row["purpose"]
            assert row["leading_conditions"].count(f"({label})") == len(
                row["leading_conditions"].split(", ")
            )
        else:
            assert row["panel_size"] == size
    assert (shown["panel_size"] == label).sum() == (panels < threshold).sum() > 0
    # a microsystem without a panel (a laboratory) keeps 0: nothing to protect
    assert (shown.loc[raw["panel_size"] == 0, "panel_size"] == 0).all()
    with pytest.raises(DataError, match="threshold"):
        published_summary(profiles, 0)
