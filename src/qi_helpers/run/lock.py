"""One ``qi run`` at a time per project, and none while a process of an earlier one still runs.

The project lock (``outputs/.run.lock``) is also the run's record of its processes (see
:mod:`qi_helpers.run.processes`). Once it holds the lock, a run removes the temporary files an
interrupted run left behind (:func:`sweep_temporary_files`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qi_helpers.errors import ProcessesStillRunning, RunError
from qi_helpers.project import Project
from qi_helpers.run import processes as _processes
from qi_helpers.run.manifest import MANIFEST

#: The project lock under ``outputs/``: locked while a ``qi run`` runs, and the record of its
#: processes (``qi run``, its workers and their kernels; one JSON object a line).
RUN_LOCK = ".run.lock"

#: The role of the ``qi run`` process itself in the record.
RUN_ROLE = "qi run"


@contextlib.contextmanager
def project_lock(project: Project) -> Iterator[Path]:
    """One ``qi run`` at a time per project, and none while a process of an earlier one runs.

    The lock (``outputs/.run.lock``, locked with ``flock``) is released by the system when
    ``qi run`` dies, but its workers and kernels might not have died with it (they should: see
    :mod:`qi_helpers.run.processes`). So the file is also the run's record of processes:
    ``qi run`` writes itself there, its workers and kernels add themselves, and the next run
    refuses to start while any of them still runs. Entries whose process has gone, or whose pid
    now belongs to another process (another start time), are stale and ignored. When the run
    ends, only entries still running stay.

    Yields
    ------
    Path
        The lock file, to hand to the workers.

    Raises
    ------
    RunError
        Another ``qi run`` holds the lock (its pid is named when known).
    ProcessesStillRunning
        Workers or kernels of an earlier run still run.
    """
    project.outputs_dir.mkdir(parents=True, exist_ok=True)
    path = project.outputs_dir / RUN_LOCK
    try:
        import fcntl  # POSIX only, hence imported here
    except ImportError:  # Windows: no advisory locks here; runs are not guarded
        yield path
        return
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.seek(0)
            others = [p for p in _processes.live_processes(handle.read()) if p.role == RUN_ROLE]
            who = f" (PID {', '.join(str(p.pid) for p in others)})" if others else ""
            raise RunError(
                f"{path}: another `qi run`{who} is running on this project; wait for it to finish."
            ) from exc
        try:
            handle.seek(0)
            left = _processes.live_processes(handle.read(), exclude=os.getpid())
            if left:
                raise ProcessesStillRunning(path, left)
            _rewrite(handle, [_processes.describe_process(RUN_ROLE)])
            yield path
        finally:
            # Workers were shut down and waited for; whatever still runs stays on record.
            with contextlib.suppress(OSError):
                handle.seek(0)
                still = _processes.live_processes(handle.read(), exclude=os.getpid())
                _rewrite(handle, still)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _rewrite(handle: Any, entries: list[_processes.RecordedProcess]) -> None:
    """Replace the record's content (workers append with O_APPEND, so the offset is theirs)."""
    handle.seek(0)
    handle.truncate()
    handle.write("".join(_processes.entry_line(e) for e in entries))
    handle.flush()


def sweep_temporary_files(project: Project) -> int:
    """Remove temporary files an interrupted run left behind (they are hidden and never read).

    Returns
    -------
    int
        How many were removed.
    """
    removed = 0
    for folder in (project.notebooks_dir, project.outputs_dir / "logs"):
        if not folder.is_dir():
            continue
        for path in folder.rglob(".*"):
            if path.is_file() and (path.name.startswith(".running-") or ".tmp-" in path.name):
                path.unlink(missing_ok=True)
                removed += 1
    for path in project.outputs_dir.glob(f".{MANIFEST}.tmp-*"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed
