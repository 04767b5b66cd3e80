"""Shared fixtures: a small demo project in a temporary folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]


def copy_project_skeleton(target: Path) -> Path:
    """Copy the committed parameters and workbooks into ``target`` (a new project folder)."""
    shutil.copytree(ROOT / "parameters", target / "parameters")
    shutil.copytree(ROOT / "workbooks", target / "workbooks")
    return target


@pytest.fixture(scope="session")
def demo_tables():
    """The small demo's tables (generated once per test session)."""
    from qi_helpers.datasets import make_demo

    return make_demo(size="small", seed=0)


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory, demo_tables) -> Path:
    """A project folder with the committed parameters and workbooks and the small demo data."""
    from qi_helpers.datasets import write_demo

    root = copy_project_skeleton(tmp_path_factory.mktemp("project"))
    write_demo(demo_tables, root / "data" / "demo")
    return root
