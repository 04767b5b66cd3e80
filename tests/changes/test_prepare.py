"""Prepare once, slice per microsystem (issue 17): the slices give what the whole tables gave,
a change in one microsystem's rows touches that microsystem's slice only, and workbook 03's
reruns follow its slice."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from qi_helpers.changes import (
    analyse_microsystem,
    assign_microsystems,
    load_slice,
    load_slices,
    measure_series,
    organisation_series,
    prepare_slices,
)
from qi_helpers.errors import ConfigError, DataError
from qi_helpers.identify.files import write_identification
from qi_helpers.io import FileHashes
from qi_helpers.pilots import assess_characteristics
from qi_helpers.project import load_project
from qi_helpers.run.planning import fingerprint
from qi_helpers.run.tasks import make_task
from qi_helpers.slices import slice_folder, slices_current


@pytest.fixture(scope="module")
def identified_project(tmp_path_factory, demo_project, identified) -> Path:
    """A copy of the small demo project with workbook 01's tables written (no notebook run)."""
    root = tmp_path_factory.mktemp("prepared") / "project"
    shutil.copytree(demo_project, root, ignore=shutil.ignore_patterns("outputs"))
    write_identification(identified, root / "outputs" / "data")
    return root


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("slices"))
    return target


def _edit_pdsa_of(root: Path, microsystem_id: str) -> None:
    """Add one PDSA cycle to one microsystem's rows of ``pdsa.csv`` (the file stays valid)."""
    path = root / "data" / "demo" / "pdsa.csv"
    pdsa = pd.read_csv(path, dtype=str, keep_default_na=False)
    row = pdsa[pdsa["microsystem_id"] == microsystem_id].iloc[[0]].copy()
    row["cycle_id"] = "EDITED-1"
    row["result"] = "edited by the test"
    pd.concat([pdsa, row]).to_csv(path, index=False)
    future = time.time() + 5  # a later modification time even on a coarse clock
    os.utime(path, (future, future))


def test_every_slice_gives_what_the_whole_tables_gave(identified_project):
    """For every microsystem of the small demo: the same series, PDSA log, verdicts and subgroup
    results from its slice as from the whole tables (the path workbook 03 took before)."""
    project = load_project(identified_project)
    done = prepare_slices(project)
    tables = project.load_tables("measures", "measure_events", "pdsa")
    observations = project.load_table("observations", required=False)
    patients = project.load_table("patients", required=False)
    cases = assign_microsystems(tables["measure_events"], project.membership(), period="week")
    series = measure_series(cases, tables["measures"], observations, period="week")
    ids = list(project.read_output("registry")["microsystem_id"])
    assert done.microsystems == len(ids) == 20
    for ms in ids:
        old = analyse_microsystem(
            cases, series, tables["measures"], tables["pdsa"], microsystem_id=ms, patients=patients
        )
        data = load_slice(project, ms, period="week")
        new = analyse_microsystem(
            data.cases, data.series, data.measures, data.pdsa, microsystem_id=ms,
            patients=data.patients,
        )  # fmt: skip
        own = series[series["microsystem_id"] == ms].reset_index(drop=True)
        pd.testing.assert_frame_equal(own, data.series.reset_index(drop=True), check_dtype=False)
        pd.testing.assert_frame_equal(old.verdicts, new.verdicts)
        pd.testing.assert_frame_equal(
            old.subgroups.reset_index(drop=True), new.subgroups.reset_index(drop=True)
        )
        pd.testing.assert_frame_equal(old.pdsa, new.pdsa)


def _assessment(project) -> pd.DataFrame:
    """The whole survey's assessment, as workbook 03 computed it from the whole tables."""
    readiness = project.load_table("readiness")
    return assess_characteristics(readiness, project.read_output("membership_staff"))


