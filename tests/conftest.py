"""Shared fixtures: the small demo, a project folder with it, and workbook 01's results on it.

What tests share besides fixtures (the rule for missing tools, page reading, tiny projects,
JupyterLab) is in ``support.py``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest
from support import ROOT, copy_project_skeleton

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def demo_tables():
    """The small demo's tables (generated once per test session)."""
    from qi_helpers.demo.health_system import make_demo

    return make_demo(size="small", seed=0)


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory, demo_tables) -> Path:
    """A project folder with the committed parameters and workbooks and the small demo data."""
    from qi_helpers.demo.health_system import write_demo

    root = copy_project_skeleton(tmp_path_factory.mktemp("project"))
    write_demo(demo_tables, root / "data" / "demo")
    return root


@pytest.fixture(scope="session")
def identified(demo_tables):
    """Workbook 01's identification of the small demo with the committed parameters."""
    import yaml

    from qi_helpers.identify.microsystems import identify

    config = yaml.safe_load((ROOT / "parameters" / "project.yaml").read_text(encoding="utf-8"))
    return identify(demo_tables["activities"], demo_tables["staff"], **config["identify"])


@pytest.fixture(scope="session")
def profiles(identified, demo_tables):
    """The 5 Ps profiles of the small demo's microsystems (read-only: tests copy to change)."""
    from qi_helpers.identify.profiles import profile

    return profile(
        identified, demo_tables["activities"], demo_tables["staff"], demo_tables["patients"]
    )
