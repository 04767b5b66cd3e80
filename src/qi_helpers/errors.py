"""The error family of ``qi_helpers``.

Every error raised on bad input derives from :class:`QIError`, so a caller (a workbook, the ``qi``
command) can catch one class and show the message. Messages say what was expected, what was found,
where (file, column, rows) and how to fix it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the error family imports nothing of the package
    from qi_helpers.data.problems import Problem
    from qi_helpers.run.processes import RecordedProcess


__all__ = [
    "ConfigError",
    "ContractError",
    "DataError",
    "ExecutorError",
    "InvalidInputs",
    "KernelStartError",
    "PrivacyError",
    "ProcessesStillRunning",
    "QIError",
    "RunError",
    "SPCError",
    "SourceError",
    "format_rows",
]


class QIError(Exception):
    """Root of every error raised by ``qi_helpers`` for bad input or configuration."""


class DataError(QIError):
    """A table does not meet its data contract (missing column, bad values, empty table)."""


class ConfigError(QIError):
    """A parameter or configuration value is missing or invalid."""


class SourceError(DataError):
    """A table's source cannot be read.

    Attributes
    ----------
    kind : str
        Why: ``missing_file``, ``missing_sheet``, ``missing_table``, ``encoding``,
        ``empty_file``, ``malformed`` (wrong number of cells, duplicate header), ``unreachable``
        (database), ``too_large`` (an Excel sheet over a cap of
        :data:`qi_helpers.data.excel.XLSX_LIMITS`) or ``unreadable``.
    column : str or None
        The column concerned (a duplicate header), if any.
    rows : tuple of int
        The first data rows concerned (rows with the wrong number of cells), if any.
    count : int
        How many rows are concerned.
    """

    def __init__(
        self,
        message: str,
        kind: str = "unreadable",
        *,
        column: str | None = None,
        rows: tuple[int, ...] = (),
        count: int = 0,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.column = column
        self.rows = tuple(rows)
        self.count = count or len(self.rows)


class ContractError(DataError):
    """A table breaks its contract; ``problems`` holds every error found (as :class:`Problem`)."""

    def __init__(self, message: str, problems: Iterable[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


class SPCError(DataError):
    """Bad input to :mod:`qi_helpers.spc` (unknown chart, missing column, impossible values)."""


class PrivacyError(QIError):
    """A page would publish an identifier and the publishing policy is to refuse, not redact."""


class RunError(QIError):
    """One or more workbooks failed, or the run could not start."""


class InvalidInputs(RunError):
    """The input tables failed validation; nothing was run.

    Attributes
    ----------
    problems : list of str
        One message per table with a problem.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            f"{len(problems)} input table(s) failed validation; nothing was run:\n"
            + "\n".join(problems)
        )
        self.problems = problems


class ProcessesStillRunning(RunError):
    """Processes of an earlier ``qi run`` of this project still run; this run did not start.

    They could still write the outputs this run would write. They are named by pid, with how to
    stop them.

    Attributes
    ----------
    pids : list of int
        The processes still running.
    """

    def __init__(self, lock: Path, processes: list[RecordedProcess]) -> None:
        self.pids = [p.pid for p in processes]
        pids = " ".join(str(pid) for pid in self.pids)
        super().__init__(
            f"{lock}: {len(processes)} process(es) of an earlier `qi run` of this project are "
            "still running and may still write its outputs: "
            + "; ".join(p.describe() for p in processes)
            + f". Stop them with `kill {pids}` (then `kill -9 {pids}` if they are still "
            "there), and run `qi run` again."
        )


class ExecutorError(QIError):
    """The executor (worker pool or Dask cluster) could not be started."""


class KernelStartError(QIError):
    """A kernel did not start after every retry."""


def format_rows(rows: Iterable[int], limit: int = 10) -> str:
    """Describe row numbers for an error message, e.g. ``"rows 2, 5, 9 (3 rows)"``.

    Parameters
    ----------
    rows : iterable of int
        Row numbers as the user sees them (1-based data rows).
    limit : int
        How many row numbers to list before eliding the rest.

    Returns
    -------
    str
        A short human-readable phrase.
    """
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f", ... ({len(rows)} rows)" if len(rows) > limit else f" ({len(rows)} rows)"
    word = "row" if len(rows) == 1 else "rows"
    return f"{word} {shown}{more if len(rows) > 1 else ''}"
