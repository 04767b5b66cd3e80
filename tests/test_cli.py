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


def test_version_names_the_package_version(capsys):
    import qi_helpers

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"qi {qi_helpers.__version__}\n"


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


@pytest.fixture
def stamped_demo(tmp_path):
    """A project whose demo was written by `qi demo` (so it carries its stamp)."""
    from conftest import copy_project_skeleton

    root = copy_project_skeleton(tmp_path / "project")
    assert main(["demo", "--out", str(root / "data" / "demo")]) == 0
    return root


def _age_stamp(root):
    """Make the stamp say an older generator wrote the demo."""
    import json

    path = root / "data" / "demo" / ".demo.json"
    stamp = json.loads(path.read_text(encoding="utf-8"))
    stamp["generator"] = "0000000000000000"
    path.write_text(json.dumps(stamp), encoding="utf-8")


def test_a_demo_made_by_an_older_generator_is_made_again(stamped_demo):
    import json

    from qi_helpers.cli import ensure_demo_data
    from qi_helpers.project import load_project

    project = load_project(stamped_demo)
    stamp = json.loads((stamped_demo / "data" / "demo" / ".demo.json").read_text("utf-8"))
    assert stamp["size"] == "small" and stamp["seed"] == 0 and "activities.csv" in stamp["files"]
    said: list[str] = []
    assert ensure_demo_data(project, echo=said.append) is False, "current demo: left alone"
    _age_stamp(stamped_demo)
    assert ensure_demo_data(project, echo=said.append) is True
    assert "another version of the demo generator" in said[0]
    again = json.loads((stamped_demo / "data" / "demo" / ".demo.json").read_text("utf-8"))
    assert again == stamp, "the same demo, stamped by the generator installed now"


def test_an_edited_or_unstamped_demo_is_never_overwritten(stamped_demo):
    from qi_helpers.cli import ensure_demo_data
    from qi_helpers.project import load_project

    project = load_project(stamped_demo)
    staff = stamped_demo / "data" / "demo" / "staff.csv"
    staff.write_text(staff.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    _age_stamp(stamped_demo)
    assert ensure_demo_data(project, echo=lambda *a: None) is False
    assert staff.read_text(encoding="utf-8").endswith("\n\n"), "the edit is kept"
    (stamped_demo / "data" / "demo" / ".demo.json").unlink()
    assert ensure_demo_data(project, echo=lambda *a: None) is False
