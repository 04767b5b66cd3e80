"""Run and control charts for improvement work (statistical process control).

:func:`qic` computes a run chart or one of the Shewhart control charts for one or many series at
once, in the shape of the ``return.data = TRUE`` frame of the R package qicharts2 (Anhøj 2017),
so that results can be checked against it number for number. :func:`summary` condenses the result
to one row per facet and part; :func:`signals` (defined in :mod:`qi_helpers.spc_rules`) applies
other rule sets (IHI run chart rules, NHS Making Data Count, Western Electric) to a result.

Everything is vectorised over subgroups, facets and parts: a whole portfolio of measures is one
call, and the cost grows with the number of points, not the number of series.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from qi_helpers.errors import DataError, format_rows
from qi_helpers.spc_rules import POINT_TYPES, RULE_SETS, Signals, box_signal, point_types, signals

__all__ = [
    "CHART_TYPES",
    "COLUMNS",
    "POINT_TYPES",
    "RULE_SETS",
    "SPCError",
    "Signals",
    "point_types",
    "qic",
    "runs_limits",
    "signals",
    "summary",
]


class SPCError(DataError):
    """Bad input to :func:`qic` (unknown chart, missing column, impossible values)."""


#: Output columns of :func:`qic`, in order (qicharts2's names with ``.`` replaced by ``_``).
COLUMNS: list[str] = [
    "x", "facet1", "facet2", "y_sum", "y_length", "y_mean", "y_sd", "n", "y", "cl", "target",
    "notes", "part", "baseline", "include", "ucl", "ucl_95", "lcl", "lcl_95", "n_obs",
    "n_useful", "runs_signal", "longest_run", "longest_run_max", "n_crossings",
    "n_crossings_min", "sigma_signal",
]  # fmt: skip

_D2 = 1.128  # d2 for moving ranges of two (Montgomery 2009, table VI), as qicharts2 uses it
_D2_EXACT = 2.0 / np.sqrt(np.pi)  # exact d2 for n = 2 (used by the I' chart)
_D4 = 3.267  # D4 for moving ranges of two; also the screening threshold (Nelson 1982)
_D4_95 = 2.178  # qicharts2's 2-sigma analogue of D4 for the MR chart
_RUNS_METHODS = ("anhoej", "bestbox", "cutbox")
# agg_fun names (R's and pandas') -> pandas groupby aggregation
_AGG_FUNS = {"mean": "mean", "median": "median", "sum": "sum", "sd": "std", "std": "std"}


# --------------------------------------------------------------------------------------------
# Group-wise arithmetic over the points of all facets and parts at once
# --------------------------------------------------------------------------------------------


@dataclass
class _Points:
    """The aggregated points of every facet and part, sorted by group then x.

    ``gid`` numbers the (facet, part) groups 0..ngroups-1 and never decreases along the arrays,
    so every group is one contiguous block starting at ``starts[g]``.
    """

    gid: np.ndarray
    ngroups: int
    y: np.ndarray
    n: np.ndarray
    y_sum: np.ndarray
    y_length: np.ndarray
    y_mean: np.ndarray
    y_sd: np.ndarray
    base: np.ndarray
    cl: float | None
    categorical: bool
    screened: bool

    def gsum(self, v: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Sum of ``v`` over ``mask`` per group, NaN values skipped."""
        ok = mask & ~np.isnan(v)
        return np.bincount(self.gid[ok], weights=v[ok], minlength=self.ngroups)

    def gcount(self, mask: np.ndarray) -> np.ndarray:
        return np.bincount(self.gid[mask], minlength=self.ngroups).astype(float)

    def gmean(self, v: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mean of the non-missing ``v`` over ``mask`` per group (NaN for an empty group)."""
        ok = mask & ~np.isnan(v)
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.gsum(v, ok) / self.gcount(ok)

    def gmedian(self, v: np.ndarray, mask: np.ndarray) -> np.ndarray:
        vals = pd.Series(np.where(mask, v, np.nan))
        med = vals.groupby(self.gid, sort=True).median()
        return med.reindex(np.arange(self.ngroups)).to_numpy(dtype=float)

    def gsd(self, v: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Sample standard deviation (n - 1 denominator) per group."""
        ok = mask & ~np.isnan(v)
        k = self.gcount(ok)
        m = self.gmean(v, ok)
        dev = np.where(ok, v - m[self.gid], 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(
                np.bincount(self.gid, weights=dev * dev, minlength=self.ngroups) / (k - 1)
            )

    def moving_ranges(
        self, v: np.ndarray, mask: np.ndarray, scale: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Moving ranges ``|v[i] - v[i-1]|`` between consecutive masked points of one group.

        Returns the ranges and their group numbers; a missing ``v`` gives a missing range, which
        is dropped (it is not bridged). ``scale`` divides each range (used by the I' chart).
        """
        idx = np.flatnonzero(mask)
        g = self.gid[idx]
        mr = np.abs(np.diff(v[idx]))
        if scale is not None:
            mr = mr / scale(idx[1:], idx[:-1])
        same = g[1:] == g[:-1]
        keep = same & ~np.isnan(mr)
        return mr[keep], g[1:][keep]

    def amr(self, v: np.ndarray, mask: np.ndarray, scale: Any = None) -> np.ndarray:
        """Average moving range per group, Nelson-screened when ``self.screened``.

        Screening (Nelson 1982; qicharts2's ``qic.screenedmr``) drops moving ranges of
        ``3.267 * amr`` or more and averages the rest.
        """
        mr, g = self.moving_ranges(v, mask, scale)
        cnt = np.bincount(g, minlength=self.ngroups).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            amr = np.bincount(g, weights=mr, minlength=self.ngroups) / cnt
            if self.screened:
                keep = mr < _D4 * amr[g]
                cnt = np.bincount(g[keep], minlength=self.ngroups).astype(float)
                amr = np.bincount(g[keep], weights=mr[keep], minlength=self.ngroups) / cnt
        return amr

    def expand(self, per_group: np.ndarray) -> np.ndarray:
        return per_group[self.gid]

    def centre(self, per_group: np.ndarray) -> np.ndarray:
        """Per-point centre line: the user's ``cl`` when given, else the group value."""
        if self.cl is not None:
            return np.full(self.gid.shape, float(self.cl))
        return self.expand(per_group)


@dataclass
class _Limits:
    cl: np.ndarray
    lcl: np.ndarray
    ucl: np.ndarray
    lcl_95: np.ndarray
    ucl_95: np.ndarray
    y: np.ndarray | None = None  # replaces y (MR chart, back-transformed t chart)


def _symmetric(cl: np.ndarray, sd: np.ndarray) -> _Limits:
    return _Limits(cl, cl - 3 * sd, cl + 3 * sd, cl - 2 * sd, cl + 2 * sd)


def _no_limits(cl: np.ndarray) -> _Limits:
    nan = np.full(cl.shape, np.nan)
    return _Limits(cl, nan, nan.copy(), nan.copy(), nan.copy())


# --------------------------------------------------------------------------------------------
# One small function per chart type (Montgomery 2009; Provost & Murray 2011; Laney 2002)
# --------------------------------------------------------------------------------------------


def _limits_run(p: _Points) -> _Limits:
    """Run chart: centre line = median of the baseline points, no limits."""
    return _no_limits(p.centre(p.gmedian(p.y, p.base)))


def _limits_i(p: _Points) -> _Limits:
    """I chart: cl = mean, sigma = average moving range / 1.128."""
    cl = p.centre(p.gmean(p.y, p.base))
    sd = p.expand(p.amr(p.y, p.base)) / _D2
    return _symmetric(cl, sd)


def _limits_mr(p: _Points) -> _Limits:
    """MR chart: y = |y[i] - y[i-1]| within each part, cl = mean MR, ucl = 3.267 cl."""
    prev = np.r_[np.nan, p.y[:-1]]
    first = np.r_[True, p.gid[1:] != p.gid[:-1]]
    mr = np.where(first, np.nan, np.abs(p.y - prev))
    cl = p.centre(p.gmean(mr, p.base))
    zero = np.zeros_like(cl)
    return _Limits(cl, zero, _D4 * cl, zero.copy(), _D4_95 * cl, y=mr)


def _c4(n: np.ndarray) -> np.ndarray:
    """c4(n) = sqrt(2 / (n - 1)) * Gamma(n / 2) / Gamma((n - 1) / 2) (Montgomery 2009)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        n = np.where(n > 1, n, np.nan)
        return np.sqrt(2.0 / (n - 1)) * np.exp(
            special.gammaln(n / 2) - special.gammaln((n - 1) / 2)
        )


def _sbar(p: _Points) -> np.ndarray:
    """Average subgroup sd per group (Montgomery 2009, 6.3-6.4).

    Equal subgroup sizes: the mean of the s_i. Unequal: the pooled
    sqrt(sum((n_i - 1) s_i^2) / sum(n_i - 1)), the sums running over all baseline subgroups (an
    empty subgroup adds -1 to the denominator, as in qicharts2).
    """
    k = p.y_length - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = np.sqrt(p.gsum(k * p.y_sd**2, p.base) / p.gsum(k, p.base))
        lo = np.full(p.ngroups, np.inf)
        hi = np.full(p.ngroups, -np.inf)
        np.minimum.at(lo, p.gid[p.base], p.y_length[p.base])
        np.maximum.at(hi, p.gid[p.base], p.y_length[p.base])
        return np.where(lo == hi, p.gmean(p.y_sd, p.base), pooled)


def _limits_xbar(p: _Points) -> _Limits:
    """Xbar chart: cl = grand mean, limits cl +- A3(n_i) sbar (Montgomery 2009, 6.4)."""
    ok = p.base & ~np.isnan(p.y_mean)
    with np.errstate(invalid="ignore", divide="ignore"):
        grand = p.gsum(p.y_length * p.y_mean, ok) / p.gsum(p.y_length.astype(float), ok)
        cl = p.centre(grand)
        sd = p.expand(_sbar(p)) / (_c4(p.y_length) * np.sqrt(p.y_length))
    return _symmetric(cl, sd)


def _limits_s(p: _Points) -> _Limits:
    """S chart: cl = sbar, limits sbar * (1 +- k sqrt(1 - c4^2) / c4) (B3/B4)."""
    sbar = p.expand(_sbar(p))
    cl = p.centre(_sbar(p))
    c4 = _c4(p.y_length)
    with np.errstate(invalid="ignore"):
        w = np.sqrt(1 - c4**2) / c4
    return _Limits(
        cl, sbar * (1 - 3 * w), sbar * (1 + 3 * w), sbar * (1 - 2 * w), sbar * (1 + 2 * w)
    )


def _ratio_centre(p: _Points) -> np.ndarray:
    """Weighted centre sum(y_sum) / sum(n) over the baseline subgroups."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return p.centre(p.gsum(p.y_sum, p.base) / p.gsum(p.n, p.base))


def _limits_p(p: _Points) -> _Limits:
    """P chart: sigma_i = sqrt(cl (1 - cl) / n_i)."""
    cl = _ratio_centre(p)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _symmetric(cl, np.sqrt(cl * (1 - cl) / p.n))


def _limits_u(p: _Points) -> _Limits:
    """U chart: sigma_i = sqrt(cl / n_i)."""
    cl = _ratio_centre(p)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _symmetric(cl, np.sqrt(cl / p.n))


def _laney(p: _Points, cl: np.ndarray, sd: np.ndarray) -> _Limits:
    """Laney (2002) prime chart: sigma_i * sigma_z, sigma_z from moving ranges of z-scores.

    With categorical x (no time order, e.g. a funnel plot) sigma_z is the sd of the z-scores.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (p.y - cl) / sd
    z = np.where(np.isfinite(z), z, np.nan)
    sz = p.gsd(z, p.base) if p.categorical else p.amr(z, p.base) / _D2
    return _symmetric(cl, sd * p.expand(sz))


def _limits_pp(p: _Points) -> _Limits:
    cl = _ratio_centre(p)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _laney(p, cl, np.sqrt(cl * (1 - cl) / p.n))


def _limits_up(p: _Points) -> _Limits:
    cl = _ratio_centre(p)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _laney(p, cl, np.sqrt(cl / p.n))


def _limits_c(p: _Points) -> _Limits:
    """C chart: cl = mean count, sigma = sqrt(cl)."""
    cl = p.centre(p.gmean(p.y, p.base))
    with np.errstate(invalid="ignore"):
        return _symmetric(cl, np.sqrt(cl))


def _limits_g(p: _Points) -> _Limits:
    """G chart (Benneyan 2001): limits from the mean m, sigma = sqrt(m (m + 1)).

    The centre line shown is the median of the baseline points (a supplied ``cl`` is taken as
    the mean and shown as its geometric-distribution median, 0.693 cl).
    """
    m = p.centre(p.gmean(p.y, p.base))
    sd = np.sqrt(m * (m + 1))
    lim = _symmetric(m, sd)
    lim.cl = (
        np.full(m.shape, 0.693 * p.cl) if p.cl is not None else p.expand(p.gmedian(p.y, p.base))
    )
    return lim


def _limits_t(p: _Points) -> _Limits:
    """T chart (Montgomery 2009, 7.3.5): an I chart of y^(1/3.6), back-transformed."""
    yt = p.y ** (1 / 3.6)
    q = _Points(**{**p.__dict__, "y": yt, "cl": None if p.cl is None else p.cl ** (1 / 3.6)})
    lim = _limits_i(q)
    back = [
        np.where(v < 0, 0.0, v) ** 3.6 for v in (lim.cl, lim.lcl, lim.ucl, lim.lcl_95, lim.ucl_95)
    ]
    return _Limits(*back, y=yt**3.6)


def _limits_ip(p: _Points) -> _Limits:
    """I' chart (Taylor 2017): I chart for subgroup means with unequal subgroup sizes.

    cl = sum(y_sum) / sum(n); moving ranges |y_i - y_(i-1)| / sqrt(1/n_i + 1/n_(i-1)) over
    every point of the part; sigma = amr * sqrt(2) / d2; limits cl +- 3 sigma / sqrt(n_i).
    """
    cl = _ratio_centre(p)
    n = p.n

    def scale(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(1 / n[i] + 1 / n[j])

    sigma = p.amr(p.y, np.ones_like(p.base), scale) * np.sqrt(2) / _D2_EXACT
    with np.errstate(invalid="ignore", divide="ignore"):
        return _symmetric(cl, p.expand(sigma) / np.sqrt(n))


@dataclass(frozen=True)
class _Chart:
    limits: Callable[[_Points], _Limits]
    needs_n: bool = False  # y / n charts (p, pp, u, up)
    agg: str | None = None  # fixed aggregation of y per subgroup when n is absent
    nonneg: bool = False  # lower limits truncated at zero


_CHARTS: dict[str, _Chart] = {
    "run": _Chart(_limits_run),
    "i": _Chart(_limits_i),
    "ip": _Chart(_limits_ip, agg="ip"),
    "mr": _Chart(_limits_mr),
    "xbar": _Chart(_limits_xbar, agg="mean"),
    "s": _Chart(_limits_s, agg="sd", nonneg=True),
    "t": _Chart(_limits_t, nonneg=True),
    "p": _Chart(_limits_p, needs_n=True, nonneg=True),
    "pp": _Chart(_limits_pp, needs_n=True, nonneg=True),
    "c": _Chart(_limits_c, agg="sum", nonneg=True),
    "u": _Chart(_limits_u, needs_n=True, nonneg=True),
    "up": _Chart(_limits_up, needs_n=True, nonneg=True),
    "g": _Chart(_limits_g, nonneg=True),
}

#: The chart types :func:`qic` accepts.
CHART_TYPES: tuple[str, ...] = tuple(_CHARTS)


# --------------------------------------------------------------------------------------------
# Runs analysis (Anhøj & Olesen 2014; Anhøj 2015)
# --------------------------------------------------------------------------------------------


def runs_limits(n_useful: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """Anhøj critical values for the runs analysis.

    Parameters
    ----------
    n_useful : int or array of int
        Number of useful observations (points not on the centre line).

    Returns
    -------
    longest_run_max : ndarray
        ``round(log2(n_useful) + 3)``; a longer run signals a shift.
    n_crossings_min : ndarray
        ``qbinom(0.05, n_useful - 1, 0.5)``; fewer crossings signal a shift.

    Notes
    -----
    Anhøj J, Olesen AV (2014). Run charts revisited: a simulation study of run chart rules for
    detection of non-random variation in health care processes. PLoS ONE 9(11): e113825.
    """
    n = np.asarray(n_useful, dtype=float)
    longest = np.round(np.log2(n) + 3)
    crossings = stats.binom.ppf(0.05, n - 1, 0.5)
    return longest, crossings


def _runs_analysis(
    p: _Points, y: np.ndarray, cl: np.ndarray, include: np.ndarray, method: str
) -> dict[str, np.ndarray]:
    """Per-group runs statistics, vectorised over all groups."""
    G = p.ngroups
    with np.errstate(invalid="ignore"):
        s = np.sign(y - cl)
    useful = include & (s != 0) & ~np.isnan(s)
    idx = np.flatnonzero(useful)
    su, gu = s[idx], p.gid[idx]
    n_obs = np.bincount(p.gid[include], minlength=G)
    n_useful = np.bincount(gu, minlength=G)
    longest = np.zeros(G)
    n_runs = np.zeros(G)
    if idx.size:
        new_run = np.r_[True, (su[1:] != su[:-1]) | (gu[1:] != gu[:-1])]
        run_id = np.cumsum(new_run) - 1
        run_len = np.bincount(run_id)
        run_g = gu[new_run]
        n_runs = np.bincount(run_g, minlength=G).astype(float)
        # runs are ordered by group, so the longest per group is a segmented maximum
        starts = np.flatnonzero(np.r_[True, run_g[1:] != run_g[:-1]])
        longest[run_g[starts]] = np.maximum.reduceat(run_len, starts)
    has = n_useful > 0
    longest = np.where(has, longest, np.nan)
    crossings = np.where(has, np.maximum(n_runs - 1, 0), np.nan)
    lr_max, cr_min = runs_limits(np.where(has, n_useful, 1))
    lr_max = np.where(has, lr_max, np.nan)
    cr_min = np.where(has, cr_min, np.nan)
    signal = (longest > lr_max) | (crossings < cr_min)
    if method != "anhoej":
        box = box_signal(n_useful, crossings, longest, method)
        signal = np.where(np.isnan(box), signal, box == 1)
    signal = np.where(has, signal, False)
    return {
        "n_obs": n_obs,
        "n_useful": n_useful,
        "runs_signal": signal.astype(bool),
        "longest_run": longest,
        "longest_run_max": lr_max,
        "n_crossings": crossings,
        "n_crossings_min": cr_min,
    }


# --------------------------------------------------------------------------------------------
# Input checks and aggregation
# --------------------------------------------------------------------------------------------


def _column(data: pd.DataFrame, name: Any, role: str) -> pd.Series:
    if not isinstance(name, str | int) or name not in data.columns:
        known = ", ".join(map(str, data.columns[:20]))
        raise SPCError(f"{role} column {name!r} not found in the data; columns are: {known}.")
    return data[name]


def _numeric(s: pd.Series, role: str) -> np.ndarray:
    """Numbers from a column (booleans count 0/1); anything else is an error naming the rows."""
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
        One of ``run, i, ip, mr, xbar, s, t, p, pp, c, u, up, g`` (:data:`CHART_TYPES`).
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
        - ``runs_signal``: the runs analysis signals a shift (non-random variation);
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

    - run: cl = median(y); i: cl = mean(y), sigma = mean moving range / 1.128;
    - mr: cl = mean moving range, ucl = 3.267 cl; t: I chart of y^(1/3.6), back-transformed;
    - xbar: cl = sum(n_i xbar_i) / sum(n_i), sigma = sbar / (c4(n_i) sqrt(n_i)) with the pooled
      sbar = sqrt(sum((n_i - 1) s_i^2) / sum(n_i - 1)); s: cl = sbar, limits B3/B4;
    - p: cl = sum(y) / sum(n), sigma = sqrt(cl (1 - cl) / n_i); u: sigma = sqrt(cl / n_i);
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
    # ---- arguments ---------------------------------------------------------------------------
    if not isinstance(data, pd.DataFrame):
        raise SPCError(f"data must be a pandas DataFrame; got {type(data).__name__}.")
    if chart not in _CHARTS:
        raise SPCError(f"Unknown chart type {chart!r}; choose one of: {', '.join(CHART_TYPES)}.")
    if method not in _RUNS_METHODS:
        raise SPCError(f"Unknown runs method {method!r}; choose one of {_RUNS_METHODS}.")
    if agg_fun not in _AGG_FUNS:
        raise SPCError(f"agg_fun must be one of {sorted(_AGG_FUNS)}; got {agg_fun!r}.")
    spec = _CHARTS[chart]
    if y is None:
        if x is None:
            raise SPCError("qic() needs a y column.")
        x, y = None, x
    yv = _numeric(_column(data, y, "y"), "y")
    nrow = len(yv)
    got_n = n is not None
    nv = _numeric(_column(data, n, "n"), "n") if got_n else np.full(nrow, np.nan)
    if spec.needs_n and not got_n:
        raise SPCError(f"A {chart} chart needs a denominator column n.")
    if x is None:
        xs = pd.Series(np.arange(1, nrow + 1), name="x")
    else:
        xs = _x_values(_column(data, x, "x").reset_index(drop=True), x_period)
    facet_cols = [facets] if isinstance(facets, str) else list(facets or [])
    if len(facet_cols) > 2:
        raise SPCError(f"At most two facet columns; got {facet_cols}.")
    fvals = [_column(data, f, "facet").reset_index(drop=True) for f in facet_cols]
    while len(fvals) < 2:
        fvals.append(pd.Series(np.ones(nrow, dtype=np.int64)))
    part_col = part if isinstance(part, str) else None
    parts = None if part is None or part_col is not None else _parse_indices(part, "part")
    if freeze is not None and (not np.isscalar(freeze) or freeze < 1 or int(freeze) != freeze):
        raise SPCError(f"freeze must be a point number of 1 or more; got {freeze!r}.")
    excl = _parse_indices(exclude if exclude is not None else [], "exclude")

    # ---- values that cannot be right ------------------------------------------------------
    counted = chart in ("p", "pp", "c", "u", "up", "g")
    if counted:
        _check_rows(yv < 0, f"Negative counts in y column {y!r} ({chart} chart)")
    if got_n:
        _check_rows(nv < 0, f"Negative denominators in n column {n!r}")
    if chart in ("p", "pp") and got_n:
        _check_rows(
            (yv > nv) & (nv > 0), f"Numerator {y!r} above denominator {n!r} in a {chart} chart"
        )
    if chart == "t":
        _check_rows(
            yv <= 0,
            f"Time between events must be greater than zero (t chart, column {y!r})",
        )

    # ---- aggregate to one point per (facet1, facet2, x) ---------------------------------------
    frame = pd.DataFrame({"facet1": fvals[0], "facet2": fvals[1], "x": xs, "y": yv, "n": nv})
    if got_n:  # qicharts2 drops rows where y or n is missing before summing
        valid = ~np.isnan(yv) & ~np.isnan(nv)
        frame["y"] = np.where(valid, yv, np.nan)
        frame["n"] = np.where(valid, nv, np.nan)
    if notes is not None:
        frame["notes"] = _column(data, notes, "notes").reset_index(drop=True)
    if part_col is not None:
        frame["partlab"] = _column(data, part_col, "part").reset_index(drop=True)
    frame = frame[frame["x"].notna().to_numpy()]  # qicharts2 drops rows without x
    if frame.empty:
        raise SPCError("No rows to chart: the data are empty or every x is missing.")
    keys = ["facet2", "facet1", "x"]  # qicharts2's row order
    pts = _aggregate(frame, keys, agg_fun, spec.agg, got_n, notes is not None, part_col is not None)
    if chart == "ip" and not got_n:
        pts["n"] = pts["y_length"].astype(float)
        pts["y"] = pts["y_mean"]

    # ---- number points within facets; parts, baseline, include ------------------------------
    if part_col is not None:
        parts = pts["partlab"]
    freeze_ = freeze if part is None else None  # freeze is ignored with part (qicharts2)
    gid, partno, baseline, include = _number_points(pts, parts, freeze_, excl)

    categorical = not (
        pd.api.types.is_numeric_dtype(pts["x"]) or pd.api.types.is_datetime64_any_dtype(pts["x"])
    )
    p = _Points(
        gid=gid,
        ngroups=int(gid[-1] + 1) if len(gid) else 0,
        y=pts["y"].to_numpy(dtype=float),
        n=pts["n"].to_numpy(dtype=float),
        y_sum=pts["y_sum"].to_numpy(dtype=float),
        y_length=pts["y_length"].to_numpy(dtype=float),
        y_mean=pts["y_mean"].to_numpy(dtype=float),
        y_sd=pts["y_sd"].to_numpy(dtype=float),
        base=baseline & include,
        cl=cl,
        categorical=categorical,
        screened=screened_mr,
    )
    lim = spec.limits(p)
    yplot = lim.y if lim.y is not None else p.y

    # ---- tidy limits ---------------------------------------------------------------------------
    out_lim = {}
    for name in ("lcl", "ucl", "lcl_95", "ucl_95"):
        v = np.asarray(getattr(lim, name), dtype=float)
        v = np.where(np.isfinite(v), v, np.nan)
        if name.startswith("lcl") and (spec.nonneg or not y_neg):
            v = np.where(v < 0, 0.0, v)
        out_lim[name] = v
    clv = np.asarray(lim.cl, dtype=float)

    runs = _runs_analysis(p, yplot, clv, include, method)
    with np.errstate(invalid="ignore"):
        sigma = (yplot > out_lim["ucl"]) | (yplot < out_lim["lcl"])

    res = pd.DataFrame(
        {
            "x": pts["x"].to_numpy(),
            "facet1": pts["facet1"].to_numpy(),
            "facet2": pts["facet2"].to_numpy(),
            "y_sum": p.y_sum,
            "y_length": pts["y_length"].to_numpy(dtype=np.int64),
            "y_mean": p.y_mean,
            "y_sd": p.y_sd,
            "n": p.n,
            "y": yplot * multiply,
            "cl": clv * multiply,
            "target": np.full(len(pts), np.nan if target is None else float(target)),
            "notes": pts["notes"].to_numpy() if notes is not None else np.full(len(pts), None),
            "part": partno.astype(np.int64),
            "baseline": baseline,
            "include": include,
            "ucl": out_lim["ucl"] * multiply,
            "ucl_95": out_lim["ucl_95"] * multiply,
            "lcl": out_lim["lcl"] * multiply,
            "lcl_95": out_lim["lcl_95"] * multiply,
        }
    )
    for k in ("n_obs", "n_useful"):
        res[k] = runs[k][gid].astype(np.int64)
    res["runs_signal"] = runs["runs_signal"][gid]
    for k in ("longest_run", "longest_run_max", "n_crossings", "n_crossings_min"):
        res[k] = pd.array(runs[k][gid], dtype="Float64").astype("Int64")
    res["sigma_signal"] = sigma
    res.attrs["qic"] = {
        "chart": chart,
        "method": method,
        "multiply": multiply,
        "x": x,
        "y": y,
        "n": n,
        "facets": facet_cols,
        "target": target,
    }
    return res


def _number_points(
    pts: pd.DataFrame, parts: np.ndarray | pd.Series | None, freeze: int | None, excl: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Group ids (facet x part), part numbers, baseline and include flags of sorted points.

    Points are numbered 1..k within each facet (``xx``); ``parts`` is either the sorted 1-based
    numbers where parts end or the per-point phase labels (each change of label starts a part).
    """
    fkey = pts["facet1"].astype(str) + "\x00" + pts["facet2"].astype(str)
    fid = (fkey != fkey.shift()).cumsum().to_numpy() - 1
    fstart = np.r_[0, np.flatnonzero(np.diff(fid)) + 1]
    xx = np.arange(len(pts)) - fstart[fid] + 1
    if parts is None:
        partno = np.ones(len(pts), dtype=np.int64)
    elif isinstance(parts, pd.Series):
        lab = parts.astype(str).to_numpy()
        change = np.r_[False, (lab[1:] != lab[:-1]) & (fid[1:] == fid[:-1])]
        cum = np.cumsum(change)
        partno = cum - cum[fstart][fid] + 1
    else:
        partno = 1 + np.searchsorted(parts, xx, side="left")
    baseline = xx <= freeze if freeze is not None else np.ones(len(pts), dtype=bool)
    include = ~np.isin(xx, excl)
    gid = np.cumsum(np.r_[True, (fid[1:] != fid[:-1]) | (partno[1:] != partno[:-1])]) - 1
    return gid, partno, baseline, include


def _aggregate(
    frame: pd.DataFrame,
    keys: list[str],
    agg_fun: str,
    fixed: str | None,
    got_n: bool,
    with_notes: bool,
    with_part: bool,
) -> pd.DataFrame:
    """One row per (facet1, facet2, x), sorted; a fast path when keys are already unique."""
    dup = frame.duplicated(keys).any()
    if not dup:
        out = frame.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True)
        y = out["y"].to_numpy(dtype=float)
        has = ~np.isnan(y)
        out["y_sum"] = y
        out["y_length"] = has.astype(np.int64)
        out["y_mean"] = y
        out["y_sd"] = np.nan
        if got_n:
            out["n"] = np.where(has, out["n"].to_numpy(dtype=float), 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                out["y"] = out["y_sum"] / out["n"]
        elif fixed == "sd" or (fixed is None and _AGG_FUNS[agg_fun] == "std"):
            out["y"] = np.nan  # the sd of a single value
        if with_notes:
            out["notes"] = out["notes"].where(out["notes"].notna(), None)
        return out
    g = frame.groupby(keys, sort=True, dropna=False)
    out = g["y"].agg(["sum", "count", "mean", "std"])
    out.columns = ["y_sum", "y_length", "y_mean", "y_sd"]
    if got_n:
        out["n"] = g["n"].sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            out["y"] = out["y_sum"] / out["n"]
    else:
        out["n"] = np.nan
        how = {"mean": "y_mean", "sd": "y_sd", "sum": "y_sum", "ip": "y_mean"}.get(fixed or "")
        out["y"] = out[how] if how else g["y"].agg(_AGG_FUNS[agg_fun])
    if with_notes:
        notes = frame["notes"].where(frame["notes"].notna() & (frame["notes"] != ""))
        out["notes"] = notes.groupby([frame[k] for k in keys], sort=True, dropna=False).agg(
            lambda s: " | ".join(map(str, s.dropna())) or None
        )
    if with_part:
        out["partlab"] = g["partlab"].first()
    return out.reset_index()


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
