"""One series read straight into points: the fast path of :func:`qi_helpers.spc.qic.qic`.

A chart of one series (no facets, notes or phase column) whose x holds numbers or dates, one
observation per x, needs none of the grouping of the general path: its observations are its
points. In JupyterLab every move of a slider, and every loop that charts one series at a time
(the widgets, the detection checks, the sustain tracking of each adopter), pays the cost of one
call, so this path reads the columns into arrays and builds nothing in between. It gives what
the general path gives (:func:`qi_helpers.spc.inputs.observations` then
:func:`qi_helpers.spc.points.aggregate`) for such a series, and declines (returns None) for
anything else: categorical or time-zone aware x, a missing x, two observations with the same x.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from qi_helpers.errors import SPCError
from qi_helpers.spc.inputs import check_values, column, numeric
from qi_helpers.spc.points import AGG_FUNS, PointArrays

__all__ = ["one_series"]


def _plain_x(s: pd.Series) -> bool:
    """x holds plain numbers or naive dates (numpy dtypes; no nullable or tz-aware ones)."""
    return isinstance(s.dtype, np.dtype) and s.dtype.kind in "iufM"


def _increasing(v: np.ndarray) -> bool:
    """Strictly increasing: sorted, unique and without NaN or NaT (which compare False)."""
    return bool(np.all(v[1:] > v[:-1]))


def one_series(
    data: pd.DataFrame,
    x: str | None,
    y: str,
    n: str | None,
    *,
    chart: str,
    needs_n: bool,
    fixed: str | None,
    agg_fun: str,
) -> PointArrays | None:
    """The points of one series read from its columns, or None when it needs the general path.

    Parameters
    ----------
    data : DataFrame
        The observations.
    x, y, n : str or None
        Columns of :func:`qi_helpers.spc.qic.qic` (x None: points numbered 1..len).
    chart : str
        The chart type (its values are checked as the general path checks them).
    needs_n : bool
        The chart plots y / n, so a missing ``n`` is an error.
    fixed : str or None
        The chart's own aggregation of y without n (``"sd"`` gives no value for one
        observation; ``"ip"`` takes the subgroup sizes as n).
    agg_fun : str
        ``qic``'s ``agg_fun`` (a standard deviation of one observation is missing).

    Returns
    -------
    PointArrays or None
        One point per row, sorted by x.

    Raises
    ------
    SPCError
        The errors of the general path for the same columns and values.
    """
    yv = numeric(column(data, y, "y"), "y")
    got_n = n is not None
    nv = numeric(column(data, n, "n"), "n") if got_n else np.full(len(yv), np.nan)
    if needs_n and not got_n:
        raise SPCError(f"A {chart} chart needs a denominator column n.")
    if x is None:
        xv = xa = np.arange(1, len(yv) + 1)
    else:
        xs = column(data, x, "x")
        if not _plain_x(xs):
            return None
        xa = xs.array  # dates as pandas holds them: no conversion when the frame is built
        xv = np.asarray(xa)
    if len(xv) == 0:
        return None
    check_values(yv, nv, got_n, chart, y, n)
    if _increasing(xv):
        xa = xa.copy()  # the result must not share memory with the caller's data
    else:
        order = np.argsort(xv, kind="stable")
        if not _increasing(xv[order]):
            return None
        xa, yv, nv = xa[order], yv[order], nv[order]
    return _points(xa, yv, nv, got_n, fixed, agg_fun)


def _points(
    xv: Any, yv: np.ndarray, nv: np.ndarray, got_n: bool, fixed: str | None, agg_fun: str
) -> PointArrays:
    """One point per observation (what :func:`qi_helpers.spc.points.aggregate` gives)."""
    if got_n:  # y and n are both missing where either is
        valid = ~np.isnan(yv) & ~np.isnan(nv)
        yv = np.where(valid, yv, np.nan)
    has = ~np.isnan(yv)
    length = has.astype(np.int64)
    plotted, denominators = yv, nv
    if got_n:
        denominators = np.where(has, nv, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            plotted = yv / denominators
    elif fixed == "sd" or (fixed is None and AGG_FUNS[agg_fun] == "std"):
        plotted = np.full(len(yv), np.nan)  # the sd of a single value
    elif fixed == "ip":  # an I' chart without n: subgroup sizes as n
        denominators = length.astype(float)
    ones = np.ones(len(xv), dtype=np.int64)
    return PointArrays(
        x=xv,
        facet1=ones,
        facet2=ones.copy(),
        fid=np.zeros(len(xv), dtype=np.int64),
        y=plotted,
        n=denominators,
        y_sum=yv,
        y_length=length,
        y_mean=yv,
        y_sd=np.full(len(xv), np.nan),
        categorical=False,
    )
