"""The optional ``readiness.round`` column: checked by ``qi check``, one kind per file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from qi_helpers.cli import main
from qi_helpers.data.rounds import parse_rounds, round_label
from qi_helpers.data.validation import inspect


def _survey(rounds: list[object]) -> pd.DataFrame:
    n = len(rounds)
    return pd.DataFrame(
        {
            "staff_id": [f"S{i}" for i in range(n)],
            "characteristic": ["leadership"] * n,
            "score": ["2"] * n,
            "round": rounds,
        }
    )


def _round_problems(rounds: list[object]):
    frame, problems = inspect("readiness", _survey(rounds), source="readiness.csv")
    return frame, [p for p in problems if p.column == "round"]


def test_whole_numbers_and_iso_dates_are_rounds():
    frame, problems = _round_problems(["1", "2", "2.0", 3])
    assert problems == [] and frame["round"].tolist() == [1, 2, 2, 3]
    frame, problems = _round_problems(["2024-05-06", "2025-03-03"])
    assert problems == []
    assert frame["round"].tolist() == [pd.Timestamp("2024-05-06"), pd.Timestamp("2025-03-03")]
    assert round_label(frame["round"][0]) == "the survey of 6 May 2024"
    assert round_label(2) == "round 2"


def test_bad_empty_and_mixed_rounds_name_the_rows():
    _, problems = _round_problems(["1", "first", "0", "-1", "2"])
    assert [(p.kind, p.level, p.rows) for p in problems] == [("bad_round", "error", (2, 3, 4))]
    assert "neither a whole number from 1 nor an ISO date" in problems[0].message
    _, problems = _round_problems(["1", "", "2"])
    assert [p.rows for p in problems] == [(2,)] and "empty survey round" in problems[0].message
    # Three numbers and one date: the date is the odd one out (row 4).
    _, problems = _round_problems(["1", "2", "1", "2024-05-06"])
    assert [p.rows for p in problems] == [(4,)]
    assert "mix numbers and dates: most are numbers" in problems[0].message
    assert problems[0].fix.endswith("one kind per file")


def test_an_empty_round_column_is_no_round():
    frame, problems = _round_problems(["", None, " "])
    assert problems == [] and frame["round"].isna().all()
    assert parse_rounds(pd.Series(["", None])).kind == ""


@pytest.fixture
def project(demo_project, tmp_path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(demo_project, root, ignore=shutil.ignore_patterns("outputs", "truth"))
    return root


def test_qi_check_names_file_column_and_rows_of_a_bad_round(project, capsys):
    path = project / "data" / "demo" / "readiness.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    assert header[-1] == "round"  # the demo has two survey rounds
    cells = lines[7].split(",")
    cells[-1] = "3"  # a number among dates
    lines[7] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["check", "--project", str(project)]) == 1
    out = capsys.readouterr().out
    block = out.split(f"{path} (table `readiness`):", 1)[1].split("\n\n")[0]
    assert "ERROR column `round`, row 7: survey rounds mix numbers and dates: most are dates" in (
        block
    )
