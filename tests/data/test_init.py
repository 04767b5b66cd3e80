"""`qi init DIR`: a project for a user's own data, and what `qi check` says about it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from qi_helpers.cli import main
from qi_helpers.data.checks import check_project
from qi_helpers.data.contracts import CONTRACTS
from qi_helpers.data.scaffold import init_project
from qi_helpers.errors import ConfigError
from qi_helpers.project import load_project, load_yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scaffold(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("init") / "my_project"
    assert main(["init", str(target)]) == 0
    return target


def test_init_writes_parameters_workbooks_templates_and_guide(scaffold, capsys):
    config = load_yaml(scaffold / "parameters" / "project.yaml")
    assert "demo" not in config["data"]
    assert config["data"]["tables"] == {n: {"path": f"data/{n}.csv"} for n in CONTRACTS}
    assert config["identify"] == load_yaml(ROOT / "parameters" / "project.yaml")["identify"]
    text = (scaffold / "parameters" / "project.yaml").read_text(encoding="utf-8")
    assert "date_format" in text and "columns:" in text and "url:" in text  # explained
    for workbook in sorted((ROOT / "workbooks").glob("*.ipynb")):
        assert (scaffold / "workbooks" / workbook.name).read_bytes() == workbook.read_bytes()
    book = pd.ExcelFile(scaffold / "data" / "templates.xlsx")
    assert book.sheet_names == list(CONTRACTS)
    for name, contract in CONTRACTS.items():
        csv = pd.read_csv(scaffold / "data" / f"{name}.csv", dtype=str)
        assert list(csv.columns) == [*contract.required, *contract.optional]
        assert len(csv) == 1
        sheet = pd.read_excel(book, sheet_name=name)
        assert list(sheet.columns) == list(csv.columns)
    readme = (scaffold / "README.md").read_text(encoding="utf-8")
    assert "qi check" in readme and "example row" in readme
    assert "data/" in (scaffold / ".gitignore").read_text(encoding="utf-8")


def test_check_on_the_untouched_scaffold_says_what_to_fill_in(scaffold, capsys):
    assert main(["check", "--project", str(scaffold)]) == 1
    out = capsys.readouterr().out
    report = check_project(load_project(scaffold))
    assert {p.kind for p in report.errors} == {"example_row"}
    assert {p.table for p in report.errors} == set(CONTRACTS)
    assert out.count("replace the example row with your own data") == len(CONTRACTS)
    assert f"{scaffold / 'data' / 'staff.csv'} (table `staff`):" in out


def test_the_excel_template_is_readable(scaffold):
    project = load_project(
        scaffold,
        overrides={
            "data": {"tables": {"staff": {"path": "data/templates.xlsx", "sheet": "staff"}}}
        },
    )
    report = check_project(project)
    staff = [p for p in report.problems if p.table == "staff"]
    assert [p.kind for p in staff] == ["example_row"]
    assert staff[0].source.endswith("templates.xlsx [sheet staff]")


def test_filled_in_scaffold_passes(tmp_path, demo_project, capsys):
    target = tmp_path / "filled"
    init_project(target)
    for name in CONTRACTS:
        shutil.copyfile(
            demo_project / "data" / "demo" / f"{name}.csv", target / "data" / f"{name}.csv"
        )
    assert main(["check", "--project", str(target)]) == 0
    assert "0 error(s)" in capsys.readouterr().out


def test_init_refuses_an_existing_project_unless_forced(scaffold, tmp_path, capsys):
    assert main(["init", str(scaffold)]) == 1
    assert "a project is already here" in capsys.readouterr().err
    copy = tmp_path / "copy"
    shutil.copytree(scaffold, copy)
    (copy / "README.md").write_text("old", encoding="utf-8")
    assert main(["init", str(copy), "--force"]) == 0
    assert "qi check" in (copy / "README.md").read_text(encoding="utf-8")


def test_init_from_another_project(scaffold, tmp_path):
    second = tmp_path / "second"
    init_project(second, source=scaffold)
    assert (second / "workbooks" / "03_analyse_tests.ipynb").is_file()
    with pytest.raises(ConfigError, match="not a project to start from"):
        init_project(tmp_path / "third", source=tmp_path / "nowhere")
