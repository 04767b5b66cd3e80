"""The variety a DemoMix plants on top of the demo: service teams, cross-cover, bank, students."""

from __future__ import annotations

import pandas as pd
import pytest

from qi_helpers import ConfigError
from qi_helpers.demo import SERVICE_TEAMS, DemoMix, make_demo

MIX = DemoMix(services=tuple(SERVICE_TEAMS), cross_cover=0.3, bank_staff=2, students=2)


@pytest.fixture(scope="module")
def varied():
    return make_demo("small", 5, mix=MIX)


def test_default_tables_are_untouched_by_an_empty_mix(demo_tables):
    plain = make_demo("small", 0, mix=DemoMix())
    for name in ("activities", "staff", "truth_microsystems", "measure_events", "pdsa"):
        pd.testing.assert_frame_equal(
            plain[name].reset_index(drop=True), demo_tables[name].reset_index(drop=True)
        )
    truth = plain["truth_membership"]
    assert set(truth["staff_type"]) == {"core", "floater"}
    assert (truth["floater"] == (truth["staff_type"] == "floater")).all()


def test_service_teams_work_in_their_own_area_for_the_patients_of_many_teams(varied):
    truth = varied["truth_microsystems"].set_index("microsystem_id")
    acts = varied["activities"]
    team_of_area = truth.reset_index().set_index("locations")["microsystem_id"]
    counts = acts.assign(team=acts["location"].map(team_of_area)).value_counts(
        ["patient_id", "team"]
    )
    main_team = counts.reset_index().drop_duplicates("patient_id").set_index("patient_id")["team"]
    kinds = {"pharmacy": 3, "imaging": 3, "phlebotomy": 3, "call_centre": 3}
    services = truth[truth.index.str.contains("-PHA|-IMG|-PHL|-PCC")]
    assert len(services) == 3 * 3 + 1
    for _, row in services.iterrows():
        assert row["kind"] in kinds
        done = acts[acts["location"] == row["locations"]]
        # their own kinds of activity, which no team of another kind does
        other_kind = truth.loc[truth["kind"] != row["kind"], "locations"]
        elsewhere = acts.loc[acts["location"].isin(other_kind), "activity"]
        assert not set(done["activity"]) & set(elsewhere)
        # the patients of several teams
        assert main_team[done["patient_id"].unique()].nunique() >= kinds[row["kind"]]
    members = varied["truth_membership"]
    service_staff = members[members["staff_type"] == "service"]
    assert (service_staff["share"] == 1.0).all()
    assert set(service_staff["microsystem_id"]) == set(services.index)


def test_bank_staff_students_and_cross_cover_are_what_the_truth_says(varied):
    members = varied["truth_membership"]
    main = members[members["main"]].set_index("staff_id")
    staff = varied["staff"].set_index("staff_id")
    acts = varied["activities"]
    bank = main.index[main["staff_type"] == "bank"]
    assert len(bank) == 2 * 3
    days = (
        acts[acts["staff_id"].isin(bank)]
        .groupby("staff_id")["timestamp"]
        .agg(lambda t: t.dt.normalize().nunique())
    )
    assert days.between(1, 8).all()
    assert staff.loc[bank, "home_unit"].isna().all()
    students = main.index[main["staff_type"] == "student"]
    assert len(students) == 2 * 3 and (staff.loc[students, "role"] == "student").all()
    weeks = (
        acts[acts["staff_id"].isin(students)]
        .groupby("staff_id")["timestamp"]
        .agg(lambda t: (t.max() - t.min()).days)
    )
    assert (weeks < 70).all()
    cover = main[main["staff_type"] == "cross_cover"]
    assert len(cover) and cover["share"].between(0.7, 0.9).all()
    assert (members[members["staff_id"].isin(cover.index)].groupby("staff_id").size() == 2).all()


def test_same_seed_same_variety(varied):
    again = make_demo("small", 5, mix=MIX)
    for name in ("activities", "staff", "truth_membership", "truth_microsystems"):
        pd.testing.assert_frame_equal(again[name], varied[name])


@pytest.mark.parametrize(
    "mix, message",
    [
        (DemoMix(services=("bakery",)), "unknown service team"),
        (DemoMix(cross_cover=1.5), "cross_cover"),
        (DemoMix(bank_staff=-1), "bank_staff"),
        (DemoMix(students=1.5), "students"),
    ],
)
def test_a_bad_mix_is_a_clear_error(mix, message):
    with pytest.raises(ConfigError, match=message):
        make_demo("small", 0, mix=mix)
