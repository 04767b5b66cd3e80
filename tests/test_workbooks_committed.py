"""Committed workbooks are clean: no outputs, a parameters cell, thin code cells."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]

WORKBOOKS = sorted((ROOT / "workbooks").glob("*.ipynb"))


def test_the_four_workbooks_exist():
    names = [p.stem for p in WORKBOOKS]
    assert names == [
        "01_identify_microsystems",
        "02_select_pilots",
        "03_analyse_tests",
        "04_plan_spread",
    ]


@pytest.mark.parametrize("path", WORKBOOKS, ids=lambda p: p.stem)
def test_workbook_has_no_outputs_and_a_parameters_cell_first(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs for c in code), "committed with outputs"
    assert all(c.execution_count is None for c in code), "committed with execution counts"
    assert "parameters" in code[0].metadata.get("tags", []), "first code cell is not `parameters`"
    tree = ast.parse(code[0].source)
    assert all(isinstance(node, ast.Assign) for node in tree.body)
    for node in tree.body:
        assert isinstance(node.value, ast.Constant), "parameters must be literal defaults"


@pytest.mark.parametrize("path", WORKBOOKS, ids=lambda p: p.stem)
def test_workbook_code_is_thin(path):
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        banned = (ast.FunctionDef, ast.ClassDef, ast.For, ast.While, ast.Lambda)
        found = [type(n).__name__ for n in ast.walk(tree) if isinstance(n, banned)]
        assert not found, f"logic in a workbook cell ({found}): move it into qi_helpers"


@pytest.mark.parametrize("path", WORKBOOKS, ids=lambda p: p.stem)
def test_workbook_teaches(path):
    nb = nbformat.read(str(path), as_version=4)
    words = sum(len(c.source.split()) for c in nb.cells if c.cell_type == "markdown")
    assert words >= 150, "markdown should explain the step of the method to a coach"