def test_every_slice_holds_its_teams_rows_of_the_whole_assessment(identified_project):
    """A team's ``assessment.parquet`` is its rows of the assessment of the whole survey (the
    organisation's quartiles and its rank included); a team without answers has none."""
    project = load_project(identified_project)
    prepare_slices(project)
    whole = _assessment(project)
    answered = 0
    for ms in project.read_output("registry")["microsystem_id"].astype(str):
        own = whole[whole["microsystem_id"].astype(str) == ms].reset_index(drop=True)
        data = load_slice(project, ms)
        pd.testing.assert_frame_equal(own, data.assessment.reset_index(drop=True))
        answered += len(own) > 0
    assert answered >= 15  # the demo's teams answered the survey


def test_a_survey_edit_rewrites_the_teams_whose_assessment_changed(identified_project, tmp_path):
    """One person's answer changed: the folders rewritten are exactly those of the teams whose
    rows of the whole assessment changed (the team, and any whose rank moved), not all."""
    root = _copy(identified_project, tmp_path / "project")
    project = load_project(root)
    prepare_slices(project)
    before = _assessment(project)
    path = root / "data" / "demo" / "readiness.csv"
    survey = pd.read_csv(path, dtype=str, keep_default_na=False)
    staff = project.read_output("membership_staff")
    of_team = set(staff.loc[staff["microsystem_id"] == "NOR-W1", "staff_id"])
    row = survey.index[survey["staff_id"].isin(of_team) & (survey["score"] == "2")][0]
    survey.loc[row, "score"] = "3"
    survey.to_csv(path, index=False)
    later = time.time() + 5
    os.utime(path, (later, later))
    edited = prepare_slices(project)
    after = _assessment(project)
    key = ["microsystem_id", "characteristic"]
    merged = before.merge(after, on=key, suffixes=("_0", "_1"))
    columns = [c for c in before.columns if c not in key]
    moved = pd.Series(False, index=merged.index)
    for c in columns:
        a, b = merged[f"{c}_0"], merged[f"{c}_1"]
        moved |= ~((a == b) | (a.isna() & b.isna()))
    expected = sorted(set(merged.loc[moved, "microsystem_id"].astype(str)))
    assert edited.cut == ["assessment"]
    assert "NOR-W1" in expected and len(expected) < 20
    assert sorted(edited.rewritten) == expected


def test_monthly_microsystem_gets_monthly_series(identified_project):
    """A microsystem whose own parameters say ``period: month`` gets monthly points from the
    same (weekly) slice, as the whole-table path gave."""
    project = load_project(identified_project)
    prepare_slices(project)
    ms = str(project.read_output("registry")["microsystem_id"].iloc[0])
    tables = project.load_tables("measures", "measure_events")
    observations = project.load_table("observations", required=False)
    cases = assign_microsystems(tables["measure_events"], project.membership(), period="month")
    series = measure_series(cases, tables["measures"], observations, period="month")
    own = series[series["microsystem_id"] == ms].reset_index(drop=True)
    data = load_slice(project, ms, period="month")
    pd.testing.assert_frame_equal(own, data.series.reset_index(drop=True), check_dtype=False)
    assert (data.series["period"].dt.day == 1).all()


def test_one_microsystems_rows_change_only_its_slice(identified_project, tmp_path):
    root = _copy(identified_project, tmp_path / "project")
    project = load_project(root)
    first = prepare_slices(project)
    assert len(first.rewritten) == first.microsystems == 20
    again = prepare_slices(project, force=True)
    assert again.rewritten == [] and not again.skipped  # same inputs, same bytes: nothing written
    assert prepare_slices(project).skipped  # and with nothing changed, nothing is read
    target = "NOR-PC1"
    _edit_pdsa_of(root, target)
    assert not slices_current(project)
    edited = prepare_slices(project)
    assert edited.rewritten == [target]
    assert edited.cut == ["pdsa"]  # only the edited table was read and cut again


