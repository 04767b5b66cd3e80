"""A tiny project for the runner tests: fixture workbooks named like the real ones, small data.

The fixture workbooks (``tests/fixtures/notebooks/``) do what the real ones do in miniature:
01 writes a registry of ``identify.max_units`` microsystems, 02 the pilots, 03 one result per
microsystem (it sleeps ``sleep`` seconds and raises when ``fail`` is set in the microsystem's
parameter file), 04 a spread plan from every result. A run takes seconds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from qi_helpers.datasets import CONTRACT_TABLES, demo_table_specs

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE / "fixtures" / "notebooks"


def make_tiny_project(root: Path, demo_dir: Path, *, units: int = 3, rows: int = 40) -> Path:
    """Write a project at ``root``: the fixture workbooks and the first ``rows`` lines of each
    demo table (valid for ``qi check``), with ``units`` microsystems."""
    (root / "workbooks").mkdir(parents=True)
    for notebook in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy(notebook, root / "workbooks" / notebook.name)
    data = root / "data"
    data.mkdir()
    for table in CONTRACT_TABLES:
        lines = (demo_dir / f"{table}.csv").read_text(encoding="utf-8").splitlines()[:rows]
        (data / f"{table}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {
        "project": {"name": "Tiny", "organisation": "Tiny test organisation"},
        "data": {"tables": demo_table_specs("data")},
        "outputs": "outputs",
        "identify": {"max_units": units},
        "analysis": {"period": "week"},
        "publish": {"small_cell_threshold": 11},
    }
    (root / "parameters" / "microsystems").mkdir(parents=True)
    (root / "parameters" / "project.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return root


def set_microsystem(root: Path, microsystem_id: str, **values) -> Path:
    """Write ``parameters/microsystems/<id>.yaml``."""
    path = root / "parameters" / "microsystems" / f"{microsystem_id}.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


def run_tiny_project(root: Path, demo_dir: Path, *, units: int = 2) -> Path:
    """A tiny project after one run of 01, 02, 03 (once per unit) and 04, not published."""
    from qi_helpers import runner
    from qi_helpers.project import load_project

    make_tiny_project(root, demo_dir, units=units)
    results = runner.run(load_project(root), jobs=1, publish=False, echo=lambda *a: None)
    assert [r.status for r in results] == ["ok"] * (units + 3)
    return root
