"""The table contracts of ``DESIGN.md`` and their validation.

:func:`inspect` checks one table against its contract and returns it with typed columns
(identifiers as text, timestamps as ``datetime64[ns]``, numbers as floats) together with every
:class:`Problem` found: errors (the table cannot be used as it is) and warnings (it can, but a
user should look). :func:`validate` does the same and raises one :class:`ContractError` listing
all the errors of the table. ``qi check`` (``qi_helpers.checks``) adds the checks across tables
and prints the same lines, grouped by table.

Rows are data rows counted from 1 = the first row under the header (a spreadsheet shows that row
as row 2).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from qi_helpers.errors import DataError, format_rows
from qi_helpers.sources import formula_cells, text_edges

__all__ = [
    "ALLOWED",
    "CONTRACTS",
    "EXAMPLE_PREFIX",
    "UNIQUE",
    "Contract",
    "ContractError",
    "Problem",
    "activity_timestamps",
    "blank_mask",
    "inspect",
    "require_columns",
    "require_dataframe",
    "validate",
]

#: Identifiers starting with this mark the example rows of the ``qi init`` templates.
EXAMPLE_PREFIX = "EXAMPLE"


@dataclass(frozen=True)
class Contract:
    """What one input table must hold."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    #: Alternative columns of which at least one must be present.
    one_of: tuple[str, ...] = ()


CONTRACTS: dict[str, Contract] = {
    "activities": Contract(
        required=("timestamp", "patient_id", "staff_id", "activity", "location"),
        optional=("encounter_id", "duration_min"),
        ids=("patient_id", "staff_id", "encounter_id"),
        dates=("timestamp",),
        numbers=("duration_min",),
    ),
    "staff": Contract(
        required=("staff_id", "role"),
        optional=("fte", "home_unit"),
        ids=("staff_id",),
        numbers=("fte",),
    ),
    "patients": Contract(
        required=("patient_id",), optional=("age_band", "sex", "conditions"), ids=("patient_id",)
    ),
    "measures": Contract(
        required=("measure_id", "name", "family", "chart", "improvement"),
        optional=("aim", "unit", "multiply", "target", "period", "kind", "balances"),
        ids=("measure_id",),
        numbers=("multiply", "target"),
    ),
    "measure_events": Contract(
        required=("measure_id", "timestamp", "value"),
        optional=("patient_id", "staff_id", "location", "denominator_weight"),
        ids=("measure_id", "patient_id", "staff_id"),
        dates=("timestamp",),
        numbers=("value", "denominator_weight"),
        one_of=("patient_id", "staff_id", "location"),
    ),
    "observations": Contract(
        required=("microsystem_id", "measure_id", "period"),
        optional=("numerator", "value", "denominator"),
        ids=("microsystem_id", "measure_id"),
        dates=("period",),
        numbers=("numerator", "value", "denominator"),
        one_of=("numerator", "value"),
    ),
    "pdsa": Contract(
        required=("microsystem_id", "cycle_id", "change", "start"),
        optional=("end", "prediction", "result", "decision", "measure_ids"),
        ids=("microsystem_id", "cycle_id"),
        dates=("start", "end"),
    ),
    "readiness": Contract(
        required=("characteristic", "score"),
        optional=("staff_id", "microsystem_id"),
        ids=("staff_id", "microsystem_id"),
        numbers=("score",),
        one_of=("staff_id", "microsystem_id"),
    ),
    "adoption": Contract(
        required=("microsystem_id", "change", "adopted"),
        ids=("microsystem_id",),
        dates=("adopted",),
    ),
}

#: Columns whose values must be unique in their table (together, for several columns).
UNIQUE: dict[str, tuple[str, ...]] = {
    "staff": ("staff_id",),
    "patients": ("patient_id",),
    "measures": ("measure_id",),
    "pdsa": ("microsystem_id", "cycle_id"),
}

_CHARTS = ("run", "i", "ip", "mr", "xbar", "s", "t", "p", "pp", "c", "u", "up", "g")
_TEN = (
    "leadership",
    "organisational_support",
    "staff_focus",
    "education_and_training",
    "interdependence",
    "patient_focus",
    "community_and_market_focus",
    "performance_results",
    "process_improvement",
    "information_and_information_technology",
)

