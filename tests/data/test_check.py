"""`qi check`: report, exit codes, JSON; runs and workbooks stop with the same lines."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from qi_helpers.cli import check_inputs, main
from qi_helpers.data.checks import check_project
from qi_helpers.errors import DataError
from qi_helpers.project import load_project


@pytest.fixture
def project(demo_project, tmp_path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(demo_project, root, ignore=shutil.ignore_patterns("outputs", "truth"))
    return root


def _edit_csv(path: Path, row: int, column: str, value: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = value
    lines[row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_clean_demo_exits_zero_and_lists_tables(demo_project, capsys):
    assert main(["check", "--project", str(demo_project)]) == 0
    out = capsys.readouterr().out
    assert "activities" in out and "rows, UTF-8" in out
    assert "0 error(s)" in out


def test_warnings_are_printed_but_exit_zero(project, capsys):
    # (not the `change`: a cycle's change must be a change idea of the demo's driver diagrams)
    _edit_csv(project / "data" / "demo" / "pdsa.csv", 3, "cycle_id", "=HYPERLINK(1)")
    assert main(["check", "--project", str(project)]) == 0
    out = capsys.readouterr().out
    assert "WARNING column `cycle_id`, row 3: cells a spreadsheet would run as formulas" in out
    assert "1 warning(s)" in out


def test_errors_exit_one_grouped_by_table_with_json(project, capsys):
    demo = project / "data" / "demo"
    _edit_csv(demo / "measures.csv", 2, "chart", "pie")
    _edit_csv(demo / "staff.csv", 5, "staff_id", "S00001")
    (demo / "adoption.csv").unlink()
    assert main(["check", "--project", str(project)]) == 1
    out = capsys.readouterr().out
    staff_block = out.split(f"{demo / 'staff.csv'} (table `staff`):", 1)[1].split("\n\n")[0]
    assert "ERROR column `staff_id`, rows 1, 5: duplicate identifiers" in staff_block
    assert f"{demo / 'adoption.csv'}: file not found" in out
    assert "3 with errors (adoption, measures, staff)" in out

    assert main(["check", "--project", str(project), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["errors"] == 3
    chart = report["tables"]["measures"]["problems"][0]
    assert chart["kind"] == "unknown_value" and chart["column"] == "chart"
    assert chart["rows"] == [2] and chart["count"] == 1 and chart["level"] == "error"
    assert chart["source"].endswith("measures.csv") and "expected one of" in chart["message"]
    assert chart["fix"]


def test_unconfigured_required_table_is_an_error(project, capsys):
    config = project / "parameters" / "project.yaml"
    text = config.read_text(encoding="utf-8").replace(
        "    readiness: {path: data/demo/readiness.csv}\n", ""
    )
    config.write_text(text, encoding="utf-8")
    report = check_project(load_project(project))
    (problem,) = report.errors
    assert problem.kind == "not_configured" and problem.table == "readiness"
    assert "data.tables.readiness" in problem.fix


def test_workbooks_and_run_stop_with_the_same_lines(project):
    demo = project / "data" / "demo"
    _edit_csv(demo / "measure_events.csv", 4, "measure_id", "no_such_measure")
    _edit_csv(demo / "pdsa.csv", 2, "start", "soon")
    report = check_project(load_project(project))
    lines = {p.table: p.describe() for p in report.errors}
    assert set(lines) == {"measure_events", "pdsa"}
    messages = check_inputs(load_project(project))  # what `qi run` prints before stopping
    assert len(messages) == 2 and lines["pdsa"] in messages[1]
    with pytest.raises(DataError) as error:  # what workbook 03 shows in its first cells
        load_project(project).load_tables("measures", "measure_events", "pdsa")
    for line in lines.values():
        assert line in str(error.value)


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_failed_check_leaves_earlier_outputs_byte_identical(project, capsys):
    outputs = project / "outputs"
    for relative, content in {
        "site/index.html": b"<html>last good site</html>",
        "site/01_identify_microsystems/index.html": b"<html>01</html>",
        "data/registry.parquet": b"PAR1 earlier registry",
        "data/results/NOR-PC1.parquet": b"PAR1 earlier result",
        "notebooks/01/01_identify_microsystems.ipynb": b'{"cells": []}',
        "run.json": b'{"ok": true}',
    }.items():
        (outputs / relative).parent.mkdir(parents=True, exist_ok=True)
        (outputs / relative).write_bytes(content)
    before = _snapshot(outputs)
    _edit_csv(project / "data" / "demo" / "observations.csv", 6, "period", "2024-13-45")
    assert main(["run", "--project", str(project)]) == 1
    err = capsys.readouterr().err
    assert "column `period`, row 6: unparsable dates" in err
    assert "nothing was run" in err
    after = _snapshot(outputs)
    assert {k: after.get(k) for k in before} == before  # same bytes, not even rewritten
    assert set(after) - set(before) <= {".run.lock"}  # (the runner's empty lock file)
