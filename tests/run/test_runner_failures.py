"""A failing, hanging or interrupted notebook never costs the others or a good report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import nbformat
import pytest
from support import make_tiny_project, set_microsystem

from qi_helpers.cli import main
from qi_helpers.errors import ProcessesStillRunning
from qi_helpers.project import load_project
from qi_helpers.run import runner, warm_kernel


@pytest.fixture
def tiny(demo_project, tmp_path):
    return make_tiny_project(tmp_path / "project", demo_project / "data" / "demo", units=3)


def _hidden_temporaries(root):
    return [
        p
        for p in (root / "outputs").rglob(".*")
        if p.is_file() and (".tmp-" in p.name or p.name.startswith(".running-"))
    ]


def test_a_failing_notebook_stops_only_its_dependents_and_its_error_is_published(tiny, capsys):
    p = load_project(tiny)
    runner.run(p, workbooks=["01"], echo=lambda *a: None)
    ids = runner.registry_ids(p)
    set_microsystem(tiny, ids[1], fail=True)

    code = main(["run", "--project", str(tiny), "--jobs", "2", "--quiet"])
    captured = capsys.readouterr()
    assert code == 1
    assert f"03:{ids[1]}" in captured.err and "planted failure" in captured.err
    assert f"outputs/logs/03_analyse_tests/{ids[1]}.log" in captured.err
    status = {
        (t["workbook"], t["name"]): t["status"]
        for t in json.loads((tiny / "outputs" / "run.json").read_text())["tasks"]
    }
    assert status[("03", ids[0])] == status[("03", ids[2])] == status[("02", "02_select_pilots")]
    assert status[("03", ids[0])] == "ok"
    assert status[("03", ids[1])] == "failed"
    assert status[("04", "04_plan_spread")] == "blocked", "04 reads every 03 result"

    failed = tiny / "outputs" / "notebooks" / "03_analyse_tests" / f"{ids[1]}.failed.ipynb"
    errors = [
        o
        for c in nbformat.read(str(failed), as_version=4).cells
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert errors and "planted failure" in errors[0]["evalue"]
    log = (tiny / "outputs" / "logs" / "03_analyse_tests" / f"{ids[1]}.log").read_text()
    assert "ValueError" in log and "status: failed" in log
    site = tiny / "outputs" / "site"
    failed_pages = list(site.rglob(f"{ids[1]}.failed.html"))
    assert failed_pages, "the failed run's report is published"
    assert failed_pages[0].relative_to(site).as_posix() in (site / "index.html").read_text()

    # Fixing the parameter file reruns the failed notebook and what it blocked, nothing else.
    set_microsystem(tiny, ids[1])
    results = runner.run(p, jobs=2, echo=lambda *a: None)
    ran = {r.label for r in results if not r.skipped}
    assert ran == {f"03:{ids[1]}", "04"}
    assert all(r.status == "ok" for r in results)
    assert not failed.exists(), "the failed notebook goes once the task succeeds"


def test_a_notebook_that_runs_too_long_is_stopped_and_the_next_one_still_runs(tiny):
    p = load_project(tiny)
    runner.run(p, workbooks=["01"], echo=lambda *a: None)
    ids = runner.registry_ids(p)
    set_microsystem(tiny, ids[0], sleep=120)
    results = runner.run(p, jobs=1, workbooks=["03"], timeout=8, echo=lambda *a: None)
    by_label = {r.label: r for r in results}
    slow = by_label[f"03:{ids[0]}"]
    assert slow.status == "failed"
    assert "did not finish within 8 seconds" in slow.error
    assert slow.seconds < 100
    failed = tiny / "outputs" / "notebooks" / "03_analyse_tests" / f"{ids[0]}.failed.ipynb"
    assert "NotebookStopped" in failed.read_text()
    # One worker: the same process ran the others, with a new kernel.
    assert by_label[f"03:{ids[1]}"].status == by_label[f"03:{ids[2]}"].status == "ok"


def test_a_run_killed_part_way_resumes_where_it_stopped(tiny):
    units = 4
    tiny_root = tiny
    config = tiny_root / "parameters" / "project.yaml"
    config.write_text(config.read_text().replace("max_units: 3", f"max_units: {units}"))
    p = load_project(tiny_root)
    runner.run(p, workbooks=["01"], echo=lambda *a: None)
    for ms in runner.registry_ids(p):
        set_microsystem(tiny_root, ms, sleep=3)
    manifest = tiny_root / "outputs" / "run.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "qi_helpers.cli", "run", "--project", str(tiny_root)]
        + ["--jobs", "1", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    finished: list[str] = []
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            tasks = json.loads(manifest.read_text())["tasks"]
        except (OSError, ValueError):  # pragma: no cover - the manifest is replaced atomically
            raise AssertionError("run.json must always be readable") from None
        finished = [t["name"] for t in tasks if t["workbook"] == "03" and not t["skipped"]]
        if len(finished) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)  # as a power cut would: no clean-up at all
    proc.wait()

    for path in (tiny_root / "outputs" / "notebooks").rglob("*.ipynb"):
        if not path.name.startswith("."):
            nbformat.read(str(path), as_version=4)  # every visible notebook is whole
    record = json.loads(manifest.read_text())
    assert record["complete"] is False

    # The killed run's kernels die with it, but not at once on a busy machine: until they are
    # gone, `qi run` refuses to start (they could still write outputs); then it resumes.
    deadline = time.monotonic() + 60
    while True:
        try:
            results = runner.run(p, jobs=1, echo=lambda *a: None)
            break
        except ProcessesStillRunning:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    ran = {r.name for r in results if r.workbook == "03" and not r.skipped}
    skipped = {r.name for r in results if r.workbook == "03" and r.skipped}
    assert set(finished) <= skipped, "finished tasks are not run again"
    assert ran and ran.isdisjoint(finished)
    assert len(ran) + len(skipped) == units
    assert all(r.status == "ok" for r in results)
    assert not _hidden_temporaries(tiny_root)
    assert json.loads(manifest.read_text())["complete"] is True


def test_a_kernel_that_fails_to_start_is_retried_with_back_off(monkeypatch):
    calls = []

    async def flaky(self, cwd):
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise RuntimeError(
                "Kernel died before replying to kernel_info (address already in use)"
            )

    monkeypatch.setattr(warm_kernel, "KERNEL_START_BACKOFF", 0.05)
    monkeypatch.setattr(warm_kernel.WarmKernel, "_start", flaky)
    log: list[str] = []
    warm_kernel.WarmKernel().start("/", log)
    assert len(calls) == 3
    assert calls[2] - calls[1] > calls[1] - calls[0] > 0.04, "the wait grows between attempts"
    assert sum("failed to start" in line for line in log) == 2
    assert "kernel started (attempt 3)" in log


def test_a_kernel_that_never_starts_gives_an_error_that_says_what_to_check(monkeypatch):
    async def broken(self, cwd):
        raise RuntimeError("address already in use")

    monkeypatch.setattr(warm_kernel, "KERNEL_START_BACKOFF", 0.01)
    monkeypatch.setattr(warm_kernel.WarmKernel, "_start", broken)
    with pytest.raises(warm_kernel.KernelStartError, match="ipykernel is installed"):
        warm_kernel.WarmKernel().start("/", [])
