"""Batch runs of the workbooks (``qi run``): what reruns and why, where notebooks run, and how.

``run/`` executes workbook 01, then 02 and workbook 03 once per microsystem, then 04, and
publishes the site; it skips every task whose workbook, parameters, inputs and ``qi_helpers``
code are unchanged since its last successful run, records each finished task in
``outputs/run.json`` at once, runs notebooks on warm kernels in a local process pool or on Dask,
and makes sure no worker or kernel outlives the run.

Modules:

- ``runner``: :func:`run` and :func:`plan` (``qi run --dry-run``): the scheduling loop.
- ``planning``: fingerprints, the run-or-skip decision, the :class:`Plan` shown by a dry run.
- ``tasks``: :class:`Task`, :class:`TaskResult`, their output and log paths, the run's errors.
- ``manifest``: ``outputs/run.json`` and the registry's microsystem ids.
- ``digest``: what changed since the last run (``outputs/digest.json``) and the snapshot it is
  compared with.
- ``lock``: one run at a time per project; temporary files of an interrupted run.
- ``progress``: the progress bar.
- ``executors``: :func:`open_workers`, a local process pool or Dask distributed.
- ``execute``: :func:`execute_task`, one notebook with papermill on a warm kernel.
- ``warm_kernel``: the kernel each worker starts once and reuses.
- ``notebooks``: normalising, marking, logging and writing executed notebooks.
- ``kernel``: runs inside each warm kernel to reset it between notebooks.
- ``processes``: workers and kernels die with ``qi run`` (parent-death signal, parent watch,
  process record).
- ``screen_process``: the identifier screen built and saved in a short-lived child process
  before the first notebook (its memory goes back to the system when it exits).

The public names are imported on first use: every kernel and every Dask worker imports
``qi_helpers.run.kernel`` or ``qi_helpers.run.processes`` (standard library only), which
imports this package first, and must not load pandas, papermill and the runner with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qi_helpers.errors import (
        ExecutorError,
        InvalidInputs,
        KernelStartError,
        ProcessesStillRunning,
        RunError,
    )
    from qi_helpers.run.execute import execute_task
    from qi_helpers.run.executors import Workers, open_workers
    from qi_helpers.run.manifest import read_manifest, registry_ids, write_manifest
    from qi_helpers.run.notebooks import normalise_notebook
    from qi_helpers.run.planning import Plan, Step
    from qi_helpers.run.runner import plan, run
    from qi_helpers.run.tasks import Task, TaskResult, log_path, notebook_output_path

__all__ = [
    "ExecutorError",
    "InvalidInputs",
    "KernelStartError",
    "Plan",
    "ProcessesStillRunning",
    "RunError",
    "Step",
    "Task",
    "TaskResult",
    "Workers",
    "execute_task",
    "log_path",
    "normalise_notebook",
    "notebook_output_path",
    "open_workers",
    "plan",
    "read_manifest",
    "registry_ids",
    "run",
    "write_manifest",
]

#: The module each public name lives in (relative to this package, or a full name).
_HOMES = {
    "ExecutorError": "qi_helpers.errors",
    "InvalidInputs": "qi_helpers.errors",
    "KernelStartError": "qi_helpers.errors",
    "Plan": "planning",
    "ProcessesStillRunning": "qi_helpers.errors",
    "RunError": "qi_helpers.errors",
    "Step": "planning",
    "Task": "tasks",
    "TaskResult": "tasks",
    "Workers": "executors",
    "execute_task": "execute",
    "log_path": "tasks",
    "normalise_notebook": "notebooks",
    "notebook_output_path": "tasks",
    "open_workers": "executors",
    "plan": "runner",
    "read_manifest": "manifest",
    "registry_ids": "manifest",
    "run": "runner",
    "write_manifest": "manifest",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = home if "." in home else f"{__name__}.{home}"
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
