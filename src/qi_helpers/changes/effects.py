"""Effect estimates of a test of change, and how long a chart needs to show one (workbook 03).

A control chart says *whether* something changed; a coach also wants to know *by how much*, and
how sure we can be. The estimate depends on the kind of data behind the chart:

- proportions (p, pp charts): the difference in proportions after minus before, with Newcombe's
  hybrid score interval;
- counts and rates (c, u, up charts): the rate ratio after / before, with a Wald interval on the
  log scale;
- measured values (i, ip, xbar, run charts and anything else): the difference in means after
  minus before, with Welch's interval.

Every interval assumes independent periods (or cases). Real improvement data are often serially
correlated (this week's waiting time resembles last week's), which makes the real uncertainty
wider than the interval shown: read the interval as a lower bound on the uncertainty.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
from scipy import stats

from qi_helpers.errors import ConfigError

__all__ = [
    "DEFAULT_EFFECT_KIND",
    "EFFECT_KINDS",
    "SERIAL_CORRELATION_NOTE",
    "detectable_shift",
    "difference_in_means",
    "difference_in_proportions",
    "effect_direction",
    "effect_kind",
    "estimate_effect",
    "periods_to_signal",
    "rate_ratio",
]

#: What the effect of a change on each chart type is measured as.
EFFECT_KINDS = {
    "p": "difference in proportions",
    "pp": "difference in proportions",
    "u": "rate ratio",
    "up": "rate ratio",
    "c": "rate ratio",
}
DEFAULT_EFFECT_KIND = "difference in means"

#: The note that goes with every interval.
SERIAL_CORRELATION_NOTE = (
    "95% intervals assume independent periods; serial correlation (common in improvement data) "
    "makes the real uncertainty wider."
)


def effect_kind(chart: str) -> str:
    """The kind of effect estimate for a chart type (see :data:`EFFECT_KINDS`)."""
    return EFFECT_KINDS.get(chart, DEFAULT_EFFECT_KIND)


@functools.lru_cache(maxsize=16)
def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be between 0 and 1, found {confidence!r}.")
    return float(stats.norm.ppf(0.5 + confidence / 2))


def _wilson(x: float, n: float, z: float) -> tuple[float, float]:
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def difference_in_proportions(
    x0: float, n0: float, x1: float, n1: float, *, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Difference ``x1/n1 - x0/n0`` with Newcombe's hybrid score interval.

    Parameters
    ----------
    x0, n0 : float
        Cases with the event and all cases before the change.
    x1, n1 : float
        The same after the change.
    confidence : float

    Returns
    -------
    tuple of float
        ``(difference, low, high)``; NaNs when either denominator is zero.

    Notes
    -----
    Method 10 of Newcombe RG (1998), Interval estimation for the difference between independent
    proportions: comparison of eleven methods. Stat Med 17:873-890. With Wilson score limits
    ``(l0, u0)`` and ``(l1, u1)`` of the two proportions, the interval is
    ``d - sqrt((p1 - l1)^2 + (u0 - p0)^2)`` to ``d + sqrt((u1 - p1)^2 + (p0 - l0)^2)``.
    It behaves well for small counts and proportions near 0 or 1, where the Wald interval fails.
    """
    if not n0 > 0 or not n1 > 0:
        return (math.nan, math.nan, math.nan)
    z = _z(confidence)
    p0, p1 = x0 / n0, x1 / n1
    l0, u0 = _wilson(x0, n0, z)
    l1, u1 = _wilson(x1, n1, z)
    d = p1 - p0
    return (
        d,
        d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2),
        d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2),
    )


