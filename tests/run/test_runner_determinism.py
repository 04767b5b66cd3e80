"""Same inputs, same bytes: reruns, warm kernels and Dask give identical notebooks and pages."""

from __future__ import annotations

import shutil

import pytest
from support import make_tiny_project

from qi_helpers.project import load_project
from qi_helpers.run import runner
from qi_helpers.workflow import WORKBOOKS


def _snapshot(root, *folders):
    files = {}
    for folder in folders:
        base = root / "outputs" / folder
        for path in sorted(base.rglob("*")):
            if path.is_file():
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


@pytest.fixture(scope="module")
def ran(demo_project, tmp_path_factory):
    root = make_tiny_project(tmp_path_factory.mktemp("det") / "p", demo_project / "data" / "demo")
    runner.run(load_project(root), jobs=2, publish=True, echo=lambda *a: None)
    return root


def test_forced_reruns_give_byte_identical_notebooks_and_pages(ran):
    first = _snapshot(ran, "notebooks", "site", "data")
    runner.run(load_project(ran), jobs=2, force=True, publish=True, echo=lambda *a: None)
    second = _snapshot(ran, "notebooks", "site", "data")
    assert first.keys() == second.keys()
    differ = [name for name in first if first[name] != second[name]]
    assert not differ, f"differ run to run: {differ}"


def test_a_warm_kernel_gives_the_notebook_a_fresh_kernel_gives(ran):
    """Reusing a kernel across notebooks must not change a single byte of any of them."""
    p = load_project(ran)
    warm = _snapshot(ran, "notebooks")
    tasks = [runner.Task("01", WORKBOOKS["01"].name), runner.Task("02", WORKBOOKS["02"].name)]
    tasks += [runner.Task("03", ms, {"microsystem_id": ms}) for ms in runner.registry_ids(p)]
    tasks += [runner.Task("04", WORKBOOKS["04"].name)]
    for task in tasks:
        out = runner.notebook_output_path(p, task)
        outcome = runner.execute_task(
            str(p.workbooks_dir / WORKBOOKS[task.workbook].notebook),
            str(out),
            str(runner.notebook_output_path(p, task, failed=True)),
            {"project_root": str(p.root), "interactive": False, **task.parameters},
            str(p.workbooks_dir),
            120,
            warm=False,
        )
        assert outcome["status"] == "ok", outcome["error"]
    fresh = _snapshot(ran, "notebooks")
    assert warm.keys() == fresh.keys()
    assert [n for n in warm if warm[n] != fresh[n]] == []


def test_a_dask_cluster_runs_the_same_tasks_with_the_same_results(ran, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    root = tmp_path / "dask"
    shutil.copytree(ran, root)
    expected = _snapshot(ran, "notebooks")
    # Threads in this process keep the test quick; `qi run --cluster local` uses processes.
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        results = runner.run(
            load_project(root),
            scheduler=cluster.scheduler_address,
            force=True,
            echo=lambda *a: None,
        )
    assert [r.status for r in results] == ["ok"] * len(results) and len(results) == 6
    assert all(not r.skipped for r in results)
    got = {name.replace("dask/", ""): data for name, data in _snapshot(root, "notebooks").items()}
    # Notebooks record their own path; compare them with the project folder's name replaced.
    got = {n: d.replace(str(root).encode(), str(ran).encode()) for n, d in got.items()}
    assert got == expected


@pytest.mark.slow
def test_real_workbooks_in_a_warm_kernel_match_fresh_kernels(demo_project, tmp_path):
    """The real 03 workbook (pandas, matplotlib, SPC charts) run twice in one warm kernel gives
    the bytes fresh kernels give."""
    root = tmp_path / "real"
    shutil.copytree(demo_project, root, ignore=shutil.ignore_patterns("outputs"))
    p = load_project(root)
    runner.run(p, workbooks=["01"], jobs=1, echo=lambda *a: None)
    ids = runner.registry_ids(p)[:2]
    results = runner.run(p, workbooks=["03"], microsystems=ids, jobs=1, echo=lambda *a: None)
    assert [r.status for r in results] == ["ok", "ok"]
    warm = _snapshot(root, "notebooks")
    for ms in ids:
        task = runner.Task("03", ms, {"microsystem_id": ms})
        outcome = runner.execute_task(
            str(p.workbooks_dir / "03_analyse_tests.ipynb"),
            str(runner.notebook_output_path(p, task)),
            str(runner.notebook_output_path(p, task, failed=True)),
            {"project_root": str(p.root), "interactive": False, "microsystem_id": ms},
            str(p.workbooks_dir),
            1800,
            warm=False,
        )
        assert outcome["status"] == "ok", outcome["error"]
    fresh = _snapshot(root, "notebooks")
    assert [n for n in warm if warm[n] != fresh[n]] == []


def test_qi_run_cluster_local_starts_a_dask_cluster_and_runs_the_plan(ran, tmp_path, capsys):
    pytest.importorskip("dask.distributed")
    from qi_helpers.cli import main

    root = tmp_path / "cluster"
    shutil.copytree(ran, root)
    assert main(["run", "--project", str(root), "--cluster", "local", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "6 notebooks: 0 ran, 6 up to date" in out
    assert "Dask" not in out, "nothing changed: no cluster is started"
    assert (
        main(["run", "--project", str(root), "--cluster", "local", "--jobs", "1", "--force"]) == 0
    )
    out = capsys.readouterr().out
    assert "Running on local Dask cluster" in out
    assert "6 notebooks: 6 ran, 0 up to date, 0 failed" in out