#: Allowed values of coded columns: (table, column) -> (values, level of a breach). Values are
#: compared after trimming spaces (and, except for characteristics, in lower case).
ALLOWED: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    ("measures", "family"): (("outcome", "process", "balancing"), "error"),
    ("measures", "chart"): (_CHARTS, "error"),
    ("measures", "improvement"): (("up", "down"), "error"),
    ("measures", "period"): (("week", "month"), "error"),
    ("measures", "aim"): (
        ("safe", "effective", "patient-centred", "timely", "efficient", "equitable"),
        "warning",
    ),
    ("pdsa", "decision"): (("adopt", "adapt", "abandon", "ongoing"), "error"),
    ("readiness", "characteristic"): (_TEN, "error"),
}

#: Number columns that count things: negative values are errors.
_COUNTS = {
    ("observations", "numerator"),
    ("observations", "denominator"),
    ("measure_events", "denominator_weight"),
    ("staff", "fte"),
}
#: Denominators: zero is allowed but warned about (the point cannot be charted).
_DENOMINATORS = {("observations", "denominator"), ("measure_events", "denominator_weight")}


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


class ContractError(DataError):
    """A table breaks its contract; ``problems`` holds every error found (as :class:`Problem`)."""

    def __init__(self, message: str, problems: Iterable[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


def render_table(name: str, source: str, problems: Iterable[Problem]) -> str:
    """The block of lines ``qi check`` prints for one table (and a workbook's error shows)."""
    lines = [f"{source} (table `{name}`):"]
    for p in problems:
        lines.append(f"  - {p.level.upper()} {p.describe()}")
    return "\n".join(lines)


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

    The check of the tables given to :func:`qi_helpers.microsystems.identify`,
    :func:`qi_helpers.declared_units.compare_to_declared` and :func:`qi_helpers.profiles.profile`:
    unlike :func:`require_columns` it also rejects an object that is not a DataFrame, and its
    message names the missing columns in backticks and points to the ``columns:`` mapping.

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
        contract checks of :func:`inspect` also count text of spaces only as blank).
    """
    missing = column.isna().to_numpy().copy()
    if pd.api.types.is_string_dtype(column.dtype):
        missing |= (column == "").fillna(True).to_numpy(dtype=bool)
    elif column.dtype == object:
        missing |= (column.astype("string").str.strip() == "").fillna(True).to_numpy(dtype=bool)
    return missing


# ------------------------------------------------------------------------------------ helpers


def _rows(mask: pd.Series | np.ndarray, limit: int = 10) -> tuple[tuple[int, ...], int]:
    """The first ``limit`` 1-based data rows where ``mask`` is true, and how many there are."""
    hits = np.flatnonzero(np.asarray(mask, dtype=bool))
    return tuple(int(i) + 1 for i in hits[:limit]), int(hits.size)


def _arrow(series: pd.Series) -> pa.ChunkedArray | None:
    """The column as an arrow string array when it is one (zero-copy), else None."""
    dtype = series.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        pass
    elif not (isinstance(dtype, pd.ArrowDtype) and pa.types.is_string(dtype.pyarrow_dtype)):
        return None
    arr = series.array.__arrow_array__()
    return arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr])


_SPACE_BYTES = np.zeros(256, dtype=bool)
_SPACE_BYTES[[9, 10, 11, 12, 13, 32, 0xC2, 0xA0]] = True  # ASCII spaces; start/end of U+00A0


def _as_text(series: pd.Series) -> pd.Series:
    """Identifiers are text: ``12`` and ``"12"`` are the same id; ``12.0`` becomes ``12``."""
    arr = _arrow(series)
    if arr is not None:
        first, last, _ = text_edges(arr)
        if _SPACE_BYTES[first].any() or _SPACE_BYTES[last].any():
            arr = pc.utf8_trim_whitespace(arr)
        return pd.Series(pd.arrays.ArrowStringArray(arr), index=series.index, name=series.name)
    if pd.api.types.is_float_dtype(series):
        whole = series.dropna()
        if (whole == whole.round()).all():
            series = series.astype("Int64")
    elif pd.api.types.is_object_dtype(series):
        series = series.map(
            lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else v,
            na_action="ignore",
        )
    return series.astype("string").str.strip()


def _blank(series: pd.Series) -> pd.Series:
    """Missing or only spaces."""
    arr = _arrow(series)
    if arr is not None:
        first, _, length = text_edges(arr)
        empty = length == 0
        spaced = _SPACE_BYTES[first]
        if spaced.any():
            trimmed = pc.utf8_trim_whitespace(arr)
            empty |= pc.equal(trimmed, "").fill_null(True).to_numpy(zero_copy_only=False)
        return pd.Series(empty, index=series.index, dtype=bool)
    if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
        return series.isna()
    return series.isna() | (series.astype("string").str.strip() == "").fillna(False)


def _parse_dates(raw: pd.Series, date_format: str | None) -> pd.Series:
    """Parse a date column; unparsable cells become NaT (the caller reports them)."""
    arr = _arrow(raw)
    if arr is not None:
        if not date_format:  # (arrow's strptime accepts 31/02, so a format goes to pandas)
            try:
                parsed = pc.cast(arr, pa.timestamp("ns"))
                return pd.Series(parsed.to_pandas(), index=raw.index).astype("datetime64[ns]")
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass  # some cells do not parse: find them with pandas below
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert(None)
        return parsed.astype("datetime64[ns]")
    if pd.api.types.is_object_dtype(raw) and not date_format:
        # Excel and databases give datetime objects; text cells are parsed as ISO dates.
        parsed = raw.map(lambda v: pd.Timestamp(v) if hasattr(v, "year") else v, na_action="ignore")
        text = parsed.map(lambda v: v if isinstance(v, str) else None)
        from_text = pd.to_datetime(text, errors="coerce", format="ISO8601")
        stamps = parsed.map(lambda v: v if isinstance(v, pd.Timestamp) else pd.NaT)
        out = pd.to_datetime(stamps).where(text.isna(), from_text)
        return pd.to_datetime(out, errors="coerce").astype("datetime64[ns]")
    fmt = date_format or "ISO8601"
    parsed = pd.to_datetime(raw.astype("string"), errors="coerce", format=fmt)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert(None)
    return parsed.astype("datetime64[ns]")


def _parse_numbers(raw: pd.Series) -> pd.Series:
    arr = _arrow(raw)
    if arr is not None:
        try:
            return pd.Series(pc.cast(arr, pa.float64()).to_numpy(), index=raw.index)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    if pd.api.types.is_bool_dtype(raw):
        return raw.astype("float64")
    text = raw.astype("string").str.strip() if not pd.api.types.is_numeric_dtype(raw) else raw
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _example(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "...'"


# ---------------------------------------------------------------------------------- inspect


def inspect(
    name: str,
    frame: pd.DataFrame,
    *,
    source: str = "<table>",
    date_format: str | None = None,
    today: date | None = None,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Check one table against its contract; return it typed with every problem found.

    Parameters
    ----------
    name : str
        The contract's name (a key of :data:`CONTRACTS`).
    frame : DataFrame
        The table as read (columns already renamed to the contract's).
    source : str
        Where it came from (a file path, or URL and table), for messages.
    date_format : str, optional
        A ``strptime`` format for the date columns (e.g. ``"%d/%m/%Y"``); ISO dates when None.
    today : date, optional
        Dates after this day are warned about as future dates (default: today).

    Returns
    -------
    frame : DataFrame
        A copy with identifier columns as text, date columns as ``datetime64[ns]``, number
        columns as ``float64`` and coded columns (chart, family, ...) trimmed and in lower case.
    problems : list of Problem
        Errors: ``empty_table``, ``missing_column``, ``bad_date``, ``bad_number``, ``empty_id``,
        ``example_row``, ``duplicate_id``, ``negative``, ``unknown_value``, ``missing_value``.
        Warnings: ``extra_column``, ``future_date``, ``zero_denominator``, ``formula``,
        ``unknown_value`` (for ``aim``).

    Raises
    ------
    DataError
        For a table name that is not a contract.
    """
    if name not in CONTRACTS:
        raise DataError(f"{source}: unknown table `{name}`; known tables: {', '.join(CONTRACTS)}.")
    contract = CONTRACTS[name]
    problems: list[Problem] = []

    def add(level: str, kind: str, message: str, fix: str = "", column=None, mask=None) -> None:
        rows, count = _rows(mask) if mask is not None else ((), 0)
        problems.append(Problem(level, kind, name, source, message, fix, column, rows, count))

    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    known = (*contract.required, *contract.optional)
    if frame.empty:
        add(
            "error",
            "empty_table",
            f"the table has no rows (columns found: {', '.join(frame.columns) or 'none'}); "
            "expected at least one",
            f"fill in the table, or remove data.tables.{name} if you do not use it",
        )
        return frame, problems
    extra = [c for c in frame.columns if c not in known]
    for column in contract.required:
        if column not in frame.columns:
            close = difflib.get_close_matches(column, extra, n=1, cutoff=0.6)
            hint = (
                f"rename `{close[0]}` (data.tables.{name}.columns: {{{close[0]}: {column}}})"
                if close
                else f"add the column, or map yours with data.tables.{name}.columns: "
                f"{{your_name: {column}}}"
            )
            add(
                "error",
                "missing_column",
                f"required column missing; found {', '.join(frame.columns)}",
                hint,
                column,
            )
    if contract.one_of and not any(c in frame.columns for c in contract.one_of):
        add(
            "error",
            "missing_column",
            f"needs at least one of the columns {', '.join(contract.one_of)}; "
            f"found {', '.join(frame.columns)}",
            f"add one of them (or rename yours with data.tables.{name}.columns)",
            "/".join(contract.one_of),
        )
    if extra:
        add(
            "warning",
            "extra_column",
            f"unknown column(s) {', '.join(extra)} are ignored; this table's columns are "
            f"{', '.join(known)}",
            f"rename them with data.tables.{name}.columns if they hold one of these",
            ", ".join(extra),
        )
    examples: dict[str, pd.Series] = {}
    for column in contract.ids:
        if column in frame.columns:
            frame[column] = _as_text(frame[column])
            arr = _arrow(frame[column])
            if arr is not None:
                hit = pc.starts_with(arr, EXAMPLE_PREFIX, ignore_case=True).fill_null(False)
                mark = hit.to_numpy(zero_copy_only=False)
            else:
                mark = frame[column].str.upper().str.startswith(EXAMPLE_PREFIX).fillna(False)
            if mark.any():
                examples[column] = pd.Series(np.asarray(mark, dtype=bool), index=frame.index)
    if examples:
        mark = np.logical_or.reduce([m.to_numpy() for m in examples.values()])
        first = next(iter(examples))
        add(
            "error",
            "example_row",
            "the template's example row is still here (identifiers starting with "
            f"{EXAMPLE_PREFIX}, e.g. {_example(frame[first][examples[first]].iloc[0])})",
            "replace the example row with your own data",
            ", ".join(examples),
            mark,
        )
    for column in contract.dates:
        if column in frame.columns:
            raw = frame[column]
            parsed = _parse_dates(raw, date_format)
            bad = (parsed.isna() & ~_blank(raw)).to_numpy()
            if bad.any():
                example = _example(raw[bad].iloc[0])
                add(
                    "error",
                    "bad_date",
                    f"unparsable dates (e.g. {example})"
                    + (f"; expected the format {date_format!r}" if date_format else ""),
                    "use ISO dates like 2024-01-31 or 2024-01-31T14:05:00, or give the format "
                    f"with data.tables.{name}.date_format (e.g. '%d/%m/%Y')",
                    column,
                    bad,
                )
            if column in contract.required and (missing := parsed.isna() & ~bad).any():
                add(
                    "error",
                    "missing_value",
                    "empty date where one is required",
                    "fill in the date or delete the row",
                    column,
                    missing,
                )
            limit = pd.Timestamp(today or date.today()) + pd.Timedelta(days=1)
            future = (parsed >= limit).to_numpy()
            if future.any():
                add(
                    "warning",
                    "future_date",
                    f"dates in the future (e.g. {parsed[future].iloc[0]:%Y-%m-%d})",
                    "check for typing errors (year, day/month order); future data is analysed "
                    "as if it had happened",
                    column,
                    future,
                )
            frame[column] = parsed
    for column in contract.numbers:
        if column in frame.columns:
            raw = frame[column]
            parsed = _parse_numbers(raw)
            bad = (parsed.isna() & ~_blank(raw)).to_numpy()
            if bad.any():
                add(
                    "error",
                    "bad_number",
                    f"not a number (e.g. {_example(raw[bad].iloc[0])})",
                    "write plain numbers with a dot for decimals and no units or thousands "
                    "separators (1234.5)",
                    column,
                    bad,
                )
            if (name, column) in _COUNTS and (neg := parsed < 0).any():
                add(
                    "error",
                    "negative",
                    f"negative values (e.g. {parsed[neg].iloc[0]:g}) where a count or "
                    "denominator must be zero or more",
                    "correct the values or delete the rows",
                    column,
                    neg,
                )
            if (name, column) in _DENOMINATORS and (zero := parsed == 0).any():
                add(
                    "warning",
                    "zero_denominator",
                    "zero denominators: these points cannot be charted and are left out",
                    "check whether the denominator was recorded; leave it empty if unknown",
                    column,
                    zero,
                )
            frame[column] = parsed
    if name == "activities" and "duration_min" in frame.columns:
        if (neg := frame["duration_min"] < 0).any():
            add(
                "warning",
                "negative",
                "negative durations",
                "check the start and end times the durations were computed from",
                "duration_min",
                neg,
            )
    if name == "measure_events" and "value" in frame.columns:
        if (empty := frame["value"].isna()).any():
            add(
                "error",
                "missing_value",
                "empty value where a number (or 0/1 for a proportion) is required",
                "fill in the value or delete the row",
                "value",
                empty,
            )
    if name == "readiness" and "score" in frame.columns:
        bad = frame["score"].notna() & ~frame["score"].isin([1, 2, 3])
        if bad.any():
            add(
                "error",
                "unknown_value",
                f"scores must be 1 (poor), 2 (mixed), 3 (ideal) or empty (can't rate); "
                f"found {frame['score'][bad].iloc[0]:g}",
                "recode the answers to 1, 2, 3 or leave the cell empty",
                "score",
                bad,
            )
    required_ids = [c for c in contract.ids if c in contract.required and c in frame.columns]
    for column in required_ids:
        blank = _blank(frame[column])
        if blank.any():
            add(
                "error",
                "empty_id",
                "empty identifier",
                "fill in the identifier or delete the row",
                column,
                blank,
            )
    if contract.one_of and name in ("measure_events", "readiness"):
        present = [c for c in contract.one_of if c in frame.columns]
        if present:
            none = np.logical_and.reduce([_blank(frame[c]).to_numpy() for c in present])
            if none.any():
                add(
                    "error",
                    "empty_id",
                    f"no key: each row needs one of {', '.join(present)}",
                    "fill in who or where the row is about",
                    "/".join(present),
                    none,
                )
    for (table, column), (values, level) in ALLOWED.items():
        if table == name and column in frame.columns:
            text = frame[column].astype("string").str.strip()
            if column != "characteristic":
                text = text.str.lower()
            bad = (text.notna() & ~text.isin(values)).to_numpy()
            if bad.any():
                add(
                    level,
                    "unknown_value",
                    f"unknown value(s) {', '.join(map(repr, text[bad].unique()[:5]))}; "
                    f"expected one of {', '.join(values)}",
                    "use one of the expected values (spelling and spaces matter)",
                    column,
                    bad,
                )
            frame[column] = text.astype("str")
    unique = UNIQUE.get(name)
    if unique and all(c in frame.columns for c in unique):
        dup = frame.duplicated(list(unique), keep=False) & ~frame[list(unique)].isna().any(axis=1)
        if dup.any():
            first = frame.loc[dup, list(unique)].iloc[0].tolist()
            what = " within a microsystem" if name == "pdsa" else ""
            add(
                "error",
                "duplicate_id",
                f"duplicate identifiers{what} (e.g. {' / '.join(map(str, first))}); each must "
                "appear once",
                "merge or delete the duplicate rows, or give them distinct identifiers",
                ", ".join(unique),
                dup,
            )
    text_columns = [
        c
        for c in frame.columns
        if c in known and c not in contract.dates and c not in contract.numbers
    ]

    for column in text_columns:
        hit = formula_cells(frame[column])
        if hit.any():
            add(
                "warning",
                "formula",
                "cells a spreadsheet would run as formulas "
                f"(e.g. {_example(frame[column][hit].iloc[0])})",
                "remove the leading =, +, -, @; exports from this project show such cells as "
                "text (prefixed with ')",
                column,
                hit,
            )
    return frame, problems


def validate(
    name: str,
    frame: pd.DataFrame,
    *,
    source: str = "<table>",
    date_format: str | None = None,
) -> pd.DataFrame:
    """Check a table against its contract and return it with typed columns.

    Parameters
    ----------
    name : str
        The contract's name (a key of :data:`CONTRACTS`).
    frame : DataFrame
        The table as read.
    source : str
        Where it came from (a file path, or URL and table), for messages.
    date_format : str, optional
        A ``strptime`` format for the date columns; ISO dates when None.

    Returns
    -------
    DataFrame
        A copy with identifier columns as text, date columns as ``datetime64[ns]`` and number
        columns as ``float64`` (see :func:`inspect`).

    Raises
    ------
    ContractError
        A :class:`~qi_helpers.errors.DataError` listing every error found in the table, each
        with the column, the first rows affected (1 = the first row under the header), how many
        and how to fix it; the same lines ``qi check`` prints.
    """
    typed, problems = inspect(name, frame, source=source, date_format=date_format)
    errors = [p for p in problems if p.level == "error"]
    if errors:
        raise ContractError(
            f"{render_table(name, source, errors)}\n(table `{name}` does not meet its contract; "
            "rows count from 1 = the first row under the header)",
            errors,
        )
    return typed
