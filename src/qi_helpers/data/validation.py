"""The rules that check one input table against its contract (:mod:`qi_helpers.data.contracts`).

:func:`inspect` checks one table and returns it with typed columns (identifiers as text,
timestamps as ``datetime64[ns]``, numbers as floats) together with every
:class:`~qi_helpers.data.problems.Problem` found: errors (the table cannot be used as it is) and
warnings (it can, but a user should look). :func:`validate` does the same and raises one
:class:`~qi_helpers.data.problems.ContractError` listing all the errors of the table. ``qi check``
(:mod:`qi_helpers.data.checks`) adds the checks across tables and prints the same lines, grouped
by table.

Each rule is one small function of an :class:`_Inspection`; :data:`_RULES` runs them in the
order their problems are reported.

Rows are data rows counted from 1 = the first row under the header (a spreadsheet shows that row
as row 2).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from qi_helpers.data.contracts import (
    ALLOWED,
    CONTRACTS,
    COUNT_COLUMNS,
    DENOMINATOR_COLUMNS,
    EXAMPLE_PREFIX,
    UNIQUE,
    Contract,
)
from qi_helpers.data.driver_checks import DIAGRAM_TEXT, driver_table_problems
from qi_helpers.data.formulas import formula_cells
from qi_helpers.data.parsing import (
    arrow_strings,
    as_text,
    blank_cells,
    parse_dates,
    parse_numbers,
)
from qi_helpers.data.problems import Problem, affected_rows, render_table
from qi_helpers.data.rounds import parse_rounds
from qi_helpers.errors import ContractError
from qi_helpers.errors import DataError

__all__ = ["inspect", "validate"]


def _example(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "...'"


@dataclass
class _Inspection:
    """One table being checked: its contract, its columns as typed so far, the problems found."""

    name: str
    source: str
    contract: Contract
    frame: pd.DataFrame
    date_format: str | None = None
    today: date | None = None
    problems: list[Problem] = field(default_factory=list)

    def add(
        self,
        level: str,
        kind: str,
        message: str,
        fix: str = "",
        column: str | None = None,
        mask=None,
    ) -> None:
        rows, count = affected_rows(mask) if mask is not None else ((), 0)
        self.problems.append(
            Problem(level, kind, self.name, self.source, message, fix, column, rows, count)
        )

    def present(self, columns) -> list[str]:
        """Those of ``columns`` the table has, in the order given."""
        return [c for c in columns if c in self.frame.columns]

    @property
    def extra(self) -> list[str]:
        """The table's columns that are not in its contract."""
        return [c for c in self.frame.columns if c not in self.contract.columns]


# ------------------------------------------------------------------------------------ columns


def _missing_columns(ins: _Inspection) -> None:
    """Each required column that is missing (suggesting a close name to rename)."""
    found = ", ".join(ins.frame.columns)
    for column in ins.contract.required:
        if column in ins.frame.columns:
            continue
        close = difflib.get_close_matches(column, ins.extra, n=1, cutoff=0.6)
        hint = (
            f"rename `{close[0]}` (data.tables.{ins.name}.columns: {{{close[0]}: {column}}})"
            if close
            else f"add the column, or map yours with data.tables.{ins.name}.columns: "
            f"{{your_name: {column}}}"
        )
        ins.add("error", "missing_column", f"required column missing; found {found}", hint, column)


def _missing_key_columns(ins: _Inspection) -> None:
    """None of the alternative key columns (``one_of``) is present."""
    one_of = ins.contract.one_of
    if one_of and not ins.present(one_of):
        ins.add(
            "error",
            "missing_column",
            f"needs at least one of the columns {', '.join(one_of)}; "
            f"found {', '.join(ins.frame.columns)}",
            f"add one of them (or rename yours with data.tables.{ins.name}.columns)",
            "/".join(one_of),
        )


def _extra_columns(ins: _Inspection) -> None:
    """Columns the contract does not know are ignored (a warning)."""
    extra = ins.extra
    if extra:
        ins.add(
            "warning",
            "extra_column",
            f"unknown column(s) {', '.join(extra)} are ignored; this table's columns are "
            f"{', '.join(ins.contract.columns)}",
            f"rename them with data.tables.{ins.name}.columns if they hold one of these",
            ", ".join(extra),
        )


