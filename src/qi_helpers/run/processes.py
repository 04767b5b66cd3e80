"""Workers and kernels never outlive the ``qi run`` that started them, however it ends.

``qi run`` hands notebooks to worker processes (a local pool, or the processes of a Dask
``LocalCluster``), and each worker starts a Jupyter kernel. A ``kill -9`` of ``qi run`` gives it no
chance to stop them: without the measures below, workers went on executing the notebooks already
queued to them and wrote outputs long after, racing the next run. Three layers, because each
misses a case the others cover:

1. **Parent-death signal** (Linux): a worker asks the kernel to send it SIGKILL when ``qi run``
   dies, and a kernel asks for the same when its worker dies (:func:`set_parent_death_signal`).
   Immediate, and needs nothing to be scheduled in the dying or surviving process.
2. **Parent watch** (every POSIX system): a thread in each worker and in each kernel checks every
   :data:`WATCH_INTERVAL` seconds that its parent is still the process that started it
   (``os.getppid()`` changes when the parent dies) and that the owner is still running; if not,
   it kills the process groups of the kernels it started (a worker) or its own process group (a
   kernel, which runs in a session of its own), then exits (:func:`watch_parent`).
3. **Process record**: ``qi run`` records itself in ``outputs/.run.lock`` and every worker and
   kernel adds itself (pid, start time, command line), so that a new ``qi run`` can refuse to
   start while any of them still runs (:func:`live_processes`), naming them, instead of racing
   them for the same outputs. A PID reused by an unrelated process is told apart by its start
   time (``/proc/<pid>/stat``).

This module is imported inside every kernel (:mod:`qi_helpers.run.kernel`): standard library only.
On Windows none of this applies (no ``prctl``, ``os.kill(pid, 0)`` would interrupt the process);
the runner's project lock is not enforced there either.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

#: Environment variable given to the workers of a run (and inherited by their kernels):
#: ``"<pid>:<start time>"`` of the ``qi run`` process that owns them.
OWNER_ENV = "QI_RUN_OWNER"
#: Environment variable naming the run's process record (``outputs/.run.lock``); it also ties a
#: worker or kernel to its project for anyone looking at ``/proc/<pid>/environ``.
RECORD_ENV = "QI_RUN_RECORD"
#: Seconds between two checks of the parent watch.
WATCH_INTERVAL = 0.5

_PR_SET_PDEATHSIG = 1
_PR_GET_PDEATHSIG = 2
#: signal.SIGKILL, which Windows does not define (nothing here kills anything there).
_SIGKILL = getattr(signal, "SIGKILL", 9)

_ARMED: set[str] = set()
_ARM_LOCK = threading.Lock()
#: Process ids of the kernels this process started (their process groups are killed with it).
_CHILDREN: set[int] = set()
_CHILDREN_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------------
# Looking at processes
# --------------------------------------------------------------------------------------------
def _stat(pid: int) -> tuple[str, int] | None:
    """``(state, start time in clock ticks since boot)`` from ``/proc/<pid>/stat``, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return fields[0], int(fields[19])  # field 3 (state) and field 22 (starttime)
    except (IndexError, ValueError):
        return None


def process_start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot; Linux), or None when not known.

    Together with the pid it names one process: a pid reused later has a later start time.
    """
    stat = _stat(pid)
    return stat[1] if stat else None


def process_cmdline(pid: int) -> str:
    """The process's command line (``/proc/<pid>/cmdline``; empty when it cannot be read)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(part.decode("utf-8", "replace") for part in raw.split(b"\0") if part)


