"""Robustness of the identification: organisations generated with other seeds and mixes.

Every organisation comes from the demo generator with a :class:`~qi_helpers.demo.DemoMix` that
plants service teams (site pharmacies, imaging departments, phlebotomy clinics, a contact centre
serving every site), cross-cover, bank and agency staff and students on top of the default
teams. The microsystems found are scored against the planted truth (``truth_membership``), never
against an earlier output of the code.
"""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
import yaml
from support import ROOT

from qi_helpers.demo import SERVICE_TEAMS, DemoMix, make_demo
from qi_helpers.identify import adjusted_rand_index, identify, main_microsystem

ALL_SERVICES = tuple(SERVICE_TEAMS)
VARIANTS = {
    "services, seed 1": (1, DemoMix(services=ALL_SERVICES)),
    "everything, seed 2": (
        2,
        DemoMix(services=ALL_SERVICES, cross_cover=0.3, bank_staff=2, students=2),
    ),
    "staff only, seed 3": (3, DemoMix(cross_cover=0.4, bank_staff=3, students=2)),
    "pharmacy and imaging, seed 4": (
        4,
        DemoMix(services=("pharmacy", "imaging"), cross_cover=0.2, bank_staff=1, students=1),
    ),
}


def _config() -> dict:
    text = (ROOT / "parameters" / "project.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)["identify"]


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant(request):
    seed, mix = VARIANTS[request.param]
    tables = make_demo("small", seed, mix=mix)
    result = identify(tables["activities"], tables["staff"], **_config())
    return tables, result


def _planted(tables) -> pd.Series:
    truth = tables["truth_membership"]
    return truth[truth["main"]].set_index("staff_id")["microsystem_id"]


def test_planted_microsystems_are_found(variant):
    tables, result = variant
    planted = _planted(tables)
    assert adjusted_rand_index(main_microsystem(result.staff), planted) >= 0.95
    assert len(result.registry) == planted.nunique()


def test_service_teams_get_their_own_row_kind_and_links(variant):
    tables, result = variant
    truth = tables["truth_microsystems"].set_index("microsystem_id")
    services = truth[truth["kind"].isin(["pharmacy", "imaging", "phlebotomy"])]
    services = pd.concat([services, truth.loc[truth.index.str.endswith("-PCC")]])
    registry = result.registry.set_index("microsystem_id")
    for ms_id, row in services.iterrows():
        assert ms_id in registry.index  # named after the home unit its staff declare
        found = registry.loc[ms_id]
        assert found["kind"] == row["kind"]
        assert found["locations"] == row["locations"]
        assert found["site"] == (
            "organisation-wide" if row["site"] == "Organisation" else row["site"]
        )
        assert found["measurable"]
        linked = [item.split(" (")[0] for item in found["linked_microsystems"].split("; ")]
        served = truth.index[truth["kind"].isin(["primary_care", "inpatient_ward"])]
        assert len(set(linked) & set(served)) >= 2, (ms_id, linked)


def test_bank_staff_students_and_cross_cover_join_the_team_they_work_with(variant):
    tables, result = variant
    truth = tables["truth_membership"]
    main = truth[truth["main"]].set_index("staff_id")
    found = main_microsystem(result.staff)
    for kind in ("bank", "student", "cross_cover", "floater"):
        people = main.index[main["staff_type"] == kind]
        assert (found[people] == main.loc[people, "microsystem_id"]).all(), kind


@pytest.mark.parametrize("name", ["everything, seed 2"])
def test_robust_across_the_parameters(name):
    seed, mix = VARIANTS[name]
    tables = make_demo("small", seed, mix=mix)
    planted = _planted(tables)
    worst = {}
    for shared, resolution in itertools.product((3, 4, 6, 8, 10), (0.5, 1.0, 1.5, 2.0)):
        result = identify(
            tables["activities"],
            tables["staff"],
            min_shared_patients=shared,
            resolution=resolution,
            min_weekly_volume=20,
        )
        worst[(shared, resolution)] = adjusted_rand_index(main_microsystem(result.staff), planted)
    assert min(worst.values()) >= 0.9, worst


def test_workbook_03_analyses_a_service_team_from_its_membership():
    """A measure recorded in the pharmacy's work area reaches the pharmacy found by workbook 01,
    and workbook 03's analysis runs for it (its registry row and membership are enough)."""
    import numpy as np

    from qi_helpers.changes import analyse_microsystem
    from qi_helpers.changes.series import assign_microsystems, series_for_microsystem

    seed, mix = VARIANTS["pharmacy and imaging, seed 4"]
    tables = make_demo("small", seed, mix=mix)
    result = identify(tables["activities"], tables["staff"], **_config())
    pharmacy = result.registry[result.registry["kind"] == "pharmacy"].iloc[0]
    rng = np.random.default_rng(0)
    n = 2000
    events = pd.DataFrame(
        {
            "measure_id": "pha_errors",
            "timestamp": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 104 * 7 * 24, n), "h"),
            "location": pharmacy["locations"],
            "value": (rng.random(n) < 0.05).astype(float),
        }
    )
    measures = pd.DataFrame(
        [["pha_errors", "Dispensing errors", "outcome", "p", "down"]],
        columns=["measure_id", "name", "family", "chart", "improvement"],
    )
    membership = {"staff": result.staff, "patients": result.patients, "locations": result.locations}
    ms_id = pharmacy["microsystem_id"]
    cases = assign_microsystems(events, membership, period="week", microsystem_id=ms_id)
    assert len(cases) == n and (cases["microsystem_id"] == ms_id).all()
    series = series_for_microsystem(events, membership, measures, microsystem_id=ms_id)
    assert series["period"].nunique() >= 100
    pdsa = pd.DataFrame(columns=["microsystem_id", "cycle_id", "change", "start"])
    analysis = analyse_microsystem(cases, series, measures, pdsa, microsystem_id=ms_id)
    assert list(analysis.measures["measure_id"]) == ["pha_errors"]


