"""The ``drivers`` table (issue 21): each malformed diagram is reported by ``qi check`` with its
kind, file, column and rows; projects without the table are checked as before."""

from __future__ import annotations

import shutil
from datetime import date

import pandas as pd
import pytest
import yaml

from qi_helpers.cli import main
from qi_helpers.data.checks import check_tables
from qi_helpers.data.problems import render_table

TODAY = date(2026, 1, 1)
SOURCES = {
    "measures": "data/measures.csv",
    "pdsa": "data/pdsa.csv",
    "drivers": "data/drivers.csv",
}


def _measures() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "measure_id": ["M1", "M2"],
            "name": ["Tested", "Waiting days"],
            "family": ["process", "outcome"],
            "chart": ["p", "i"],
            "improvement": ["up", "down"],
        }
    )


def _pdsa() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "microsystem_id": ["MS1", "MS1", "MS2"],
            "cycle_id": ["C1", "C2", "C3"],
            "change": ["Text reminders", "Text reminders", "Huddle"],
            "start": ["2024-03-04", "2024-04-01", "2024-03-04"],
        }
    )


def _drivers() -> pd.DataFrame:
    """A valid diagram for MS1 and one for the organisation (microsystem_id empty)."""
    aim = "80% tested by December"
    return pd.DataFrame(
        {
            "microsystem_id": ["MS1", "MS1", "MS1", "", ""],
            "aim": [aim, aim, aim, "Better care", "Better care"],
            "primary_driver": ["Reviews on time", "Reviews on time", "Bundle", "Access", "Access"],
            "secondary_driver": ["Patients know", "Patients know", "Blood first", "Flow", "Flow"],
            "change": ["Text reminders", "Text reminders", "Blood clinic", "Huddle", "Rota"],
            "measure_id": ["M1", "M2", "M1", "M2", "M2"],
        }
    )


def _check(**tables: pd.DataFrame):
    frames = {name: (frame, SOURCES[name]) for name, frame in tables.items()}
    _, problems = check_tables(frames, today=TODAY)
    return problems


def _only(problems, kind: str):
    found = [p for p in problems if p.kind == kind]
    assert len(found) == 1, [(p.kind, p.message) for p in problems]
    return found[0]


def test_a_valid_diagram_has_no_problem():
    assert _check(measures=_measures(), pdsa=_pdsa(), drivers=_drivers()) == []


def test_without_the_table_a_pdsa_change_is_not_checked():
    pdsa = _pdsa()
    pdsa.loc[2, "change"] = "Something nobody drew"
    assert _check(measures=_measures(), pdsa=pdsa) == []


def test_unknown_measure_names_file_column_and_rows():
    drivers = _drivers()
    drivers.loc[[1, 4], "measure_id"] = ["M9", "M9"]
    problem = _only(_check(measures=_measures(), pdsa=_pdsa(), drivers=drivers), "unknown_measure")
    assert (problem.level, problem.table, problem.column) == ("error", "drivers", "measure_id")
    assert problem.rows == (2, 5) and problem.count == 2
    line = render_table("drivers", problem.source, [problem])
    assert line.startswith("data/drivers.csv (table `drivers`):")
    assert "ERROR column `measure_id`, rows 2, 5: measure(s) 'M9' not in the measure catalogue" in (
        line
    )


@pytest.mark.parametrize(
    ("column", "label"),
    [
        ("aim", "aim"),
        ("primary_driver", "primary driver"),
        ("secondary_driver", "secondary driver"),
        ("change", "change idea"),
    ],
)
def test_an_empty_cell_of_the_diagram_is_an_error(column, label):
    drivers = _drivers()
    drivers.loc[3, column] = "  "
    problems = _check(measures=_measures(), drivers=drivers)
    problem = next(p for p in problems if p.kind == "missing_value")
    assert (problem.level, problem.column, problem.rows) == ("error", column, (4,))
    assert problem.message.startswith(f"empty {label}")


def test_a_cycle_testing_an_unknown_change_idea_is_an_error_on_the_pdsa_log():
    pdsa = _pdsa()
    pdsa.loc[1, "change"] = "Text reminder"  # a typing error in MS1, which has a diagram
    pdsa.loc[2, "change"] = "Huddle"  # MS2 has none, but the organisation's has it
    problem = _only(_check(measures=_measures(), pdsa=pdsa, drivers=_drivers()), "unknown_change")
    assert (problem.level, problem.table, problem.source) == ("error", "pdsa", "data/pdsa.csv")
    assert (problem.column, problem.rows) == ("change", (2,))
    assert "'Text reminder' in MS1 (did you mean 'Text reminders'?)" in problem.message
    assert "data/drivers.csv" in problem.message