def rate_ratio(
    x0: float, t0: float, x1: float, t1: float, *, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Rate ratio ``(x1/t1) / (x0/t0)`` with an exact conditional interval.

    Parameters
    ----------
    x0, t0 : float
        Events and exposure (e.g. falls and patient-days, or periods for a c chart) before.
    x1, t1 : float
        The same after.
    confidence : float

    Returns
    -------
    tuple of float
        ``(ratio, low, high)``; NaNs when an exposure is zero or there are no events at all.
        ``low`` is 0 without events after, ``high`` infinite without events before.

    Notes
    -----
    Given the ``x0 + x1`` events, the number after the change is binomial with probability
    ``pi = t1 RR / (t0 + t1 RR)``; the Clopper-Pearson interval of ``pi`` (the beta quantiles
    of ``scipy.stats.binomtest(x1, x0 + x1).proportion_ci(method="exact")``) becomes the
    interval ``pi / (1 - pi) * t0 / t1`` of the ratio
    (Rothman, Greenland & Lash, Modern Epidemiology, 3rd ed. 2008, ch. 14; Breslow & Day,
    Statistical Methods in Cancer Research II, 1987, 2.3). Its coverage is at least the nominal
    level even for rare events (a few falls a week), where the Wald interval on the log scale
    falls short. With no events on one side the point estimate adds 0.5 to both counts (the
    Haldane-Anscombe correction) so that it stays finite; the interval does not.
    Counts that are not whole numbers are rounded.
    """
    if not t0 > 0 or not t1 > 0 or (x0 + x1) <= 0:
        return (math.nan, math.nan, math.nan)
    k0, k1 = int(round(x0)), int(round(x1))
    if k0 + k1 == 0:
        return (math.nan, math.nan, math.nan)
    alpha = 1 - confidence  # Clopper-Pearson limits as beta quantiles (binomtest's "exact")
    p_low = float(stats.beta.ppf(alpha / 2, k1, k0 + 1)) if k1 > 0 else 0.0
    p_high = float(stats.beta.ppf(1 - alpha / 2, k1 + 1, k0)) if k0 > 0 else 1.0
    scale = t0 / t1
    low = p_low / (1 - p_low) * scale
    high = p_high / (1 - p_high) * scale if p_high < 1 else math.inf
    if x0 == 0 or x1 == 0:
        ratio = ((x1 + 0.5) / t1) / ((x0 + 0.5) / t0)
    else:
        ratio = (x1 / t1) / (x0 / t0)
    return (ratio, low, high)


def difference_in_means(
    before: np.ndarray | pd.Series, after: np.ndarray | pd.Series, *, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Difference ``mean(after) - mean(before)`` with Welch's interval.

    Parameters
    ----------
    before, after : array-like of float
        Values (missing values are dropped).
    confidence : float

    Returns
    -------
    tuple of float
        ``(difference, low, high)``; the interval is NaN with fewer than two values on a side.

    Notes
    -----
    Welch BL (1947), The generalization of "Student's" problem when several different population
    variances are involved. Biometrika 34:28-35; degrees of freedom by the Welch-Satterthwaite
    equation. The interval is scipy's (:func:`scipy.stats.ttest_ind` with ``equal_var=False``).
    """
    a = np.asarray(before, dtype=float)
    b = np.asarray(after, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        return (math.nan, math.nan, math.nan)
    d = math.fsum(b.tolist()) / b.size - math.fsum(a.tolist()) / a.size
    if a.size < 2 or b.size < 2:
        return (d, math.nan, math.nan)
    if a.var(ddof=1) == 0 and b.var(ddof=1) == 0:
        return (d, d, d)
    ci = stats.ttest_ind(b, a, equal_var=False).confidence_interval(confidence)
    return (d, float(ci.low), float(ci.high))


def estimate_effect(
    before: pd.DataFrame,
    after: pd.DataFrame,
    chart: str,
    *,
    multiply: float = 1,
    before_values: np.ndarray | pd.Series | None = None,
    after_values: np.ndarray | pd.Series | None = None,
    confidence: float = 0.95,
) -> dict[str, float | str]:
    """The effect of a change on one measure, with its confidence interval.

    Parameters
    ----------
    before, after : DataFrame
        The periods of the baseline and of the new phase, from
        :func:`qi_helpers.changes.series.measure_series` (``numerator``, ``denominator``,
        ``value``).
    chart : str
        The chart type; decides the kind of estimate (:data:`EFFECT_KINDS`).
    multiply : float
        The catalogue's ``multiply``: differences are reported on the charted scale (e.g.
        percentage points for a percentage); ratios have no scale.
    before_values, after_values : array-like, optional
        Case-level values (for xbar charts): the difference in means is then over cases rather
        than over period means.
    confidence : float

    Returns
    -------
    dict
        ``effect``, ``effect_low``, ``effect_high`` and ``effect_kind`` (one of ``difference in
        proportions``, ``rate ratio``, ``difference in means``).

    Notes
    -----
    See :func:`difference_in_proportions`, :func:`rate_ratio` and :func:`difference_in_means`.
    For a c chart the exposure is the number of periods. Laney's p' and u' charts (pp, up)
    allow for overdispersion between periods; the interval here does not, so it is too narrow
    when the chart's sigma_z is well above 1. :data:`SERIAL_CORRELATION_NOTE` applies to all.
    """
    kind = effect_kind(chart)
    nan = {"effect": math.nan, "effect_low": math.nan, "effect_high": math.nan}
    if before.empty or after.empty:
        return {**nan, "effect_kind": kind}
    if kind == "difference in proportions":
        est = difference_in_proportions(
            before["numerator"].sum(),
            before["denominator"].sum(),
            after["numerator"].sum(),
            after["denominator"].sum(),
            confidence=confidence,
        )
        est = tuple(v * multiply for v in est)
    elif kind == "rate ratio":
        if chart == "c":
            t0, t1 = float(before["value"].notna().sum()), float(after["value"].notna().sum())
            x0, x1 = before["value"].sum(), after["value"].sum()
        else:
            t0, t1 = before["denominator"].sum(), after["denominator"].sum()
            x0, x1 = before["numerator"].sum(), after["numerator"].sum()
        est = rate_ratio(x0, t0, x1, t1, confidence=confidence)
    else:
        if before_values is not None and after_values is not None:
            est = difference_in_means(before_values, after_values, confidence=confidence)
        else:
            est = difference_in_means(before["value"], after["value"], confidence=confidence)
        est = tuple(v * multiply for v in est)
    return {
        "effect": float(est[0]),
        "effect_low": float(est[1]),
        "effect_high": float(est[2]),
        "effect_kind": kind,
    }


def effect_direction(effect: float, low: float, high: float, kind: str) -> int:
    """+1 when the interval lies wholly above no effect, -1 wholly below, else 0.

    No effect is 1 for a ratio and 0 for a difference.
    """
    null = 1.0 if kind == "rate ratio" else 0.0
    if np.isnan(low) or np.isnan(high):
        return 0
    if low > null:
        return 1
    if high < null:
        return -1
    return 0


# ---- time to detect --------------------------------------------------------------------------

#: Length of a run on one side of the centre line that the shift rule of each rule set needs;
#: ``None`` means Anhøj's ``round(log2(n) + 3) + 1`` for n points.
_SHIFT_RUN = {"anhoej": None, "ihi": 6, "mdc": 7, "western_electric": 8}


def _prob_run(p: float, k: int, n_max: int) -> np.ndarray:
    """Probability of a run of at least ``k`` successes in n Bernoulli(p) trials, n = 0..n_max."""
    state = np.zeros(k)  # probability of the current run length 0..k-1 without a run of k yet
    state[0] = 1.0
    out = np.zeros(n_max + 1)
    hit = 0.0
    for n in range(1, n_max + 1):
        hit += state[-1] * p
        state = np.r_[state.sum() * (1 - p), state[:-1] * p]
        out[n] = hit
    return out


def periods_to_signal(
    shift: float,
    *,
    rules: str = "anhoej",
    power: float = 0.8,
    max_periods: int = 156,
) -> float:
    """Periods after a change until a chart signals a shift with probability ``power``.

    Parameters
    ----------
    shift : float
        The size of the change in sigma units of the chart (the distance of the new level from
        the baseline centre line divided by the baseline's sigma per point).
    rules : {"anhoej", "ihi", "mdc", "western_electric"}
        Which shift rule to expect to fire (besides a point beyond the 3-sigma limits).
    power : float
        The probability of a signal to reach.
    max_periods : int
        Give up (return NaN) beyond this many periods.

    Returns
    -------
    float
        The smallest number of periods with that probability of a signal; NaN when ``shift`` is
        0 or the signal needs more than ``max_periods`` periods.

    Notes
    -----
    A closed-form approximation, assuming independent, normally distributed points: each point
    after the change lies on the shifted side of the baseline centre line with probability
    ``Phi(shift)`` and beyond the 3-sigma limit with ``Phi(shift - 3)``. The chance of a signal
    within n points is ``1 - (1 - P_run)(1 - P_sigma)``, where ``P_run`` is the exact probability
    of a run longer than the rule allows (Anhøj & Olesen 2014: ``round(log2(n) + 3)``; IHI 6,
    Making Data Count 7, Western Electric 8) and ``P_sigma = 1 - (1 - Phi(shift - 3))^n``. For
    Anhøj's rules ``P_run`` is the larger of that and the chance of too few crossings, taking the
    crossings as binomial with probability ``2 Phi(shift)(1 - Phi(shift))`` (the larger, not the
    union, because the two runs rules fire together); serial correlation makes real charts
    slower. A Monte Carlo estimate of the same quantity for workbook 02 is
    ``qi_helpers.spc.detect.periods_to_detect`` where available.
    """
    if rules not in _SHIFT_RUN:
        raise ConfigError(f"Unknown rule set {rules!r}; choose one of {sorted(_SHIFT_RUN)}.")
    delta = abs(float(shift))
    if not np.isfinite(delta) or delta == 0:
        return math.nan
    p_side = float(stats.norm.cdf(delta))
    q_out = float(stats.norm.cdf(delta - 3))
    fixed = _SHIFT_RUN[rules]
    n = np.arange(1, max_periods + 1)
    k = np.round(np.log2(n) + 3).astype(int) + 1 if fixed is None else np.full(n.size, fixed)
    runs = {int(kk): _prob_run(p_side, int(kk), max_periods) for kk in np.unique(k)}
    p_run = np.array([runs[int(kk)][nn] for kk, nn in zip(k, n, strict=True)])
    if fixed is None:  # Anhøj's crossings rule, crossings approximately binomial
        c_min = stats.binom.ppf(0.05, n - 1, 0.5)
        p_cross = stats.binom.cdf(c_min - 1, n - 1, 2 * p_side * (1 - p_side))
        p_run = np.maximum(p_run, np.where(n > 1, p_cross, 0.0))
    p_sigma = 1 - (1 - q_out) ** n
    ok = np.flatnonzero(1 - (1 - p_run) * (1 - p_sigma) >= power)
    return float(n[ok[0]]) if ok.size else math.nan


def detectable_shift(
    periods: int, *, rules: str = "anhoej", power: float = 0.8, max_shift: float = 6.0
) -> float:
    """The smallest shift, in sigma units, a chart signals within ``periods`` with ``power``.

    The inverse of :func:`periods_to_signal` (same closed-form approximation), found by
    bisection to 0.01 sigma.

    Parameters
    ----------
    periods : int
        Periods after the change.
    rules : {"anhoej", "ihi", "mdc", "western_electric"}
        The rule set.
    power : float
        The probability of a signal to reach.
    max_shift : float
        Give up (return NaN) beyond this shift.

    Returns
    -------
    float
        NaN when even ``max_shift`` is not signalled within ``periods``.
    """

    def seen(shift: float) -> bool:
        n = periods_to_signal(shift, rules=rules, power=power, max_periods=periods)
        return bool(np.isfinite(n))

    if periods < 1 or not seen(max_shift):
        return math.nan
    lo, hi = 0.0, max_shift
    while hi - lo > 0.01:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if seen(mid) else (mid, hi)
    return hi
