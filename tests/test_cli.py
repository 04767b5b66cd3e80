"""The `qi` command: help, exit codes and messages."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qi_helpers.cli import main


def test_every_command_has_help(capsys):
    for command in ([], ["demo"], ["check"], ["run"], ["publish"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: qi" in capsys.readouterr().out


def test_console_script_is_installed():
    result = subprocess.run(
        [sys.executable, "-m", "qi_helpers.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "demo" in result.stdout and "run" in result.stdout


def test_unknown_size_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--size", "huge"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_demo_writes_the_tables_and_says_where(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for table in (
        "activities",
        "staff",
        "patients",
        "measures",
        "measure_events",
        "pdsa",
        "readiness",
        "adoption",
    ):
        assert (out / f"{table}.csv").is_file()
        assert f"{table}.csv" in printed
    assert (out / "truth").is_dir()


def test_check_passes_on_the_demo(demo_project, capsys):
    assert main(["check", "--project", str(demo_project)]) == 0
    assert "0 with errors" in capsys.readouterr().out


def test_check_names_the_missing_file_and_fails(demo_project, tmp_path, capsys):
    import shutil

    root = tmp_path / "broken"
    shutil.copytree(demo_project / "parameters", root / "parameters")
    assert main(["check", "--project", str(root)]) == 1
    out = capsys.readouterr().out
    assert "activities.csv: file not found" in out


def test_check_names_column_and_rows_of_bad_dates(demo_project, tmp_path, capsys):
    import shutil

    root = tmp_path / "bad"
    shutil.copytree(demo_project, root)
    path = root / "data" / "demo" / "pdsa.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    cells = lines[2].split(",")
    cells[header.index("start")] = "31/02/2024"
    lines[2] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["check", "--project", str(root)]) == 1
    out = capsys.readouterr().out
    assert "pdsa.csv" in out and "`start`" in out and "row 2" in out


def test_run_refuses_bad_inputs_and_leaves_outputs_untouched(demo_project, tmp_path, capsys):
    import shutil

    root = tmp_path / "guarded"
    shutil.copytree(demo_project, root)
    keep = root / "outputs" / "site" / "index.html"
    keep.parent.mkdir(parents=True)
    keep.write_text("earlier good site", encoding="utf-8")
    (root / "data" / "demo" / "staff.csv").write_text("staff_id\nS1\n", encoding="utf-8")
    assert main(["run", "--project", str(root)]) == 1
    assert "role" in capsys.readouterr().err
    assert keep.read_text(encoding="utf-8") == "earlier good site"
