"""Identification of microsystems against the demo's planted teams and a hand-built fixture."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qi_helpers.errors import DataError
from qi_helpers.microsystems import adjusted_rand_index, identify, main_microsystem

KIND_BY_ACTIVITY = {"visit": "primary_care"}


@pytest.fixture(scope="module")
def identified(demo_tables):
    import yaml
    from conftest import ROOT

    config = yaml.safe_load((ROOT / "parameters" / "project.yaml").read_text(encoding="utf-8"))
    return identify(demo_tables["activities"], demo_tables["staff"], **config["identify"])


def test_planted_teams_are_recovered(identified, demo_tables):
    truth = demo_tables["truth_membership"]
    planted = truth[truth["main"]].set_index("staff_id")["microsystem_id"]
    found = main_microsystem(identified.staff)
    assert adjusted_rand_index(found, planted) >= 0.9


def test_clusters_take_the_declared_unit_codes(identified, demo_tables):
    planted = set(demo_tables["truth_microsystems"]["microsystem_id"])
    assert set(identified.registry["microsystem_id"]) == planted


def test_kinds_and_sites_are_recognised(identified, demo_tables):
    truth = demo_tables["truth_microsystems"].set_index("microsystem_id")
    registry = identified.registry.set_index("microsystem_id")
    assert (registry["kind"] == truth.loc[registry.index, "kind"]).all()
    on_site = truth["site"] != "Organisation"
    assert (registry.loc[on_site[on_site].index, "site"] == truth.loc[on_site, "site"]).all()


def test_low_volume_team_is_flagged_not_measurable(identified, demo_tables):
    truth = demo_tables["truth_microsystems"]
    low = truth.loc[truth["low_volume"], "microsystem_id"].tolist()
    registry = identified.registry.set_index("microsystem_id")
    assert low and not registry.loc[low, "measurable"].any()
    assert registry.drop(index=low)["measurable"].all()


def test_same_seed_same_result(demo_tables):
    acts = demo_tables["activities"]
    a = identify(acts, demo_tables["staff"], seed=3)
    b = identify(acts, demo_tables["staff"], seed=3)
    pd.testing.assert_frame_equal(a.registry, b.registry)
    pd.testing.assert_frame_equal(a.staff, b.staff)


def test_no_patient_in_the_registry(identified, demo_tables):
    text = identified.registry.to_csv()
    assert not any(p in text for p in demo_tables["patients"]["patient_id"].head(500))


def _team(prefix: str, n_staff: int, n_patients: int, visits: int, rng) -> pd.DataFrame:
    staff = [f"{prefix}-S{i}" for i in range(n_staff)]
    patients = [f"{prefix}-P{i}" for i in range(n_patients)]
    rows = {
        "staff_id": rng.choice(staff, visits),
        "patient_id": rng.choice(patients, visits),
        "timestamp": pd.Timestamp("2024-01-01")
        + pd.to_timedelta(rng.integers(0, 364, visits), "D"),
    }
    return pd.DataFrame(rows).assign(activity="visit", location=f"{prefix} clinic")


def test_a_team_too_small_to_measure_is_merged_and_reported():
    rng = np.random.default_rng(0)
    big = _team("A", 6, 120, 6000, rng)
    other = _team("B", 6, 120, 6000, rng)
    tiny = _team("C", 2, 15, 200, rng)  # about 4 activities a week
    # the tiny team's patients are also seen by team A: their strongest tie
    shared = tiny[tiny["patient_id"].isin([f"C-P{i}" for i in range(8)])].assign(staff_id="A-S0")
    acts = pd.concat([big, other, tiny, shared], ignore_index=True)
    result = identify(
        acts, min_shared_patients=6, min_weekly_volume=20, kind_by_activity=KIND_BY_ACTIVITY
    )
    assert len(result.merges) == 1
    merge = result.merges.iloc[0]
    assert "below the minimum of 20" in merge["reason"]
    members = main_microsystem(result.staff)
    assert members["C-S0"] == members["A-S0"] == merge["merged_into"]
    assert members["B-S0"] != members["A-S0"]


def test_rows_without_identifiers_are_counted():
    rng = np.random.default_rng(1)
    acts = _team("A", 4, 50, 2000, rng)
    acts.loc[:9, "patient_id"] = None
    result = identify(acts, min_weekly_volume=1)
    assert any("10 activity rows" in note for note in result.notes)


def test_empty_window_is_a_clear_error():
    acts = _team("A", 4, 50, 200, np.random.default_rng(2))
    with pytest.raises(DataError, match="widen the window"):
        identify(acts, start="2030-01-01")


def test_adjusted_rand_index_reference_values():
    a = pd.Series([0, 0, 1, 1])
    assert adjusted_rand_index(a, pd.Series([5, 5, 7, 7])) == 1.0
    # Hubert & Arabie's index for this pair is -0.5 (e.g. sklearn.metrics.adjusted_rand_score)
    assert adjusted_rand_index(pd.Series([0, 0, 1, 1]), pd.Series([0, 1, 0, 1])) == pytest.approx(
        -0.5
    )