def is_running(pid: int, start: int | None = None, cmdline: str | None = None) -> bool:
    """Whether the process ``pid`` still runs and is the one recorded (not a reused pid).

    Parameters
    ----------
    pid : int
    start : int, optional
        Its start time as :func:`process_start_time` gave it; a different one means the pid now
        belongs to another process.
    cmdline : str, optional
        Its command line as recorded, compared only when no start time is known.

    Returns
    -------
    bool
        False for a process that exited, a zombie (exited, not yet reaped) or a reused pid.
    """
    if os.name != "posix" or pid <= 0:
        return False  # on Windows os.kill(pid, 0) would send CTRL_C_EVENT, not test the pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, but another user's: the start time below tells whether it is ours
    except OSError:
        return False
    stat = _stat(pid)
    if stat is None:
        return True  # no /proc (macOS): the pid exists, and that is all that can be known
    state, started = stat
    if state in ("Z", "X", "x"):
        return False
    if start is not None:
        return started == start
    if cmdline:
        return process_cmdline(pid) == cmdline
    return True


def kill_process_tree(pid: int, sig: int = _SIGKILL) -> None:
    """Send ``sig`` to the process group that ``pid`` leads, or to ``pid`` alone otherwise.

    Kernels run in a session (and process group) of their own, so this also reaches what a
    notebook started. Never signals this process's own group.
    """
    with contextlib.suppress(OSError):
        group = os.getpgid(pid)
        if group == pid and group != os.getpgrp():
            os.killpg(group, sig)
            return
    with contextlib.suppress(OSError):
        os.kill(pid, sig)


