"""Service teams: identification by work area and activity mix as well as shared patients.

The fixture is built here, by hand, like the log of issue 19: sites with primary care teams and a
ward, and a laboratory of four staff who work only in their own area, on activities no one else
does, for the patients of every team of their site.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qi_helpers.identify import adjusted_rand_index, identify, main_microsystem
from qi_helpers.identify.registry import activity_kind
from qi_helpers.identify.work_areas import overlap

KINDS = {
    "consultation": "primary_care",
    "booking": "primary_care",
    "ward round": "inpatient_ward",
    "observation": "inpatient_ward",
    "specimen analysis": "laboratory",
    "result validation": "laboratory",
}


def _rows(rng, staff, patients, n, activities, location) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "staff_id": rng.choice(staff, n),
            "patient_id": rng.choice(patients, n),
            "activity": rng.choice(activities, n),
            "location": location,
        }
    )


def _site(rng, site: str, lab: bool = True) -> tuple[list[pd.DataFrame], dict[str, str]]:
    """Three practices and a ward sharing patients only a little, and the site's laboratory."""
    parts, truth, site_patients = [], {}, []
    practices = [
        (f"{site}-PC{i}", 6, ["consultation", "booking"], f"{site} Suite {i}") for i in (1, 2, 3)
    ]
    for team, n_staff, acts, area in [
        *practices,
        (f"{site}-W1", 8, ["ward round", "observation"], f"{site} Ward 1"),
    ]:
        staff = [f"{team}-S{i}" for i in range(n_staff)]
        patients = [f"{team}-P{i}" for i in range(300)]
        truth.update(dict.fromkeys(staff, team))
        site_patients += patients
        parts.append(_rows(rng, staff, patients, 8000, acts, area))
        # a few patients seen by the neighbouring team: weak ties across the site
        parts.append(_rows(rng, staff[:1], [f"{site}-W1-P{i}" for i in range(4)], 8, acts, area))
    if lab:
        staff = [f"{site}-LAB-S{i}" for i in range(4)]
        truth.update(dict.fromkeys(staff, f"{site}-LAB"))
        tests = ["specimen analysis", "result validation"]
        parts.append(_rows(rng, staff, site_patients, 5000, tests, f"{site} Laboratory"))
        # 1% of their work on the ward (a sample taken at the bedside)
        parts.append(_rows(rng, staff, site_patients, 50, tests, f"{site} Ward 1"))
    return parts, truth


def _organisation(seed: int = 0, sites=("East", "West", "North")):
    rng = np.random.default_rng(seed)
    parts, truth = [], {}
    for site in sites:
        p, t = _site(rng, site)
        parts += p
        truth.update(t)
    acts = pd.concat(parts, ignore_index=True)
    hours = rng.integers(0, 52 * 7 * 24, len(acts))
    acts["timestamp"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(hours, "h")
    return acts, pd.Series(truth)


@pytest.fixture(scope="module")
def organisation():
    return _organisation()


def test_shared_patients_alone_merge_the_laboratory_into_a_team(organisation):
    acts, truth = organisation
    plain = identify(acts, kind_by_activity=KINDS, work_areas=False)
    found = main_microsystem(plain.staff)
    assert len(plain.registry) < truth.nunique()
    assert adjusted_rand_index(found, truth) < 0.95


def test_the_laboratory_is_a_microsystem_of_its_own(organisation):
    acts, truth = organisation
    result = identify(acts, kind_by_activity=KINDS)
    found = main_microsystem(result.staff)
    assert len(result.registry) == truth.nunique() == 15
    assert adjusted_rand_index(found, truth) == 1.0
    labs = result.registry[result.registry["locations"].str.contains("Laboratory")]
    assert len(labs) == 3
    assert (labs["kind"] == "laboratory").all()
    assert labs["measurable"].all() and (labs["n_staff"] == 4).all()
    # linked microsystems: the teams of its site whose patients it serves
    for _, row in labs.iterrows():
        site = row["locations"].split()[0]
        linked = [item.split(" (")[0] for item in row["linked_microsystems"].split("; ")]
        assert len(linked) == 4  # the three practices and the ward of its site
        members = found[found == row["microsystem_id"]].index
        assert all(str(m).startswith(f"{site}-LAB") for m in members)
        assert all(found[found == ms].index.str.startswith(site).all() for ms in linked)


def test_each_split_is_reported_with_its_reason_in_words(organisation):
    acts, _ = organisation
    result = identify(acts, kind_by_activity=KINDS)
    splits = result.merges[result.merges["action"] == "split"]
    reasons = " ".join(splits["reason"])
    for site in ("East", "West", "North"):
        assert f"4 staff who work 99% in {site} Laboratory on " in reasons
    assert "Nelson et al. 2002" in reasons
    lab_splits = splits[splits["reason"].str.contains("Laboratory")]
    assert lab_splits["result"].str.contains(";").all()


def test_a_ward_colleague_of_the_lab_is_not_split_off():
    """Blocks doing the same kind of work are never split on work area alone."""
    rng = np.random.default_rng(3)
    parts, truth = _site(rng, "East", lab=False)
    acts = pd.concat(parts, ignore_index=True)
    # two nurses of the ward who work mostly in its side room, on ward work
    nurses = ["East-W1-S0", "East-W1-S1"]
    side = acts[acts["staff_id"].isin(nurses)].index
    acts.loc[side[: int(0.8 * len(side))], "location"] = "East Ward 1 side room"
    acts["timestamp"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(
        rng.integers(0, 52 * 7 * 24, len(acts)), "h"
    )
    result = identify(acts, kind_by_activity=KINDS)
    assert adjusted_rand_index(main_microsystem(result.staff), pd.Series(truth)) == 1.0
    assert not result.merges["reason"].str.contains("side room").any()


def test_overlap_is_proportional_similarity():
    assert overlap(np.array([1, 0]), np.array([0, 3])) == 0.0
    assert overlap(np.array([2, 2]), np.array([5, 5])) == pytest.approx(1.0)
    # min(0.75, 0.25) + min(0.25, 0.75)
    assert overlap(np.array([3, 1]), np.array([1, 3])) == pytest.approx(0.5)
    assert overlap(np.array([0, 0]), np.array([1, 1])) == 0.0


def test_a_service_kind_is_read_from_the_words_of_unmapped_activities(organisation):
    acts, _ = organisation
    result = identify(acts)  # no kind_by_activity mapping at all
    kinds = result.registry.set_index("locations")["kind"]
    labs = kinds[kinds.index.str.contains("Laboratory")]
    assert len(labs) == 3 and (labs == "laboratory").all()
    assert (kinds.drop(labs.index) == "unknown").all()
    assert activity_kind("Venepuncture", {}) == "phlebotomy"
    assert activity_kind("chest X-ray", {}) == "imaging"
    assert activity_kind("medicines dispensed", {}) == "pharmacy"
    assert activity_kind("inbound call", {}) == "call_centre"
    assert activity_kind("inbound call", {"inbound call": "switchboard"}) == "switchboard"
    assert activity_kind("consultation", {}) == "unknown"
