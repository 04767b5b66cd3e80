"""Where notebooks run: papermill inside worker processes, each worker keeping a warm kernel.

Starting a Jupyter kernel and importing pandas, matplotlib and ``qi_helpers`` in it costs more
than most of our notebooks' own work, so each worker (a process of a local pool, or a Dask worker
thread) starts one kernel, imports the modules the workbooks use, and reuses it for every notebook
it is given; :mod:`qi_helpers._kernel` resets it between notebooks so each runs as in a fresh
kernel (a test compares the bytes). Execution goes through papermill's Python API with a small
papermill engine (:class:`WarmKernelEngine`) that hands papermill the running kernel.

Executors: a local :class:`concurrent.futures.ProcessPoolExecutor` (default), or Dask
distributed's ``Client.get_executor()`` for a local Dask cluster or an existing one
(``pip install 'qi-helpers[cluster]'``). Both are plain ``concurrent.futures`` executors, so the
runner's scheduling is the same on one laptop and on a cluster.

Workers and their kernels never outlive the ``qi run`` that started them, even after a
``kill -9`` of it: see :mod:`qi_helpers._processes` (parent-death signal, parent watch, the run's
process record), armed in :func:`_init_pool_worker` and :func:`_thread_kernel` for workers and
by :func:`qi_helpers._kernel.prepare` in kernels.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import multiprocessing
import multiprocessing.util
import os
import random
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qi_helpers import _processes
from qi_helpers.errors import QIError

if TYPE_CHECKING:  # nbformat is imported where notebooks are handled: it pulls in jsonschema,
    import nbformat  # slow to import, and deciding that nothing needs to run must stay fast.

#: How many times a kernel that fails to start is tried, and the first back-off in seconds
#: (doubled each time, with jitter so that workers do not retry in step).
KERNEL_START_ATTEMPTS = 4
KERNEL_START_BACKOFF = 1.0
#: Seconds to wait for a new kernel to answer.
KERNEL_START_TIMEOUT = 120.0
#: Seconds the reset and imports before a notebook may take in a warm kernel.
PREPARE_TIMEOUT = 300.0
#: A warm kernel is replaced after this many notebooks (memory fragmentation, leaked objects).
MAX_NOTEBOOKS_PER_KERNEL = 200

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class ExecutorError(QIError):
    """The executor (worker pool or Dask cluster) could not be started."""


class KernelStartError(QIError):
    """A kernel did not start after every retry."""


# --------------------------------------------------------------------------------------------
# Deterministic notebooks
# --------------------------------------------------------------------------------------------
_TIMING_KEYS = ("start_time", "end_time", "duration")


def normalise_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove what differs from run to run (timestamps, durations, random ids) from a notebook.

    papermill records start and end times and durations in the notebook and cell metadata; nbclient
    records execution timings per cell; cell ids are random; widget state and widget views carry
    random model ids. Without this, two runs on the same inputs would give different bytes.
    """
    pm = nb.metadata.get("papermill", {})
    for key in _TIMING_KEYS:
        pm.pop(key, None)
    # Widget state is only meaningful with a live kernel; reports show static output.
    nb.metadata.pop("widgets", None)
    model_ids: dict[str, str] = {}
    for index, cell in enumerate(nb.cells):
        cell_pm = cell.metadata.get("papermill")
        if cell_pm is not None:
            for key in _TIMING_KEYS:
                cell_pm.pop(key, None)
        cell.metadata.pop("execution", None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"
        elif "id" in cell:
            cell["id"] = f"cell-{index:03d}"
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if isinstance(view, dict) and "model_id" in view:
                old = view["model_id"]
                view["model_id"] = model_ids.setdefault(old, f"widget-{len(model_ids):04d}")
    return nb


def _write_atomic_notebook(nb: nbformat.NotebookNode, path: Path) -> None:
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        nbformat.write(nb, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_atomic_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Warm kernels
# --------------------------------------------------------------------------------------------
def _backoff(attempt: int) -> float:
    return KERNEL_START_BACKOFF * 2 ** (attempt - 1) * (1 + random.random() / 2)  # noqa: S311


class WarmKernel:
    """One running kernel reused for many notebooks (see :mod:`qi_helpers._kernel`).

    Parameters
    ----------
    kernel_name : str
        The Jupyter kernel to start (``python3``).
    """

    def __init__(self, kernel_name: str = "python3") -> None:
        self.kernel_name = kernel_name
        self.km: Any = None
        self.kc: Any = None
        self.notebooks = 0

    # All kernel calls go through jupyter_core's run_sync, which runs them on this thread's event
    # loop: the same loop nbclient (inside papermill) uses, so the client's sockets stay valid.
    async def _start(self, cwd: str) -> None:
        from jupyter_client.manager import AsyncKernelManager

        km = AsyncKernelManager(kernel_name=self.kernel_name)
        # The kernel's own console chatter (e.g. "running over TCP without encryption") would
        # garble the progress bar; what a notebook prints is captured in its outputs and log.
        await km.start_kernel(cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pid = getattr(km.provisioner, "pid", None)
        if pid:
            # The kernel is the leader of its own session (jupyter_client starts it so): if this
            # worker is told it is orphaned, it kills that whole group before exiting. The record
            # lets the next `qi run` see a kernel that somehow survived.
            _processes.track_child(pid)
            _processes.register("kernel", pid)
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=KERNEL_START_TIMEOUT)
        except BaseException:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)
            if pid:
                _processes.untrack_child(pid)
            raise
        self.km, self.kc, self.notebooks = km, kc, 0

    async def _run(self, code: str, timeout: float) -> list[str]:
        errors: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "error":
                errors.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")

        reply = await self.kc.execute_interactive(
            code, silent=True, store_history=False, timeout=timeout, output_hook=hook
        )
        if reply["content"]["status"] != "ok" and not errors:
            errors.append(str(reply["content"].get("evalue", reply["content"]["status"])))
        return errors

    async def _alive(self) -> bool:
        return self.km is not None and bool(await self.km.is_alive())

    async def _shutdown(self) -> None:
        km, kc = self.km, self.kc
        self.km = self.kc = None
        if kc is not None:
            kc.stop_channels()
        if km is not None:
            pid = getattr(km.provisioner, "pid", None)
            try:
                # now=True kills the kernel's whole process group (its session).
                await km.shutdown_kernel(now=True)
            finally:
                if pid:
                    _processes.untrack_child(pid)

    def start(self, cwd: str, log: list[str]) -> float:
        """Start the kernel, retrying with back-off when it fails to start.

        Returns
        -------
        float
            Seconds taken (all attempts).

        Raises
        ------
        KernelStartError
            After :data:`KERNEL_START_ATTEMPTS` failures, with the last error.
        """
        from jupyter_core.utils import run_sync

        began = time.perf_counter()
        for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
            try:
                run_sync(self._start)(cwd)
                log.append(f"kernel started (attempt {attempt})")
                return time.perf_counter() - began
            except Exception as exc:  # noqa: BLE001 - e.g. "address already in use", "died"
                message = f"{type(exc).__name__}: {exc}".strip()
                log.append(f"kernel failed to start (attempt {attempt}): {message}")
                if attempt == KERNEL_START_ATTEMPTS:
                    raise KernelStartError(
                        f"the {self.kernel_name} kernel did not start after {attempt} attempts; "
                        f"last error: {message}. Check that ipykernel is installed in this "
                        "environment and that the machine has free memory and ports."
                    ) from exc
                time.sleep(_backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def prepare(self, cwd: str, modules: list[str], log: list[str]) -> float:
        """Start the kernel if needed, then reset it and import ``modules`` for the next notebook.

        Returns
        -------
        float
            Seconds taken (including a kernel start).
        """
        from jupyter_core.utils import run_sync

        began = time.perf_counter()
        if self.km is not None and (
            self.notebooks >= MAX_NOTEBOOKS_PER_KERNEL or not run_sync(self._alive)()
        ):
            log.append("replacing the kernel (stopped, or used for many notebooks)")
            self.shutdown()
        if self.km is None:
            self.start(cwd, log)
        code = (
            "import qi_helpers._kernel as __qi_kernel\n"
            f"__qi_kernel.prepare({cwd!r}, {list(modules)!r})\n"
        )
        errors = run_sync(self._run)(code, PREPARE_TIMEOUT)
        if errors:
            self.shutdown()
            raise KernelStartError(f"could not prepare the kernel: {'; '.join(errors)}")
        self.notebooks += 1
        return time.perf_counter() - began

    def shutdown(self) -> None:
        """Stop the kernel (safe to call twice)."""
        from jupyter_core.utils import run_sync

        if self.km is None:
            return
        try:
            run_sync(self._shutdown)()
        except Exception:  # noqa: BLE001 - best effort; an orphaned kernel exits with its parent
            self.km = self.kc = None


_LOCAL = threading.local()
_ALL_KERNELS: list[WarmKernel] = []
_ALL_LOCK = threading.Lock()


def _shutdown_all() -> None:
    with _ALL_LOCK:
        kernels = list(_ALL_KERNELS)
        _ALL_KERNELS.clear()
    for kernel in kernels:
        with contextlib.suppress(Exception):
            kernel.shutdown()


def _own_event_loop() -> None:
    """Give this thread its own event loop for jupyter_core's ``run_sync`` (and nbclient's).

    jupyter_core remembers "the" loop in a context variable, which threads started from a
    context that already ran a kernel (Dask worker threads in this process) inherit: two
    threads would then drive one loop ("This event loop is already running").
    """
    import asyncio

    loop = getattr(_LOCAL, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _LOCAL.loop = loop
    asyncio.set_event_loop(loop)
    from jupyter_core import utils

    var = getattr(utils, "_loop", None)
    if var is not None and hasattr(var, "set"):
        var.set(loop)


def _thread_kernel(kernel_name: str) -> WarmKernel:
    """This thread's warm kernel (one per worker process, or per Dask worker thread)."""
    # A Dask LocalCluster worker of `qi run` (its nanny passed the owner in the environment) is
    # armed by its preload, or here at the latest; elsewhere (pool workers, armed at start;
    # remote Dask workers; the run's own process) this does nothing.
    _processes.arm_worker()
    _own_event_loop()
    kernel = getattr(_LOCAL, "kernel", None)
    if kernel is None or kernel.kernel_name != kernel_name:
        kernel = WarmKernel(kernel_name)
        _LOCAL.kernel = kernel
        with _ALL_LOCK:
            if not _ALL_KERNELS:
                atexit.register(_shutdown_all)
                # Pool workers leave through multiprocessing's exit handlers, not atexit.
                multiprocessing.util.Finalize(None, _shutdown_all, exitpriority=100)
            _ALL_KERNELS.append(kernel)
    return kernel


def warm_up(cwd: str, modules: list[str], kernel_name: str = "python3") -> float:
    """Start this worker's kernel and import ``modules`` ahead of the first notebook.

    Returns
    -------
    float
        Seconds taken (0 when the kernel was already warm).
    """
    kernel = _thread_kernel(kernel_name)
    if kernel.km is not None:
        return 0.0
    log: list[str] = []
    try:
        seconds = kernel.prepare(cwd, modules, log)
    except QIError:
        return 0.0  # the first notebook will try again and report it
    kernel.notebooks = 0
    return seconds


# --------------------------------------------------------------------------------------------
# The papermill engine
# --------------------------------------------------------------------------------------------
def _register_engine() -> None:
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
            import logging

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


# --------------------------------------------------------------------------------------------
# One notebook
# --------------------------------------------------------------------------------------------
def _started_cells(nb: nbformat.NotebookNode | None) -> int:
    if nb is None:
        return 0
    return sum(
        c.metadata.get("papermill", {}).get("status") in ("running", "completed", "failed")
        for c in nb.cells
    )


def _mark_interrupted(nb: nbformat.NotebookNode, message: str) -> None:
    """Put an error output in the cell that was running, so the report shows what happened."""
    import nbformat

    error = nbformat.v4.new_output(
        "error", ename="NotebookStopped", evalue=message, traceback=[f"NotebookStopped: {message}"]
    )
    started = [
        cell
        for cell in nb.cells
        if cell.cell_type == "code" and cell.metadata.get("papermill", {}).get("start_time")
    ]
    if started:  # the last cell that started is the one that was running
        cell = started[-1]
        cell.outputs.append(error)
        cell.metadata["papermill"]["status"] = "failed"
        cell.metadata["papermill"]["exception"] = True
    else:
        cell = nbformat.v4.new_code_cell("")
        cell.outputs.append(error)
        nb.cells.append(cell)
    nb.metadata.setdefault("papermill", {})["exception"] = True


def _log_text(
    label: str, nb: nbformat.NotebookNode | None, lines: list[str], status: str, error: str
) -> str:
    out = [f"task {label}", *lines]
    if nb is not None:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            meta = cell.metadata.get("papermill", {})
            seconds = meta.get("duration")
            took = f" {seconds:.2f}s" if isinstance(seconds, int | float) else ""
            out.append(f"--- cell {index} [{meta.get('status', 'not run')}]{took}")
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream":
                    out.append(f"{output.get('name')}: {output.get('text', '').rstrip()}")
                elif output.get("output_type") == "error":
                    out.append(_ANSI.sub("", "\n".join(output.get("traceback", []))))
    out.append(f"status: {status}")
    if error:
        out.append(f"error: {error}")
    return "\n".join(out) + "\n"


def _papermill_quiet() -> None:
    import logging

    for name in ("papermill", "traitlets", "nbclient"):
        logging.getLogger(name).setLevel(logging.WARNING)


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
    :func:`normalise_notebook`) and renamed to ``output_path`` on success; on failure it is
    renamed to ``failed_path`` instead, so the last good notebook stays in place. A kernel that
    fails to start is retried with back-off; a notebook still running after ``timeout`` seconds
    is stopped and reported as failed with its outputs so far.

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
        Reuse this worker's warm kernel (see :class:`WarmKernel`) instead of starting a new one.
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
    import nbformat
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    _papermill_quiet()
    _ensure_engine()
    start = time.perf_counter()
    out = Path(output_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".running-{os.getpid()}-{threading.get_ident()}-{out.name}")
    log: list[str] = []
    timings = {"prepare": 0.0, "execute": 0.0}
    status, error = "ok", ""
    holder: dict[str, Any] = {}
    kernel = _thread_kernel(kernel_name) if warm else None
    if kernel is None:
        _own_event_loop()
    try:
        for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
            holder.clear()
            try:
                if kernel is not None:
                    timings["prepare"] += kernel.prepare(cwd, list(preload), log)
                began = time.perf_counter()
                deadline = time.monotonic() + timeout if timeout else None
                pm.execute_notebook(
                    input_path,
                    str(tmp),
                    parameters=parameters,
                    engine_name="qi-warm",
                    # A warm kernel already runs in cwd; papermill's chdir would move the whole
                    # process, which threads (Dask) share.
                    cwd=None if kernel is not None else cwd,
                    progress_bar=False,
                    request_save_on_cell_execute=False,
                    kernel_name=kernel_name,
                    start_timeout=KERNEL_START_TIMEOUT,
                    qi_kernel=kernel,
                    qi_deadline=deadline,
                    qi_holder=holder,
                )
                timings["execute"] += time.perf_counter() - began
                break
            except PapermillExecutionError as exc:  # the notebook raised: its own error
                status = "failed"
                error = f"{exc.ename}: {exc.evalue}".strip()
                log.append(f"cell {exc.exec_count} raised {exc.ename}")
                break
            except KernelStartError as exc:
                status, error = "failed", str(exc)
                break
            except Exception as exc:  # noqa: BLE001 - reported, never raised to the pool
                message = f"{type(exc).__name__}: {exc}".strip()
                if kernel is not None:
                    kernel.shutdown()  # timed out or died: never reuse it
                if _started_cells(holder.get("nb")) == 0 and attempt < KERNEL_START_ATTEMPTS:
                    log.append(
                        f"kernel failed before the first cell (attempt {attempt}): {message}"
                    )
                    time.sleep(_backoff(attempt))
                    continue
                status, error = "failed", message
                if isinstance(exc, TimeoutError) and timeout:
                    error = f"the notebook did not finish within {timeout:g} seconds ({message})"
                if holder.get("nb") is not None:
                    _mark_interrupted(holder["nb"], error)
                    nbformat.write(holder["nb"], str(tmp))
                break
        final = out if status == "ok" else Path(failed_path)
        if tmp.exists():
            nb = nbformat.read(str(tmp), as_version=4)
            log.append(
                f"timings: prepare {timings['prepare']:.2f}s (kernel start, reset, imports), "
                f"execute {timings['execute']:.2f}s"
            )
            if log_path:
                _write_atomic_text(_log_text(label, nb, log, status, error), Path(log_path))
            nb = normalise_notebook(nb)
            nb.metadata.get("papermill", {})["output_path"] = str(final)
            _write_atomic_notebook(nb, final)
        elif log_path:
            _write_atomic_text(_log_text(label, None, log, status, error), Path(log_path))
        if status == "ok":
            Path(failed_path).unlink(missing_ok=True)
    finally:
        tmp.unlink(missing_ok=True)
    return {
        "status": status,
        "output": str(final),
        "seconds": time.perf_counter() - start,
        "error": error[:2000],
        "timings": timings,
    }


# --------------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------------
@dataclass
class Workers:
    """An open executor and what it is, for messages.

    Attributes
    ----------
    executor : concurrent.futures.Executor
    description : str
        e.g. ``"2 local worker processes"`` or ``"Dask cluster tcp://... (4 workers)"``.
    count : int
        How many notebooks can run at once.
    """

    executor: Executor
    description: str
    count: int
    _stop: list[Any] = field(default_factory=list, repr=False)

    def abort(self) -> None:
        """Stop now (Ctrl-C): cancel queued notebooks and stop the running ones."""
        for stop in self._stop:
            with contextlib.suppress(Exception):
                stop()


def _exit_now() -> None:
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _init_pool_worker(environment: dict[str, str] | None = None) -> None:
    # The owner and record (qi_helpers._processes) go in this worker's environment, where its
    # kernels inherit them; then the worker is armed to die with `qi run`, before it takes a task.
    os.environ.update(environment or {})
    _processes.arm_worker()
    # Ctrl-C reaches every process of the terminal's group; the runner (parent) handles it and
    # stops the workers, so a worker never writes a half-finished result of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # When the pool closes, a worker has sent every result (synchronously) and its kernel has
    # been shut down (exit priority 100); the interpreter's own teardown after a kernel client
    # has run takes seconds (ZeroMQ context, thousands of modules) and achieves nothing here.
    multiprocessing.util.Finalize(None, _exit_now, exitpriority=0)


def _dask_preloads() -> list[str]:
    """The worker preloads configured for Dask (kept when ours is added)."""
    import dask

    configured = dask.config.get("distributed.worker.preload", default=None) or []
    return [configured] if isinstance(configured, str) else list(configured)


@contextlib.contextmanager
def open_workers(
    jobs: int | None = None,
    *,
    cluster: str | None = None,
    scheduler: str | None = None,
    record: Path | str | None = None,
) -> Iterator[Workers]:
    """Open an executor for notebooks: a local process pool, or Dask distributed.

    Local workers (the pool, or a Dask ``LocalCluster``) and their kernels die with this process,
    however it ends (see :mod:`qi_helpers._processes`); workers of an existing cluster
    (``scheduler``) are not this process's to stop.

    Parameters
    ----------
    jobs : int, optional
        Worker processes (local pool, or workers of ``cluster="local"``); default the number of
        CPUs.
    cluster : {"local"}, optional
        Start a Dask ``LocalCluster`` with ``jobs`` single-threaded worker processes.
    scheduler : str, optional
        The address of a running Dask scheduler (``tcp://host:8786``). Its workers must have
        ``qi_helpers`` installed and see the project folder at the same path.
    record : path, optional
        The run's process record (``outputs/.run.lock``), where local workers and their kernels
        add themselves.

    Yields
    ------
    Workers
    """
    jobs = max(1, jobs or os.cpu_count() or 1)
    # Given to the workers only, never set in this process, whose other children are not workers.
    environment = _processes.worker_environment(record)
    if cluster is None and scheduler is None:
        # "spawn": each worker is a fresh interpreter, safe with the kernels' ZeroMQ threads.
        # Workers are started by the thread that submits the first notebooks (the runner's, which
        # outlives the pool): their parent-death signal refers to that thread.
        pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_pool_worker,
            initargs=(environment,),
        )

        def kill() -> None:
            pool.shutdown(wait=False, cancel_futures=True)
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()

        workers = Workers(pool, f"{jobs} local worker process{'es' if jobs > 1 else ''}", jobs)
        workers._stop.append(kill)
        try:
            yield workers
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    if cluster not in (None, "local"):
        raise ExecutorError(
            f"--cluster {cluster!r} is not known; use `--cluster local` for a Dask cluster on "
            "this machine, or `--scheduler tcp://HOST:8786` for an existing one."
        )
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise ExecutorError(
            "running on Dask needs the optional `cluster` extra: "
            "pip install 'qi-helpers[cluster]' (or install dask[distributed])."
        ) from exc
    local = None
    try:
        if scheduler:
            client = Client(scheduler, timeout="30s")
            where = f"Dask cluster at {scheduler}"
        else:
            # Single-threaded worker processes, like the local pool: one warm kernel each.
            local = LocalCluster(
                n_workers=jobs,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
                # The nannies run in this process and set these in each worker's environment;
                # the preload arms the worker as soon as it starts (qi_helpers._processes).
                env=environment,
                preload=[*_dask_preloads(), "qi_helpers._processes"],
            )
            client = Client(local)
            where = "local Dask cluster"
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, "Nanny failed to start"
        if local is not None:
            local.close()
        if scheduler:
            raise ExecutorError(
                f"could not connect to the Dask scheduler {scheduler}: {exc}. Check the address "
                "and that the scheduler is running (`dask scheduler`)."
            ) from exc
        raise ExecutorError(
            f"could not start a local Dask cluster: {type(exc).__name__}: {exc}. Run without "
            "--cluster to use the local process pool."
        ) from exc
    count = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
    executor = client.get_executor(pure=False)
    workers = Workers(executor, f"{where} ({count or jobs} worker threads)", count or jobs)
    workers._stop.append(lambda: client.cancel(list(client.futures.values()), force=True))
    try:
        yield workers
    finally:
        with contextlib.suppress(Exception):
            executor.shutdown(wait=False)
        client.close()
        if local is not None:
            local.close()
