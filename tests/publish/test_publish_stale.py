"""The "may be out of date" banner follows the content of the tables a report read, not file times.

A tiny project (tests/support.py) is run once; its site is then published after upstream
tables are rewritten with the same bytes (a newer modification time) or with other content.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from support import run_tiny_project

from qi_helpers.project import load_project
from qi_helpers.publish.site import publish_site

BANNER = "This report may be out of date"


@pytest.fixture(scope="module")
def ran(demo_project, tmp_path_factory) -> Path:
    """A tiny project after one run of 01, 02, 03 (x 2) and 04 (not published)."""
    base = tmp_path_factory.mktemp("stale") / "base"
    return run_tiny_project(base, demo_project / "data" / "demo", units=2)


@pytest.fixture
def project(ran, tmp_path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(ran, root)
    return root


def _touch_later(path: Path) -> None:
    """Give ``path`` a modification time well after every executed notebook's."""
    later = time.time() + 120
    os.utime(path, (later, later))


def _banners(root: Path, out: Path) -> dict[str, str]:
    """``{page: banner sentence}`` of every page that says it may be out of date."""
    report = publish_site(load_project(root), out)
    found = {}
    for page in report.pages:
        text = (out / page.href).read_text(encoding="utf-8")
        if BANNER in text:
            start = text.index(BANNER)
            found[page.href] = text[start : text.index(". Run", start)]
    return found


def test_a_fresh_run_is_not_stale(project, tmp_path):
    assert _banners(project, tmp_path / "site") == {}


def test_rewriting_the_registry_with_the_same_bytes_is_not_a_change(project, tmp_path):
    registry = project / "outputs" / "data" / "registry.parquet"
    registry.write_bytes(registry.read_bytes())
    _touch_later(registry)
    assert _banners(project, tmp_path / "site") == {}


def test_a_registry_with_other_content_makes_its_readers_stale(project, tmp_path):
    registry = project / "outputs" / "data" / "registry.parquet"
    frame = pd.read_parquet(registry)
    frame.assign(note="changed").to_parquet(registry, index=False)
    _touch_later(registry)
    stale = _banners(project, tmp_path / "site")
    assert "02_select_pilots/02_select_pilots.html" in stale
    assert "the registry (workbook 01) changed" in stale["02_select_pilots/02_select_pilots.html"]
    assert "04_plan_spread/04_plan_spread.html" in stale
    assert "01_identify_microsystems/01_identify_microsystems.html" not in stale
    assert any(href.startswith("03_analyse_tests/") for href in stale)


def test_a_changed_result_makes_only_workbook_04_stale(project, tmp_path):
    result = sorted((project / "outputs" / "data" / "results").glob("*.parquet"))[0]
    pd.read_parquet(result).assign(note="changed").to_parquet(result, index=False)
    stale = _banners(project, tmp_path / "site")
    assert list(stale) == ["04_plan_spread/04_plan_spread.html"]
    assert "(workbook 03) changed" in stale["04_plan_spread/04_plan_spread.html"]


def test_without_a_recorded_fingerprint_a_newer_registry_counts(project, tmp_path):
    manifest = project / "outputs" / "run.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["history"] = {}
    manifest.write_text(json.dumps(data), encoding="utf-8")
    registry = project / "outputs" / "data" / "registry.parquet"
    registry.write_bytes(registry.read_bytes())
    _touch_later(registry)
    stale = _banners(project, tmp_path / "site")
    assert "the registry (workbook 01) changed" in stale["02_select_pilots/02_select_pilots.html"]
