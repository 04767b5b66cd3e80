"""What a check of the inputs reports: a :class:`Problem` and the lines printed for a table.

Rows are data rows counted from 1 = the first row under the header (a spreadsheet shows that row
as row 2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from qi_helpers.errors import DataError, ContractError

__all__ = ["Problem", "affected_rows", "render_table"]


@dataclass(frozen=True)
class Problem:
    """One problem found in the inputs.

    Attributes
    ----------
    level : {"error", "warning"}
        An error stops ``qi run`` and the workbooks; a warning is printed and the run goes on.
    kind : str
        What kind of problem, for tools (e.g. ``"missing_column"``, ``"bad_date"``,
        ``"duplicate_id"``, ``"future_date"``).
    table : str
        The contract table (``activities``, ``staff``, ...).
    source : str
        The file (and sheet), or the database URL and table.
    message : str
        What was expected and what was found.
    fix : str
        How to fix it.
    column : str or None
        The column concerned, if any.
    rows : tuple of int
        The first rows affected (at most 10), counted from 1 = the first row under the header.
    count : int
        How many rows are affected (0 when the problem is not about rows).
    """

    level: str
    kind: str
    table: str
    source: str
    message: str
    fix: str = ""
    column: str | None = None
    rows: tuple[int, ...] = ()
    count: int = 0

    def describe(self) -> str:
        """The problem in one paragraph: column, rows, what is wrong and how to fix it."""
        parts = []
        if self.column:
            names = self.column.split(", ")
            word = "columns" if len(names) > 1 else "column"
            parts.append(f"{word} {', '.join(f'`{n}`' for n in names)}")
        if self.count:
            shown = list(self.rows)
            more = f", ... ({self.count} rows)" if self.count > len(shown) else ""
            word = "row" if self.count == 1 else "rows"
            parts.append(f"{word} {', '.join(map(str, shown))}{more}")
        where = f"{', '.join(parts)}: " if parts else ""
        fix = f" Fix: {self.fix}" if self.fix else ""
        message = self.message if self.message.endswith((".", "...")) else f"{self.message}."
        return f"{where}{message}{fix}"

    def to_dict(self) -> dict:
        """The problem as a plain mapping (for ``qi check --json``)."""
        out = asdict(self)
        out["rows"] = list(self.rows)
        return out




def render_table(name: str, source: str, problems: Iterable[Problem]) -> str:
    """The block of lines ``qi check`` prints for one table (and a workbook's error shows)."""
    lines = [f"{source} (table `{name}`):"]
    for p in problems:
        lines.append(f"  - {p.level.upper()} {p.describe()}")
    return "\n".join(lines)


def affected_rows(mask: pd.Series | np.ndarray, limit: int = 10) -> tuple[tuple[int, ...], int]:
    """The first ``limit`` 1-based data rows where ``mask`` is true, and how many there are."""
    hits = np.flatnonzero(np.asarray(mask, dtype=bool))
    return tuple(int(i) + 1 for i in hits[:limit]), int(hits.size)
