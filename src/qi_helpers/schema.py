"""The table contracts of ``DESIGN.md`` and their validation.

:func:`validate` checks one table against its contract and returns it with typed columns
(identifiers as text, timestamps as ``datetime64``, numbers as floats). Every problem found in the
table is reported at once, naming the source, the column and the first affected rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from qi_helpers.errors import DataError, format_rows


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


def _as_text(series: pd.Series) -> pd.Series:
    """Identifiers are text: ``12`` and ``"12"`` are the same id; ``12.0`` becomes ``12``."""
    if pd.api.types.is_float_dtype(series):
        whole = series.dropna()
        if (whole == whole.round()).all():
            series = series.astype("Int64")
    return series.astype("string").str.strip()


def validate(name: str, frame: pd.DataFrame, *, source: str = "<table>") -> pd.DataFrame:
    """Check a table against its contract and return it with typed columns.

    Parameters
    ----------
    name : str
        The contract's name (a key of :data:`CONTRACTS`).
    frame : DataFrame
        The table as read.
    source : str
        Where it came from (a file path, or URL and table), for messages.

    Returns
    -------
    DataFrame
        A copy with identifier columns as text, date columns as ``datetime64[ns]`` and number
        columns as ``float64``.

    Raises
    ------
    DataError
        Listing every problem found: empty table, missing required columns, unparsable dates or
        numbers (with the column and the 1-based data rows, as a spreadsheet shows them minus the
        header).
    """
    if name not in CONTRACTS:
        raise DataError(f"{source}: unknown table `{name}`; known tables: {', '.join(CONTRACTS)}.")
    contract = CONTRACTS[name]
    problems: list[str] = []
    if frame.empty:
        raise DataError(
            f"{source} (table `{name}`): the table is empty; expected at least one row."
        )
    missing = [c for c in contract.required if c not in frame.columns]
    if missing:
        problems.append(
            f"missing required column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, frame.columns))}"
        )
    if contract.one_of and not any(c in frame.columns for c in contract.one_of):
        problems.append(f"needs at least one of the columns {', '.join(contract.one_of)}")
    out = frame.copy()
    for column in contract.ids:
        if column in out.columns:
            out[column] = _as_text(out[column])
    for column in contract.dates:
        if column in out.columns:
            raw = out[column]
            parsed = pd.to_datetime(raw, errors="coerce", format="ISO8601")
            bad = parsed.isna() & raw.notna()
            if bad.any():
                rows = (bad[bad].index + 1).tolist()
                problems.append(
                    f"column `{column}`: unparsable dates in {format_rows(rows)} "
                    f"(e.g. {raw[bad].iloc[0]!r}); use ISO dates like 2024-01-31"
                )
            out[column] = parsed.astype("datetime64[ns]")
    for column in contract.numbers:
        if column in out.columns:
            raw = out[column]
            parsed = pd.to_numeric(raw, errors="coerce")
            bad = parsed.isna() & raw.notna()
            if bad.any():
                rows = (bad[bad].index + 1).tolist()
                problems.append(
                    f"column `{column}`: not a number in {format_rows(rows)} "
                    f"(e.g. {raw[bad].iloc[0]!r})"
                )
            out[column] = parsed.astype("float64")
    for column in contract.required:
        if column in out.columns and column in contract.ids:
            blank = out[column].isna() | (out[column] == "")
            if blank.any() and name not in ("activities",):
                rows = (blank[blank].index + 1).tolist()
                problems.append(f"column `{column}`: empty identifier in {format_rows(rows)}")
    if problems:
        listing = "\n  - ".join(problems)
        raise DataError(f"{source} (table `{name}`) does not meet its contract:\n  - {listing}")
    return out