# -------------------------------------------------------------------------------- identifiers


def _example_mark(column: pd.Series) -> np.ndarray:
    """Which identifiers start with :data:`EXAMPLE_PREFIX` (in any case)."""
    arr = arrow_strings(column)
    if arr is not None:
        hit = pc.starts_with(arr, EXAMPLE_PREFIX, ignore_case=True).fill_null(False)
        return hit.to_numpy(zero_copy_only=False)
    return column.str.upper().str.startswith(EXAMPLE_PREFIX).fillna(False)


def _identifiers(ins: _Inspection) -> None:
    """Identifiers become text; the template's example rows still present are errors."""
    frame = ins.frame
    examples: dict[str, pd.Series] = {}
    for column in ins.present(ins.contract.ids):
        frame[column] = as_text(frame[column])
        mark = _example_mark(frame[column])
        if mark.any():
            examples[column] = pd.Series(np.asarray(mark, dtype=bool), index=frame.index)
    if examples:
        mark = np.logical_or.reduce([m.to_numpy() for m in examples.values()])
        first = next(iter(examples))
        ins.add(
            "error",
            "example_row",
            "the template's example row is still here (identifiers starting with "
            f"{EXAMPLE_PREFIX}, e.g. {_example(frame[first][examples[first]].iloc[0])})",
            "replace the example row with your own data",
            ", ".join(examples),
            mark,
        )


# -------------------------------------------------------------------------------------- dates


def _dates(ins: _Inspection) -> None:
    """Date columns are parsed; unparsable, missing required and future dates are reported."""
    for column in ins.present(ins.contract.dates):
        raw = ins.frame[column]
        parsed = parse_dates(raw, ins.date_format)
        bad = (parsed.isna() & ~blank_cells(raw)).to_numpy()
        _bad_dates(ins, column, raw, bad)
        if column in ins.contract.required and (missing := parsed.isna() & ~bad).any():
            ins.add(
                "error",
                "missing_value",
                "empty date where one is required",
                "fill in the date or delete the row",
                column,
                missing,
            )
        _future_dates(ins, column, parsed)
        ins.frame[column] = parsed


def _bad_dates(ins: _Inspection, column: str, raw: pd.Series, bad: np.ndarray) -> None:
    if bad.any():
        example = _example(raw[bad].iloc[0])
        expected = f"; expected the format {ins.date_format!r}" if ins.date_format else ""
        ins.add(
            "error",
            "bad_date",
            f"unparsable dates (e.g. {example})" + expected,
            "use ISO dates like 2024-01-31 or 2024-01-31T14:05:00, or give the format "
            f"with data.tables.{ins.name}.date_format (e.g. '%d/%m/%Y')",
            column,
            bad,
        )


def _future_dates(ins: _Inspection, column: str, parsed: pd.Series) -> None:
    limit = pd.Timestamp(ins.today or date.today()) + pd.Timedelta(days=1)
    future = (parsed >= limit).to_numpy()
    if future.any():
        ins.add(
            "warning",
            "future_date",
            f"dates in the future (e.g. {parsed[future].iloc[0]:%Y-%m-%d})",
            "check for typing errors (year, day/month order); future data is analysed "
            "as if it had happened",
            column,
            future,
        )


# ------------------------------------------------------------------------------------ numbers


def _numbers(ins: _Inspection) -> None:
    """Number columns are parsed; non-numbers, negative counts and zero denominators reported."""
    for column in ins.present(ins.contract.numbers):
        raw = ins.frame[column]
        parsed = parse_numbers(raw)
        bad = (parsed.isna() & ~blank_cells(raw)).to_numpy()
        if bad.any():
            ins.add(
                "error",
                "bad_number",
                f"not a number (e.g. {_example(raw[bad].iloc[0])})",
                "write plain numbers with a dot for decimals and no units or thousands "
                "separators (1234.5)",
                column,
                bad,
            )
        _negative_counts(ins, column, parsed)
        _zero_denominators(ins, column, parsed)
        ins.frame[column] = parsed


def _negative_counts(ins: _Inspection, column: str, parsed: pd.Series) -> None:
    if (ins.name, column) in COUNT_COLUMNS and (neg := parsed < 0).any():
        ins.add(
            "error",
            "negative",
            f"negative values (e.g. {parsed[neg].iloc[0]:g}) where a count or "
            "denominator must be zero or more",
            "correct the values or delete the rows",
            column,
            neg,
        )


