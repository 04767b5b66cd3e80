"""Workbook 02 reads every microsystem's series from beside the slices (issue 17: assigning all
4.4 million measure events of the large demo held 1.6 GB in its kernel): the same rows, values
and types as assigning every event, for every microsystem of the small demo; without current
slices it assigns every event as before, and prepares nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from qi_helpers.changes import (
    assign_microsystems,
    measure_series,
    organisation_measure_series,
    prepare_slices,
)
from qi_helpers.identify.files import write_identification
from qi_helpers.project import load_project
from qi_helpers.slices import slices_dir
from qi_helpers.spc import funnel_table


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, demo_project, identified) -> Path:
    """The small demo with workbook 01's tables and the slices prepared."""
    root = tmp_path_factory.mktemp("series") / "project"
    shutil.copytree(demo_project, root, ignore=shutil.ignore_patterns("outputs"))
    write_identification(identified, root / "outputs" / "data")
    prepare_slices(load_project(root))
    return root


def _whole(project, period="week", observations=None):
    """What workbook 02 computed before: every measure event assigned, then summed."""
    tables = project.load_tables("measures", "measure_events")
    if observations is None:
        observations = project.load_table("observations", required=False)
    cases = assign_microsystems(tables["measure_events"], project.membership(), period=period)
    return measure_series(cases, tables["measures"], observations, period=period)


def _no_events(project, monkeypatch):
    """Reading the measure events fails: what is computed comes from the slices."""
    original = type(project).load_table

    def load_table(self, name, **kwargs):
        assert name != "measure_events", "the measure events were read"
        return original(self, name, **kwargs)

    monkeypatch.setattr(type(project), "load_table", load_table)


def test_the_series_from_the_slices_is_the_series_of_every_event(prepared, monkeypatch):
    project = load_project(prepared)
    whole = _whole(project)
    measures = project.load_table("measures")
    observations = project.load_table("observations", required=False)
    _no_events(project, monkeypatch)
    fast = organisation_measure_series(project, measures, observations, period="week")
    pd.testing.assert_frame_equal(fast, whole, check_exact=True)
    registry = project.read_output("registry")
    assert set(fast["microsystem_id"]) == set(whole["microsystem_id"])
    assert len(set(fast["microsystem_id"])) > 10  # every microsystem with data, not a few
    for ms, rows in whole.groupby("microsystem_id"):  # each microsystem's own series too
        mine = fast[fast["microsystem_id"] == ms].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, rows.reset_index(drop=True), check_exact=True)
    # and so what workbook 02 draws from it: the funnel of every funnel measure
    ids = [m for m in measures["measure_id"] if m in set(whole["measure_id"])]
    pd.testing.assert_frame_equal(
        funnel_table(fast, measures, registry, measure_ids=ids),
        funnel_table(whole, measures, registry, measure_ids=ids),
        check_exact=True,
    )


def test_without_current_slices_every_event_is_assigned_and_nothing_prepared(prepared, tmp_path):
    root = tmp_path / "project"
    shutil.copytree(prepared, root, ignore=shutil.ignore_patterns("slices"))
    project = load_project(root)
    measures = project.load_table("measures")
    observations = project.load_table("observations", required=False)
    series = organisation_measure_series(project, measures, observations, period="week")
    pd.testing.assert_frame_equal(series, _whole(project), check_exact=True)
    assert not slices_dir(project).exists()  # JupyterLab, plain papermill: nothing prepared


def test_another_period_than_the_slices_is_computed_from_the_events(prepared):
    project = load_project(prepared)
    measures = project.load_table("measures")
    observations = project.load_table("observations", required=False)
    monthly = organisation_measure_series(project, measures, observations, period="month")
    pd.testing.assert_frame_equal(monthly, _whole(project, "month"), check_exact=True)
    assert (monthly["period"].dt.day == 1).all()


def test_observations_of_a_microsystem_outside_the_registry_are_kept(prepared):
    project = load_project(prepared)
    measures = project.load_table("measures")
    observations = project.load_table("observations", required=False)
    assert observations is not None and len(observations)
    stray = observations.iloc[[0]].assign(microsystem_id="NOT-IN-REGISTRY")
    observations = pd.concat([observations, stray], ignore_index=True)
    series = organisation_measure_series(project, measures, observations, period="week")
    # the slices' series leaves it out; the workbook always kept it: computed from the events
    assert (series["microsystem_id"] == "NOT-IN-REGISTRY").sum() == 1
    whole = _whole(project, observations=observations)
    pd.testing.assert_frame_equal(series, whole, check_exact=True)
