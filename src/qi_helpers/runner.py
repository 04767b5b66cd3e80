"""Run the collection of workbooks: 01, 02, 03 once per microsystem, 04, then publish.

Notebooks are executed with papermill's Python API inside a pool of worker processes (never one
command-line process per notebook), each output written to a temporary file and renamed, so a
failed or interrupted run never replaces a good executed notebook with a broken one.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

from qi_helpers.errors import QIError
from qi_helpers.privacy import inside, safe_filename
from qi_helpers.project import Project

#: The workbooks of the method, in the order they run.
WORKBOOKS: dict[str, str] = {
    "01": "01_identify_microsystems",
    "02": "02_select_pilots",
    "03": "03_analyse_tests",
    "04": "04_plan_spread",
}

#: Notebook output kept for a failed task, next to (never over) the last good one.
FAILED_SUFFIX = ".failed.ipynb"


class RunError(QIError):
    """One or more workbooks failed; the others' outputs were written."""


@dataclass
class Task:
    """One notebook execution.

    Attributes
    ----------
    workbook : str
        ``"01"`` to ``"04"``.
    name : str
        The executed notebook's file stem (the workbook's name, or the microsystem id for 03).
    parameters : dict
        papermill parameters.
    """

    workbook: str
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """A short label for progress and logs, e.g. ``03:NOR-PC1``."""
        return f"{self.workbook}:{self.name}"


@dataclass
class TaskResult:
    """What happened to one task."""

    workbook: str
    name: str
    status: str  # "ok" or "failed"
    output: str
    seconds: float
    error: str = ""


def notebook_output_path(project: Project, task: Task, *, failed: bool = False) -> Path:
    """Where a task's executed notebook goes: ``outputs/notebooks/<workbook>/<name>.ipynb``."""
    folder = project.notebooks_dir / WORKBOOKS[task.workbook]
    stem = safe_filename(task.name)
    path = folder / (stem + (FAILED_SUFFIX if failed else ".ipynb"))
    return inside(project.notebooks_dir, path)