def test_a_service_team_without_measures_yet_gets_an_empty_analysis():
    """Workbook 03 runs for every row of the registry: a service team just found, with no
    measured data and no PDSA cycle, gets a page that says so instead of an error."""
    from qi_helpers import ConfigError
    from qi_helpers.changes import analyse_microsystem, what_next
    from qi_helpers.widgets import tests_of_change_explorer

    seed, mix = VARIANTS["pharmacy and imaging, seed 4"]
    tables = make_demo("small", seed, mix=mix)
    result = identify(tables["activities"], tables["staff"], **_config())
    ms_id = result.registry.loc[result.registry["kind"] == "imaging", "microsystem_id"].iloc[0]
    series = pd.DataFrame(columns=["microsystem_id", "measure_id", "period", "value"])
    cases = pd.DataFrame(columns=["microsystem_id", "measure_id", "period", "value"])
    pdsa = pd.DataFrame(columns=["microsystem_id", "cycle_id", "change", "start"])
    measures = tables["measures"]
    with pytest.raises(ConfigError, match="no measured data"):
        analyse_microsystem(cases, series, measures, pdsa, microsystem_id=ms_id)
    analysis = analyse_microsystem(
        cases, series, measures, pdsa, microsystem_id=ms_id, registry=result.registry
    )
    assert analysis.verdicts.empty
    assert "no measured data yet" in what_next(analysis.verdicts)
    shown = tests_of_change_explorer(
        cases, series, measures, pdsa, microsystem_id=ms_id, interactive=False,
        registry=result.registry,
    )  # fmt: skip
    assert shown["message"].iloc[0] == f"No measured data for {ms_id} yet."
    with pytest.raises(ConfigError, match="no measured data"):
        tests_of_change_explorer(
            cases, series, measures, pdsa, microsystem_id="NOT-A-TEAM", interactive=False,
            registry=result.registry,
        )  # fmt: skip
