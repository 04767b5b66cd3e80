"""Warm kernels: each worker starts one Jupyter kernel and reuses it for many notebooks.

Starting a Jupyter kernel and importing pandas, matplotlib and ``qi_helpers`` in it costs more
than most of our notebooks' own work, so each worker (a process of a local pool, or a Dask worker
thread) starts one kernel (:class:`WarmKernel`), imports the modules the workbooks use, and
reuses it for every notebook it is given; :mod:`qi_helpers.run.kernel` resets it between
notebooks so each runs as in a fresh kernel (a test compares the bytes). A kernel that fails to
start is retried with back-off.

A kernel never outlives its worker: it is recorded and tracked as the worker's child
(:mod:`qi_helpers.run.processes`), and :func:`thread_kernel` arms Dask workers that were not
armed at start.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import multiprocessing.util
import random
import subprocess
import threading
import time
from typing import Any

from jupyter_core import utils as jupyter_utils
from jupyter_core.utils import run_sync

from qi_helpers.errors import KernelStartError, QIError
from qi_helpers.run import processes as _processes

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


def backoff(attempt: int) -> float:
    """Seconds to wait before start attempt ``attempt + 1``: doubled each time, with jitter."""
    return KERNEL_START_BACKOFF * 2 ** (attempt - 1) * (1 + random.random() / 2)  # noqa: S311


class WarmKernel:
    """One running kernel reused for many notebooks (see :mod:`qi_helpers.run.kernel`).

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
        # jupyter_client (ZeroMQ) is slow to import and only a worker needs it; the runner
        # imports this module, and deciding that nothing needs to run must stay fast.
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
                time.sleep(backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def prepare(self, cwd: str, modules: list[str], log: list[str]) -> float:
        """Start the kernel if needed, then reset it and import ``modules`` for the next notebook.

        Returns
        -------
        float
            Seconds taken (including a kernel start).
        """
        began = time.perf_counter()
        if self.km is not None and (
            self.notebooks >= MAX_NOTEBOOKS_PER_KERNEL or not run_sync(self._alive)()
        ):
            log.append("replacing the kernel (stopped, or used for many notebooks)")
            self.shutdown()
        if self.km is None:
            self.start(cwd, log)
        code = (
            "import qi_helpers.run.kernel as __qi_kernel\n"
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


def own_event_loop() -> None:
    """Give this thread its own event loop for jupyter_core's ``run_sync`` (and nbclient's).

    jupyter_core remembers "the" loop in a context variable, which threads started from a
    context that already ran a kernel (Dask worker threads in this process) inherit: two
    threads would then drive one loop ("This event loop is already running").
    """
    loop = getattr(_LOCAL, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _LOCAL.loop = loop
    asyncio.set_event_loop(loop)
    var = getattr(jupyter_utils, "_loop", None)
    if var is not None and hasattr(var, "set"):
        var.set(loop)


def thread_kernel(kernel_name: str) -> WarmKernel:
    """This thread's warm kernel (one per worker process, or per Dask worker thread)."""
    # A Dask LocalCluster worker of `qi run` (its nanny passed the owner in the environment) is
    # armed by its preload, or here at the latest; elsewhere (pool workers, armed at start;
    # remote Dask workers; the run's own process) this does nothing.
    _processes.arm_worker()
    own_event_loop()
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
    kernel = thread_kernel(kernel_name)
    if kernel.km is not None:
        return 0.0
    log: list[str] = []
    try:
        seconds = kernel.prepare(cwd, modules, log)
    except QIError:
        return 0.0  # the first notebook will try again and report it
    kernel.notebooks = 0
    return seconds
