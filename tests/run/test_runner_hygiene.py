"""Workers and kernels die with ``qi run`` however it ends, and never race the next run.

A ``kill -9`` of ``qi run`` used to leave its worker processes and their kernels running: they
went on executing the notebooks queued to them and wrote outputs long after, racing the next run.
These tests kill a real ``qi run`` and look at the processes it left (``/proc``), check that a new
run refuses to start while a process of an earlier one still runs, and check each layer of the
mechanism (:mod:`qi_helpers.run.processes`) on its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import make_tiny_project, set_microsystem

from qi_helpers.cli import main
from qi_helpers.project import load_project
from qi_helpers.run import runner
from qi_helpers.run.lock import project_lock

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc; the parent-death signal is Linux's"
)

#: Seconds a process may take to die once its parent is gone (it takes well under one).
DEATH_BOUND = 30.0
#: Seconds each workbook 03 notebook of the killed run sleeps.
SLEEP = 8
#: Microsystems (workbook 03 notebooks) of the killed run, on 2 workers.
UNITS = 5


# --------------------------------------------------------------------------------------------
# Looking at processes through /proc (independent of the code under test)
# --------------------------------------------------------------------------------------------
def _stat(pid: int) -> tuple[str, int, int] | None:
    """``(state, parent pid, start time)`` of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def _alive(pid: int, start: int) -> bool:
    """Whether this very process (pid and start time) still runs (a zombie has finished)."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in "ZXx" and stat[2] == start


def _all_processes() -> dict[int, tuple[str, int, int]]:
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (stat := _stat(int(name))) is not None:
            table[int(name)] = stat
    return table


def _descendants(root: int) -> dict[int, int]:
    """``{pid: start time}`` of every process below ``root``."""
    table = _all_processes()
    found: dict[int, int] = {}
    frontier = {root}
    while frontier:
        children = {pid for pid, (_, ppid, _) in table.items() if ppid in frontier}
        children -= set(found)
        for pid in children:
            found[pid] = table[pid][2]
        frontier = children
    return found


def _tied_to(folder: Path) -> dict[int, int]:
    """``{pid: start time}`` of processes whose environment or command line names ``folder``."""
    needle = str(folder).encode()
    tied = {}
    for pid, (state, _, start) in _all_processes().items():
        if pid == os.getpid() or state in "ZXx":
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            environ = b""
        if needle in environ or needle in _cmdline(pid).encode():
            tied[pid] = start
    return tied


def _wait_until(condition, bound: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def _kill_all(processes: dict[int, int]) -> None:
    """Clean up after a failure: kill what is still running (checked by start time)."""
    for pid, start in processes.items():
        if _alive(pid, start):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _files(folder: Path) -> dict[str, int]:
    """``{relative path: mtime_ns}`` of every file under ``folder`` (hidden ones included)."""
    if not folder.is_dir():
        return {}
    return {
        p.relative_to(folder).as_posix(): p.stat().st_mtime_ns
        for p in folder.rglob("*")
        if p.is_file()
    }


def _record_entry(role: str, pid: int, start: int | None) -> str:
    """A line of the run's process record (``outputs/.run.lock``), as runs write them."""
    entry = {"pid": pid, "role": role, "start": start, "cmdline": _cmdline(pid)}
    return json.dumps(entry) + "\n"


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------
@pytest.fixture
def slow(demo_project, tmp_path):
    """A tiny project whose registry exists and whose 03 notebooks each sleep ``SLEEP`` s."""
    root = make_tiny_project(tmp_path / "project", demo_project / "data" / "demo", units=UNITS)
    project = load_project(root)
    runner.run(project, workbooks=["01"], jobs=1, echo=lambda *a: None)
    for ms in runner.registry_ids(project):
        set_microsystem(root, ms, sleep=SLEEP)
    return root


def _executors():
    params = [pytest.param([], id="process-pool")]
    try:
        import distributed  # noqa: F401

        params.append(pytest.param(["--cluster", "local"], id="dask-local-cluster"))
    except ImportError:  # pragma: no cover - the cluster extra is part of the dev install
        pass
    return params


