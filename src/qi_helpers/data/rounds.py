"""Survey rounds of the readiness survey (the optional ``readiness.round`` column).

A team may answer the microsystem assessment several times (before its pilot, after its tests).
Each answer then names its **round**: either an ISO date (``2024-05-01``, the survey's date) or
a whole number (``1``, ``2``, ...), one kind for the whole file. :func:`parse_rounds` reads the
column and says which cells are bad (neither kind, or a number under 1), empty, or of the
minority kind when the file mixes dates and numbers; ``qi check`` reports them
(:mod:`qi_helpers.data.validation`) and the readiness helpers refuse them
(:func:`survey_rounds`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from qi_helpers.data.parsing import blank_cells
from qi_helpers.data.problems import affected_rows
from qi_helpers.errors import DataError

__all__ = ["ParsedRounds", "parse_rounds", "round_label", "survey_rounds"]

#: A whole number written as text: 1, 2, ... (``2.0`` as a spreadsheet writes it, too).
_WHOLE = r"^\s*\d+(?:\.0*)?\s*$"
#: An ISO date (and maybe a time): 2024-05-01, 2024-05-01T09:00.
_ISO = r"^\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+)?$"


@dataclass(frozen=True)
class ParsedRounds:
    """One ``round`` column read.

    Attributes
    ----------
    values : pandas.Series
        The rounds: ``Int64`` for numbered rounds, ``datetime64[ns]`` for dated rounds; missing
        where a cell is empty, bad or of the minority kind.
    kind : str
        ``"number"``, ``"date"`` or ``""`` (no round in the column).
    bad, empty, mixed : numpy.ndarray
        Boolean masks: cells that are neither a whole number from 1 nor an ISO date; empty cells
        (in a column that has rounds); cells of the minority kind when the column mixes numbers
        and dates.
    """

    values: pd.Series
    kind: str
    bad: np.ndarray
    empty: np.ndarray
    mixed: np.ndarray


def parse_rounds(raw: pd.Series) -> ParsedRounds:
    """Read a ``round`` column: whole numbers 1, 2, ... or ISO dates, one kind per column.

    Parameters
    ----------
    raw : pandas.Series
        The column as read (text, numbers or dates).

    Returns
    -------
    ParsedRounds
        The rounds and the masks of the cells to report. When the column mixes both kinds, the
        kind of most cells wins (numbers on a tie) and the others are ``mixed``.
    """
    blank = blank_cells(raw).to_numpy()
    if pd.api.types.is_datetime64_any_dtype(raw):
        dates = pd.to_datetime(raw).astype("datetime64[ns]")
        numbers = pd.Series(np.nan, index=raw.index)
    else:
        text = raw.astype("string").str.strip()
        whole = text.str.match(_WHOLE).fillna(False).to_numpy(dtype=bool)
        numbers = pd.to_numeric(text.where(whole), errors="coerce")
        iso = text.str.match(_ISO).fillna(False).to_numpy(dtype=bool)
        dates = pd.to_datetime(text.where(iso), errors="coerce", format="ISO8601")
    is_number = numbers.notna().to_numpy() & (numbers.fillna(0).to_numpy() >= 1)
    is_date = dates.notna().to_numpy()
    bad = ~blank & ~is_number & ~is_date
    kind = ""
    if is_number.any() or is_date.any():
        kind = "number" if is_number.sum() >= is_date.sum() else "date"
    mixed = is_date if kind == "number" else is_number if kind == "date" else np.zeros_like(bad)
    empty = blank if kind else np.zeros_like(bad)
    if kind == "number":
        values = numbers.where(is_number).round().astype("Int64")
    elif kind == "date":
        values = dates.where(is_date).astype("datetime64[ns]")
    else:
        values = pd.Series(pd.NA, index=raw.index, dtype="Int64")
    return ParsedRounds(values, kind, bad, empty, mixed & ~bad)


def round_label(value: object) -> str:
    """A round in words: ``"round 2"`` or ``"the survey of 1 May 2024"``."""
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return f"the survey of {pd.Timestamp(value):%-d %b %Y}"
    return f"round {value}"


def survey_rounds(readiness: pd.DataFrame, source: str = "readiness") -> pd.Series | None:
    """The readiness answers' rounds, or ``None`` when the table has no rounds.

    Parameters
    ----------
    readiness : pandas.DataFrame
        The readiness table (checked or not).
    source : str
        How to name the table in an error.

    Returns
    -------
    pandas.Series or None
        ``Int64`` or ``datetime64[ns]`` rounds, aligned with ``readiness``; ``None`` when the
        table has no ``round`` column or the column is empty.

    Raises
    ------
    qi_helpers.errors.DataError
        When a round is bad, empty or of the other kind (it names the rows, counted from 1 under
        the header).
    """
    if "round" not in readiness.columns:
        return None
    parsed = parse_rounds(readiness["round"])
    if not parsed.kind:
        if parsed.bad.any():
            _refuse(source, parsed.bad, "is neither a whole number from 1 nor an ISO date")
        return None
    for mask, what in (
        (parsed.bad, "is neither a whole number from 1 nor an ISO date"),
        (parsed.empty, "is empty (every answer needs its round when the column is there)"),
        (parsed.mixed, f"is not a {parsed.kind} like the other rounds (one kind per file)"),
    ):
        if mask.any():
            _refuse(source, mask, what)
    return parsed.values


def _refuse(source: str, mask: np.ndarray, what: str) -> None:
    rows, count = affected_rows(mask)
    shown = ", ".join(str(r) for r in rows)
    more = f" and {count - len(rows)} more" if count > len(rows) else ""
    raise DataError(
        f"{source}, column round: the round {what} in row(s) {shown}{more}. Write the survey "
        "round as a whole number (1, 2, ...) or as an ISO date (2024-05-01), one kind per file; "
        "`qi check` lists every such row."
    )
