"""Where notebooks run: a local process pool, or Dask distributed (:func:`open_workers`).

Executors: a local :class:`concurrent.futures.ProcessPoolExecutor` (default), or Dask
distributed's ``Client.get_executor()`` for a local Dask cluster or an existing one
(``pip install 'qi-helpers[cluster]'``). Both are plain ``concurrent.futures`` executors, so the
runner's scheduling is the same on one laptop and on a cluster. Each worker keeps a warm kernel
(:mod:`qi_helpers.run.warm_kernel`) and executes notebooks with
:func:`qi_helpers.run.execute.execute_task`.

Workers and their kernels never outlive the ``qi run`` that started them, even after a
``kill -9`` of it: see :mod:`qi_helpers.run.processes` (parent-death signal, parent watch, the
run's process record), armed in :func:`_init_pool_worker` and
:func:`qi_helpers.run.warm_kernel.thread_kernel` for workers and by
:func:`qi_helpers.run.kernel.prepare` in kernels.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.util
import os
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qi_helpers.errors import ExecutorError
from qi_helpers.run import processes as _processes


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
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _init_pool_worker(environment: dict[str, str] | None = None) -> None:
    # The owner and record (qi_helpers.run.processes) go in this worker's environment, where its
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
    import dask  # optional: the `cluster` extra

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
    however it ends (see :mod:`qi_helpers.run.processes`); workers of an existing cluster
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
        with _local_pool(jobs, environment) as workers:
            yield workers
        return
    if cluster not in (None, "local"):
        raise ExecutorError(
            f"--cluster {cluster!r} is not known; use `--cluster local` for a Dask cluster on "
            "this machine, or `--scheduler tcp://HOST:8786` for an existing one."
        )
    with _dask_workers(jobs, scheduler, environment) as workers:
        yield workers


@contextlib.contextmanager
def _local_pool(jobs: int, environment: dict[str, str]) -> Iterator[Workers]:
    """A pool of ``jobs`` local worker processes."""
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


@contextlib.contextmanager
def _dask_workers(
    jobs: int, scheduler: str | None, environment: dict[str, str]
) -> Iterator[Workers]:
    """The workers of an existing Dask cluster (``scheduler``), or of a local one."""
    client, local, where = _dask_client(jobs, scheduler, environment)
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


def _dask_client(
    jobs: int, scheduler: str | None, environment: dict[str, str]
) -> tuple[Any, Any, str]:
    """``(client, local cluster or None, where)``: connected to ``scheduler``, or to a new
    ``LocalCluster`` of ``jobs`` single-threaded workers."""
    try:
        from dask.distributed import Client, LocalCluster  # optional: the `cluster` extra
    except ImportError as exc:
        raise ExecutorError(
            "running on Dask needs the optional `cluster` extra: "
            "pip install 'qi-helpers[cluster]' (or install dask[distributed])."
        ) from exc
    local = None
    try:
        if scheduler:
            return Client(scheduler, timeout="30s"), None, f"Dask cluster at {scheduler}"
        # Single-threaded worker processes, like the local pool: one warm kernel each.
        local = LocalCluster(
            n_workers=jobs,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
            # The nannies run in this process and set these in each worker's environment;
            # the preload arms the worker as soon as it starts (qi_helpers.run.processes).
            env=environment,
            preload=[*_dask_preloads(), "qi_helpers.run.processes"],
        )
        return Client(local), local, "local Dask cluster"
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
