"""The three lists of dependencies (pyproject, lock file, environment.yml) agree."""

from __future__ import annotations

from pathlib import Path

import yaml

from qi_helpers.envfile import conda_pins, direct_dependencies, locked_versions

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_lists_the_pyproject_packages_at_the_locked_versions():
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    listed = {}
    for item in env["dependencies"]:
        if isinstance(item, str) and "=" in item:
            name, version = item.split("=", 1)
            listed[name] = version
    expected = conda_pins(ROOT / "pyproject.toml", ROOT / "requirements-dev.lock")
    assert listed.pop("python") == "3.11"
    assert listed == expected


def test_every_direct_dependency_is_pinned_in_both_lock_files():
    dev = locked_versions(ROOT / "requirements-dev.lock")
    run = locked_versions(ROOT / "requirements.lock")
    for name in direct_dependencies(ROOT / "pyproject.toml"):
        base = name.split("[")[0]
        assert base in dev, f"{base} missing from requirements-dev.lock"
    for name in ("jupyterlab", "papermill", "nbconvert", "pandas", "seaborn", "networkx"):
        assert run[name] == dev[name], f"{name}: the two lock files disagree"


def test_the_design_card_dependencies_are_declared():
    names = {n.split("[")[0] for n in direct_dependencies(ROOT / "pyproject.toml")}
    card = {
        "jupyterlab",
        "papermill",
        "nbconvert",
        "ipykernel",
        "ipywidgets",
        "pandas",
        "seaborn",
        "networkx",
        "pyyaml",
        "pyarrow",
        "openpyxl",
        "sqlalchemy",
        "pytest",
        "hypothesis",
        "ruff",
        "dask",
    }
    assert card <= names