def test_a_table_cut_again_alone_equals_a_full_preparation(identified_project, tmp_path):
    """Editing ``patients`` cuts only the patients slices (from the cases already sliced); they
    equal what a preparation from scratch gives."""
    root = _copy(identified_project, tmp_path / "project")
    project = load_project(root)
    prepare_slices(project)
    path = root / "data" / "demo" / "patients.csv"
    patients = pd.read_csv(path, dtype=str, keep_default_na=False)
    patients.loc[patients.index[:40], "sex"] = "female"
    patients.to_csv(path, index=False)
    later = time.time() + 5
    os.utime(path, (later, later))
    partial = prepare_slices(project)
    assert partial.cut == ["patients"] and partial.rewritten
    folder = slice_folder(project, partial.rewritten[0])
    kept = {f.name: f.read_bytes() for f in folder.glob("*.parquet")}
    full = prepare_slices(project, force=True)
    assert full.rewritten == []  # the full preparation found nothing to change
    assert kept == {f.name: f.read_bytes() for f in folder.glob("*.parquet")}


def test_workbook_03_reruns_only_the_microsystem_whose_rows_changed(identified_project, tmp_path):
    """The fingerprint of a workbook 03 task follows its slice: editing one microsystem's PDSA
    rows changes that microsystem's fingerprint and no other."""
    root = _copy(identified_project, tmp_path / "project")
    project = load_project(root)
    prepare_slices(project)
    ids = [str(i) for i in project.read_output("registry")["microsystem_id"]]
    notebook = root / "workbooks" / "03_analyse_tests.ipynb"

    def parts() -> dict[str, dict[str, str]]:
        hashes = FileHashes()
        return {ms: fingerprint(project, make_task("03", ms), notebook, hashes, "v") for ms in ids}

    before = parts()
    assert not any(k.startswith("table ") for k in before[ids[0]])  # the slice stands for them
    assert any("slices/ms=" in k for k in before[ids[0]])
    _edit_pdsa_of(root, "RIV-PC2")
    prepare_slices(project)
    after = parts()
    assert [ms for ms in ids if before[ms] != after[ms]] == ["RIV-PC2"]


def test_load_slice_prepares_on_demand(identified_project, tmp_path):
    """A workbook run by hand (no ``qi run``) makes the slices itself, and makes them again
    when an input table changed since."""
    root = _copy(identified_project, tmp_path / "project")
    project = load_project(root)
    assert not slices_current(project)
    data = load_slice(project, "NOR-PC1")
    assert slices_current(project) and len(data.cases) > 0
    assert set(data.cases["microsystem_id"]) == {"NOR-PC1"}
    assert list(data.registry["microsystem_id"]) == ["NOR-PC1"]
    _edit_pdsa_of(root, "NOR-PC1")
    data = load_slice(project, "NOR-PC1")
    assert "EDITED-1" in set(data.pdsa["cycle_id"])
    assert load_slices(project).cases["microsystem_id"].nunique() == 20


def test_unknown_microsystem_is_named(identified_project):
    project = load_project(identified_project)
    with pytest.raises(ConfigError, match=r"'NOPE' is not in the registry.*NOR-PC1"):
        load_slice(project, "NOPE")


def test_slice_folders_stay_inside_the_store(identified_project):
    project = load_project(identified_project)
    folder = slice_folder(project, "../../etc/x")
    assert folder.parent == (project.data_dir / "slices").resolve()


def test_a_bad_input_leaves_the_last_good_slices(identified_project, tmp_path):
    """Preparing from a table that breaks its contract raises the contract error (file, column,
    rows) and leaves the slices of the last good preparation as they were."""
    root = _copy(identified_project, tmp_path / "project")
    project = load_project(root)
    prepare_slices(project)
    cases = slice_folder(project, "NOR-PC1") / "cases.parquet"
    good = cases.read_bytes()
    path = root / "data" / "demo" / "measure_events.csv"
    events = pd.read_csv(path, dtype=str, keep_default_na=False)
    events.loc[3, "timestamp"] = "not a date"
    events.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"(?s)measure_events.*column `timestamp`, row 4"):
        prepare_slices(project)
    assert cases.read_bytes() == good
    assert not slices_current(project)


