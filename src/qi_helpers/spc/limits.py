"""Control limits: the constants, the sigma estimators and the limits of each chart type.

Each chart's centre line and limits are one small function, picked from :data:`CHART_LIMITS`
(Montgomery 2009; Provost & Murray 2011; Laney 2002) and computed over the
:class:`qi_helpers.spc.points.Points` of every facet and part at once. The I chart's sigma (the
average moving range over :data:`D2`, screened after Nelson 1982 by dropping moving ranges of
:data:`D4` times the average or more) has its one home here, in three arithmetic forms: per group
of points (:func:`qi_helpers.spc.qic.qic`), for one series (:func:`screened_sigma`) and for many
simulated series at once (:func:`frozen_limits`, the limits of the simulations of
:mod:`qi_helpers.spc.detect`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from qi_helpers.spc.points import Points

__all__ = ["CHART_LIMITS", "D2", "D4", "Chart", "Limits", "frozen_limits", "screened_sigma"]

#: d2 for moving ranges of two (Montgomery 2009, table VI), as qicharts2 uses it.
D2 = 1.128
#: D4 for moving ranges of two; also the threshold of Nelson's (1982) screening of moving ranges.
D4 = 3.267
_D2_EXACT = 2.0 / np.sqrt(np.pi)  # exact d2 for n = 2 (used by the I' chart)
_D4_95 = 2.178  # qicharts2's 2-sigma analogue of D4 for the MR chart


# --------------------------------------------------------------------------------------------
# The I chart's sigma: the Nelson-screened average moving range over d2
# --------------------------------------------------------------------------------------------


def _amr(p: Points, v: np.ndarray, mask: np.ndarray, scale: Any = None) -> np.ndarray:
    """Average moving range per group, Nelson-screened when ``p.screened``.

    Screening (Nelson 1982; qicharts2's ``qic.screenedmr``) drops moving ranges of
    ``3.267 * amr`` or more and averages the rest.
    """
    mr, g = p.moving_ranges(v, mask, scale)
    cnt = np.bincount(g, minlength=p.ngroups).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        amr = np.bincount(g, weights=mr, minlength=p.ngroups) / cnt
        if p.screened:
            keep = mr < D4 * amr[g]
            cnt = np.bincount(g[keep], minlength=p.ngroups).astype(float)
            amr = np.bincount(g[keep], weights=mr[keep], minlength=p.ngroups) / cnt
    return amr


def screened_sigma(values: np.ndarray) -> float:
    """I chart sigma of one series, as :func:`qi_helpers.spc.qic.qic` estimates it.

    Parameters
    ----------
    values : ndarray
        The series, in time order; a missing value gives missing moving ranges, which are
        dropped.

    Returns
    -------
    float
        The average of the moving ranges below :data:`D4` times their average, over :data:`D2`
        (NaN without moving ranges).
    """
    mr = np.abs(np.diff(values))
    mr = mr[~np.isnan(mr)]
    if mr.size == 0:
        return float("nan")
    amr = mr.mean()
    kept = mr[mr < D4 * amr]
    return float(kept.mean() / D2) if kept.size else float("nan")


def _screened_sigma_rows(values: np.ndarray) -> np.ndarray:
    """:func:`screened_sigma` of each row of a 2-D array without missing values."""
    mr = np.abs(np.diff(values, axis=1))
    amr = mr.mean(axis=1)
    keep = mr < D4 * amr[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        amr = np.where(keep, mr, 0).sum(axis=1) / keep.sum(axis=1)
    return amr / D2


# --------------------------------------------------------------------------------------------
# Limits of one chart, from the points of every facet and part at once
# --------------------------------------------------------------------------------------------


@dataclass
class Limits:
    """Centre line and limits per point (``y`` replaces the plotted values when not None)."""

    cl: np.ndarray
    lcl: np.ndarray
    ucl: np.ndarray
    lcl_95: np.ndarray
    ucl_95: np.ndarray
    y: np.ndarray | None = None  # replaces y (MR chart, back-transformed t chart)


def _symmetric(cl: np.ndarray, sd: np.ndarray) -> Limits:
    return Limits(cl, cl - 3 * sd, cl + 3 * sd, cl - 2 * sd, cl + 2 * sd)


def _no_limits(cl: np.ndarray) -> Limits:
    nan = np.full(cl.shape, np.nan)
    return Limits(cl, nan, nan.copy(), nan.copy(), nan.copy())


# --------------------------------------------------------------------------------------------
# One small function per chart type (Montgomery 2009; Provost & Murray 2011; Laney 2002)
# --------------------------------------------------------------------------------------------


def _limits_run(p: Points) -> Limits:
    """Run chart: centre line = median of the baseline points, no limits."""
    return _no_limits(p.centre(p.gmedian(p.y, p.base)))


def _limits_i(p: Points) -> Limits:
    """I chart: cl = mean, sigma = average moving range / 1.128."""
    cl = p.centre(p.gmean(p.y, p.base))
    sd = p.expand(_amr(p, p.y, p.base)) / D2
    return _symmetric(cl, sd)


def _limits_mr(p: Points) -> Limits:
    """MR chart: y = |y[i] - y[i-1]| within each part, cl = mean MR, ucl = 3.267 cl."""
    prev = np.r_[np.nan, p.y[:-1]]
    first = np.r_[True, p.gid[1:] != p.gid[:-1]]
    mr = np.where(first, np.nan, np.abs(p.y - prev))
    cl = p.centre(p.gmean(mr, p.base))
    zero = np.zeros_like(cl)
    return Limits(cl, zero, D4 * cl, zero.copy(), _D4_95 * cl, y=mr)


def _c4(n: np.ndarray) -> np.ndarray:
    """c4(n) = sqrt(2 / (n - 1)) * Gamma(n / 2) / Gamma((n - 1) / 2) (Montgomery 2009)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        n = np.where(n > 1, n, np.nan)
        return np.sqrt(2.0 / (n - 1)) * np.exp(
            special.gammaln(n / 2) - special.gammaln((n - 1) / 2)
        )


def _sbar(p: Points) -> np.ndarray:
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


def _limits_xbar(p: Points) -> Limits:
    """Xbar chart: cl = grand mean, limits cl +- A3(n_i) sbar (Montgomery 2009, 6.4)."""
    ok = p.base & ~np.isnan(p.y_mean)
    with np.errstate(invalid="ignore", divide="ignore"):
        grand = p.gsum(p.y_length * p.y_mean, ok) / p.gsum(p.y_length.astype(float), ok)
        cl = p.centre(grand)
        sd = p.expand(_sbar(p)) / (_c4(p.y_length) * np.sqrt(p.y_length))
    return _symmetric(cl, sd)


def _limits_s(p: Points) -> Limits:
    """S chart: cl = sbar, limits sbar * (1 +- k sqrt(1 - c4^2) / c4) (B3/B4)."""
    sbar = p.expand(_sbar(p))
    cl = p.centre(_sbar(p))
    c4 = _c4(p.y_length)
    with np.errstate(invalid="ignore"):
        w = np.sqrt(1 - c4**2) / c4
    return Limits(
        cl, sbar * (1 - 3 * w), sbar * (1 + 3 * w), sbar * (1 - 2 * w), sbar * (1 + 2 * w)
    )


def _ratio_centre(p: Points) -> np.ndarray:
    """Weighted centre sum(y_sum) / sum(n) over the baseline subgroups."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return p.centre(p.gsum(p.y_sum, p.base) / p.gsum(p.n, p.base))


def _limits_p(p: Points) -> Limits:
    """P chart: sigma_i = sqrt(cl (1 - cl) / n_i)."""
    cl = _ratio_centre(p)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _symmetric(cl, np.sqrt(cl * (1 - cl) / p.n))


def _limits_u(p: Points) -> Limits:
    """U chart: sigma_i = sqrt(cl / n_i)."""
    cl = _ratio_centre(p)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _symmetric(cl, np.sqrt(cl / p.n))


def _laney(p: Points, cl: np.ndarray, sd: np.ndarray) -> Limits:
    """Laney (2002) prime chart: sigma_i * sigma_z, sigma_z from moving ranges of z-scores.

    With categorical x (no time order, e.g. a funnel plot) sigma_z is the sd of the z-scores.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (p.y - cl) / sd
    z = np.where(np.isfinite(z), z, np.nan)
    sz = p.gsd(z, p.base) if p.categorical else _amr(p, z, p.base) / D2
    return _symmetric(cl, sd * p.expand(sz))


def _limits_pp(p: Points) -> Limits:
    cl = _ratio_centre(p)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _laney(p, cl, np.sqrt(cl * (1 - cl) / p.n))


def _limits_up(p: Points) -> Limits:
    cl = _ratio_centre(p)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _laney(p, cl, np.sqrt(cl / p.n))


def _limits_c(p: Points) -> Limits:
    """C chart: cl = mean count, sigma = sqrt(cl)."""
    cl = p.centre(p.gmean(p.y, p.base))
    with np.errstate(invalid="ignore"):
        return _symmetric(cl, np.sqrt(cl))


def _limits_g(p: Points) -> Limits:
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


def _limits_t(p: Points) -> Limits:
    """T chart (Montgomery 2009, 7.3.5): an I chart of y^(1/3.6), back-transformed."""
    yt = p.y ** (1 / 3.6)
    q = Points(**{**p.__dict__, "y": yt, "cl": None if p.cl is None else p.cl ** (1 / 3.6)})
    lim = _limits_i(q)
    back = [
        np.where(v < 0, 0.0, v) ** 3.6 for v in (lim.cl, lim.lcl, lim.ucl, lim.lcl_95, lim.ucl_95)
    ]
    return Limits(*back, y=yt**3.6)


def _limits_ip(p: Points) -> Limits:
    """I' chart (Taylor 2017): I chart for subgroup means with unequal subgroup sizes.

    cl = sum(y_sum) / sum(n); moving ranges |y_i - y_(i-1)| / sqrt(1/n_i + 1/n_(i-1)) over
    every point of the part; sigma = amr * sqrt(2) / d2; limits cl +- 3 sigma / sqrt(n_i).
    """
    cl = _ratio_centre(p)
    n = p.n

    def scale(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(1 / n[i] + 1 / n[j])

    sigma = _amr(p, p.y, np.ones_like(p.base), scale) * np.sqrt(2) / _D2_EXACT
    with np.errstate(invalid="ignore", divide="ignore"):
        return _symmetric(cl, p.expand(sigma) / np.sqrt(n))


@dataclass(frozen=True)
class Chart:
    """How :func:`qi_helpers.spc.qic.qic` computes one chart type."""

    limits: Callable[[Points], Limits]
    needs_n: bool = False  # y / n charts (p, pp, u, up)
    agg: str | None = None  # fixed aggregation of y per subgroup when n is absent
    nonneg: bool = False  # lower limits truncated at zero
    ceiling: float | None = None  # upper limits cut here (1 for a proportion, as qicharts2)


#: Every chart type :func:`qi_helpers.spc.qic.qic` computes (the chart types of
#: :data:`qi_helpers.measures.CHARTS`, in the same order) -> how.
CHART_LIMITS: dict[str, Chart] = {
    "run": Chart(_limits_run),
    "i": Chart(_limits_i),
    "ip": Chart(_limits_ip, agg="ip"),
    "mr": Chart(_limits_mr),
    "xbar": Chart(_limits_xbar, agg="mean"),
    "s": Chart(_limits_s, agg="sd", nonneg=True),
    "t": Chart(_limits_t, nonneg=True),
    "p": Chart(_limits_p, needs_n=True, nonneg=True, ceiling=1.0),
    "pp": Chart(_limits_pp, needs_n=True, nonneg=True, ceiling=1.0),
    "c": Chart(_limits_c, agg="sum", nonneg=True),
    "u": Chart(_limits_u, needs_n=True, nonneg=True),
    "up": Chart(_limits_up, needs_n=True, nonneg=True),
    "g": Chart(_limits_g, nonneg=True),
}


# --------------------------------------------------------------------------------------------
# Frozen limits of many simulated series at once
# --------------------------------------------------------------------------------------------


def frozen_limits(y: np.ndarray, n: np.ndarray, baseline: int, chart: str) -> dict[str, np.ndarray]:
    """Frozen centre line and limits per series, as ``qic(freeze=baseline)`` computes them.

    Parameters
    ----------
    y : ndarray
        One simulated series per row (the plotted values; count / n for p and u charts; an i
        chart's series have no missing values).
    n : ndarray
        The denominators of the periods (the columns of ``y``).
    baseline : int
        The number of baseline periods the centre line and limits come from.
    chart : {"p", "u", "i"}
        The chart type.

    Returns
    -------
    dict of ndarray
        ``cl``, ``ucl``, ``lcl``, ``ucl95``, ``lcl95`` and ``sigma``, each of the shape of ``y``
        (the lower limits of p and u charts truncated at 0 and the upper limits of p charts
        capped at 1, as :func:`qi_helpers.spc.qic.qic` does).
    """
    if chart == "i":
        base = y[:, :baseline]
        cl = base.mean(axis=1)
        cl = cl + (base - cl[:, None]).mean(axis=1)  # two-pass, as Points.gmean
        sigma = np.broadcast_to(_screened_sigma_rows(base)[:, None], y.shape)
        cl2 = np.broadcast_to(cl[:, None], y.shape)
        return {
            "cl": cl2,
            "ucl": cl2 + 3 * sigma,
            "lcl": cl2 - 3 * sigma,
            "ucl95": cl2 + 2 * sigma,
            "lcl95": cl2 - 2 * sigma,
            "sigma": sigma,
        }
    nb = n[:baseline]
    with np.errstate(invalid="ignore", divide="ignore"):
        counts = np.where(nb > 0, np.rint(y[:, :baseline] * nb), 0.0)  # whole counts, as qic sums
        cl = counts.sum(axis=1) / nb[nb > 0].sum()
        var = cl[:, None] * (1 - cl[:, None]) if chart == "p" else cl[:, None]
        sigma = np.sqrt(var / n[None, :])
    sigma = np.where(np.isfinite(sigma), sigma, np.nan)
    cl2 = np.broadcast_to(cl[:, None], y.shape)
    ceiling = CHART_LIMITS[chart].ceiling
    with np.errstate(invalid="ignore"):
        lcl, lcl95 = cl2 - 3 * sigma, cl2 - 2 * sigma
        lcl, lcl95 = np.where(lcl < 0, 0.0, lcl), np.where(lcl95 < 0, 0.0, lcl95)
        ucl, ucl95 = cl2 + 3 * sigma, cl2 + 2 * sigma
        if ceiling is not None:  # capped at 1 for a p chart, as qic does
            ucl, ucl95 = (
                np.where(ucl > ceiling, ceiling, ucl),
                np.where(ucl95 > ceiling, ceiling, ucl95),
            )
    return {
        "cl": cl2,
        "ucl": ucl,
        "lcl": lcl,  # truncated at 0, as qic does for p and u charts
        "ucl95": ucl95,
        "lcl95": lcl95,
        "sigma": sigma,
    }
