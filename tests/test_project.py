"""Project parameters and paths."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from qi_helpers.errors import ConfigError
from qi_helpers.identify.files import write_identification
from qi_helpers.privacy.names import inside, safe_filename
from qi_helpers.project import (
    deep_merge,
    find_project_root,
    load_project,
    load_yaml,
)
from qi_helpers.workflow import writer_of

WORKBOOKS = Path(__file__).resolve().parents[1] / "workbooks"


def test_yaml_dates_stay_strings(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("start: 2024-01-01\nn: 3\n", encoding="utf-8")
    assert load_yaml(path) == {"start": "2024-01-01", "n": 3}


def test_bad_yaml_names_the_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("a: [1, 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="p.yaml"):
        load_yaml(path)


def test_project_found_from_a_subfolder(demo_project):
    assert find_project_root(demo_project / "workbooks") == demo_project
    project = load_project(demo_project / "workbooks")
    assert project.outputs_dir == demo_project / "outputs"


def test_no_project_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="qi init"):
        find_project_root(tmp_path)


def test_settings_merge_only_values_given(demo_project):
    project = load_project(demo_project)
    merged = project.settings("identify", min_shared_patients=None, resolution=2.0)
    assert merged["min_shared_patients"] == 6
    assert merged["resolution"] == 2.0


def test_deep_merge_keeps_siblings():
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}


def test_missing_output_names_the_workbook_to_run(tmp_path):
    (tmp_path / "parameters").mkdir()
    (tmp_path / "parameters" / "project.yaml").write_text("outputs: outputs\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="workbook 02"):
        load_project(tmp_path).read_output("pilots")


@pytest.mark.parametrize("bad", ["../../etc/x", "..", ".hidden", "a/b", "<script>", ""])
def test_safe_filename_stays_inside_the_folder(tmp_path, bad):
    name = safe_filename(bad)
    assert "/" not in name and not name.startswith(".") and name
    inside(tmp_path, tmp_path / name)


def test_safe_filename_keeps_plain_ids_and_separates_lookalikes():
    assert safe_filename("NOR-PC1") == "NOR-PC1"
    assert safe_filename("a/b") != safe_filename("a_b")


def test_inside_refuses_escape(tmp_path):
    with pytest.raises(ConfigError, match="outside"):
        inside(tmp_path / "site", tmp_path / "site" / ".." / "x")


def _written_by_workbook(workbook: str) -> set[str]:
    """Tables a committed workbook writes under ``outputs/data/`` as ``data_dir / "x.parquet"``."""
    (path,) = WORKBOOKS.glob(f"{workbook}_*.ipynb")
    source = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
    return set(re.findall(r'data_dir\s*/\s*"([\w-]+)\.parquet"', source))


def test_every_table_workbook_01_writes_names_its_writer(tmp_path):
    frame = pd.DataFrame({"microsystem_id": ["A"]})
    result = SimpleNamespace(
        registry=frame, staff=frame, patients=frame, locations=frame, merges=frame
    )
    profiles = SimpleNamespace(mix=frame, summary=frame)
    comparison = SimpleNamespace(purity=frame, differences=frame)
    written = write_identification(result, tmp_path, profiles, comparison)
    names = {path.stem for path in written}
    assert {"registry", "profiles", "profile_summary", "declared_purity"} <= names
    assert {name: writer_of(name) for name in names} == dict.fromkeys(names, "01")


@pytest.mark.parametrize("workbook", ["02", "04"])
def test_every_table_a_later_workbook_writes_names_its_writer(workbook):
    written = _written_by_workbook(workbook)
    assert written, f"workbook {workbook} writes no table under outputs/data/ any more"
    assert {name: writer_of(name) for name in written} == dict.fromkeys(written, workbook)


def test_a_missing_profile_table_says_to_run_workbook_01(tmp_path):
    (tmp_path / "parameters").mkdir()
    (tmp_path / "parameters" / "project.yaml").write_text("outputs: outputs\n", encoding="utf-8")
    project = load_project(tmp_path)
    with pytest.raises(ConfigError, match="Run workbook 01 first"):
        project.read_output("profile_summary")


def test_a_microsystems_file_sits_between_the_project_and_the_workbook(tmp_path):
    from qi_helpers.errors import ConfigError

    (tmp_path / "parameters" / "microsystems").mkdir(parents=True)
    (tmp_path / "parameters" / "project.yaml").write_text(
        "analysis:\n  period: week\n  rules: anhoej\n  min_points: 10\n", encoding="utf-8"
    )
    own = tmp_path / "parameters" / "microsystems" / "NOR-PC1.yaml"
    own.write_text("min_points: 14\nrules: ihi\n", encoding="utf-8")
    project = load_project(tmp_path)
    got = project.microsystem_settings("analysis", "NOR-PC1", min_points=None, rules=None)
    assert got == {"period": "week", "rules": "ihi", "min_points": 14}
    # a value the workbook is given wins over the file
    got = project.microsystem_settings("analysis", "NOR-PC1", min_points=20, rules=None)
    assert got["min_points"] == 20 and got["rules"] == "ihi"
    # another microsystem: the project's values
    assert project.microsystem_settings("analysis", "RIV-W1", min_points=None)["min_points"] == 10
    own.write_text("min_point: 14\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"NOR-PC1\.yaml: unknown key\(s\) 'min_point'"):
        project.microsystem_settings("analysis", "NOR-PC1", min_points=None)
