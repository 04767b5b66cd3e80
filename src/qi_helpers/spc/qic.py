"""Run and control charts for improvement work (statistical process control).

:func:`qic` computes a run chart or one of the Shewhart control charts for one or many series at
once, in the shape of the ``return.data = TRUE`` frame of the R package qicharts2 (Anhøj 2017),
so that results can be checked against it number for number. :func:`summary` condenses the result
to one row per facet and part; :func:`qi_helpers.spc.rules.signals` applies other rule sets (IHI
run chart rules, NHS Making Data Count, Western Electric) to a result.

Everything is vectorised over subgroups, facets and parts: a whole portfolio of measures is one
call, and the cost grows with the number of points, not the number of series. One series (no
facets) takes a fast path (:mod:`qi_helpers.spc.one_series`) that reads it straight into arrays,
for the loops and widgets that chart one series per call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from qi_helpers.errors import SPCError
from qi_helpers.measures import CHARTS
from qi_helpers.spc.inputs import check_values, observations, read_columns, read_parts
from qi_helpers.spc.limits import CHART_LIMITS, Chart, Limits
from qi_helpers.spc.one_series import one_series
from qi_helpers.spc.points import AGG_FUNS, PointArrays, Points, aggregate, number_points
from qi_helpers.spc.runs import RUNS_METHODS, runs_analysis

__all__ = ["COLUMNS", "qic", "summary"]

#: Output columns of :func:`qic`, in order (qicharts2's names with ``.`` replaced by ``_``).
COLUMNS: list[str] = [
    "x", "facet1", "facet2", "y_sum", "y_length", "y_mean", "y_sd", "n", "y", "cl", "target",
    "notes", "part", "baseline", "include", "ucl", "ucl_95", "lcl", "lcl_95", "n_obs",
    "n_useful", "runs_signal", "longest_run", "longest_run_max", "n_crossings",
    "n_crossings_min", "sigma_signal",
]  # fmt: skip

_KEYS = ["facet2", "facet1", "x"]  # qicharts2's row order


def qic(
    data: pd.DataFrame,
    x: str | None = None,
    y: str | None = None,
    n: str | None = None,
    *,
    chart: str = "run",
    facets: str | Sequence[str] | None = None,
    part: Sequence[int] | int | str | None = None,
    freeze: int | None = None,
    exclude: Sequence[int] | int | None = None,
    multiply: float = 1,
    y_neg: bool = True,
    target: float | None = None,
    cl: float | None = None,
    agg_fun: str = "mean",
    method: str = "anhoej",
    notes: str | None = None,
    x_period: str | None = None,
    screened_mr: bool = True,
) -> pd.DataFrame:
    """Compute a run or control chart, one row per subgroup, for one or many series at once.

    Parameters
    ----------
    data : DataFrame
        One row per observation (rows with the same x and facets are one subgroup).
    x : str, optional
        Column of the subgroup (time) variable: dates, numbers or strings. ``None`` numbers the
        points 1..len(y) (qicharts2's one-argument form). ``qic(df, "y")`` (y omitted) is also the
        one-argument form.
    y : str
        Column of the measure (numbers; booleans count as 0/1).
    n : str, optional
        Column of denominators (p, pp, u, up charts; optional for run, i and ip charts).
    chart : str
        One of ``run, i, ip, mr, xbar, s, t, p, pp, c, u, up, g``
        (:data:`qi_helpers.measures.CHARTS`).
    facets : str or list of str, optional
        One or two columns splitting the data into separate series (``facet1``, ``facet2``).
    part : list of int, int or str, optional
        Where the chart is split into parts with their own centre line and limits: a list of
        1-based point numbers where each part but the last ends, or the name of a column of phase
        labels (each change of label starts a new part).
    freeze : int, optional
        Number of baseline points: centre line and limits come from points 1..freeze and are
        extended over the rest. Ignored when ``part`` is given (as qicharts2).
    exclude : list of int, optional
        1-based point numbers left out of the centre line, limits and runs analysis.
    multiply : float
        Factor applied to y, centre line and limits (e.g. 100 for percent).
    y_neg : bool
        ``False`` truncates lower limits at zero.
    target : float, optional
        Target value, on the plotted scale (after ``multiply``); drawn by the charts and used by
        the assurance rules of :func:`signals`.
    cl : float, optional
        Fixed centre line, on the scale of y (before ``multiply``), instead of the computed one.
    agg_fun : {"mean", "median", "sum", "sd"}
        How y is aggregated per subgroup when there is no ``n`` (run, i, mr, g, t charts).
    method : {"anhoej", "bestbox", "cutbox"}
        Runs analysis rules.
    notes : str, optional
        Column of annotations; the notes of a subgroup are joined with ``" | "``.
    x_period : {"day", "week", "month", "quarter", "year"}, optional
        Cut date x into periods (weeks start on Monday) before aggregating.
    screened_mr : bool
        Drop moving ranges of 3.267 x the average moving range or more before estimating sigma
        (i, ip, t, pp and up charts), as qicharts2 does when attached.

    Returns
    -------
    DataFrame
        One row per subgroup, sorted by facets then x, with columns

        - ``x``: the subgroup value (1..k in the one-argument form);
        - ``facet1``, ``facet2``: facet values (1 when there are no facets);
        - ``y_sum``, ``y_length``, ``y_mean``, ``y_sd``: sum, count, mean and sd of the
          non-missing y of the subgroup (rows with missing y or n are dropped first when n is
          given);
        - ``n``: sum of n in the subgroup (for ip without ``n``: the count of y; else NaN);
        - ``y``: the plotted value: ``y_sum / n`` with n, the subgroup mean (xbar), sd (s),
          sum (c) or ``agg_fun`` otherwise; moving ranges for the MR chart; times ``multiply``;
        - ``cl``: centre line; ``target``: the target (NaN when none); ``notes``: annotations;
        - ``part``: part number 1, 2, ... within the facet;
        - ``baseline``: the point counts towards the centre line and limits (``freeze``);
        - ``include``: the point is not excluded;
        - ``ucl``, ``lcl``: 3-sigma limits; ``ucl_95``, ``lcl_95``: 2-sigma limits (NaN for run
          charts and where a limit cannot be computed, e.g. n = 0);
        - ``n_obs``, ``n_useful``: included points in the part, and those not on the centre line;
        - ``longest_run``, ``longest_run_max``: longest run on one side of the centre line and
          its upper critical value; ``n_crossings``, ``n_crossings_min``: crossings of the
          centre line and the lower critical value (all nullable integers, NA when the part has
          no useful observations);
        - ``runs_signal``: the runs analysis signals a shift (non-random variation); always
          False on an MR chart, whose moving ranges are autocorrelated (as qicharts2);
        - ``sigma_signal``: the point is outside the 3-sigma limits.

        ``result.attrs["qic"]`` records the call (chart, method, multiply, column names).

    Raises
    ------
    SPCError
        Unknown chart type or method, missing column, non-numeric y or n, negative counts or
        denominators, numerator above denominator in a p chart, zero time between events in a
        t chart, bad ``part``/``freeze``/``exclude``. Zero denominators, missing values,
        constant series and short series are not errors: they behave as in qicharts2.

    Notes
    -----
    ``part``, ``freeze`` and ``exclude`` count points as they appear on the chart (subgroups
    after aggregation by x, 1-based, within each facet), so a coach can read them off the x
    axis. ``exclude`` counts over the whole facet, not within parts.

    Centre lines and limits (sigma per point, limits cl +- 3 sigma, 95% limits cl +- 2 sigma;
    Montgomery 2009; Provost & Murray 2011):

    Every mean of a centre line is accurate (a correctly rounded sum and a correction pass,
    as R's ``mean()``), so points equal to the mean lie on the centre line.

    - run: cl = median(y); i: cl = mean(y), sigma = mean moving range / 1.128;
    - mr: cl = mean moving range, ucl = 3.267 cl; t: I chart of y^(1/3.6), back-transformed;
    - xbar: cl = sum(n_i xbar_i) / sum(n_i), sigma = sbar / (c4(n_i) sqrt(n_i)) with the pooled
      sbar = sqrt(sum((n_i - 1) s_i^2) / sum(n_i - 1)); s: cl = sbar, limits B3/B4;
    - p: cl = sum(y) / sum(n), sigma = sqrt(cl (1 - cl) / n_i), upper limits capped at 1 (a
      proportion cannot exceed 100%; p' too, as qicharts2); u: sigma = sqrt(cl / n_i);
    - c: cl = mean(y), sigma = sqrt(cl); g: sigma = sqrt(m (m + 1)) around the mean m, centre
      line shown as the median;
    - pp, up (Laney 2002): sigma_i times sigma_z, the moving-range sigma of the z-scores
      ``(y_i - cl) / sigma_i`` (their sd when x is categorical);
    - ip (I' chart, Taylor 2017): moving ranges ``|y_i - y_(i-1)| / sqrt(1/n_i + 1/n_(i-1))``.

    Runs analysis (Anhøj & Olesen 2014): a part signals when its longest run exceeds
    ``round(log2(n_useful) + 3)`` or it has fewer than ``qbinom(0.05, n_useful - 1, 0.5)``
    crossings of the centre line. ``method="bestbox"`` / ``"cutbox"`` use the box rules of Anhøj &
    Wentzel-Larsen (2018) for 10..100 useful observations (Anhøj's rules outside that range).
    """
    spec = _check_arguments(data, chart, method, agg_fun)
    if y is None:
        if x is None:
            raise SPCError("qic() needs a y column.")
        x, y = None, x
    part_col, parts, excl = read_parts(part, freeze, exclude)
    pts = None
    if facets is None and notes is None and part_col is None and x_period is None:
        pts = one_series(
            data, x, y, n, chart=chart, needs_n=spec.needs_n, fixed=spec.agg, agg_fun=agg_fun
        )
    if pts is None:
        pts = _aggregate_points(
            data, x, y, n, facets, x_period, spec, chart, agg_fun, notes, part_col
        )
    freeze_ = freeze if part is None else None  # freeze is ignored with part (qicharts2)
    gid, partno, baseline, include = number_points(pts.fid, parts, freeze_, excl, pts.partlab)
    p = Points.from_arrays(pts, gid, baseline & include, cl, screened_mr)
    lim = spec.limits(p)
    yplot = lim.y if lim.y is not None else p.y
    limits = _reported_limits(lim, spec.nonneg or not y_neg, spec.ceiling)
    clv = np.asarray(lim.cl, dtype=float)
    k = len(gid)
    columns = {
        "x": pts.x,
        "facet1": pts.facet1,
        "facet2": pts.facet2,
        "y_sum": p.y_sum,
        "y_length": pts.y_length,
        "y_mean": p.y_mean,
        "y_sd": p.y_sd,
        "n": p.n,
        "y": yplot * multiply,
        "cl": clv * multiply,
        "target": np.full(k, np.nan if target is None else float(target)),
        "notes": pts.notes if pts.notes is not None else np.full(k, None),
        "part": partno.astype(np.int64),
        "baseline": baseline,
        "include": include,
        **{name: limits[name] * multiply for name in ("ucl", "ucl_95", "lcl", "lcl_95")},
        **_signals(p, yplot, clv, limits, include, method, chart),
    }
    # One frame built once from arrays (no column added afterwards): a third of a call's time
    # on one series went to inserting columns one by one.
    res = pd.DataFrame(
        {name: columns[name] for name in COLUMNS}, index=pd.RangeIndex(k), copy=False
    )
    res.attrs["qic"] = {
        "chart": chart,
        "method": method,
        "multiply": multiply,
        "x": x,
        "y": y,
        "n": n,
        "facets": _facet_names(facets),
        "target": target,
    }
    return res


def _facet_names(facets: str | Sequence[str] | None) -> list[str]:
    return [facets] if isinstance(facets, str) else list(facets or [])


def _check_arguments(data: pd.DataFrame, chart: str, method: str, agg_fun: str) -> Chart:
    """Refuse a bad ``data``, ``chart``, ``method`` or ``agg_fun``; the chart's way of limits."""
    if not isinstance(data, pd.DataFrame):
        raise SPCError(f"data must be a pandas DataFrame; got {type(data).__name__}.")
    if chart not in CHART_LIMITS:
        raise SPCError(f"Unknown chart type {chart!r}; choose one of: {', '.join(CHARTS)}.")
    if method not in RUNS_METHODS:
        raise SPCError(f"Unknown runs method {method!r}; choose one of {RUNS_METHODS}.")
    if agg_fun not in AGG_FUNS:
        raise SPCError(f"agg_fun must be one of {sorted(AGG_FUNS)}; got {agg_fun!r}.")
    return CHART_LIMITS[chart]


def _aggregate_points(
    data: pd.DataFrame,
    x: str | None,
    y: str,
    n: str | None,
    facets: str | Sequence[str] | None,
    x_period: str | None,
    spec: Chart,
    chart: str,
    agg_fun: str,
    notes: str | None,
    part_col: str | None,
) -> PointArrays:
    """One point per (facet1, facet2, x) in qicharts2's order (see :func:`aggregate`).

    The general path: any facets, notes, phase labels or x. An I' chart without denominators
    charts subgroup means with the subgroup sizes as n.
    """
    cols = read_columns(data, x, y, n, facets, x_period, chart, spec.needs_n)
    check_values(cols.y, cols.n, cols.got_n, chart, y, n)
    frame = observations(data, cols, notes, part_col)
    pts = aggregate(
        frame, _KEYS, agg_fun, spec.agg, cols.got_n, notes is not None, part_col is not None
    )
    if chart == "ip" and not cols.got_n:
        pts["n"] = pts["y_length"].astype(float)
        pts["y"] = pts["y_mean"]
    return PointArrays.from_frame(pts)


def _reported_limits(lim: Limits, truncate: bool, ceiling: float | None) -> dict[str, np.ndarray]:
    """The limits as reported: NaN where not finite, lower limits cut at 0 when ``truncate``,
    upper limits cut at ``ceiling`` when there is one (1 for a proportion, as qicharts2)."""
    out_lim = {}
    for name in ("lcl", "ucl", "lcl_95", "ucl_95"):
        v = np.asarray(getattr(lim, name), dtype=float)
        v = np.where(np.isfinite(v), v, np.nan)
        if name.startswith("lcl") and truncate:
            v = np.where(v < 0, 0.0, v)
        if name.startswith("ucl") and ceiling is not None:
            v = np.where(v > ceiling, ceiling, v)
        out_lim[name] = v
    return out_lim


def _counts(per_group: np.ndarray, gid: np.ndarray) -> list[pd.arrays.IntegerArray]:
    """Each row of ``per_group`` (whole numbers, NaN for none) per point, as ``Int64`` arrays."""
    missing = np.isnan(per_group)
    whole = np.where(missing, 0, per_group).astype(np.int64)[:, gid]
    missing = missing[:, gid]
    return [pd.arrays.IntegerArray(whole[i], missing[i]) for i in range(len(per_group))]


def _signals(
    p: Points,
    yplot: np.ndarray,
    clv: np.ndarray,
    limits: dict[str, np.ndarray],
    include: np.ndarray,
    method: str,
    chart: str,
) -> dict[str, np.ndarray | pd.arrays.IntegerArray]:
    """The runs analysis of every part and the points outside the 3-sigma limits, per point.

    An MR chart reports its runs figures but never signals on them (moving ranges are
    autocorrelated; qicharts2 does the same).
    """
    runs = runs_analysis(p.gid, p.ngroups, yplot, clv, include, method)
    if chart == "mr":
        runs["runs_signal"] = np.zeros_like(runs["runs_signal"])
    with np.errstate(invalid="ignore"):
        sigma = (yplot > limits["ucl"]) | (yplot < limits["lcl"])
    gid = p.gid
    out: dict[str, np.ndarray | pd.arrays.IntegerArray] = {
        k: runs[k][gid].astype(np.int64) for k in ("n_obs", "n_useful")
    }
    out["runs_signal"] = runs["runs_signal"][gid]
    counted = ("longest_run", "longest_run_max", "n_crossings", "n_crossings_min")
    stacked = np.vstack([np.asarray(runs[k], dtype=float) for k in counted])
    out.update(zip(counted, _counts(stacked, gid), strict=True))
    out["sigma_signal"] = sigma
    return out


def summary(result: pd.DataFrame) -> pd.DataFrame:
    """One row per facet and part, as qicharts2's ``summary.qic``.

    Parameters
    ----------
    result : DataFrame
        The output of :func:`qic`.

    Returns
    -------
    DataFrame
        Columns ``facet1, facet2, part, n_obs, n_useful, longest_run, longest_run_max,
        n_crossings, n_crossings_min`` (the part's runs analysis), ``runs_signal`` (0/1),
        ``aLCL, aLCL_95, CL, aUCL_95, aUCL`` (means over the part of the lower limit, lower 95%
        limit, centre line, upper 95% limit and upper limit; NaN when the part has none) and
        ``sigma_signal`` (the number of points outside the 3-sigma limits).
    """
    keys = ["facet1", "facet2", "part"]
    g = result.groupby(keys, sort=True)
    first = g[
        ["n_obs", "n_useful", "longest_run", "longest_run_max", "n_crossings", "n_crossings_min"]
    ].first()
    first["runs_signal"] = g["runs_signal"].first().astype(np.int64)
    means = g[["lcl", "lcl_95", "cl", "ucl_95", "ucl"]].mean()
    means.columns = ["aLCL", "aLCL_95", "CL", "aUCL_95", "aUCL"]
    out = first.join(means)
    out["sigma_signal"] = g["sigma_signal"].sum().astype(np.int64)
    return out.reset_index()
