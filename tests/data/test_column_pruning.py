"""Reading only the columns a reader needs gives the same table, in less memory (issue 17).

Text files are read by pyarrow straight into the ``large_string`` buffers pandas keeps text in
(no second copy), and workbook 01 reads the activity log without the columns it does not use
(``identify.IDENTIFY_COLUMNS``): its tables, identification and profiles are the same as from
the whole log.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import yaml

from qi_helpers.data.sources import read_text
from qi_helpers.identify import IDENTIFY_COLUMNS, identify, profile
from qi_helpers.project import load_project


def test_text_is_read_into_large_string_buffers_with_the_same_values(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    path.write_bytes(b"id,name,n\nP001, Ann ,12\nP002,,\n,Bo\xc3\xabl,3.5\n")
    read = []
    original = pacsv.read_csv
    monkeypatch.setattr(
        pacsv, "read_csv", lambda *a, **k: read.append(original(*a, **k)) or read[-1]
    )
    frame, encoding = read_text(path)
    # the frame holds the very offsets the reader filled: not copied a second time, wider
    offsets = read[0].column("name").chunk(0).buffers()[1].address
    assert frame["name"].array._pa_array.chunk(0).buffers()[1].address == offsets
    assert encoding == "UTF-8"
    assert list(frame.columns) == ["id", "name", "n"]
    expected = {
        "id": ["P001", "P002", None],
        "name": [" Ann ", None, "Boël"],  # spaces are the schema's to trim, not the reader's
        "n": ["12", None, "3.5"],
    }
    for column, values in expected.items():
        assert [None if pd.isna(v) else v for v in frame[column]] == values
        assert isinstance(frame[column].dtype, pd.StringDtype)
        assert frame[column].array._pa_array.type == pa.large_string()  # shared, not copied

    only, _ = read_text(path, columns=frozenset({"n", "id", "absent"}))
    assert list(only.columns) == ["id", "n"]  # in the file's order; unknown names ignored
    pd.testing.assert_frame_equal(only, frame[["id", "n"]])


@pytest.fixture
def project(demo_project, tmp_path):
    root = tmp_path / "project"
    shutil.copytree(demo_project, root, ignore=shutil.ignore_patterns("outputs"))
    return load_project(root)


def test_a_table_read_with_columns_is_the_whole_table_s_columns(project):
    whole = project.load_table("activities")
    assert "duration_min" in whole.columns  # the demo has it: pruning has something to drop
    wanted = IDENTIFY_COLUMNS["activities"]
    pruned = project.load_table("activities", columns=wanted)
    assert list(pruned.columns) == [c for c in whole.columns if c in wanted]
    pd.testing.assert_frame_equal(pruned, whole[list(pruned.columns)])
    assert pruned.attrs["source"] == whole.attrs["source"]

    tables = project.load_tables("activities", "staff", columns=IDENTIFY_COLUMNS)
    pd.testing.assert_frame_equal(tables["activities"], pruned)
    pd.testing.assert_frame_equal(tables["staff"], project.load_table("staff"))


def test_columns_apply_to_a_parquet_source_and_to_renamed_columns(project, tmp_path):
    activities = project.load_table("activities")
    source = activities.rename(columns={"staff_id": "Staff ID"}).assign(extra="x")
    source.to_parquet(tmp_path / "activities.parquet")
    config = yaml.safe_load(project.config_file.read_text(encoding="utf-8"))
    config["data"]["tables"]["activities"] = {
        "path": str(tmp_path / "activities.parquet"),
        "columns": {"Staff ID": "staff_id"},
    }
    project.config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    reloaded = load_project(project.root)
    pruned = reloaded.load_table("activities", columns=IDENTIFY_COLUMNS["activities"])
    assert set(pruned.columns) == set(IDENTIFY_COLUMNS["activities"])
    assert pruned["staff_id"].tolist() == activities["staff_id"].tolist()


def test_workbook_01_finds_the_same_microsystems_from_the_columns_it_reads(project):
    settings = project.settings("identify")
    whole = project.load_tables("activities", "staff")
    pruned = project.load_tables("activities", "staff", columns=IDENTIFY_COLUMNS)
    patients = project.load_table("patients", required=False)
    first = identify(whole["activities"], whole["staff"], **settings)
    second = identify(pruned["activities"], pruned["staff"], **settings)
    pd.testing.assert_frame_equal(first.registry, second.registry)
    for key in ("staff", "patients", "locations"):
        pd.testing.assert_frame_equal(getattr(first, key), getattr(second, key))
    one = profile(first, whole["activities"], whole["staff"], patients)
    two = profile(second, pruned["activities"], pruned["staff"], patients)
    pd.testing.assert_frame_equal(one.summary, two.summary)
    pd.testing.assert_frame_equal(one.mix, two.mix)
