"""Checks of the tables a step is handed: the columns it needs, timestamps, blank identifiers.

The steps call these on the tables given to them (a workbook's own frames as well as the typed
input tables), so a missing column is reported the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from qi_helpers.errors import DataError, format_rows

__all__ = [
    "COLUMNS_ADVICE",
    "activity_timestamps",
    "blank_mask",
    "require_columns",
    "require_dataframe",
]

#: The advice :func:`require_columns` gives unless told otherwise.
COLUMNS_ADVICE = "Check the table's source (or the `columns:` mapping in parameters/project.yaml)."


def require_columns(
    table: pd.DataFrame,
    columns: Sequence[str],
    what: str,
    *,
    advice: str = COLUMNS_ADVICE,
) -> None:
    """Raise a :class:`~qi_helpers.errors.DataError` unless ``table`` has every one of ``columns``.

    Parameters
    ----------
    table : pandas.DataFrame
        The table to check.
    columns : sequence of str
        The columns it must have.
    what : str
        The table's name as a reader knows it (``"results"``, ``"adoption"``), put first in
        the message.
    advice : str, keyword-only
        What to do about it, the message's last sentence.

    Raises
    ------
    DataError
        Naming the table, the missing columns (in the order asked) and the columns found:
        ``"<what>: missing column(s) a, b; found x, y. <advice>"``.

    Examples
    --------
    >>> require_columns(pd.DataFrame({"a": [1]}), ["a", "b"], "demo", advice="Add `b`.")
    Traceback (most recent call last):
    ...
    qi_helpers.errors.DataError: demo: missing column(s) b; found a. Add `b`.
    """
    missing = list(dict.fromkeys(c for c in columns if c not in table.columns))
    if missing:
        found = ", ".join(map(str, table.columns)) or "no columns"
        raise DataError(f"{what}: missing column(s) {', '.join(missing)}; found {found}. {advice}")


def require_dataframe(frame: pd.DataFrame, columns: Iterable[str], table: str) -> None:
    """Raise a :class:`~qi_helpers.errors.DataError` unless ``frame`` is a table with ``columns``.

    The check of the tables given to :func:`qi_helpers.identify.microsystems.identify`,
    :func:`qi_helpers.identify.declared_units.compare_to_declared` and
    :func:`qi_helpers.identify.profiles.profile`: unlike :func:`require_columns` it also rejects
    an object that is not a DataFrame, and its message names the missing columns in backticks
    and points to the ``columns:`` mapping.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table to check.
    columns : iterable of str
        The columns it must have.
    table : str
        The table's name (``"activities"``, ``"staff"``), put first in the message.

    Raises
    ------
    DataError
        ``"<table>: expected a DataFrame, found <type>."``, or
        ``"<table>: column(s) `a`, `b` missing; found x, y. Rename your columns ..."``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{table}: expected a DataFrame, found {type(frame).__name__}.")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{table}: column(s) {', '.join(f'`{c}`' for c in missing)} missing; found "
            f"{', '.join(map(str, frame.columns))}. Rename your columns (`columns:` in "
            "parameters/project.yaml) or add them."
        )


def activity_timestamps(activities: pd.DataFrame) -> pd.Series:
    """The ``timestamp`` column of the activities as datetimes (ISO 8601 text is parsed).

    Parameters
    ----------
    activities : pandas.DataFrame
        The ``activities`` table, with a ``timestamp`` column.

    Returns
    -------
    pandas.Series
        The column itself when it already holds datetimes, else the parsed column (a missing
        value stays missing).

    Raises
    ------
    DataError
        Naming the 1-based rows whose value is not a date.
    """
    ts = activities["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(ts):
        return ts
    parsed = pd.to_datetime(ts, errors="coerce", format="ISO8601")
    bad = parsed.isna() & ts.notna()
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy()) + 1
        raise DataError(
            f"activities: column `timestamp` has values that are not dates in "
            f"{format_rows(rows)}; write them as ISO dates (2024-01-31 or 2024-01-31T08:15)."
        )
    return parsed


def blank_mask(column: pd.Series) -> np.ndarray:
    """Which values of an identifier column are missing or empty, as a boolean array.

    Parameters
    ----------
    column : pandas.Series
        An identifier column (``staff_id``, ``patient_id``).

    Returns
    -------
    numpy.ndarray of bool
        True where the value is missing or, in a text column, is the empty string ``""`` (the
        contract checks of :func:`qi_helpers.data.validation.inspect` also count text of spaces
        only as blank).
    """
    missing = column.isna().to_numpy().copy()
    if pd.api.types.is_string_dtype(column.dtype):
        missing |= (column == "").fillna(True).to_numpy(dtype=bool)
    elif column.dtype == object:
        missing |= (column.astype("string").str.strip() == "").fillna(True).to_numpy(dtype=bool)
    return missing