def test_a_cycle_of_a_microsystem_without_any_diagram_is_not_checked():
    drivers = _drivers()
    drivers = drivers[drivers["microsystem_id"] == "MS1"]  # no organisation diagram
    pdsa = _pdsa()
    pdsa.loc[2, "change"] = "Anything"  # MS2: no diagram of its own, none for the organisation
    assert _check(measures=_measures(), pdsa=pdsa, drivers=drivers) == []


def test_a_change_idea_of_another_microsystems_diagram_is_unknown():
    drivers = _drivers()
    drivers.loc[len(drivers)] = ["MS2", "Shorter waits", "Access", "Flow", "Own idea", "M2"]
    pdsa = _pdsa()
    pdsa.loc[0, "change"] = "Own idea"  # MS1 testing MS2's idea
    problem = _only(_check(measures=_measures(), pdsa=pdsa, drivers=drivers), "unknown_change")
    assert problem.rows == (1,)


def test_duplicate_rows_are_an_error():
    drivers = pd.concat([_drivers(), _drivers().iloc[[0]]], ignore_index=True)
    problem = _only(_check(measures=_measures(), drivers=drivers), "duplicate_id")
    assert (problem.level, problem.rows) == ("error", (1, 6))
    assert "'Text reminders'" in problem.message and "the diagram of MS1" in problem.message


def test_a_change_idea_under_two_secondary_drivers_is_an_error():
    drivers = _drivers()
    drivers.loc[1, "secondary_driver"] = "Patients are reminded"
    problem = _only(_check(measures=_measures(), drivers=drivers), "two_parents")
    assert (problem.level, problem.column, problem.rows) == ("error", "change", (1, 2))
    assert "'Text reminders' under 'Patients know' and 'Patients are reminded'" in problem.message


def test_a_secondary_driver_under_two_primary_drivers_is_an_error():
    drivers = _drivers()
    drivers.loc[4, "primary_driver"] = "Capacity"  # Flow under Access and Capacity
    problem = _only(_check(measures=_measures(), drivers=drivers), "two_parents")
    assert (problem.column, problem.rows) == ("secondary_driver", (4, 5))
    assert "the organisation's diagram" in problem.message


def test_the_same_names_in_two_diagrams_are_fine():
    drivers = _drivers()
    drivers.loc[3:4, "secondary_driver"] = "Patients know"  # under Access, in another diagram
    assert _check(measures=_measures(), drivers=drivers) == []


def test_two_aims_in_one_diagram_are_an_error():
    drivers = _drivers()
    drivers.loc[2, "aim"] = "90% tested"
    problem = _only(_check(measures=_measures(), drivers=drivers), "several_aims")
    assert (problem.level, problem.column, problem.rows) == ("error", "aim", (1, 2, 3))


def test_a_change_idea_without_a_measure_is_a_warning():
    drivers = _drivers()
    drivers.loc[2, "measure_id"] = ""
    problem = _only(_check(measures=_measures(), drivers=drivers), "no_measure")
    assert (problem.level, problem.column, problem.rows) == ("warning", "measure_id", (3,))


# ---- through `qi check` on the demo project -------------------------------------------------


@pytest.fixture
def project(demo_project, tmp_path):
    root = tmp_path / "project"
    shutil.copytree(demo_project, root, ignore=shutil.ignore_patterns("outputs", "truth"))
    return root


def test_qi_check_names_the_drivers_file_column_and_rows(project, capsys):
    path = project / "data" / "demo" / "drivers.csv"
    drivers = pd.read_csv(path, dtype=str, keep_default_na=False)
    drivers.loc[0, "measure_id"] = "no_such_measure"
    drivers.loc[1, "aim"] = ""
    drivers.to_csv(path, index=False)
    pdsa_path = project / "data" / "demo" / "pdsa.csv"
    pdsa = pd.read_csv(pdsa_path, dtype=str, keep_default_na=False)
    pdsa.loc[0, "change"] = "A change nobody drew"
    pdsa.to_csv(pdsa_path, index=False)
    assert main(["check", "--project", str(project)]) == 1
    out = capsys.readouterr().out
    block = out.split(f"{path} (table `drivers`):", 1)[1].split("\n\n")[0]
    assert "ERROR column `measure_id`, row 1: measure(s) 'no_such_measure' not in the" in block
    assert "ERROR column `aim`, row 2: empty aim" in block
    pdsa_block = out.split(f"{pdsa_path} (table `pdsa`):", 1)[1].split("\n\n")[0]
    assert "ERROR column `change`, row 1:" in pdsa_block
    assert "'A change nobody drew'" in pdsa_block


def test_a_project_without_the_table_checks_as_before(project, capsys):
    config_file = project / "parameters" / "project.yaml"
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    del config["data"]["tables"]["drivers"]
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    (project / "data" / "demo" / "drivers.csv").unlink()
    assert main(["check", "--project", str(project)]) == 0
    out = capsys.readouterr().out
    assert "drivers" not in out and "0 error(s)" in out