def test_a_moved_project_keeps_its_slices_byte_for_byte(identified_project, tmp_path):
    """The slices hold data, not where it came from: a project copied to another folder cuts the
    same bytes (so its workbook 03 notebooks are not rerun)."""
    first = _copy(identified_project, tmp_path / "first")
    prepare_slices(load_project(first))
    moved = tmp_path / "elsewhere" / "moved"
    shutil.copytree(first, moved)
    again = prepare_slices(load_project(moved))
    assert not again.skipped  # the files are elsewhere: read again ...
    assert again.rewritten == []  # ... and found the same


def test_the_organisation_series_is_every_microsystems_series(identified_project):
    """``slices/series.parquet`` (what the funnel page reads) holds the same rows as the measure
    series computed from the whole tables, for every microsystem at once."""
    project = load_project(identified_project)
    prepare_slices(project)
    tables = project.load_tables("measures", "measure_events")
    observations = project.load_table("observations", required=False)
    cases = assign_microsystems(tables["measure_events"], project.membership(), period="week")
    whole = measure_series(cases, tables["measures"], observations, period="week")
    stored = organisation_series(project)
    assert set(stored["source"]) == {"cases", "observations"}
    keys = ["microsystem_id", "measure_id", "period"]
    got = stored.drop(columns="source").sort_values(keys).reset_index(drop=True)
    want = whole.sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_an_observations_edit_keeps_the_case_rows_of_the_organisation_series(
    identified_project, tmp_path
):
    """Editing ``observations`` alone makes the series' observation rows again and keeps its
    case rows as they were: the result equals a preparation from scratch, byte for byte."""
    root = _copy(identified_project, tmp_path / "project")
    project = load_project(root)
    prepare_slices(project)
    path = root / "data" / "demo" / "observations.csv"
    observations = pd.read_csv(path, dtype=str, keep_default_na=False)
    observations.loc[observations.index[0], "value"] = "99.5"
    observations.to_csv(path, index=False)
    later = time.time() + 5
    os.utime(path, (later, later))
    partial = prepare_slices(project)
    assert partial.cut == ["observations"]
    series_file = root / "outputs" / "data" / "slices" / "series.parquet"
    edited = pd.read_parquet(series_file)
    first = observations.iloc[0]
    row = edited[(edited["microsystem_id"] == first["microsystem_id"])
                 & (edited["measure_id"] == first["measure_id"])
                 & (edited["period"] == pd.Timestamp(first["period"]))]  # fmt: skip
    assert row["value"].tolist() == [99.5]
    kept = series_file.read_bytes()
    prepare_slices(project, force=True)
    assert series_file.read_bytes() == kept


def test_rows_by_microsystem_keep_their_order_and_drop_rows_without_one():
    """The slices are taken from one reordered table (issue 17, memory): each microsystem gets
    its rows in their original order, rows without a microsystem go nowhere, and a microsystem
    without rows gets an empty table with the same columns."""
    from qi_helpers.changes.prepare import _groups, _patients_by_microsystem

    frame = pd.DataFrame(
        {
            "microsystem_id": pd.array(["B", "A", None, "B", "A", "C"], dtype="string"),
            "value": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    rows = _groups(frame, "microsystem_id")
    assert rows.take("A")["value"].tolist() == [2.0, 5.0]
    assert rows.take("B")["value"].tolist() == [1.0, 4.0]
    assert rows.take("C")["value"].tolist() == [6.0]
    empty = rows.take("D")
    assert empty.empty and list(empty.columns) == ["microsystem_id", "value"]
    assert sum(len(rows.take(m)) for m in "ABCD") == 5  # the row without a microsystem

    cases = pd.DataFrame(
        {
            "microsystem_id": ["A", "A", "B", "A", "B"],
            "patient_id": ["p3", "p1", "p3", "p3", None],
        }
    )
    patients = pd.DataFrame({"patient_id": ["p1", "p2", "p3"], "age": [40, 50, 60]})
    by_ms = _patients_by_microsystem(cases, patients)
    assert by_ms.take("A")["patient_id"].tolist() == ["p1", "p3"]  # once each, table order
    assert by_ms.take("B")["patient_id"].tolist() == ["p3"]
    assert by_ms.take("C").empty