def _zero_denominators(ins: _Inspection, column: str, parsed: pd.Series) -> None:
    if (ins.name, column) in DENOMINATOR_COLUMNS and (zero := parsed == 0).any():
        ins.add(
            "warning",
            "zero_denominator",
            "zero denominators: these points cannot be charted and are left out",
            "check whether the denominator was recorded; leave it empty if unknown",
            column,
            zero,
        )


# ------------------------------------------------------------------------------ single tables


def _negative_durations(ins: _Inspection) -> None:
    """Activities with a negative duration (a warning)."""
    frame = ins.frame
    if ins.name == "activities" and "duration_min" in frame.columns:
        if (neg := frame["duration_min"] < 0).any():
            ins.add(
                "warning",
                "negative",
                "negative durations",
                "check the start and end times the durations were computed from",
                "duration_min",
                neg,
            )


def _missing_event_values(ins: _Inspection) -> None:
    """Measured cases without a value."""
    frame = ins.frame
    if ins.name == "measure_events" and "value" in frame.columns:
        if (empty := frame["value"].isna()).any():
            ins.add(
                "error",
                "missing_value",
                "empty value where a number (or 0/1 for a proportion) is required",
                "fill in the value or delete the row",
                "value",
                empty,
            )


def _readiness_scores(ins: _Inspection) -> None:
    """Readiness scores other than 1, 2, 3 or empty."""
    frame = ins.frame
    if ins.name == "readiness" and "score" in frame.columns:
        bad = frame["score"].notna() & ~frame["score"].isin([1, 2, 3])
        if bad.any():
            ins.add(
                "error",
                "unknown_value",
                f"scores must be 1 (poor), 2 (mixed), 3 (ideal) or empty (can't rate); "
                f"found {frame['score'][bad].iloc[0]:g}",
                "recode the answers to 1, 2, 3 or leave the cell empty",
                "score",
                bad,
            )


def _readiness_rounds(ins: _Inspection) -> None:
    """Survey rounds that are not whole numbers from 1 or ISO dates, empty, or of mixed kinds."""
    if ins.name != "readiness" or "round" not in ins.frame.columns:
        return
    parsed = parse_rounds(ins.frame["round"])
    fix = "write each round as a whole number (1, 2, ...) or an ISO date (2024-05-01)"
    for mask, message in (
        (parsed.bad, "survey rounds that are neither a whole number from 1 nor an ISO date"),
        (parsed.empty, "empty survey round: every answer needs its round when the column is there"),
        (parsed.mixed, f"survey rounds mix numbers and dates: most are {parsed.kind}s"),
    ):
        if mask.any():
            ins.add("error", "bad_round", message, fix + ", one kind per file", "round", mask)
    ins.frame["round"] = parsed.values


# ----------------------------------------------------------------------------------- row keys


def _empty_identifiers(ins: _Inspection) -> None:
    """Rows with a required identifier left empty."""
    contract = ins.contract
    for column in ins.present(c for c in contract.ids if c in contract.required):
        blank = blank_cells(ins.frame[column])
        if blank.any():
            ins.add(
                "error",
                "empty_id",
                "empty identifier",
                "fill in the identifier or delete the row",
                column,
                blank,
            )


def _rows_without_key(ins: _Inspection) -> None:
    """Rows of events or readiness answers with none of their alternative keys filled in."""
    if not (ins.contract.one_of and ins.name in ("measure_events", "readiness")):
        return
    present = ins.present(ins.contract.one_of)
    if present:
        none = np.logical_and.reduce([blank_cells(ins.frame[c]).to_numpy() for c in present])
        if none.any():
            ins.add(
                "error",
                "empty_id",
                f"no key: each row needs one of {', '.join(present)}",
                "fill in who or where the row is about",
                "/".join(present),
                none,
            )


