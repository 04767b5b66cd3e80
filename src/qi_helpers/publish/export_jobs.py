"""Pages exported on the run's workers, in parallel, instead of one after another.

Converting a notebook to a page (nbconvert, the privacy screen, image shrinking) takes about half
a second; a health system of 500 microsystems publishes 500 pages after a full run. ``qi run``
hands the pages that must be made again to the workers that ran the notebooks (the local pool or
the Dask workers, which see the project folder at the same path). Each worker loads the project's
identifier screen once from ``outputs/data/identifier_screen/``, the one the publisher itself
just loaded, and refuses to export with any other (its digest must match). The pages come back
in order, so the site is byte for byte what a serial build makes.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qi_helpers.errors import PrivacyError
from qi_helpers.privacy.screen import IdentifierScreen, project_screen
from qi_helpers.publish.pages import Page, export_report

__all__ = ["ExportJob", "export_pages"]

#: Fewer pages than this to make are made in the publishing process (a worker would first have
#: to import the reporting stack and load the screen).
MIN_PARALLEL = 4


@dataclass(frozen=True)
class ExportJob:
    """One page to make: :func:`~qi_helpers.publish.pages.export_report`'s arguments.

    Attributes
    ----------
    notebook, html_path : Path
    options : dict
        The keyword arguments of ``export_report`` but the screen.
    """

    notebook: Path
    html_path: Path
    options: dict[str, Any]

    def run(self, screen: IdentifierScreen | None) -> Page:
        """Make the page in this process."""
        return export_report(self.notebook, self.html_path, screen=screen, **self.options)


def _export_on_worker(job: ExportJob, root: str, digest: str) -> Page:
    """Make one page on a worker, with the project's saved screen (loaded once per process)."""
    from qi_helpers.project import load_project  # the project stack, loaded only on a worker

    screen = project_screen(load_project(root))
    if screen.digest != digest:
        raise PrivacyError(
            f"the identifier screen of {root} changed while the site was being published "
            "(an input table was edited): run `qi run` again."
        )
    return job.run(screen)


def export_pages(
    jobs: Sequence[ExportJob],
    screen: IdentifierScreen | None,
    *,
    root: Path,
    executor: Executor | None = None,
    workers: int = 1,
) -> list[Page]:
    """Make the pages of ``jobs``, on ``executor``'s workers when that is worth it.

    Parameters
    ----------
    jobs : sequence of ExportJob
    screen : IdentifierScreen or None
        The screen of the build; pages are made in this process when it has no digest (the
        workers could not tell that theirs is the same).
    root : Path
        The project folder, as the workers see it.
    executor : Executor, optional
        The run's workers; None makes every page here.
    workers : int
        How many pages the executor makes at once.

    Returns
    -------
    list of Page
        In the order of ``jobs``.

    Raises
    ------
    PrivacyError
        As :func:`~qi_helpers.publish.pages.export_report` (``publish.on_identifier: refuse``),
        or when a worker's screen is not the build's.
    """
    digest = screen.digest if screen is not None else None
    if executor is None or workers < 2 or len(jobs) < MIN_PARALLEL or not digest:
        return [job.run(screen) for job in jobs]
    futures: list[Future[Page]] = [
        executor.submit(_export_on_worker, job, str(root), digest) for job in jobs
    ]
    try:
        return [future.result() for future in futures]
    except BaseException:
        for future in futures:
            future.cancel()
        raise