def normalise_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove what differs from run to run (timestamps, durations, random ids) from a notebook.

    papermill records start and end times and durations in the notebook and cell metadata, and the
    injected-parameters cell gets a random id; without this, two runs on the same inputs would give
    different bytes.
    """
    pm = nb.metadata.get("papermill", {})
    for key in ("start_time", "end_time", "duration"):
        pm.pop(key, None)
    for index, cell in enumerate(nb.cells):
        cell_pm = cell.metadata.get("papermill")
        if cell_pm is not None:
            for key in ("start_time", "end_time", "duration"):
                cell_pm.pop(key, None)
        cell.metadata.pop("execution", None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"
        elif "id" in cell:
            cell["id"] = f"cell-{index:03d}"
    return nb


def _write_atomic_notebook(nb: nbformat.NotebookNode, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    nbformat.write(nb, str(tmp))
    os.replace(tmp, path)


def execute_task(
    input_path: str,
    output_path: str,
    failed_path: str,
    parameters: dict[str, Any],
    cwd: str,
    timeout: float | None,
) -> dict[str, Any]:
    """Execute one notebook in this process with papermill (used inside worker processes).

    The executed notebook is written to a temporary file, normalised, and renamed to
    ``output_path`` on success; on failure it is renamed to ``failed_path`` instead, so the last
    good notebook stays in place.

    Returns
    -------
    dict
        ``status`` (``"ok"``/``"failed"``), ``output``, ``seconds``, ``error``.
    """
    import papermill as pm

    logging.getLogger("papermill").setLevel(logging.WARNING)
    start = time.perf_counter()
    out = Path(output_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".running-{os.getpid()}-{out.name}")
    status, error = "ok", ""
    try:
        pm.execute_notebook(
            input_path,
            str(tmp),
            parameters=parameters,
            cwd=cwd,
            progress_bar=False,
            request_save_on_cell_execute=False,
            kernel_name="python3",
            execution_timeout=timeout,
        )
    except Exception as exc:  # noqa: BLE001 - any failure of the notebook is reported, not raised
        status = "failed"
        error = f"{type(exc).__name__}: {exc}".strip()[:2000]
    final = out if status == "ok" else Path(failed_path)
    if tmp.exists():
        nb = normalise_notebook(nbformat.read(str(tmp), as_version=4))
        nb.metadata.get("papermill", {})["output_path"] = str(final)
        _write_atomic_notebook(nb, final)
        tmp.unlink()
    if status == "ok":
        Path(failed_path).unlink(missing_ok=True)
    return {
        "status": status,
        "output": str(final),
        "seconds": time.perf_counter() - start,
        "error": error,
    }


def _submit(pool: ProcessPoolExecutor, project: Project, task: Task, timeout: float | None):
    source = project.workbooks_dir / f"{WORKBOOKS[task.workbook]}.ipynb"
    if not source.is_file():
        raise RunError(f"{source}: workbook not found.")
    # interactive=False: widgets show their static result, so reports need no kernel.
    params = {"project_root": str(project.root), "interactive": False, **task.parameters}
    return pool.submit(
        execute_task,
        str(source),
        str(notebook_output_path(project, task)),
        str(notebook_output_path(project, task, failed=True)),
        params,
        str(project.workbooks_dir),
        timeout,
    )


def registry_ids(project: Project) -> list[str]:
    """The microsystem ids in ``outputs/data/registry.parquet`` (written by workbook 01)."""
    path = project.data_dir / "registry.parquet"
    if not path.is_file():
        raise RunError(f"{path}: not found; workbook 01 must run first (`qi run --workbook 01`).")
    return pd.read_parquet(path, columns=["microsystem_id"])["microsystem_id"].astype(str).tolist()


def run(
    project: Project,
    *,
    jobs: int | None = None,
    workbooks: list[str] | None = None,
    microsystems: list[str] | None = None,
    timeout: float | None = 1800,
    echo=print,
) -> list[TaskResult]:
    """Execute the plan: 01, 02, 03 for every microsystem in the registry, 04.

    Parameters
    ----------
    project : Project
    jobs : int, optional
        Worker processes; default the number of CPUs.
    workbooks : list of str, optional
        Run only these workbooks (``"01"`` ... ``"04"``); default all.
    microsystems : list of str, optional
        Run workbook 03 only for these microsystem ids; default every registry row.
    timeout : float, optional
        Seconds a single cell may run.
    echo : callable
        Where progress lines go (``print`` by default; a no-op for quiet runs).

    Returns
    -------
    list of TaskResult
        Also written to ``outputs/run.json``. Workbook 03 and later are skipped (not run) when an
        earlier workbook they depend on failed.
    """
    wanted = set(workbooks or WORKBOOKS)
    unknown = wanted - set(WORKBOOKS)
    if unknown:
        raise RunError(f"unknown workbook(s) {sorted(unknown)}; choose from {list(WORKBOOKS)}.")
    jobs = max(1, jobs or os.cpu_count() or 1)
    results: list[TaskResult] = []
    started = time.perf_counter()
    # "spawn": each worker is a fresh interpreter, safe with the kernels' ZeroMQ threads.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:

        def run_batch(tasks: list[Task]) -> bool:
            futures = [(task, _submit(pool, project, task, timeout)) for task in tasks]
            ok = True
            for task, future in futures:
                outcome = future.result()
                result = TaskResult(task.workbook, task.name, **outcome)
                results.append(result)
                ok &= result.status == "ok"
                mark = "ok" if result.status == "ok" else "FAILED"
                echo(f"  {mark:6} {task.label:40} {result.seconds:6.1f}s  {result.output}")
                if result.error:
                    echo(f"         {result.error.splitlines()[0][:200]}")
            return ok

        upstream_ok = True
        for wb in ("01", "02"):
            if wb in wanted and upstream_ok:
                upstream_ok = run_batch([Task(wb, WORKBOOKS[wb])])
        if "03" in wanted and upstream_ok:
            ids = microsystems or registry_ids(project)
            run_batch([Task("03", ms, {"microsystem_id": ms}) for ms in ids])
        if "04" in wanted and upstream_ok:
            run_batch([Task("04", WORKBOOKS["04"])])
    write_manifest(project, results, seconds=time.perf_counter() - started)
    return results


def write_manifest(project: Project, results: list[TaskResult], *, seconds: float) -> Path:
    """Write ``outputs/run.json``: every task's status, output and duration."""
    from qi_helpers import __version__

    path = project.outputs_dir / "run.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "qi_helpers_version": __version__,
        "seconds": round(seconds, 1),
        "tasks": [asdict(r) | {"seconds": round(r.seconds, 2)} for r in results],
    }
    tmp = path.with_name(".run.json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
