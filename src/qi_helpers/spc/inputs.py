"""The input of :func:`qi_helpers.spc.qic.qic`: its columns read and checked, and its error.

:class:`SPCError` is the error of every function of :mod:`qi_helpers.spc` given bad input.
:func:`read_columns`, :func:`read_parts` and :func:`check_values` read the y, n, x and facet
columns and the part, freeze and exclude arguments, and refuse values that cannot be right (they
name the rows); :func:`observations` gathers what was read into one frame, one row per
observation, ready to be aggregated into points (:mod:`qi_helpers.spc.points`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from qi_helpers.errors import SPCError, format_rows
from qi_helpers.measures import COUNT_CHARTS, PROPORTION_CHARTS

__all__ = [
    "Columns",
    "check_values",
    "column",
    "numeric",
    "observations",
    "read_columns",
    "read_parts",
]


@dataclass
class Columns:
    """The y, n, x and facet columns of one :func:`qi_helpers.spc.qic.qic` call, as read.

    Attributes
    ----------
    y, n : ndarray
        The measure and the denominators (NaN throughout when there is no ``n`` column).
    got_n : bool
        Whether an ``n`` column was given.
    x : Series
        The subgroup values (1..len(y) in the one-argument form), cut into periods if asked.
    facets : list of Series
        The two facet columns (a column of ones stands for a missing facet).
    facet_cols : list of str
        The names of the facet columns given.
    """

    y: np.ndarray
    n: np.ndarray
    got_n: bool
    x: pd.Series
    facets: list[pd.Series]
    facet_cols: list[str]


def column(data: pd.DataFrame, name: Any, role: str) -> pd.Series:
    """The column ``name`` of ``data`` (its ``role``: y, n, x...), or an error listing them."""
    if not isinstance(name, str | int) or name not in data.columns:
        known = ", ".join(map(str, data.columns[:20]))
        raise SPCError(f"{role} column {name!r} not found in the data; columns are: {known}.")
    return data[name]


def numeric(s: pd.Series, role: str) -> np.ndarray:
    """Numbers from a column (booleans count 0/1); anything else is an error naming the rows."""
    if isinstance(s.dtype, np.dtype) and s.dtype.kind in "biuf":  # plain numbers
        return s.to_numpy(dtype=float, copy=True)  # never a view of the caller's data
    if pd.api.types.is_bool_dtype(s):
        return s.astype(float).to_numpy()
    if pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype):
        return pd.to_numeric(s, errors="coerce").astype(float).to_numpy()
    conv = pd.to_numeric(s, errors="coerce")
    bad = np.flatnonzero(conv.isna().to_numpy() & s.notna().to_numpy())
    if bad.size:
        raise SPCError(
            f"{role} column {s.name!r} must be numeric; found non-numeric values "
            f"(e.g. {s.iloc[bad[0]]!r}) in {format_rows(bad + 1)}."
        )
    return conv.astype(float).to_numpy()


def _check_rows(mask: np.ndarray, message: str) -> None:
    bad = np.flatnonzero(mask)
    if bad.size:
        raise SPCError(f"{message} in {format_rows(bad + 1)}.")


def _x_values(s: pd.Series, x_period: str | None) -> pd.Series:
    if x_period is None:
        if isinstance(s.dtype, pd.DatetimeTZDtype):  # keep the local wall-clock time
            return s.dt.tz_localize(None)
        return s
    dt = pd.to_datetime(s)
    if isinstance(dt.dtype, pd.DatetimeTZDtype):
        dt = dt.dt.tz_localize(None)
    freq = {"day": "D", "week": "W-SUN", "month": "M", "quarter": "Q", "year": "Y"}
    key = x_period.lower().rstrip("s")
    if key not in freq:
        raise SPCError(f"x_period must be one of {sorted(freq)}; got {x_period!r}.")
    if key == "week":  # weeks start on Monday, as R's cut.Date
        return dt.dt.to_period("W-SUN").dt.start_time
    return dt.dt.to_period(freq[key]).dt.start_time


def _parse_indices(v: Any, role: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(v))
    if arr.size and not np.issubdtype(arr.dtype, np.number):
        raise SPCError(f"{role} must be 1-based point numbers; got {v!r}.")
    if arr.size and (np.any(arr < 1) or np.any(arr != np.round(arr))):
        raise SPCError(f"{role} must be whole point numbers of 1 or more; got {v!r}.")
    return np.sort(arr.astype(np.int64))


def read_columns(
    data: pd.DataFrame,
    x: str | None,
    y: str,
    n: str | None,
    facets: str | Sequence[str] | None,
    x_period: str | None,
    chart: str,
    needs_n: bool,
) -> Columns:
    """Read and check the y, n, x and facet columns (arguments of :func:`qi_helpers.spc.qic.qic`).

    ``needs_n``: the chart plots y / n, so a missing ``n`` column is an error.
    """
    yv = numeric(column(data, y, "y"), "y")
    nrow = len(yv)
    got_n = n is not None
    nv = numeric(column(data, n, "n"), "n") if got_n else np.full(nrow, np.nan)
    if needs_n and not got_n:
        raise SPCError(f"A {chart} chart needs a denominator column n.")
    if x is None:
        xs = pd.Series(np.arange(1, nrow + 1), name="x")
    else:
        xs = _x_values(column(data, x, "x").reset_index(drop=True), x_period)
    facet_cols = [facets] if isinstance(facets, str) else list(facets or [])
    if len(facet_cols) > 2:
        raise SPCError(f"At most two facet columns; got {facet_cols}.")
    fvals = [column(data, f, "facet").reset_index(drop=True) for f in facet_cols]
    while len(fvals) < 2:
        fvals.append(pd.Series(np.ones(nrow, dtype=np.int64)))
    return Columns(y=yv, n=nv, got_n=got_n, x=xs, facets=fvals, facet_cols=facet_cols)


def read_parts(
    part: Sequence[int] | int | str | None,
    freeze: int | None,
    exclude: Sequence[int] | int | None,
) -> tuple[str | None, np.ndarray | None, np.ndarray]:
    """Check :func:`qi_helpers.spc.qic.qic`'s ``part``, ``freeze`` and ``exclude``.

    Returns the column of phase labels (or None), the sorted point numbers where parts end (None
    when there are none or parts come from a column) and the sorted excluded point numbers.
    """
    part_col = part if isinstance(part, str) else None
    parts = None if part is None or part_col is not None else _parse_indices(part, "part")
    if freeze is not None and (not np.isscalar(freeze) or freeze < 1 or int(freeze) != freeze):
        raise SPCError(f"freeze must be a point number of 1 or more; got {freeze!r}.")
    excl = _parse_indices(exclude if exclude is not None else [], "exclude")
    return part_col, parts, excl


def check_values(
    yv: np.ndarray, nv: np.ndarray, got_n: bool, chart: str, y: str, n: str | None
) -> None:
    """Refuse values that cannot be right in a ``chart`` chart, naming the rows.

    Negative counts (charts of counts, :data:`qi_helpers.measures.COUNT_CHARTS`), negative
    denominators, a numerator above its denominator (charts of proportions) and times between
    events of zero or less (t chart). ``yv`` and ``nv`` are the values of the columns ``y``
    and ``n`` as read (``got_n``: there is an ``n`` column).
    """
    if chart in COUNT_CHARTS:
        _check_rows(yv < 0, f"Negative counts in y column {y!r} ({chart} chart)")
    if got_n:
        _check_rows(nv < 0, f"Negative denominators in n column {n!r}")
    if chart in PROPORTION_CHARTS and got_n:
        _check_rows(
            (yv > nv) & (nv > 0), f"Numerator {y!r} above denominator {n!r} in a {chart} chart"
        )
    if chart == "t":
        _check_rows(
            yv <= 0,
            f"Time between events must be greater than zero (t chart, column {y!r})",
        )


def observations(
    data: pd.DataFrame, cols: Columns, notes: str | None, part_col: str | None
) -> pd.DataFrame:
    """One row per observation with an x: ``facet1, facet2, x, y, n`` (and ``notes``, ``partlab``).

    With denominators, y and n are both missing where either is (qicharts2 drops such rows before
    summing); rows without x are dropped (as qicharts2 does).
    """
    yv, nv = cols.y, cols.n
    frame = pd.DataFrame(
        {"facet1": cols.facets[0], "facet2": cols.facets[1], "x": cols.x, "y": yv, "n": nv}
    )
    if cols.got_n:
        valid = ~np.isnan(yv) & ~np.isnan(nv)
        frame["y"] = np.where(valid, yv, np.nan)
        frame["n"] = np.where(valid, nv, np.nan)
    if notes is not None:
        frame["notes"] = column(data, notes, "notes").reset_index(drop=True)
    if part_col is not None:
        frame["partlab"] = column(data, part_col, "part").reset_index(drop=True)
    frame = frame[frame["x"].notna().to_numpy()]
    if frame.empty:
        raise SPCError("No rows to chart: the data are empty or every x is missing.")
    return frame
