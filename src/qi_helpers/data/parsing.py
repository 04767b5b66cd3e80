"""Typing the cells of a table as read: identifiers as text, dates, numbers, blank cells.

Arrow-backed text columns (what the CSV reader gives) are handled on their buffers, without
per-cell Python work; other columns (Excel, databases, Parquet) through pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from qi_helpers.data.formulas import text_edges

__all__ = ["arrow_strings", "as_text", "blank_cells", "parse_dates", "parse_numbers"]

_SPACE_BYTES = np.zeros(256, dtype=bool)
_SPACE_BYTES[[9, 10, 11, 12, 13, 32, 0xC2, 0xA0]] = True  # ASCII spaces; start/end of U+00A0


def arrow_strings(series: pd.Series) -> pa.ChunkedArray | None:
    """The column as an arrow string array when it is one (zero-copy), else None."""
    dtype = series.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        pass
    elif not (isinstance(dtype, pd.ArrowDtype) and pa.types.is_string(dtype.pyarrow_dtype)):
        return None
    arr = series.array.__arrow_array__()
    return arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr])


def as_text(series: pd.Series) -> pd.Series:
    """Identifiers are text: ``12`` and ``"12"`` are the same id; ``12.0`` becomes ``12``."""
    arr = arrow_strings(series)
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


def blank_cells(series: pd.Series) -> pd.Series:
    """Missing or only spaces."""
    arr = arrow_strings(series)
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


def parse_dates(raw: pd.Series, date_format: str | None) -> pd.Series:
    """Parse a date column; unparsable cells become NaT (the caller reports them)."""
    arr = arrow_strings(raw)
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
        return _parse_mixed_dates(raw)
    fmt = date_format or "ISO8601"
    parsed = pd.to_datetime(raw.astype("string"), errors="coerce", format=fmt)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert(None)
    return parsed.astype("datetime64[ns]")


def _parse_mixed_dates(raw: pd.Series) -> pd.Series:
    """Excel and databases give datetime objects; text cells are parsed as ISO dates."""
    parsed = raw.map(lambda v: pd.Timestamp(v) if hasattr(v, "year") else v, na_action="ignore")
    text = parsed.map(lambda v: v if isinstance(v, str) else None)
    from_text = pd.to_datetime(text, errors="coerce", format="ISO8601")
    stamps = parsed.map(lambda v: v if isinstance(v, pd.Timestamp) else pd.NaT)
    out = pd.to_datetime(stamps).where(text.isna(), from_text)
    return pd.to_datetime(out, errors="coerce").astype("datetime64[ns]")


def parse_numbers(raw: pd.Series) -> pd.Series:
    """Parse a number column as floats; unparsable cells become NaN (the caller reports them)."""
    arr = arrow_strings(raw)
    if arr is not None:
        try:
            return pd.Series(pc.cast(arr, pa.float64()).to_numpy(), index=raw.index)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    if pd.api.types.is_bool_dtype(raw):
        return raw.astype("float64")
    text = raw.astype("string").str.strip() if not pd.api.types.is_numeric_dtype(raw) else raw
    return pd.to_numeric(text, errors="coerce").astype("float64")
