"""Identification of microsystems against the demo's planted teams and a hand-built fixture."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qi_helpers.errors import DataError
from qi_helpers.identify import (
    adjusted_rand_index,
    compare_to_declared,
    identify,
    main_microsystem,
)

KIND_BY_ACTIVITY = {"visit": "primary_care"}


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
    assert merge["action"] == "merge" and merge["n_staff"] == 2
    assert "below the minimum of 20" in merge["reason"]
    members = main_microsystem(result.staff)
    assert members["C-S0"] == members["A-S0"] == merge["result"]
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


# ---- refinement: the resolution limit of modularity -----------------------------------------
def _ring_of_teams(n_teams: int = 50, n_staff: int = 4, n_patients: int = 20, link: int = 8):
    """Teams on a ring: each shares ``link`` patients with the next (Fortunato & Barthelemy's
    ring of cliques, where modularity joins neighbouring teams)."""
    rows = []
    for t in range(n_teams):
        for s in range(n_staff):
            rows += [(f"T{t:02d}-S{s}", f"T{t:02d}-P{p:02d}", f"Room {t:02d}") for p in
                     range(n_patients)]  # fmt: skip
        rows += [(f"T{t:02d}-S0", f"T{(t + 1) % n_teams:02d}-P{p:02d}", f"Room {t:02d}")
                 for p in range(link)]  # fmt: skip
    acts = pd.DataFrame(rows, columns=["staff_id", "patient_id", "location"])
    rng = np.random.default_rng(0)
    hours = rng.integers(0, 364 * 24, len(acts))
    acts["timestamp"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(hours, "h")
    acts["activity"] = "visit"
    ids = pd.Series(acts["staff_id"].unique())
    return acts, pd.Series(ids.str[:3].to_numpy(), index=ids.to_numpy())


def test_refinement_recovers_teams_that_modularity_joins():
    acts, truth = _ring_of_teams()
    plain = identify(acts, min_weekly_volume=1, refine=False)
    refined = identify(acts, min_weekly_volume=1)
    # plain Louvain joins neighbouring teams: the resolution limit
    assert len(plain.registry) < 40
    assert adjusted_rand_index(main_microsystem(plain.staff), truth) < 0.8
    assert len(refined.registry) == 50
    assert adjusted_rand_index(main_microsystem(refined.staff), truth) == 1.0
    splits = refined.merges[refined.merges["action"] == "split"]
    assert len(splits) >= 1
    assert splits["reason"].str.contains("resolution limit").all()
    # every split names the microsystems its parts became
    assert splits["result"].str.count(";").ge(1).all()


def test_resolution_still_changes_the_clustering():
    acts, _ = _ring_of_teams()
    coarse = identify(acts, min_weekly_volume=1, resolution=0.2)
    fine = identify(acts, min_weekly_volume=1, resolution=1.0)
    assert len(coarse.registry) < len(fine.registry)


def test_a_well_knit_team_is_never_split():
    rng = np.random.default_rng(4)
    acts = pd.concat([_team(p, 8, 300, 4000, rng) for p in "ABCDEF"], ignore_index=True)
    result = identify(acts, min_weekly_volume=1, resolution=2.0)
    assert len(result.registry) == 6
    assert (result.merges["action"] != "split").all()


# ---- names and determinism -------------------------------------------------------------------
def test_ids_are_file_name_safe_and_unique(identified):
    ids = identified.registry["microsystem_id"]
    assert ids.is_unique
    assert ids.str.fullmatch(r"[A-Za-z0-9._-]+").all()


def test_same_seed_same_tables(demo_tables):
    acts, staff = demo_tables["activities"], demo_tables["staff"]
    a = identify(acts, staff, seed=5, min_weekly_volume=20)
    b = identify(acts, staff, seed=5, min_weekly_volume=20)
    for name in ("registry", "staff", "patients", "locations", "merges", "ties"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))


def test_floaters_have_a_row_per_team_main_first(identified, demo_tables):
    truth = demo_tables["truth_membership"]
    floaters = truth.loc[truth["floater"] & truth["main"], "staff_id"]
    rows = identified.staff[identified.staff["staff_id"].isin(floaters)]
    per_person = rows.groupby("staff_id").size()
    assert (per_person >= 2).mean() > 0.9
    main = main_microsystem(identified.staff)[floaters]
    planted = truth[truth["main"]].set_index("staff_id")["microsystem_id"][floaters]
    assert (main == planted).all()


def test_registry_lists_work_areas_and_linked_microsystems(identified, demo_tables):
    truth = demo_tables["truth_microsystems"].set_index("microsystem_id")
    registry = identified.registry.set_index("microsystem_id")
    assert (registry["locations"] == truth.loc[registry.index, "locations"]).all()
    # a ward admits some patients of its site's primary care teams: its links are on its site
    wards = registry[registry["kind"] == "inpatient_ward"]
    for ward, links in wards["linked_microsystems"].items():
        linked = [item.split(" (")[0] for item in links.split("; ")]
        assert linked and all(ms[:3] == ward[:3] for ms in linked), (ward, links)


def test_patient_shares_add_up_to_one(identified):
    totals = identified.patients.groupby("patient_id")["share"].sum()
    assert np.allclose(totals, 1.0)


# ---- bad input --------------------------------------------------------------------------------
def test_staff_missing_from_the_roster_are_listed():
    rng = np.random.default_rng(5)
    acts = _team("A", 4, 50, 2000, rng)
    roster = pd.DataFrame({"staff_id": ["A-S0", "A-S1"], "role": ["GP", "GP"]})
    result = identify(acts, roster, min_weekly_volume=1)
    note = next(n for n in result.notes if "not in the staff roster" in n)
    assert note.startswith("2 staff") and "A-S2" in note and "A-S3" in note


def test_blank_identifiers_are_dropped_too():
    acts = _team("A", 4, 50, 2000, np.random.default_rng(6))
    acts.loc[:4, "staff_id"] = ""
    result = identify(acts, min_weekly_volume=1)
    assert any(note.startswith("5 activity rows") for note in result.notes)
    assert "" not in set(result.staff["staff_id"])


def test_missing_column_is_named():
    acts = _team("A", 4, 50, 200, np.random.default_rng(7)).drop(columns="location")
    with pytest.raises(DataError, match="`location`"):
        identify(acts)


def test_timestamps_that_are_not_dates_are_located():
    acts = _team("A", 4, 50, 200, np.random.default_rng(8))
    acts["timestamp"] = acts["timestamp"].dt.strftime("%Y-%m-%d").astype(object)
    acts.loc[3, "timestamp"] = "yesterday"
    with pytest.raises(DataError, match="row 4"):
        identify(acts)


# ---- validation against the declared units -----------------------------------------------------
def test_normalised_mutual_information_hand_computed():
    from math import log, sqrt

    from qi_helpers.identify import normalised_mutual_information as nmi

    a, b = pd.Series([0, 0, 0, 1]), pd.Series(["x", "x", "y", "y"])
    # by hand: cells 2/4 (0,x), 1/4 (0,y), 1/4 (1,y); margins a (3/4, 1/4), b (1/2, 1/2)
    mutual = 0.5 * log(0.5 / (0.75 * 0.5)) + 0.25 * log(0.25 / (0.75 * 0.5))
    mutual += 0.25 * log(0.25 / (0.25 * 0.5))
    ha, hb = -(0.75 * log(0.75) + 0.25 * log(0.25)), log(2)
    assert nmi(a, b) == pytest.approx(mutual / ((ha + hb) / 2))
    # I = 0.215762, H(a) = 0.562335, H(b) = 0.693147 nats
    assert nmi(a, b) == pytest.approx(0.34371, abs=1e-5)
    assert nmi(a, b, average="geometric") == pytest.approx(mutual / sqrt(ha * hb))
    assert nmi(a, b, average="max") == pytest.approx(mutual / hb)
    # identical up to renaming: 1; independent: 0
    assert nmi(pd.Series([0, 0, 1, 1]), pd.Series([7, 7, 3, 3])) == pytest.approx(1.0)
    assert nmi(pd.Series([0, 0, 1, 1]), pd.Series([0, 1, 0, 1])) == pytest.approx(0.0)


@given(
    labels=st.lists(st.integers(0, 4), min_size=2, max_size=40),
    other=st.lists(st.integers(0, 4), min_size=2, max_size=40),
)
@settings(max_examples=60, deadline=None)
def test_nmi_is_symmetric_bounded_and_blind_to_names(labels, other):
    from qi_helpers.identify import normalised_mutual_information as nmi

    n = min(len(labels), len(other))
    a, b = pd.Series(labels[:n]), pd.Series(other[:n])
    value = nmi(a, b)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(nmi(b, a))
    assert nmi(a, a.map(lambda v: f"team {v}")) == pytest.approx(1.0)


def test_compare_to_declared_finds_the_planted_wrong_home_units(identified, demo_tables):
    truth = demo_tables["truth_membership"]
    wrong = set(truth.loc[truth["main"] & truth["home_unit_wrong"], "staff_id"])
    comparison = compare_to_declared(identified, demo_tables["staff"])
    assert set(comparison.differences["staff_id"]) == wrong
    scores = comparison.scores.iloc[0]
    assert scores["n_differ"] == len(wrong)
    assert scores["agreement"] == pytest.approx(1 - len(wrong) / scores["n_staff"])
    assert 0.5 < scores["adjusted_rand_index"] < 1 and 0.5 < scores["purity"] < 1
    assert 0.5 < scores["normalised_mutual_information"] < 1
    # a floater who declared their second team does much of their work there
    floaters = set(truth.loc[truth["floater"], "staff_id"])
    second = comparison.differences[comparison.differences["staff_id"].isin(floaters)]
    assert (second["declared_share"] > 0).any()
    # the table for reports carries no staff identifier
    assert "staff_id" not in comparison.by_unit.columns
    assert comparison.by_unit["n_staff"].sum() == len(wrong)


def test_compare_to_declared_needs_home_units(identified, demo_tables):
    with pytest.raises(DataError, match="home_unit"):
        compare_to_declared(identified, demo_tables["staff"].drop(columns="home_unit"))


@pytest.mark.slow
def test_planted_teams_are_recovered_on_the_medium_demo():
    import yaml
    from conftest import ROOT

    from qi_helpers.demo.health_system import make_demo

    tables = make_demo("medium", seed=0)
    config = yaml.safe_load((ROOT / "parameters" / "project.yaml").read_text(encoding="utf-8"))
    result = identify(tables["activities"], tables["staff"], **config["identify"])
    truth = tables["truth_membership"]
    planted = truth[truth["main"]].set_index("staff_id")["microsystem_id"]
    assert adjusted_rand_index(main_microsystem(result.staff), planted) >= 0.9
    assert set(result.registry["microsystem_id"]) == set(truth["microsystem_id"])


def test_the_published_registry_hides_small_patient_counts(identified):
    import re

    from qi_helpers.identify import published_registry

    registry = identified.registry
    counts = [int(n) for text in registry["linked_microsystems"] for n in
              re.findall(r"\((\d+) patients\)", text)]  # fmt: skip
    small = sum(0 < n < 11 for n in counts)
    assert small > 0, "the demo has neighbours sharing fewer than 11 patients"
    shown = published_registry(registry)
    text = " ".join(shown["linked_microsystems"])
    assert all(int(n) >= 11 for n in re.findall(r"\((\d+) patients\)", text))
    assert text.count("(<11 patients)") == small
    assert shown["microsystem_id"].equals(registry["microsystem_id"])
    # patients seen: hidden only when small (a threshold above the smallest shows it)
    least = int(registry["n_patients"].min())
    hidden = published_registry(registry, least + 1)
    assert (hidden["n_patients"] == f"<{least + 1}").sum() == (
        registry["n_patients"] == least
    ).sum()
    assert published_registry(registry, 1).equals(registry), "threshold 1 hides nothing"
    assert "n_patients" in registry and registry["n_patients"].dtype.kind == "i", "not modified"
    with pytest.raises(DataError, match="threshold"):
        published_registry(registry, 0)
