"""The identifier screen is built in a short-lived child process, before the first notebook.

Every notebook kernel and the publisher screen what they show with the project's identifier
screen (:func:`qi_helpers.privacy.screen.project_screen`), which is built from the input tables'
identifier columns and saved in ``outputs/data/identifier_screen/``. Built lazily, the first
kernel to draw a figure paid for it: on the large demo (6.1 million activities) the kernel that
ran workbook 01 and built the screen peaked at 3.2 GB instead of 1.8 GB, and a warm kernel keeps
much of what it once held. ``qi run`` therefore builds and saves the screen first, while the
workers start their kernels, in a child process that exits when it is done, so the memory it
used goes back to the system; every kernel then loads the saved screen (0.4 s).

The child is part of the run like a worker (:mod:`qi_helpers.run.processes`): it dies with
``qi run`` (parent-death signal and parent watch), adds itself to the run's process record as
``screen``, ignores Ctrl-C (the run stops it), and is killed when the run is interrupted or its
inputs fail the check. If it fails, nothing is lost: the first kernel builds the screen as
before.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

from qi_helpers.privacy.screen import screen_saved
from qi_helpers.project import Project
from qi_helpers.run import processes as _processes

__all__ = ["ScreenBuild", "screen_built_ahead", "start_screen_build"]


def _build(root: str, environment: dict[str, str]) -> None:
    """The child: arm it to die with the run, then build and save the project's screen."""
    os.environ.update(environment)
    _processes.arm_worker("screen")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the run stops this process
    from qi_helpers.privacy.screen import project_screen
    from qi_helpers.project import load_project

    project_screen(load_project(root))


class ScreenBuild:
    """A child process building a project's identifier screen (:func:`start_screen_build`).

    Attributes
    ----------
    process : multiprocessing.Process
    """

    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self.process = process

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the child has finished; whether it built and saved the screen."""
        self.process.join(timeout)
        return self.process.exitcode == 0

    def stop(self) -> None:
        """Kill the child if it still runs (an interrupted run, inputs that failed the check)."""
        if self.process.exitcode is None:
            with contextlib.suppress(OSError, ValueError):
                self.process.kill()
            self.process.join(10)


def start_screen_build(project: Project, *, record: Path | str | None = None) -> ScreenBuild | None:
    """Start building the project's identifier screen in a child process, unless it is saved.

    Parameters
    ----------
    project : Project
    record : path, optional
        The run's process record (``outputs/.run.lock``), where the child adds itself.

    Returns
    -------
    ScreenBuild or None
        None when the screen saved in ``outputs/data/identifier_screen/`` is current (nothing is
        started); otherwise the running child: :meth:`ScreenBuild.wait` for it before the first
        notebook runs and :meth:`ScreenBuild.stop` it in a ``finally``.
    """
    if screen_saved(project):
        return None
    # "spawn": a fresh interpreter, like the pool's workers (no copy of this process's memory).
    context = multiprocessing.get_context("spawn")
    child = context.Process(
        target=_build,
        args=(str(project.root), _processes.worker_environment(record)),
        name="qi-identifier-screen",
        daemon=True,  # also ended by multiprocessing when this process exits normally
    )
    child.start()
    return ScreenBuild(child)


@contextlib.contextmanager
def screen_built_ahead(
    project: Project,
    *,
    record: Path | str | None = None,
    note: Callable[[str], object] | None = None,
) -> Iterator[ScreenBuild | None]:
    """Build the screen in a child process while the block runs; wait for it at the end.

    The block is what else must happen before the first notebook (starting the workers,
    checking the inputs). When the block raises (inputs that fail the check, Ctrl-C), the child
    is killed and nothing waits for it.

    Parameters
    ----------
    project : Project
    record : path, optional
        The run's process record.
    note : callable, optional
        Given a line when the child failed (the first kernel then builds the screen itself).

    Yields
    ------
    ScreenBuild or None
        None when the saved screen is current.
    """
    build = start_screen_build(project, record=record)
    try:
        yield build
        if build is not None and not build.wait() and note is not None:
            note(
                "  note    the identifier screen could not be built ahead (exit code "
                f"{build.process.exitcode}); the first notebook builds it"
            )
    finally:
        if build is not None:
            build.stop()