# --------------------------------------------------------------------------------------------
# kill -9 of qi run
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("executor", _executors())
def test_kill_9_of_qi_run_leaves_no_worker_or_kernel_and_no_late_output(slow, tmp_path, executor):
    outputs = slow / "outputs"
    log = (tmp_path / "qi-run.log").open("w")
    # 5 notebooks on 2 workers: once the first has finished, two run while the others wait.
    proc = subprocess.Popen(
        [sys.executable, "-m", "qi_helpers.cli", "run", "--project", str(slow)]
        + ["--workbook", "03", "--jobs", "2", "--quiet", *executor],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    seen: dict[int, int] = {}
    try:

        def first_notebook_done() -> bool:
            # run.json is replaced atomically as each notebook finishes.
            seen.update(_descendants(proc.pid))
            if proc.poll() is not None:
                return True
            try:
                tasks = json.loads((outputs / "run.json").read_text())["tasks"]
            except (OSError, ValueError, KeyError):
                return False
            return any(t["workbook"] == "03" and not t["skipped"] for t in tasks)

        assert _wait_until(first_notebook_done, 600, step=0.2), "no 03 notebook finished"
        assert proc.poll() is None, "the run ended before it could be killed"
        seen.update(_descendants(proc.pid))
        # multiprocessing's resource tracker only unlinks leaked semaphores and exits once the
        # last worker is gone; it never runs a notebook.
        watched = {
            pid: start
            for pid, start in seen.items()
            if "multiprocessing.resource_tracker" not in _cmdline(pid)
        }
        assert sum("ipykernel" in _cmdline(pid) for pid in watched) >= 1
        killed_at = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)  # only qi run itself, as `kill -9 PID` does
        proc.wait()

        assert _wait_until(
            lambda: not any(_alive(pid, start) for pid, start in watched.items()), DEATH_BOUND
        ), "survivors: " + "; ".join(
            f"{pid} {_cmdline(pid)}" for pid, start in watched.items() if _alive(pid, start)
        )
        tied = _tied_to(slow)
        assert not tied, f"processes of the killed run still running: {tied}"

        # What the run wrote until its processes died is measured from here: a notebook of the
        # first pair may finish in the instant between the kill and its worker's death (two
        # notebooks started together finish together), which no new run can race, because a new
        # run waits for every recorded process to be gone. A survivor the watch missed would
        # still finish its notebook within SLEEP seconds of the kill and write it.
        before = _files(outputs / "notebooks") | _files(outputs / "data" / "results")

        def wrote() -> bool:
            now = _files(outputs / "notebooks") | _files(outputs / "data" / "results")
            return now != before

        remaining = max(0.0, SLEEP + 2 - (time.monotonic() - killed_at))
        assert not _wait_until(wrote, remaining, step=0.2), "outputs written after the kill"
    finally:
        log.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _kill_all(seen)

    # The record left by the killed run is stale: the next run may start.
    with project_lock(load_project(slow)):
        pass


# --------------------------------------------------------------------------------------------
# A new run and the processes of an earlier one
# --------------------------------------------------------------------------------------------
@pytest.fixture
def tiny(demo_project, tmp_path):
    return make_tiny_project(tmp_path / "project", demo_project / "data" / "demo", units=1)


def test_a_run_refuses_to_start_while_a_worker_of_an_earlier_run_still_runs(tiny, capsys):
    lock = tiny / "outputs" / ".run.lock"
    lock.parent.mkdir(parents=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    worker = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)"],
        env=os.environ | {"QI_RUN_RECORD": str(lock)},
    )
    try:
        assert _wait_until(lambda: _stat(worker.pid) is not None, 10)
        start = _stat(worker.pid)[2]
        # The qi run of that earlier run was killed; its worker still runs.
        lock.write_text(
            _record_entry("qi run", gone.pid, None) + _record_entry("worker", worker.pid, start)
        )
        code = main(["run", "--project", str(tiny), "--workbook", "01", "--quiet"])
        err = capsys.readouterr().err
        assert code == 1
        assert f"PID {worker.pid} (worker" in err
        assert f"kill {worker.pid}" in err, "says how to stop it"
        assert str(gone.pid) not in err.replace(str(worker.pid), ""), "a dead pid is not named"
        assert not (tiny / "outputs" / "notebooks").exists(), "nothing ran"
        assert worker.poll() is None, "the run does not kill processes it did not start"
    finally:
        worker.kill()
        worker.wait()

    # Once it has gone, its entry is stale: the run goes ahead.
    assert main(["run", "--project", str(tiny), "--workbook", "01", "--quiet"]) == 0
    assert (tiny / "outputs" / "notebooks" / "01_identify_microsystems").is_dir()


