"""Execute one notebook with papermill, in a worker process or thread: :func:`execute_task`.

Execution goes through papermill's Python API with a small papermill engine
(``WarmKernelEngine``, registered as ``qi-warm``) that hands papermill the worker's running
kernel (:mod:`qi_helpers.run.warm_kernel`) and a deadline for the whole notebook. The executed
notebook is written to a temporary file, normalised and renamed into place
(:mod:`qi_helpers.run.notebooks`); a failed one is kept beside the last good one, never over it.

papermill and nbformat are imported inside the functions that use them: they are slow to import,
the runner imports this module, and deciding that nothing needs to run must stay fast.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qi_helpers.errors import KernelStartError
from qi_helpers.io import write_text
from qi_helpers.run.notebooks import (
    mark_interrupted,
    normalise_notebook,
    started_cells,
    task_log,
    write_notebook,
)
from qi_helpers.run.warm_kernel import (
    KERNEL_START_ATTEMPTS,
    KERNEL_START_TIMEOUT,
    WarmKernel,
    backoff,
    own_event_loop,
    thread_kernel,
)


# --------------------------------------------------------------------------------------------
# The papermill engine
# --------------------------------------------------------------------------------------------
def _register_engine() -> None:
    # papermill is slow to import and only a worker needs it (see the module's docstring).
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class WarmKernelEngine(NBClientEngine):
        """papermill's nbclient engine, given a running kernel and a deadline for the notebook.

        ``qi_kernel`` (a :class:`WarmKernel`, optional: without it papermill starts a kernel),
        ``qi_deadline`` (``time.monotonic()`` by which the whole notebook must be done) and
        ``qi_holder`` (a dict that receives the notebook as it runs, so a notebook that times out
        or whose kernel dies is still kept with its outputs so far).
        """

        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            qi_kernel=None,
            qi_deadline=None,
            qi_holder=None,
            **kwargs,
        ):
            kwargs.pop("input_path", None)
            if qi_deadline is not None:
                kwargs["timeout_func"] = lambda cell: max(
                    1, math.ceil(qi_deadline - time.monotonic())
                )
            client = PapermillNotebookClient(
                nb_man,
                km=qi_kernel.km if qi_kernel is not None else None,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logging.getLogger("papermill"),
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
                **kwargs,
            )
            if qi_kernel is not None:
                client.kc = qi_kernel.kc
            if qi_holder is not None:
                qi_holder["nb"] = nb_man.nb
            return client.execute()

    papermill_engines.register("qi-warm", WarmKernelEngine)


_ENGINE_LOCK = threading.Lock()
_ENGINE_READY = False


def _ensure_engine() -> None:
    global _ENGINE_READY
    with _ENGINE_LOCK:
        if not _ENGINE_READY:
            _register_engine()
            _ENGINE_READY = True


def _papermill_quiet() -> None:
    for name in ("papermill", "traitlets", "nbclient"):
        logging.getLogger(name).setLevel(logging.WARNING)


# --------------------------------------------------------------------------------------------
# One notebook
# --------------------------------------------------------------------------------------------
@dataclass
class _Job:
    """One notebook to execute, and where papermill writes it while it runs."""

    input_path: str
    running: Path
    parameters: dict[str, Any]
    cwd: str
    timeout: float | None
    kernel: WarmKernel | None
    preload: list[str] | tuple[str, ...]
    kernel_name: str


@dataclass
class _Outcome:
    """What executing a notebook gave so far: status, error, log lines and timings."""

    status: str = "ok"
    error: str = ""
    log: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=lambda: {"prepare": 0.0, "execute": 0.0})
    #: Receives the notebook as papermill runs it (see ``WarmKernelEngine``).
    holder: dict[str, Any] = field(default_factory=dict)

    def fail(self, error: str) -> None:
        self.status, self.error = "failed", error


def execute_task(
    input_path: str,
    output_path: str,
    failed_path: str,
    parameters: dict[str, Any],
    cwd: str,
    timeout: float | None,
    *,
    warm: bool = False,
    preload: list[str] | tuple[str, ...] = (),
    log_path: str | None = None,
    label: str = "",
    kernel_name: str = "python3",
) -> dict[str, Any]:
    """Execute one notebook in this process (or thread) with papermill.

    The executed notebook is written to a temporary file, normalised (see
    :func:`qi_helpers.run.notebooks.normalise_notebook`) and renamed to ``output_path`` on
    success; on failure it is renamed to ``failed_path`` instead, so the last good notebook stays
    in place. A kernel that fails to start is retried with back-off; a notebook still running
    after ``timeout`` seconds is stopped and reported as failed with its outputs so far.

    Parameters
    ----------
    input_path, output_path, failed_path : str
        The workbook, where its executed notebook goes, and where a failed one goes.
    parameters : dict
        papermill parameters.
    cwd : str
        The notebook's working folder.
    timeout : float or None
        Seconds the whole notebook may take (None: no limit).
    warm : bool
        Reuse this worker's warm kernel (see :class:`qi_helpers.run.warm_kernel.WarmKernel`)
        instead of starting a new one.
    preload : list of str
        Modules a warm kernel imports before the notebook (normally those the workbooks import).
    log_path : str, optional
        Where to write this task's log: kernel starts, each cell's status, duration, printed
        output and errors.
    label : str
        The task's name in the log.
    kernel_name : str
        The Jupyter kernel.

    Returns
    -------
    dict
        ``status`` (``"ok"``/``"failed"``), ``output``, ``seconds``, ``error`` and ``timings``
        (``prepare``: kernel start, reset and imports; ``execute``: the notebook's own cells).
    """
    _papermill_quiet()
    _ensure_engine()
    start = time.perf_counter()
    out = Path(output_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    running = out.with_name(f".running-{os.getpid()}-{threading.get_ident()}-{out.name}")
    kernel = thread_kernel(kernel_name) if warm else None
    if kernel is None:
        own_event_loop()
    job = _Job(input_path, running, parameters, cwd, timeout, kernel, preload, kernel_name)
    outcome = _Outcome()
    try:
        _execute_with_retries(job, outcome)
        final = out if outcome.status == "ok" else Path(failed_path)
        _keep(job, outcome, final, log_path, label)
        if outcome.status == "ok":
            Path(failed_path).unlink(missing_ok=True)
    finally:
        running.unlink(missing_ok=True)
    return {
        "status": outcome.status,
        "output": str(final),
        "seconds": time.perf_counter() - start,
        "error": outcome.error[:2000],
        "timings": outcome.timings,
    }


def _execute_with_retries(job: _Job, outcome: _Outcome) -> None:
    """Execute the notebook, again when its kernel fails before the first cell."""
    from papermill.exceptions import PapermillExecutionError  # slow: see the module's docstring

    for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
        outcome.holder.clear()
        try:
            _execute_once(job, outcome)
            return
        except PapermillExecutionError as exc:  # the notebook raised: its own error
            outcome.fail(f"{exc.ename}: {exc.evalue}".strip())
            outcome.log.append(f"cell {exc.exec_count} raised {exc.ename}")
            return
        except KernelStartError as exc:
            outcome.fail(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - reported, never raised to the pool
            if not _try_again(job, outcome, exc, attempt):
                return


def _execute_once(job: _Job, outcome: _Outcome) -> None:
    """Prepare the warm kernel (if any) and let papermill execute the notebook."""
    import papermill as pm  # slow to import: see the module's docstring

    if job.kernel is not None:
        outcome.timings["prepare"] += job.kernel.prepare(job.cwd, list(job.preload), outcome.log)
    began = time.perf_counter()
    deadline = time.monotonic() + job.timeout if job.timeout else None
    pm.execute_notebook(
        job.input_path,
        str(job.running),
        parameters=job.parameters,
        engine_name="qi-warm",
        # A warm kernel already runs in cwd; papermill's chdir would move the whole process,
        # which threads (Dask) share.
        cwd=None if job.kernel is not None else job.cwd,
        progress_bar=False,
        request_save_on_cell_execute=False,
        kernel_name=job.kernel_name,
        start_timeout=KERNEL_START_TIMEOUT,
        qi_kernel=job.kernel,
        qi_deadline=deadline,
        qi_holder=outcome.holder,
    )
    outcome.timings["execute"] += time.perf_counter() - began


def _try_again(job: _Job, outcome: _Outcome, exc: Exception, attempt: int) -> bool:
    """After papermill stopped with ``exc``: wait and return True to try again, or record why.

    The kernel is never reused. A notebook stopped before its first cell (its kernel failed)
    is tried again while attempts are left; otherwise the notebook so far is kept with the
    error in the cell that was running.
    """
    import nbformat  # slow to import: see the module's docstring

    message = f"{type(exc).__name__}: {exc}".strip()
    if job.kernel is not None:
        job.kernel.shutdown()  # timed out or died: never reuse it
    if started_cells(outcome.holder.get("nb")) == 0 and attempt < KERNEL_START_ATTEMPTS:
        outcome.log.append(f"kernel failed before the first cell (attempt {attempt}): {message}")
        time.sleep(backoff(attempt))
        return True
    error = message
    if isinstance(exc, TimeoutError) and job.timeout:
        error = f"the notebook did not finish within {job.timeout:g} seconds ({message})"
    outcome.fail(error)
    if outcome.holder.get("nb") is not None:
        mark_interrupted(outcome.holder["nb"], error)
        nbformat.write(outcome.holder["nb"], str(job.running))
    return False


def _keep(job: _Job, outcome: _Outcome, final: Path, log_path: str | None, label: str) -> None:
    """Write the task's log, and the executed notebook (normalised) to ``final``."""
    import nbformat  # slow to import: see the module's docstring

    if job.running.exists():
        nb = nbformat.read(str(job.running), as_version=4)
        outcome.log.append(
            f"timings: prepare {outcome.timings['prepare']:.2f}s (kernel start, reset, imports), "
            f"execute {outcome.timings['execute']:.2f}s"
        )
        if log_path:
            text = task_log(label, nb, outcome.log, outcome.status, outcome.error)
            write_text(Path(log_path), text)
        nb = normalise_notebook(nb)
        nb.metadata.get("papermill", {})["output_path"] = str(final)
        write_notebook(nb, final)
    elif log_path:
        write_text(
            Path(log_path), task_log(label, None, outcome.log, outcome.status, outcome.error)
        )
