"""Shared fixtures: a small demo project in a temporary folder; the rule for missing tools."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]

#: Debian's Chromium (``apt-get install chromium``; .ci/run installs it) and how tests start it.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def skip_or_fail(reason: str, *, on_ci: str = "") -> None:
    """Skip a test that needs a missing tool, with the reason; under ``CI=true``, fail instead.

    ``on_ci`` is added to the failure message (e.g. what installs the tool on CI).
    """
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but the test cannot run: {reason}{'; ' + on_ci if on_ci else ''}")
    pytest.skip(reason)


def need_chromium() -> None:
    """Skip (locally) or fail (on CI) unless Chromium and Playwright for Python are there."""
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the Python package playwright is not installed (dev extra)")
    if missing:
        skip_or_fail("; ".join(missing))


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


@pytest.fixture(scope="session")
def identified(demo_tables):
    """Workbook 01's identification of the small demo with the committed parameters."""
    import yaml

    from qi_helpers.microsystems import identify

    config = yaml.safe_load((ROOT / "parameters" / "project.yaml").read_text(encoding="utf-8"))
    return identify(demo_tables["activities"], demo_tables["staff"], **config["identify"])


@pytest.fixture(scope="session")
def profiles(identified, demo_tables):
    """The 5 Ps profiles of the small demo's microsystems (read-only: tests copy to change)."""
    from qi_helpers.profiles import profile

    return profile(
        identified, demo_tables["activities"], demo_tables["staff"], demo_tables["patients"]
    )
