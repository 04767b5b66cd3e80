"""The error family of ``qi_helpers``.

Every error raised on bad input derives from :class:`QIError`, so a caller (a workbook, the ``qi``
command) can catch one class and show the message. Messages say what was expected, what was found,
where (file, column, rows) and how to fix it.
"""

from __future__ import annotations

from collections.abc import Iterable


class QIError(Exception):
    """Root of every error raised by ``qi_helpers`` for bad input or configuration."""


class DataError(QIError):
    """A table does not meet its data contract (missing column, bad values, empty table)."""


class ConfigError(QIError):
    """A parameter or configuration value is missing or invalid."""


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
