"""``qi run`` builds the identifier screen in a short-lived child process before the first
notebook (issue 17: a first-run kernel that built it peaked at 3.2 GB on the large demo).

The child builds and saves the screen once; a run with the tables unchanged starts no child;
the child never outlives an interrupted block or a ``kill -9`` of the process that started it.
Processes are looked at through ``/proc``, independently of the code under test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from support import make_tiny_project

from qi_helpers.privacy import screen as screen_module
from qi_helpers.privacy.screen import SCREEN_FOLDER, load_screen, screen_saved
from qi_helpers.project import load_project
from qi_helpers.run.screen_process import screen_built_ahead, start_screen_build

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc; the parent-death signal is Linux's"
)

#: Seconds a process may take to die once its parent is gone (it takes well under one).
DEATH_BOUND = 30.0


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rfind(")") + 2 :].split()[0] not in "ZXx"


def _wait_until(condition, bound: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


@pytest.fixture
def tiny(demo_project, tmp_path) -> Path:
    return make_tiny_project(tmp_path / "project", demo_project / "data" / "demo")


def _ids(root: Path, table: str, column: str) -> list[str]:
    return pd.read_csv(root / "data" / f"{table}.csv", dtype=str)[column].dropna().tolist()


def test_the_child_builds_the_screen_once_and_a_current_screen_is_reused(tiny, tmp_path):
    project = load_project(tiny)
    record = tmp_path / "run.lock"
    assert not screen_saved(project)

    build = start_screen_build(project, record=record)
    assert build is not None and build.process.pid != os.getpid()
    assert build.wait(120), f"the child failed (exit code {build.process.exitcode})"
    assert not _alive(build.process.pid)  # short-lived: its memory went back to the system
    roles = [json.loads(line) for line in record.read_text().splitlines()]
    assert [(r["pid"], r["role"]) for r in roles] == [(build.process.pid, "screen")]

    # Saved where every kernel loads it: it removes the tables' own ids (the truth: the files).
    assert screen_saved(project)
    stamp = screen_module._sources_stamp(project)
    kept = load_screen(tiny / "outputs" / "data" / SCREEN_FOLDER, False, stamp)
    assert kept is not None
    patient, staff = _ids(tiny, "patients", "patient_id")[3], _ids(tiny, "staff", "staff_id")[2]
    assert kept.find(f"seen by {staff} with {patient} on ward 2") == [staff, patient]

    assert start_screen_build(project, record=record) is None  # current: no child started
    assert len(record.read_text().splitlines()) == 1

    # An edited table makes the saved screen stale: the next run builds it again.
    path = tiny / "data" / "patients.csv"
    path.write_text(path.read_text() + "P9999123,65-79,F,\n")
    assert not screen_saved(project)
    again = start_screen_build(project)
    assert again is not None and again.wait(120)
    assert screen_saved(project)
    kept = load_screen(tiny / "outputs" / "data" / SCREEN_FOLDER, False,
                       screen_module._sources_stamp(project))  # fmt: skip
    assert kept.find("the new patient P9999123") == ["P9999123"]


def test_an_interrupted_run_stops_the_child_and_saves_no_screen(tiny):
    project = load_project(tiny)
    started = []
    with pytest.raises(KeyboardInterrupt), screen_built_ahead(project) as build:
        assert build is not None
        started.append(build.process.pid)
        assert _alive(build.process.pid)  # still importing: far from finished
        raise KeyboardInterrupt  # Ctrl-C while the inputs are checked
    assert not _alive(started[0])
    assert not screen_saved(project)
    assert not (tiny / "outputs" / "data" / SCREEN_FOLDER / "screen.json").exists()


def test_a_child_that_fails_is_said_and_the_first_notebook_builds_the_screen(tiny):
    project = load_project(tiny)
    # The child loads the project again: a parameters file broken meanwhile makes it fail.
    (tiny / "parameters" / "project.yaml").write_text("project: [unclosed\n")
    notes: list[str] = []
    with screen_built_ahead(project, note=notes.append) as build:
        assert build is not None
    assert build.process.exitcode not in (0, None)
    assert len(notes) == 1 and "could not be built ahead" in notes[0]
    assert not screen_saved(project)


PARENT = """
import sys, time
from qi_helpers.project import load_project
from qi_helpers.run.screen_process import start_screen_build
build = start_screen_build(load_project(sys.argv[1]), record=sys.argv[2])
print(build.process.pid, flush=True)
time.sleep(600)
"""


def test_kill_9_of_the_parent_leaves_no_screen_process(tiny, tmp_path):
    # Enough patients that building their screen takes a while after the child has armed.
    rows = [f"Q{i:07d},40-64,M," for i in range(600_000)]
    patients = tiny / "data" / "patients.csv"
    patients.write_text(patients.read_text() + "\n".join(rows) + "\n")
    record = tmp_path / "run.lock"
    record.write_text("")
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tiny), str(record)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    child = 0
    try:
        child = int(parent.stdout.readline())
        # Once the child has added itself to the record it is armed and building.
        assert _wait_until(lambda: "screen" in record.read_text(), 120), "the child never armed"
        assert _alive(child), "the child finished before the test could kill its parent"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(30)
        assert _wait_until(lambda: not _alive(child), DEATH_BOUND), "the child outlived qi run"
        assert not screen_saved(load_project(tiny))  # it died before saving a screen
    finally:
        for pid in (parent.pid, child):
            if pid and _alive(pid):
                os.kill(pid, signal.SIGKILL)
