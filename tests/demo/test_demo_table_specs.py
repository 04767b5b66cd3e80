"""The ``data.tables`` section that reads a demo written by ``write_demo``."""

from __future__ import annotations

from pathlib import Path

import pytest

from qi_helpers.demo.health_system import CONTRACT_TABLES, demo_table_specs
from qi_helpers.errors import ConfigError
from qi_helpers.project import load_yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_default_is_the_committed_project_yaml():
    committed = load_yaml(ROOT / "parameters" / "project.yaml")["data"]["tables"]
    assert demo_table_specs() == committed
    assert list(demo_table_specs()) == list(CONTRACT_TABLES)


def test_every_path_is_a_file_write_demo_wrote(demo_project):
    folder = demo_project / "data" / "demo"
    specs = demo_table_specs(folder)
    assert all(Path(spec["path"]).is_file() for spec in specs.values())
    assert demo_table_specs("data", fmt="parquet")["pdsa"] == {"path": "data/pdsa.parquet"}


def test_an_unknown_format_is_refused():
    with pytest.raises(ConfigError, match="xlsx"):
        demo_table_specs(fmt="xlsx")