def _coded_values(ins: _Inspection) -> None:
    """Coded columns (:data:`ALLOWED`) are trimmed (and lower-cased); other values reported."""
    frame = ins.frame
    for (table, column), (values, level) in ALLOWED.items():
        if table != ins.name or column not in frame.columns:
            continue
        text = frame[column].astype("string").str.strip()
        if column != "characteristic":
            text = text.str.lower()
        bad = (text.notna() & ~text.isin(values)).to_numpy()
        if bad.any():
            ins.add(
                level,
                "unknown_value",
                f"unknown value(s) {', '.join(map(repr, text[bad].unique()[:5]))}; "
                f"expected one of {', '.join(values)}",
                "use one of the expected values (spelling and spaces matter)",
                column,
                bad,
            )
        frame[column] = text.astype("str")


def _duplicate_identifiers(ins: _Inspection) -> None:
    """Identifiers that must be unique (:data:`UNIQUE`) and appear more than once."""
    frame = ins.frame
    unique = UNIQUE.get(ins.name)
    if not unique or not all(c in frame.columns for c in unique):
        return
    dup = frame.duplicated(list(unique), keep=False) & ~frame[list(unique)].isna().any(axis=1)
    if dup.any():
        first = frame.loc[dup, list(unique)].iloc[0].tolist()
        what = " within a microsystem" if ins.name == "pdsa" else ""
        ins.add(
            "error",
            "duplicate_id",
            f"duplicate identifiers{what} (e.g. {' / '.join(map(str, first))}); each must "
            "appear once",
            "merge or delete the duplicate rows, or give them distinct identifiers",
            ", ".join(unique),
            dup,
        )


def _driver_diagrams(ins: _Inspection) -> None:
    """The ``drivers`` table: trimmed text, and the rules of a driver diagram (a tree)."""
    if ins.name != "drivers":
        return
    for column in ins.present(DIAGRAM_TEXT):
        ins.frame[column] = ins.frame[column].astype("string").str.strip().replace("", pd.NA)
    ins.problems += driver_table_problems(ins.frame, ins.source)


def _formulas(ins: _Inspection) -> None:
    """Text cells a spreadsheet would run as formulas (a warning)."""
    contract, frame = ins.contract, ins.frame
    text_columns = [
        c
        for c in frame.columns
        if c in contract.columns and c not in contract.dates and c not in contract.numbers
    ]
    for column in text_columns:
        hit = formula_cells(frame[column])
        if hit.any():
            ins.add(
                "warning",
                "formula",
                "cells a spreadsheet would run as formulas "
                f"(e.g. {_example(frame[column][hit].iloc[0])})",
                "remove the leading =, +, -, @; exports from this project show such cells as "
                "text (prefixed with ')",
                column,
                hit,
            )


#: The rules of a table that has rows, in the order their problems are reported (the column
#: types they set are those the later rules read).
_RULES: tuple[Callable[[_Inspection], None], ...] = (
    _missing_columns,
    _missing_key_columns,
    _extra_columns,
    _identifiers,
    _dates,
    _numbers,
    _negative_durations,
    _missing_event_values,
    _readiness_scores,
    _readiness_rounds,
    _empty_identifiers,
    _rows_without_key,
    _coded_values,
    _duplicate_identifiers,
    _driver_diagrams,
    _formulas,
)


# ------------------------------------------------------------------------------------- inspect


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
        The contract's name (a key of :data:`~qi_helpers.data.contracts.CONTRACTS`).
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
        ``example_row``, ``duplicate_id``, ``negative``, ``unknown_value``, ``missing_value``;
        for ``drivers`` also ``several_aims`` and ``two_parents``
        (:mod:`qi_helpers.data.driver_checks`). Warnings: ``extra_column``, ``future_date``, ``zero_denominator``, ``formula``,
        ``unknown_value`` (for ``aim``), ``no_measure`` (``drivers``).

    Raises
    ------
    DataError
        For a table name that is not a contract.
    """
    if name not in CONTRACTS:
        raise DataError(f"{source}: unknown table `{name}`; known tables: {', '.join(CONTRACTS)}.")
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    ins = _Inspection(name, source, CONTRACTS[name], frame, date_format, today)
    if frame.empty:
        ins.add(
            "error",
            "empty_table",
            f"the table has no rows (columns found: {', '.join(frame.columns) or 'none'}); "
            "expected at least one",
            f"fill in the table, or remove data.tables.{name} if you do not use it",
        )
        return frame, ins.problems
    for rule in _RULES:
        rule(ins)
    return ins.frame, ins.problems


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
        The contract's name (a key of :data:`~qi_helpers.data.contracts.CONTRACTS`).
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
