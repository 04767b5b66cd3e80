"""Cells a spreadsheet would run as formulas: finding them, and making them harmless for export.

:func:`neutralise_formulas` is applied by every export to CSV or Excel, so that a cell such as
``=HYPERLINK(...)`` from an input file is shown as text, never run as a formula (the OWASP advice
against "CSV injection"). :func:`text_edges` is the vectorised look at arrow string buffers that
finds such cells (and surrounding spaces, and empty cells) in columns of millions of rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["FORMULA_PREFIXES", "formula_cells", "neutralise_formulas", "text_edges"]

#: First characters that make a spreadsheet treat a cell as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

_FORMULA_BYTES = np.zeros(256, dtype=bool)
_FORMULA_BYTES[[ord(c) for c in FORMULA_PREFIXES]] = True


def _is_text(series: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)


def text_edges(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first and last byte and the byte length of every cell of an arrow string column.

    A vectorised look at the buffers (no per-cell work), used to find formulas, surrounding
    spaces and empty cells in columns of millions of rows. Missing cells have length 0.

    Returns
    -------
    first, last : ndarray of uint8
        0 for empty or missing cells.
    length : ndarray of int64
    """
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    firsts, lasts, lengths = [], [], []
    for chunk in chunks:
        n = len(chunk)
        wide = pa.types.is_large_string(chunk.type)
        validity, offsets_buf, data_buf = chunk.buffers()[:3]
        offsets = np.frombuffer(offsets_buf, dtype=np.int64 if wide else np.int32)
        offsets = offsets[chunk.offset : chunk.offset + n + 1].astype(np.int64)
        data = (
            np.frombuffer(data_buf, dtype=np.uint8)
            if data_buf is not None and data_buf.size
            else np.zeros(1, dtype=np.uint8)
        )
        length = np.diff(offsets)
        if validity is not None and chunk.null_count:
            length = np.where(chunk.is_valid().to_numpy(zero_copy_only=False), length, 0)
        empty = length == 0
        top = max(len(data) - 1, 0)
        first = data[np.minimum(offsets[:-1], top)]  # a plain gather: no boolean indexing
        last = data[np.clip(offsets[1:] - 1, 0, top)]
        first[empty] = 0
        last[empty] = 0
        firsts.append(first)
        lasts.append(last)
        lengths.append(length)
    if not chunks:
        empty = np.zeros(0, dtype=np.uint8)
        return empty, empty, np.zeros(0, dtype=np.int64)
    return np.concatenate(firsts), np.concatenate(lasts), np.concatenate(lengths)


def formula_cells(series: pd.Series) -> pd.Series:
    """Which cells of a column a spreadsheet would run as a formula.

    Parameters
    ----------
    series : Series
        Any column; only text cells can be formulas.

    Returns
    -------
    Series of bool
        True for text cells that start with one of :data:`FORMULA_PREFIXES`.
    """
    if not _is_text(series):
        return pd.Series(False, index=series.index)
    if isinstance(series.dtype, pd.StringDtype) and series.dtype.storage == "pyarrow":
        first, _, _ = text_edges(series.array.__arrow_array__())
        return pd.Series(_FORMULA_BYTES[first], index=series.index, dtype=bool)
    text = series.map(lambda v: v if isinstance(v, str) else None)
    return text.str.startswith(FORMULA_PREFIXES).fillna(False).astype(bool)


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Make text cells that a spreadsheet would run as formulas harmless, for export.

    A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with a
    single quote (the OWASP advice against CSV injection), so Excel and LibreOffice show it as
    text. Numbers (even negative ones) and dates are left alone.

    Parameters
    ----------
    frame : DataFrame
        The table about to be written to CSV or Excel.

    Returns
    -------
    DataFrame
        ``frame`` itself when no cell needs it, otherwise a copy with those cells prefixed.
    """
    out = frame
    for column in frame.columns:
        hit = formula_cells(frame[column])
        if hit.any():
            if out is frame:
                out = frame.copy()
            values = out[column].astype(object)
            values[hit] = "'" + values[hit].astype(str)
            keep = pd.api.types.is_string_dtype(frame[column].dtype)
            out[column] = values.astype(frame[column].dtype) if keep else values
    return out
