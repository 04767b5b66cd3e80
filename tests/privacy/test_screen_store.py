"""The identifier screen is built once per change of the input tables and kept under
``outputs/data/identifier_screen/``: every other process loads it instead of reading the tables
(issue 17), and a kept screen never outlives the tables it was built from."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from qi_helpers.privacy import screen as screen_module
from qi_helpers.privacy.screen import SCREEN_FOLDER, load_screen, project_screen
from qi_helpers.project import load_project


@pytest.fixture
def project_copy(demo_project, tmp_path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(demo_project, root, ignore=shutil.ignore_patterns("outputs"))
    return root


def _fresh_process_screen(root: Path):
    """The screen as a new process would get it (the per-process cache emptied)."""
    screen_module._SCREENS.clear()
    return project_screen(load_project(root))


def _some_ids(root: Path) -> list[str]:
    patients = pd.read_csv(root / "data" / "demo" / "patients.csv", dtype=str)
    staff = pd.read_csv(root / "data" / "demo" / "staff.csv", dtype=str)
    return [patients["patient_id"].iloc[5], patients["patient_id"].iloc[-1], staff["staff_id"][3]]


def test_a_kept_screen_finds_what_a_built_one_finds(project_copy, monkeypatch):
    built = _fresh_process_screen(project_copy)
    folder = project_copy / "outputs" / "data" / SCREEN_FOLDER
    assert (folder / "screen.json").is_file() and list(folder.glob("automaton-*.bin"))

    def refuse(*args, **kwargs):
        raise AssertionError("a kept, current screen must not read the tables again")

    monkeypatch.setattr(screen_module, "read_screened_tables", refuse)
    kept = _fresh_process_screen(project_copy)
    assert kept is not built and kept.values == frozenset()  # loaded, not rebuilt
    for value in _some_ids(project_copy):
        text = f"seen by {value}, and MRN-{value}; total 65.722952"
        assert kept.redact(text) == built.redact(text)
        assert kept.redact(text)[1] >= 1


def test_an_edited_table_builds_the_screen_again(project_copy):
    _fresh_process_screen(project_copy)
    path = project_copy / "data" / "demo" / "patients.csv"
    patients = pd.read_csv(path, dtype=str, keep_default_na=False)
    extra = patients.iloc[[0]].assign(patient_id="ZZQ-ODD/77a1")  # a shape no pattern covers
    pd.concat([patients, extra]).to_csv(path, index=False)
    later = time.time() + 5
    os.utime(path, (later, later))
    screen = _fresh_process_screen(project_copy)
    assert screen.redact("patient ZZQ-ODD/77a1 was seen")[1] == 1
    assert len(list((project_copy / "outputs" / "data" / SCREEN_FOLDER).glob("*.bin"))) == 1


def test_a_damaged_kept_screen_is_built_again(project_copy):
    _fresh_process_screen(project_copy)
    folder = project_copy / "outputs" / "data" / SCREEN_FOLDER
    for path in folder.glob("automaton-*.bin"):
        path.write_bytes(b"not a pickle")
    assert load_screen(folder, False, ()) is None  # wrong key: not even opened
    screen = _fresh_process_screen(project_copy)
    value = _some_ids(project_copy)[0]
    assert screen.redact(f"id {value}")[1] == 1


def _digest_in_a_new_process(root: Path) -> str:
    """The digest of the screen a separate Python process builds and saves for ``root``."""
    shutil.rmtree(root / "outputs" / "data" / SCREEN_FOLDER, ignore_errors=True)
    code = (
        "import sys; from qi_helpers.project import load_project; "
        "from qi_helpers.privacy.screen import project_screen; "
        "print(project_screen(load_project(sys.argv[1])).digest)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def test_the_same_tables_give_the_same_digest_in_any_process(project_copy):
    """The digest that every page depends on comes from what the screen finds, not from the
    bytes of its pickled automaton (which differ between processes for the same ids): building
    the screen again from unchanged tables must not make every page again."""
    first, second = (_digest_in_a_new_process(project_copy) for _ in range(2))
    assert len(first) == 64 and first == second
    path = project_copy / "data" / "demo" / "patients.csv"
    patients = pd.read_csv(path, dtype=str, keep_default_na=False)
    patients.iloc[[0]].assign(patient_id="ZZQ-NEW-1").pipe(
        lambda extra: pd.concat([patients, extra]).to_csv(path, index=False)
    )
    assert _digest_in_a_new_process(project_copy) != first  # another id: another digest