def test_a_reused_pid_in_the_record_is_not_taken_for_a_worker(tiny):
    lock = tiny / "outputs" / ".run.lock"
    lock.parent.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        assert _wait_until(lambda: _stat(other.pid) is not None, 10)
        # Same pid, another start time: the recorded worker ended and the pid was reused.
        lock.write_text(_record_entry("worker", other.pid, _stat(other.pid)[2] - 1))
        with project_lock(load_project(tiny)):
            entries = [json.loads(line) for line in lock.read_text().splitlines()]
            assert [(e["pid"], e["role"]) for e in entries] == [(os.getpid(), "qi run")]
        assert lock.read_text() == "", "the record is emptied when the run ends"
    finally:
        other.kill()
        other.wait()


# --------------------------------------------------------------------------------------------
# Each layer on its own
# --------------------------------------------------------------------------------------------
def _probe_worker(cwd: str, report: str) -> dict:
    """Runs in a pool worker: start its warm kernel, and report how both are armed."""
    import threading

    from jupyter_core.utils import run_sync

    from qi_helpers.run import processes as _processes
    from qi_helpers.run import warm_kernel

    warm_kernel.warm_up(cwd, [])
    kernel = warm_kernel.thread_kernel("python3")
    code = (
        "import json, os, threading\n"
        "from qi_helpers.run import processes as _processes\n"
        f"open({report!r}, 'w').write(json.dumps({{"
        "'signal': _processes.parent_death_signal(), 'pid': os.getpid(),"
        "'group_leader': os.getpgrp() == os.getpid(),"
        "'threads': [t.name for t in threading.enumerate()]}))\n"
    )
    assert not run_sync(kernel._run)(code, 60)
    return {
        "pid": os.getpid(),
        "signal": _processes.parent_death_signal(),
        "threads": [t.name for t in threading.enumerate()],
        "record": os.environ.get(_processes.RECORD_ENV),
        "kernel": kernel.km.provisioner.pid,
    }


def test_workers_and_their_kernels_are_armed_and_a_kernel_dies_with_its_worker(tmp_path):
    from qi_helpers.run import executors
    from qi_helpers.run import processes as _processes

    lock = tmp_path / ".run.lock"
    lock.touch()
    report = tmp_path / "kernel.json"
    with executors.open_workers(1, record=lock) as workers:
        info = workers.executor.submit(_probe_worker, str(tmp_path), str(report)).result(300)
        kernel = json.loads(report.read_text())
        assert info["signal"] == signal.SIGKILL, "the worker dies when qi run does"
        assert "qi-parent-watch" in info["threads"]
        assert info["record"] == str(lock)
        assert kernel["pid"] == info["kernel"]
        assert kernel["signal"] == signal.SIGKILL, "the kernel dies when its worker does"
        assert kernel["group_leader"], "the kernel's session can be killed as a whole"
        assert "qi-parent-watch" in kernel["threads"]
        recorded = {(e.pid, e.role) for e in _processes.parse_record(lock.read_text())}
        assert {(info["pid"], "worker"), (info["kernel"], "kernel")} <= recorded

        kernel_start = _stat(info["kernel"])[2]
        os.kill(info["pid"], signal.SIGKILL)
        assert _wait_until(lambda: not _alive(info["kernel"], kernel_start), DEATH_BOUND)


_WATCHED_CHILD = """
import os, subprocess, sys, time
from qi_helpers.run import processes as _processes
# Only the watch: no parent-death signal.
_processes.set_parent_death_signal = lambda *args: False
os.environ["JPY_PARENT_PID"] = str(os.getppid())
_processes.arm_kernel()
grandchild = subprocess.Popen(["sleep", "300"])
print(os.getpid(), grandchild.pid, flush=True)
time.sleep(300)
"""

_MIDDLE = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], start_new_session=True)
time.sleep(300)
"""


def test_the_parent_watch_alone_kills_an_orphaned_kernel_and_what_it_started(tmp_path):
    out = tmp_path / "pids.txt"
    with out.open("w") as handle:
        middle = subprocess.Popen(
            [sys.executable, "-c", _MIDDLE, _WATCHED_CHILD], stdout=handle, start_new_session=True
        )
    processes: dict[int, int] = {}
    try:
        assert _wait_until(lambda: len(out.read_text().split()) == 2, 60)
        child, grandchild = (int(p) for p in out.read_text().split())
        processes = {pid: _stat(pid)[2] for pid in (child, grandchild)}
        os.kill(middle.pid, signal.SIGKILL)
        middle.wait()
        assert _wait_until(
            lambda: not any(_alive(pid, start) for pid, start in processes.items()), DEATH_BOUND
        ), "the orphaned kernel's session survived"
    finally:
        if middle.poll() is None:
            middle.kill()
            middle.wait()
        _kill_all(processes)
