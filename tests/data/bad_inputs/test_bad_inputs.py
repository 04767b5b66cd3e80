"""Malformed inputs: each is reported by `qi check` with its class, file, column and rows.

Every case starts from a tiny valid project (:func:`write_project`), breaks one thing in one
table, runs the checks and asserts what a user reading the report would rely on: the level
(error or warning) and kind of the problem, and that its printed line names the file, the column
and the first rows affected (data rows: 1 = the first row under the header). A few inputs are
fixture files in ``files/`` (encodings, a row with an extra cell, day-first dates).
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml

from qi_helpers.cli import main
from qi_helpers.data.checks import check_project
from qi_helpers.data.problems import Problem
from qi_helpers.data.report import CheckReport
from qi_helpers.project import load_project

FILES = Path(__file__).parent / "files"
TODAY = date(2026, 1, 1)


def _weeks(n: int, start: str = "2024-01-01") -> list[str]:
    return [d.strftime("%Y-%m-%d") for d in pd.date_range(start, periods=n, freq="7D")]


def base_tables() -> dict[str, pd.DataFrame]:
    """A small project that passes every check without errors or warnings."""
    weeks = _weeks(12)
    return {
        "activities": pd.DataFrame(
            {
                "timestamp": ["2024-01-01T09:00:00", "2024-01-01T10:00:00", "2024-01-02T09:30"],
                "patient_id": ["P1", "P2", "P1"],
                "staff_id": ["S1", "S2", "S1"],
                "activity": ["consultation", "blood test", "consultation"],
                "location": ["Clinic A", "Clinic A", "Clinic A"],
                "duration_min": ["15", "5", "12"],
            }
        ),
        "staff": pd.DataFrame({"staff_id": ["S1", "S2"], "role": ["GP", "Nurse"]}),
        "patients": pd.DataFrame({"patient_id": ["P1", "P2"], "sex": ["F", "M"]}),
        "measures": pd.DataFrame(
            {
                "measure_id": ["M1", "M2", "M3"],
                "name": ["Tested", "Waiting days", "Falls"],
                "family": ["process", "outcome", "outcome"],
                "chart": ["p", "i", "c"],
                "improvement": ["up", "down", "down"],
            }
        ),
        "measure_events": pd.DataFrame(
            {
                "measure_id": ["M1"] * 12 + ["M3"] * 12,
                "timestamp": [f"{w}T10:00:00" for w in weeks] * 2,
                "patient_id": ["P1", "P2"] * 12,
                "value": ["1", "0"] * 6 + ["2"] * 12,
                "denominator_weight": [""] * 24,
            }
        ),
        "observations": pd.DataFrame(
            {
                "microsystem_id": ["MS1"] * 12 + ["MS2"] * 12,
                "measure_id": ["M2"] * 12 + ["M1"] * 12,
                "period": weeks * 2,
                "numerator": [""] * 12 + ["8"] * 12,
                "value": ["10"] * 12 + [""] * 12,
                "denominator": [""] * 12 + ["10"] * 12,
            }
        ),
        "pdsa": pd.DataFrame(
            {
                "microsystem_id": ["MS1", "MS1", "MS2"],
                "cycle_id": ["C1", "C2", "C1"],
                "change": ["Reminders", "Reminders", "Huddles"],
                "start": ["2024-02-05", "2024-03-04", "2024-02-05"],
                "decision": ["adapt", "adopt", "ongoing"],
                "measure_ids": ["M1", "M1;M2", "M2"],
            }
        ),
        "readiness": pd.DataFrame(
            {"staff_id": ["S1", "S2"], "characteristic": ["leadership", "staff_focus"]}
        ).assign(score=["3", ""]),
        "adoption": pd.DataFrame(
            {"microsystem_id": ["MS2"], "change": ["Reminders"], "adopted": ["2024-06-03"]}
        ),
    }


def write_project(root: Path, tables: dict[str, pd.DataFrame], specs=None) -> Path:
    """Write the tables as CSV and a project.yaml pointing at them (``specs`` overrides, and
    the tables they name are not written: the case wrote its own file)."""
    (root / "parameters").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    sources = {}
    for name, frame in tables.items():
        if name in (specs or {}):
            continue
        frame.to_csv(root / "data" / f"{name}.csv", index=False)
        sources[name] = {"path": f"data/{name}.csv"}
    sources.update(specs or {})
    config = {"data": {"tables": sources}, "analysis": {"period": "week"}}
    (root / "parameters" / "project.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return root


def run_check(root: Path) -> CheckReport:
    return check_project(load_project(root), today=TODAY)


def test_the_base_project_is_clean(tmp_path):
    report = run_check(write_project(tmp_path, base_tables()))
    assert report.problems == []


# --- the cases ----------------------------------------------------------------------------------
# Each case: (id, change to the project, level, kind, table, file name, column, rows).


def set_cell(table: str, row: int, column: str, value) -> Callable:
    """Set a cell, ``row`` counted as a user does (1 = the first row under the header)."""

    def change(root: Path, tables: dict) -> None:
        tables[table].loc[row - 1, column] = value

    return change


def edit(fn: Callable[[dict], None]) -> Callable:
    def change(root: Path, tables: dict) -> None:
        fn(tables)

    return change


def spec(name: str, value: dict, writer: Callable[[Path], None] | None = None) -> Callable:
    def change(root: Path, tables: dict) -> dict:
        if writer:
            writer(root)
        return {name: value}

    return change


def fixture_file(name: str, table: str) -> Callable:
    def change(root: Path, tables: dict) -> dict:
        shutil.copy(FILES / name, root / "data" / name)
        return {table: {"path": f"data/{name}"}}

    return change


def _excel(root: Path) -> None:
    with pd.ExcelWriter(root / "data" / "staff.xlsx") as writer:
        base_tables()["staff"].to_excel(writer, sheet_name="Staff", index=False)


def _excel_bad_date(root: Path) -> None:
    pdsa = base_tables()["pdsa"]
    pdsa.loc[1, "start"] = "next Tuesday"
    with pd.ExcelWriter(root / "data" / "pdsa.xlsx") as writer:
        pdsa.to_excel(writer, sheet_name="Log", index=False)


def _sqlite(root: Path) -> None:
    with sqlite3.connect(root / "data" / "qi.db") as con:
        base_tables()["staff"].to_sql("roster", con, index=False)


def _empty_file(root: Path) -> None:
    (root / "data" / "adoption.csv").write_bytes(b"")


def _duplicate_header(root: Path) -> None:
    (root / "data" / "staff.csv").write_text("staff_id,role,role\nS1,GP,GP\nS2,Nurse,RN\n")


CASES = [
    # --- sources: missing, unreadable -----------------------------------------------------------
    ("missing file", spec("staff", {"path": "data/roster.csv"}), "error", "missing_file",
     "staff", "roster.csv", None, None),
    ("missing sheet", spec("staff", {"path": "data/staff.xlsx", "sheet": "Roster"}, _excel),
     "error", "missing_sheet", "staff", "staff.xlsx", None, None),
    ("missing database table", spec("staff", {"url": "sqlite:///data/qi.db", "table": "staff"},
     _sqlite), "error", "missing_table", "staff", "qi.db", None, None),
    ("UTF-16 file", fixture_file("staff_utf16.csv", "staff"), "error", "encoding", "staff",
     "staff_utf16.csv", None, None),
    ("bytes neither UTF-8 nor Windows-1252", fixture_file("staff_undecodable.csv", "staff"),
     "error", "encoding", "staff", "staff_undecodable.csv", None, None),
    ("Windows-1252 is read, with a warning", fixture_file("staff_windows1252.csv", "staff"),
     "warning", "encoding", "staff", "staff_windows1252.csv", None, None),
    ("row with an extra cell", fixture_file("staff_wrong_cells.csv", "staff"), "error",
     "malformed", "staff", "staff_wrong_cells.csv", None, (2,)),
    ("duplicate column names", spec("staff", {"path": "data/staff.csv"}, _duplicate_header),
     "error", "malformed", "staff", "staff.csv", "role", None),
    ("empty file", spec("adoption", {"path": "data/adoption.csv"}, _empty_file), "error",
     "empty_file", "adoption", "adoption.csv", None, None),
    ("header only", edit(lambda t: t.update(adoption=t["adoption"].iloc[:0])), "error",
     "empty_table", "adoption", "adoption.csv", None, None),
    # --- columns ----------------------------------------------------------------------------------
    ("missing required column", edit(lambda t: t.update(staff=t["staff"].drop(columns="role"))),
     "error", "missing_column", "staff", "staff.csv", "role", None),
    ("misspelt column", edit(lambda t: t.update(
        staff=t["staff"].rename(columns={"staff_id": "Staff ID"}))), "error", "missing_column",
     "staff", "staff.csv", "staff_id", None),
    ("no key column in measure events", edit(lambda t: t.update(
        measure_events=t["measure_events"].drop(columns="patient_id"))), "error",
     "missing_column", "measure_events", "measure_events.csv", "patient_id", None),
    ("unknown extra column", edit(lambda t: t["staff"].insert(2, "badge", ["a", "b"])),
     "warning", "extra_column", "staff", "staff.csv", "badge", None),
    # --- values -----------------------------------------------------------------------------------
    ("unparsable date", set_cell("pdsa", 2, "start", "31/02/2024"), "error", "bad_date", "pdsa",
     "pdsa.csv", "start", (2,)),
    ("dates not in the given date_format", fixture_file("pdsa_day_first_dates.csv", "pdsa"),
     "error", "bad_date", "pdsa", "pdsa_day_first_dates.csv", "start", (1, 2)),
    ("unparsable date in an Excel sheet", spec("pdsa", {"path": "data/pdsa.xlsx", "sheet": "Log"},
     _excel_bad_date), "error", "bad_date", "pdsa", "pdsa.xlsx [sheet Log]", "start", (2,)),
    ("not a number", set_cell("activities", 3, "duration_min", "ten"), "error", "bad_number",
     "activities", "activities.csv", "duration_min", (3,)),
    ("empty identifier", set_cell("staff", 2, "staff_id", ""), "error", "empty_id", "staff",
     "staff.csv", "staff_id", (2,)),
    ("measured case with no key", set_cell("measure_events", 4, "patient_id", ""), "error",
     "empty_id", "measure_events", "measure_events.csv", "patient_id", (4,)),
    ("duplicate staff_id", set_cell("staff", 2, "staff_id", "S1"), "error", "duplicate_id",
     "staff", "staff.csv", "staff_id", (1, 2)),
    ("duplicate patient_id", set_cell("patients", 2, "patient_id", "P1"), "error",
     "duplicate_id", "patients", "patients.csv", "patient_id", (1, 2)),
    ("duplicate measure_id", set_cell("measures", 3, "measure_id", "M1"), "error",
     "duplicate_id", "measures", "measures.csv", "measure_id", (1, 3)),
    ("duplicate cycle_id within a microsystem", set_cell("pdsa", 2, "cycle_id", "C1"), "error",
     "duplicate_id", "pdsa", "pdsa.csv", "cycle_id", (1, 2)),
    ("negative denominator", set_cell("observations", 15, "denominator", "-10"), "error",
     "negative", "observations", "observations.csv", "denominator", (15,)),
    ("negative numerator", set_cell("observations", 16, "numerator", "-1"), "error", "negative",
     "observations", "observations.csv", "numerator", (16,)),
    ("negative denominator weight", set_cell("measure_events", 5, "denominator_weight", "-2"),
     "error", "negative", "measure_events", "measure_events.csv", "denominator_weight", (5,)),
    ("negative count of a c-chart measure", set_cell("measure_events", 14, "value", "-1"),
     "error", "negative", "measure_events", "measure_events.csv", "value", (14,)),
    ("numerator above denominator", set_cell("observations", 20, "numerator", "12"), "error",
     "numerator_above_denominator", "observations", "observations.csv", "numerator", (20,)),
    ("proportion case above 1", set_cell("measure_events", 3, "value", "2"), "error",
     "numerator_above_denominator", "measure_events", "measure_events.csv", "value", (3,)),
    ("unknown measure in events", set_cell("measure_events", 7, "measure_id", "M9"), "error",
     "unknown_measure", "measure_events", "measure_events.csv", "measure_id", (7,)),
    ("unknown measure in observations", set_cell("observations", 2, "measure_id", "MX"), "error",
     "unknown_measure", "observations", "observations.csv", "measure_id", (2,)),
    ("unknown chart type", set_cell("measures", 2, "chart", "pie"), "error", "unknown_value",
     "measures", "measures.csv", "chart", (2,)),
    ("unknown family", set_cell("measures", 1, "family", "structure"), "error", "unknown_value",
     "measures", "measures.csv", "family", (1,)),
    ("unknown improvement direction", set_cell("measures", 3, "improvement", "higher"), "error",
     "unknown_value", "measures", "measures.csv", "improvement", (3,)),
    ("unknown PDSA decision", set_cell("pdsa", 3, "decision", "maybe"), "error",
     "unknown_value", "pdsa", "pdsa.csv", "decision", (3,)),
    ("readiness score out of range", set_cell("readiness", 1, "score", "5"), "error",
     "unknown_value", "readiness", "readiness.csv", "score", (1,)),
    ("unknown success characteristic", set_cell("readiness", 2, "characteristic", "vibes"),
     "error", "unknown_value", "readiness", "readiness.csv", "characteristic", (2,)),
    ("template example row left in", set_cell("staff", 2, "staff_id", "EXAMPLE-S1"), "error",
     "example_row", "staff", "staff.csv", "staff_id", (2,)),
    # --- warnings ---------------------------------------------------------------------------------
    ("future date", set_cell("pdsa", 3, "start", "2031-02-05"), "warning", "future_date", "pdsa",
     "pdsa.csv", "start", (3,)),
    ("zero denominator", set_cell("observations", 13, "denominator", "0"), "warning",
     "zero_denominator", "observations", "observations.csv", "denominator", (13,)),
    ("gap in the periods", edit(lambda t: t.update(
        observations=t["observations"].drop(index=[4, 5]).reset_index(drop=True))), "warning",
     "period_gap", "observations", "observations.csv", "period", None),
    ("staff missing from the roster", set_cell("activities", 2, "staff_id", "S7"), "warning",
     "unknown_staff", "activities", "activities.csv", "staff_id", (2,)),
    ("measure with fewer than 10 periods", edit(lambda t: t.update(
        measure_events=t["measure_events"].iloc[3:12].reset_index(drop=True))), "warning",
     "few_periods", "measure_events", "measure_events.csv", "measure_id", None),
    ("formula injection", set_cell("pdsa", 1, "change", "=HYPERLINK(\"http://x\",\"y\")"),
     "warning", "formula", "pdsa", "pdsa.csv", "change", (1,)),
    ("measure in a PDSA that is not in the catalogue", set_cell("pdsa", 2, "measure_ids",
     "M1;M8"), "warning", "unknown_measure", "pdsa", "pdsa.csv", "measure_ids", (2,)),
]  # fmt: skip


@pytest.mark.parametrize(
    "change, level, kind, table, filename, column, rows",
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_is_reported(tmp_path, change, level, kind, table, filename, column, rows):
    tables = base_tables()
    (tmp_path / "data").mkdir()
    specs = change(tmp_path, tables) or {}
    write_project(tmp_path, tables, specs)
    if filename == "pdsa_day_first_dates.csv":  # the user says dates are day first: 31/02 fails
        config = yaml.safe_load((tmp_path / "parameters" / "project.yaml").read_text())
        config["data"]["tables"]["pdsa"]["date_format"] = "%d/%m/%Y"
        (tmp_path / "parameters" / "project.yaml").write_text(yaml.safe_dump(config))
        rows = (2,)
    report = run_check(tmp_path)
    found = [p for p in report.problems if p.kind == kind and p.table == table]
    assert found, f"no {kind} in {table}; got:\n{report.to_text()}"
    problem: Problem = found[0]
    assert problem.level == level
    assert report.ok is (level == "warning")
    assert filename in problem.source
    printed = report.to_text()
    heading = f"{problem.source} (table `{table}`):"
    assert heading in printed
    block = printed.split(heading, 1)[1].split("\n\n", 1)[0]
    line = next(line for line in block.splitlines() if problem.describe() in line)
    assert line.strip().startswith(f"- {level.upper()}")
    if column:
        assert column in (problem.column or "")
        assert f"`{column}`" in line or f"{column}/" in line or f"/{column}" in line
    if rows:
        assert problem.rows[: len(rows)] == rows
        word = "row" if problem.count == 1 else "rows"
        assert f"{word} {', '.join(map(str, rows))}" in line
    if level == "error":  # says how to fix it
        assert "Fix: " in line or any(
            verb in problem.message
            for verb in ("Check", "Save", "save", "Rename", "Quote", "Set", "Fill")
        )


def test_there_are_at_least_thirty_cases():
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


def test_every_problem_of_every_table_is_reported_at_once(tmp_path, capsys):
    tables = base_tables()
    tables["staff"].loc[1, "staff_id"] = "S1"  # duplicate
    tables["pdsa"].loc[0, "start"] = "soon"  # bad date
    tables["pdsa"].loc[2, "decision"] = "maybe"  # unknown decision
    tables["measures"].loc[1, "chart"] = "pie"  # unknown chart
    write_project(tmp_path, tables)
    assert main(["check", "--project", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    for table, text in [
        ("staff", "duplicate identifiers"),
        ("pdsa", "unparsable dates"),
        ("pdsa", "unknown value(s) 'maybe'"),
        ("measures", "unknown value(s) 'pie'"),
    ]:
        heading = f"{tmp_path / 'data' / table}.csv (table `{table}`):"
        assert heading in out
        assert text in out.split(heading, 1)[1].split("\n\n", 1)[0]
    assert "3 with errors" in out


def test_encoding_used_is_said(tmp_path, capsys):
    shutil.copy(FILES / "staff_windows1252.csv", tmp_path / "staff.csv")
    write_project(tmp_path, base_tables(), {"staff": {"path": "staff.csv"}})
    assert main(["check", "--project", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Windows-1252" in out
    staff = load_project(tmp_path).load_table("staff")
    assert staff["role"].tolist() == ["Infirmière", "GP"]


def test_bom_is_skipped(tmp_path, capsys):
    shutil.copy(FILES / "staff_utf8_bom.csv", tmp_path / "staff.csv")
    write_project(tmp_path, base_tables(), {"staff": {"path": "staff.csv"}})
    assert main(["check", "--project", str(tmp_path)]) == 0
    assert "UTF-8 with BOM" in capsys.readouterr().out
    staff = load_project(tmp_path).load_table("staff")
    assert list(staff.columns)[0] == "staff_id"
    assert staff["home_unit"].iloc[0] == "Équipe A"