# --------------------------------------------------------------------------------------------
# Layer 1: the parent-death signal
# --------------------------------------------------------------------------------------------
def set_parent_death_signal(sig: int = _SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies (``PR_SET_PDEATHSIG``).

    Two threads matter, and both must live as long as needed:

    - The "parent" is the *thread* that created this process, not the whole parent process: the
      signal also comes when that thread ends while its process goes on. Callers therefore set it
      only where the creating thread lives as long as the parent needs this process (see
      :func:`arm_worker` and :func:`arm_kernel`).
    - The setting belongs to the *calling* thread of this process (Linux keeps it per thread;
      the signal goes to the whole process when any thread has it). It is lost if that thread
      ends, and threads started later do not inherit it, so call this from the main thread, or a
      thread that lives as long as the process.

    It survives ``exec`` but not ``fork``, so every process sets it for itself. It is not sent if
    the parent died before this call: callers check afterwards.

    Returns
    -------
    bool
        True when set; False elsewhere than Linux or when ``prctl`` is unavailable.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def parent_death_signal() -> int:
    """The parent-death signal set by the calling thread (0: none, or not Linux)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        value = ctypes.c_int(0)
        if libc.prctl(_PR_GET_PDEATHSIG, ctypes.byref(value), 0, 0, 0) != 0:
            return 0
        return value.value
    except (OSError, AttributeError):
        return 0


# --------------------------------------------------------------------------------------------
# Layer 2: the parent watch
# --------------------------------------------------------------------------------------------
def watch_parent(
    parent: int,
    on_orphan: Callable[[], None],
    *,
    owner: tuple[int, int | None] | None = None,
    interval: float = WATCH_INTERVAL,
) -> threading.Thread:
    """Start a daemon thread that calls ``on_orphan`` and exits the process once orphaned.

    Orphaned means: ``os.getppid()`` is no longer ``parent`` (when it was at the start; a dead
    parent's children are handed to init or a subreaper), or ``parent`` (or ``owner``) no
    longer runs.

    Parameters
    ----------
    parent : int
        The process that started this one.
    on_orphan : callable
        Called first (e.g. to kill the kernels this process started); errors are ignored.
    owner : (int, int or None), optional
        ``(pid, start time)`` of a further process this one must not outlive (``qi run``).
    interval : float
        Seconds between checks.

    Returns
    -------
    threading.Thread
    """
    was_child = os.getppid() == parent
    parent_start = process_start_time(parent)

    def orphaned() -> bool:
        if was_child and os.getppid() != parent:
            return True
        if not is_running(parent, parent_start):
            return True
        return owner is not None and not is_running(*owner)

    def watch() -> None:
        while not orphaned():
            time.sleep(interval)
        with contextlib.suppress(BaseException):
            on_orphan()
        os._exit(1)  # no clean-up: nothing this process would still write is wanted

    thread = threading.Thread(target=watch, name="qi-parent-watch", daemon=True)
    thread.start()
    return thread


def track_child(pid: int) -> None:
    """Remember a kernel this process started, so that it dies with this process."""
    with _CHILDREN_LOCK:
        _CHILDREN.add(pid)


def untrack_child(pid: int) -> None:
    """Forget a kernel that was shut down."""
    with _CHILDREN_LOCK:
        _CHILDREN.discard(pid)


def kill_children() -> None:
    """Kill the process group of every kernel this process started and has not shut down."""
    with _CHILDREN_LOCK:
        children = list(_CHILDREN)
    for pid in children:
        kill_process_tree(pid)


def _parse_owner(value: str) -> tuple[int, int | None] | None:
    pid, _, start = value.partition(":")
    try:
        return int(pid), (int(start) if start else None)
    except ValueError:
        return None


def owner_token() -> str:
    """``"<pid>:<start time>"`` of this process, for :data:`OWNER_ENV` of its workers."""
    start = process_start_time(os.getpid())
    return f"{os.getpid()}:{start if start is not None else ''}"


def worker_environment(record: Path | str | None) -> dict[str, str]:
    """The environment variables that make a process started by this one a worker of its run."""
    env = {OWNER_ENV: owner_token()}
    if record is not None:
        env[RECORD_ENV] = str(record)
    return env


def arm_worker(role: str = "worker") -> bool:
    """Make this worker process die with the ``qi run`` named by :data:`OWNER_ENV`.

    A no-op unless :data:`OWNER_ENV` is set (remote Dask workers and the tests' in-process Dask
    threads are not ours to kill) and names another process; safe to call again.

    The parent-death signal (SIGKILL) is set only when ``qi run`` is this process's parent. Its
    creating thread there outlives the worker: for the local pool it is the runner's thread that
    submits notebooks (it waits for the pool to shut down before it returns), for a Dask
    ``LocalCluster`` it is distributed's thread that starts and later joins or kills the worker
    process. The signal is set from the calling thread, which should be the worker's main thread
    (the pool's initializer, or Dask's preload, :func:`dask_setup`); armed from a Dask task
    thread instead (the fallback in :func:`qi_helpers.run.warm_kernel.thread_kernel`), it lasts
    as long as that thread. The watch covers any other arrangement.

    Parameters
    ----------
    role : str
        How the process is named in the run's record (``"worker"``; ``"screen"`` for the child
        that builds the identifier screen, :mod:`qi_helpers.run.screen_process`).

    Returns
    -------
    bool
        True when this call armed the process.
    """
    owner = _parse_owner(os.environ.get(OWNER_ENV, ""))
    if owner is None or owner[0] == os.getpid() or os.name != "posix":
        return False
    with _ARM_LOCK:
        if "worker" in _ARMED:
            return False
        _ARMED.add("worker")
    pid, start = owner
    if os.getppid() == pid:
        set_parent_death_signal(_SIGKILL)
    # The owner may have died before the signal was set (it would then never come).
    if not is_running(pid, start):
        os._exit(1)
    watch_parent(os.getppid(), kill_children, owner=owner)
    register(role)
    return True


def dask_setup(worker: object) -> None:
    """Dask preload hook (``LocalCluster(preload=["qi_helpers.run.processes"])``): arm the worker.

    Arms a ``LocalCluster`` worker of ``qi run`` as soon as it starts, before its first task,
    from the worker's main thread (the one running its event loop), which lives as long as it.
    """
    arm_worker()


def arm_kernel() -> bool:
    """Make this kernel die with the worker that started it (call inside the kernel).

    jupyter_client starts a kernel in a session of its own and names its parent in
    ``JPY_PARENT_PID``. Called from the kernel's shell (main) thread, which lives as long as the
    kernel. The parent-death signal's creating thread is the worker thread that started the
    kernel: the main thread of a pool worker, or the Dask worker thread whose warm kernel this is
    (:func:`qi_helpers.run.warm_kernel.thread_kernel` keeps one per thread, so a kernel is of no
    use once its thread has ended). Safe to call again.

    Returns
    -------
    bool
        True when this call armed the kernel.
    """
    try:
        parent = int(os.environ.get("JPY_PARENT_PID") or 0)
    except ValueError:
        parent = 0
    if parent <= 1 or os.name != "posix":
        return False
    with _ARM_LOCK:
        if "kernel" in _ARMED:
            return False
        _ARMED.add("kernel")
    if os.getppid() == parent:
        set_parent_death_signal(_SIGKILL)
        if os.getppid() != parent:  # the worker died before the signal was set
            _kill_own_group()
    elif not is_running(parent):
        _kill_own_group()
    owner = _parse_owner(os.environ.get(OWNER_ENV, ""))
    watch_parent(parent, _kill_own_group, owner=owner)
    return True


def _kill_own_group() -> None:
    """Kill this kernel's session (what a notebook started too), or only this process."""
    if os.getpgrp() == os.getpid():
        with contextlib.suppress(OSError):
            os.killpg(os.getpid(), _SIGKILL)
    os._exit(1)


# --------------------------------------------------------------------------------------------
# Layer 3: the process record
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordedProcess:
    """One process of a run, as written in its record.

    Attributes
    ----------
    pid : int
    role : str
        ``"qi run"``, ``"worker"``, ``"kernel"`` or ``"screen"``.
    start : int or None
        Start time (:func:`process_start_time`), which tells a reused pid apart.
    cmdline : str
        Its command line, for messages (and to tell a reused pid apart without a start time).
    """

    pid: int
    role: str
    start: int | None = None
    cmdline: str = ""

    def running(self) -> bool:
        """Whether this very process still runs (see :func:`is_running`)."""
        return is_running(self.pid, self.start, self.cmdline or None)

    def describe(self) -> str:
        """e.g. ``PID 1234 (kernel: python -m ipykernel_launcher -f ...)``."""
        command = self.cmdline if len(self.cmdline) <= 90 else self.cmdline[:87] + "..."
        return f"PID {self.pid} ({self.role}{': ' + command if command else ''})"


def describe_process(role: str, pid: int | None = None) -> RecordedProcess:
    """A record entry for ``pid`` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    return RecordedProcess(pid, role, process_start_time(pid), process_cmdline(pid))


def entry_line(process: RecordedProcess) -> str:
    """The record's line for ``process`` (one JSON object)."""
    return json.dumps(asdict(process), separators=(",", ":")) + "\n"


def register(role: str, pid: int | None = None, record: Path | str | None = None) -> None:
    """Add a process to the run's record (default: the one named by :data:`RECORD_ENV`).

    One short ``O_APPEND`` write per entry, so entries of concurrent workers do not mix.
    """
    record = record or os.environ.get(RECORD_ENV)
    if not record or os.name != "posix":
        return
    line = entry_line(describe_process(role, pid)).encode("utf-8")
    with contextlib.suppress(OSError):
        fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def parse_record(text: str) -> list[RecordedProcess]:
    """The entries of a record (unreadable lines are skipped)."""
    entries: list[RecordedProcess] = []
    for line in text.splitlines():
        try:
            data = json.loads(line)
            entries.append(
                RecordedProcess(
                    int(data["pid"]),
                    str(data.get("role", "process")),
                    None if data.get("start") is None else int(data["start"]),
                    str(data.get("cmdline") or ""),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return entries


def live_processes(text: str, *, exclude: int | None = None) -> list[RecordedProcess]:
    """The entries of a record that still run (stale ones, dead or with a reused pid, are not).

    Parameters
    ----------
    text : str
        The record's content.
    exclude : int, optional
        A pid to leave out (the caller itself).
    """
    seen: set[int] = set()
    live: list[RecordedProcess] = []
    for entry in parse_record(text):
        if entry.pid in seen or entry.pid == exclude or not entry.running():
            continue
        seen.add(entry.pid)
        live.append(entry)
    return live
