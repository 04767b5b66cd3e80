"""How soon would a chart see a change? Time to detect, by Monte Carlo simulation.

Before a team tests a change it helps to know how many periods of data the chart needs before a
change of a given size shows up as a special cause. :func:`periods_to_detect` answers that for a
p, u or i chart with a frozen baseline and any rule set of :func:`qi_helpers.spc.signals`:
it simulates many series (baseline, then the changed process), charts each one period at a time as
an analyst would, and records the first period after the change at which the rules signal it.
:func:`detection_curve` gives the whole curve: the probability that the change has been seen
after 1, 2, ... periods.

The simulation runs over all simulated series at once, one period at a time, carrying the state
of every rule (current run, trend, window of zone points, crossings) forward, so it reproduces
``qic(freeze=...)`` followed by ``signals(...)`` on every truncated series without charting them
one by one (``tests/test_detection.py`` checks that, series by series, against the brute force).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from qi_helpers.errors import ConfigError, DataError
from qi_helpers.spc_rules import _IHI_RUNS, RULE_SETS

__all__ = ["DETECTION_CHARTS", "detection_curve", "periods_to_detect"]

#: Chart types :func:`periods_to_detect` can simulate.
DETECTION_CHARTS: tuple[str, ...] = ("p", "u", "i")

_D2 = 1.128
_D4 = 3.267
_MAX_ROUNDS = 12  # batches of simulations drawn to replace baselines that signal on their own


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def _screened_sigma(values: np.ndarray) -> float:
    """I chart sigma as :func:`qi_helpers.spc.qic` computes it: Nelson-screened mean MR / 1.128."""
    mr = np.abs(np.diff(values))
    mr = mr[~np.isnan(mr)]
    if mr.size == 0:
        return float("nan")
    amr = mr.mean()
    kept = mr[mr < _D4 * amr]
    return float(kept.mean() / _D2) if kept.size else float("nan")


def _setup(
    baseline: float | np.ndarray,
    denominators: np.ndarray | None,
    effect: float,
    chart: str,
    rules: str,
    sims: int,
    horizon: int,
    relative: bool,
    sd: float | None,
    baseline_periods: int | None,
) -> dict:
    """Check the arguments and work out the baseline and changed process."""
    if chart not in DETECTION_CHARTS:
        raise ConfigError(
            f"periods_to_detect: chart must be one of {DETECTION_CHARTS}; got {chart!r}. "
            "Simulate a Laney chart (pp, up) as p or u, and a chart of means (xbar) as i."
        )
    if rules not in RULE_SETS:
        raise ConfigError(f"periods_to_detect: rules must be one of {RULE_SETS}; got {rules!r}.")
    if not isinstance(sims, int | np.integer) or sims < 1:
        raise ConfigError(f"periods_to_detect: sims must be a positive integer; got {sims!r}.")
    if not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ConfigError(
            f"periods_to_detect: horizon must be a positive integer; got {horizon!r}."
        )
    if not np.isfinite(effect):
        raise ConfigError(f"periods_to_detect: effect must be a finite number; got {effect!r}.")
    den = None
    if denominators is not None:
        den = np.asarray(denominators, dtype=float).ravel()
        if den.size == 0 or np.any(~np.isfinite(den)) or np.any(den < 0):
            raise DataError(
                "periods_to_detect: denominators must be a non-empty list of finite numbers of 0 "
                f"or more; got {denominators!r}."
            )
    base = np.asarray(baseline, dtype=float)
    series = base.ndim > 0
    if series:
        base = base.ravel()
        if base.size < 2 or np.isnan(base).all():
            raise DataError(
                f"periods_to_detect: a baseline series needs at least 2 values; got {base.size}."
            )
    if chart in ("p", "u"):
        if den is None:
            raise DataError(
                f"periods_to_detect: a {chart} chart needs the baseline's denominators (cases or "
                "exposure per period)."
            )
        if series:
            if base.size != den.size:
                raise DataError(
                    f"periods_to_detect: the baseline has {base.size} values but there are "
                    f"{den.size} denominators; give one denominator per baseline period."
                )
            ok = ~np.isnan(base) & (den > 0)
            rate = float(np.sum(base[ok] * den[ok]) / np.sum(den[ok])) if ok.any() else np.nan
        else:
            rate = float(base)
        if chart == "p":
            if np.any(np.abs(den - np.rint(den)) > 1e-9):
                raise DataError(
                    "periods_to_detect: the denominators of a p chart count cases, so they must "
                    f"be whole numbers; got {den[np.abs(den - np.rint(den)) > 1e-9][:3]}."
                )
            if not 0 <= rate <= 1:
                raise DataError(
                    f"periods_to_detect: a p chart's baseline is a proportion in [0, 1]; got "
                    f"{rate!r}."
                )
        elif not rate >= 0:
            raise DataError(f"periods_to_detect: a u chart's rate must be 0 or more; got {rate!r}.")
        if not np.any(den > 0):
            raise DataError("periods_to_detect: every denominator is 0; there is nothing to chart.")
        sigma = float("nan")
        n_base = baseline_periods or den.size
    else:
        if series:
            rate = float(np.nanmean(base))
            sigma = float(sd) if sd is not None else _screened_sigma(base)
            n_base = baseline_periods or base.size
        else:
            rate = float(base)
            if sd is None:
                raise DataError(
                    "periods_to_detect: an i chart needs the spread of the baseline: pass the "
                    "baseline values as a list, or their standard deviation as sd=."
                )
            sigma = float(sd)
            n_base = baseline_periods or (den.size if den is not None else None)
            if n_base is None:
                raise DataError(
                    "periods_to_detect: give the number of baseline periods (baseline_periods=) "
                    "or the baseline values."
                )
        if not np.isfinite(rate) or not sigma > 0:
            raise DataError(
                f"periods_to_detect: an i chart needs a finite mean and a standard deviation "
                f"above 0; got mean {rate!r}, sd {sigma!r}."
            )
    if not isinstance(n_base, int | np.integer) or n_base < 2:
        raise ConfigError(
            f"periods_to_detect: the baseline needs at least 2 periods; got {n_base!r}."
        )
    changed = rate * (1 + effect) if relative else rate + effect
    if chart == "p":
        changed = min(max(changed, 0.0), 1.0)
    elif chart == "u":
        changed = max(changed, 0.0)
    total = int(n_base) + int(horizon)
    n = den[np.arange(total) % den.size] if den is not None else np.ones(total)
    if chart == "p":
        n = np.rint(n)
    return {
        "chart": chart,
        "rules": rules,
        "rate": rate,
        "changed": float(changed),
        "sigma": sigma,
        "B": int(n_base),
        "H": int(horizon),
        "n": n,
        "direction": 1 if changed >= rate else -1,
    }


# --------------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------------


def _simulate(setup: dict, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` series of the plotted value ``y`` (count / n for p and u charts)."""
    B, n = setup["B"], setup["n"]
    level = np.where(np.arange(n.size) < B, setup["rate"], setup["changed"])
    if setup["chart"] == "i":
        return rng.normal(level, setup["sigma"], size=(size, n.size))
    if setup["chart"] == "p":
        counts = rng.binomial(n.astype(np.int64), level, size=(size, n.size)).astype(float)
    else:
        counts = rng.poisson(level * n, size=(size, n.size)).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts / n


def _limits(y: np.ndarray, n: np.ndarray, B: int, chart: str) -> dict[str, np.ndarray]:
    """Frozen centre line and limits per simulated series, as ``qic(freeze=B)`` computes them."""
    if chart == "i":
        base = y[:, :B]
        cl = base.mean(axis=1)
        mr = np.abs(np.diff(base, axis=1))
        amr = mr.mean(axis=1)
        keep = mr < _D4 * amr[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            amr = np.where(keep, mr, 0).sum(axis=1) / keep.sum(axis=1)
        sigma = np.broadcast_to((amr / _D2)[:, None], y.shape)
        cl2 = np.broadcast_to(cl[:, None], y.shape)
        return {
            "cl": cl2,
            "ucl": cl2 + 3 * sigma,
            "lcl": cl2 - 3 * sigma,
            "ucl95": cl2 + 2 * sigma,
            "lcl95": cl2 - 2 * sigma,
            "sigma": sigma,
        }
    nb = n[:B]
    with np.errstate(invalid="ignore", divide="ignore"):
        counts = np.where(nb > 0, np.rint(y[:, :B] * nb), 0.0)  # whole counts, as qic sums
        cl = counts.sum(axis=1) / nb[nb > 0].sum()
        var = cl[:, None] * (1 - cl[:, None]) if chart == "p" else cl[:, None]
        sigma = np.sqrt(var / n[None, :])
    sigma = np.where(np.isfinite(sigma), sigma, np.nan)
    cl2 = np.broadcast_to(cl[:, None], y.shape)
    with np.errstate(invalid="ignore"):
        lcl, lcl95 = cl2 - 3 * sigma, cl2 - 2 * sigma
        lcl, lcl95 = np.where(lcl < 0, 0.0, lcl), np.where(lcl95 < 0, 0.0, lcl95)
    return {
        "cl": cl2,
        "ucl": cl2 + 3 * sigma,
        "lcl": lcl,  # truncated at 0, as qic does for p and u charts
        "ucl95": cl2 + 2 * sigma,
        "lcl95": lcl95,
        "sigma": sigma,
    }


def _runs_table(total: int) -> tuple[np.ndarray, np.ndarray]:
    """Anhøj's critical values for 0..total useful observations (index = n_useful)."""
    n = np.arange(total + 1, dtype=float)
    n[0] = 1
    longest = np.round(np.log2(n) + 3)
    crossings = stats.binom.ppf(0.05, n - 1, 0.5)
    return longest, crossings


def _ihi_bounds(n: np.ndarray, above: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Perla (2011) Table 1 bounds on the number of runs (normal approximation above 40)."""
    low = np.full(n.shape, -np.inf)
    high = np.full(n.shape, np.inf)
    for size, (lo, hi) in _IHI_RUNS.items():
        at = n == size
        low[at], high[at] = lo, hi
    big = n > 40
    if big.any():
        a = above[big].astype(float)
        m = n[big].astype(float)
        b = m - a
        mean = 1 + 2 * a * b / m
        var = 2 * a * b * (2 * a * b - m) / (m * m * (m - 1))
        pos = var > 0
        sd = np.sqrt(np.where(pos, var, 0.0))
        low[big] = np.where(pos, np.ceil(mean - 1.96 * sd), -np.inf)
        high[big] = np.where(pos, np.floor(mean + 1.96 * sd), np.inf)
    return low, high


class _Window:
    """Counts of zone points among the last ``m`` charted points (the k-of-m rules)."""

    def __init__(self, size: int, k: int, m: int) -> None:
        self.k, self.m = k, m
        self.hi = np.zeros((size, m), dtype=np.int8)
        self.lo = np.zeros((size, m), dtype=np.int8)
        self.count = 0

    def push(self, hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add one point; flags (up, down): the point is in the zone and its window qualifies."""
        slot = self.count % self.m
        self.hi[:, slot] = hi
        self.lo[:, slot] = lo
        self.count += 1
        if self.count < self.m:
            false = np.zeros(hi.shape, dtype=bool)
            return false, false
        return hi & (self.hi.sum(axis=1) >= self.k), lo & (self.lo.sum(axis=1) >= self.k)


def _first_detection(
    y: np.ndarray, n: np.ndarray, B: int, chart: str, rules: str, direction: int
) -> tuple[np.ndarray, np.ndarray]:
    """First period after the change at which the rules signal it, per simulated series.

    Returns
    -------
    first : ndarray of int
        1..H, or 0 when no signal within the horizon.
    stable : ndarray of bool
        The baseline alone (points 1..B charted on their own) gives no signal.
    """
    S, T = y.shape
    lim = _limits(y, n, B, chart)
    lr_max, cr_min = _runs_table(T)
    skip_tie_runs = rules in ("anhoej", "ihi")
    trend_k = {"ihi": 5, "mdc": 7}.get(rules)
    side_k = {"ihi": 6, "mdc": 7, "western_electric": 8}.get(rules)
    windows: list[tuple[_Window, str]] = []
    if rules == "mdc":
        windows = [(_Window(S, 2, 3), "2")]
    elif rules == "western_electric":
        windows = [(_Window(S, 2, 3), "2"), (_Window(S, 4, 5), "1")]

    # state of every series
    n_useful = np.zeros(S, dtype=np.int64)
    above = np.zeros(S, dtype=np.int64)
    crossings = np.zeros(S, dtype=np.int64)
    run_side = np.zeros(S)  # current run of useful points (ties skipped)
    run_len = np.zeros(S, dtype=np.int64)
    longest = np.zeros(S, dtype=np.int64)
    tb_side = np.full(S, np.nan)  # current run of charted points, ties breaking it
    tb_len = np.zeros(S, dtype=np.int64)
    last = np.full(S, np.nan)  # last value seen by the trend rule
    tr_dir = np.zeros(S)
    tr_len = np.zeros(S, dtype=np.int64)

    point_signal = np.zeros(S, dtype=bool)  # a point rule fired on the baseline alone
    part = np.zeros(S, dtype=bool)
    first = np.zeros(S, dtype=np.int64)
    stable = np.ones(S, dtype=bool)
    for j in range(T):
        yj = y[:, j]
        charted = ~np.isnan(yj)
        up = np.zeros(S, dtype=bool)  # point rules firing at this point, by direction
        down = np.zeros(S, dtype=bool)
        long_up = np.zeros(S, dtype=bool)  # Anhøj's long run (its limit grows with the chart)
        long_down = np.zeros(S, dtype=bool)
        if charted.any():
            cl, sigma = lim["cl"][:, j], lim["sigma"][:, j]
            with np.errstate(invalid="ignore"):
                side = np.sign(yj - cl)
                hi3, lo3 = yj > lim["ucl"][:, j], yj < lim["lcl"][:, j]
                hi2, lo2 = yj > lim["ucl95"][:, j], yj < lim["lcl95"][:, j]
                hi1, lo1 = yj > cl + sigma, yj < cl - sigma
            up |= hi3 & charted
            down |= lo3 & charted

            # runs of useful points (not on the centre line), ties skipped: Anhøj and IHI
            useful = charted & (side != 0)
            if skip_tie_runs:
                same = useful & (side == run_side)
                new = useful & ~same
                crossings += (new & (run_side != 0)).astype(np.int64)
                run_len = np.where(same, run_len + 1, np.where(new, 1, run_len))
                run_side = np.where(new, side, run_side)
                n_useful += useful
                above += useful & (side > 0)
                longest = np.maximum(longest, run_len)
                if rules == "anhoej":
                    long_run = useful & (run_len > lr_max[n_useful])
                    long_up, long_down = long_run & (side > 0), long_run & (side < 0)
                else:
                    shift = useful & (run_len >= side_k)
                    up |= shift & (side > 0)
                    down |= shift & (side < 0)
            else:  # runs of charted points; a point on the centre line breaks the run
                same = charted & (side == tb_side)
                tb_len = np.where(same, tb_len + 1, np.where(charted, 1, tb_len))
                tb_side = np.where(charted, side, tb_side)
                shift = charted & (side != 0) & (tb_len >= side_k)
                up |= shift & (side > 0)
                down |= shift & (side < 0)

            if trend_k is not None:
                with np.errstate(invalid="ignore"):
                    step = np.sign(yj - last)  # NaN for the first point
                # IHI skips like values; Making Data Count lets a tie end the trend
                moved = charted & (step != 0) if rules == "ihi" else charted.copy()
                go = moved & ~np.isnan(step)
                cont = go & (step == tr_dir)
                tr_len = np.where(cont, tr_len + 1, np.where(go, 1, tr_len))
                tr_dir = np.where(go, step, tr_dir)
                start = moved & np.isnan(step)
                tr_len = np.where(start, 0, tr_len)
                tr_dir = np.where(start, 0, tr_dir)
                last = np.where(moved, yj, last)
                trend = go & (tr_dir != 0) & (tr_len >= trend_k - 1)
                up |= trend & (tr_dir > 0)
                down |= trend & (tr_dir < 0)

            if charted.all():  # k-of-m windows run over charted points
                for window, zone in windows:
                    zhi, zlo = (hi2, lo2) if zone == "2" else (hi1, lo1)
                    wu, wd = window.push(zhi, zlo)
                    up |= wu
                    down |= wd

            # part rules without a direction, on the chart of the points so far
            if rules == "anhoej":
                part = (n_useful > 0) & (crossings < cr_min[n_useful])
            elif rules == "ihi":
                low, high = _ihi_bounds(n_useful, above)
                runs = np.where(n_useful > 0, crossings + 1, 0)
                part = (runs < low) | (runs > high)

        if j < B:
            point_signal |= up | down
            if j == B - 1:
                long_base = (
                    (n_useful > 0) & (longest > lr_max[n_useful])
                    if rules == "anhoej"
                    else np.zeros(S, dtype=bool)
                )
                stable = ~(point_signal | part | long_base)
            continue
        up |= long_up
        down |= long_down
        hit = (up if direction > 0 else down) | part
        first = np.where((first == 0) & hit, j - B + 1, first)
    return first, stable


def _run(
    baseline,
    denominators,
    effect,
    chart,
    rules,
    sims,
    seed,
    horizon,
    relative,
    sd,
    baseline_periods,
) -> tuple[dict, pd.DataFrame, int, int]:
    """Simulate until ``sims`` series with a stable baseline (what both public functions ask).

    Returns the setup (levels, sigma, baseline length), the detection curve (see
    :func:`detection_curve`), the number of series used and the number discarded because their
    baseline signalled on its own.
    """
    setup = _setup(
        baseline, denominators, effect, chart, rules, sims, horizon, relative, sd, baseline_periods
    )
    rng = np.random.default_rng(seed)
    kept: list[np.ndarray] = []
    have, discarded = 0, 0
    for _ in range(_MAX_ROUNDS):
        need = sims - have
        size = max(need + need // 4 + 8, 16)
        y = _simulate(setup, size, rng)
        first, stable = _first_detection(
            y, setup["n"], setup["B"], chart, rules, setup["direction"]
        )
        take = np.flatnonzero(stable)[:need]
        considered = int(take[-1]) + 1 if take.size == need else size
        discarded += considered - take.size
        kept.append(first[take])
        have += take.size
        if have >= sims:
            break
    firsts = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
    return setup, _curve(firsts, horizon), int(firsts.size), discarded


def _curve(firsts: np.ndarray, horizon: int) -> pd.DataFrame:
    periods = np.arange(1, horizon + 1)
    m = firsts.size
    if m == 0:
        prob = np.full(horizon, np.nan)
    else:
        seen = np.bincount(firsts, minlength=horizon + 1)[1:]
        prob = np.cumsum(seen) / m
    with np.errstate(invalid="ignore"):
        se = np.sqrt(prob * (1 - prob) / m) if m else np.full(horizon, np.nan)
    return pd.DataFrame({"period": periods, "probability": prob, "se": se})


def detection_curve(
    baseline: float | np.ndarray,
    denominators: np.ndarray | None,
    effect: float,
    chart: str = "p",
    rules: str = "anhoej",
    sims: int = 1000,
    seed: int = 0,
    *,
    horizon: int = 52,
    relative: bool = True,
    sd: float | None = None,
    baseline_periods: int | None = None,
) -> pd.DataFrame:
    """Probability that a change has been signalled, 1, 2, ... periods after it starts.

    Parameters are those of :func:`periods_to_detect` (without ``power``).

    Returns
    -------
    DataFrame
        One row per period after the change, ``period`` = 1..``horizon``:
        ``probability`` (share of simulated series whose chart has signalled the change by that
        period) and ``se`` (its Monte Carlo standard error, sqrt(p (1 - p) / sims)).
    """
    _, curve, _, _ = _run(
        baseline, denominators, effect, chart, rules, sims, seed, horizon, relative, sd,
        baseline_periods,
    )  # fmt: skip
    return curve


def periods_to_detect(
    baseline: float | np.ndarray,
    denominators: np.ndarray | None,
    effect: float,
    chart: str = "p",
    rules: str = "anhoej",
    power: float = 0.8,
    sims: int = 1000,
    seed: int = 0,
    *,
    horizon: int = 52,
    relative: bool = True,
    sd: float | None = None,
    baseline_periods: int | None = None,
) -> pd.DataFrame:
    """How many periods after a change the chart signals it, with probability ``power``.

    Parameters
    ----------
    baseline : float or array of float
        The baseline level: a proportion (p chart), a rate per unit of denominator (u chart) or a
        mean (i chart); or the baseline's values, one per period (for p and u charts weighted by
        the denominators; for an i chart their mean and moving-range sigma are used, as
        :func:`qi_helpers.spc.qic` estimates them).
    denominators : array of float or None
        Cases (p) or exposure (u) in each baseline period; periods after the change repeat them
        in turn. Their number is the number of baseline periods unless ``baseline_periods`` is
        given. Not used by an i chart (may be None).
    effect : float
        Size of the change: relative (``0.2`` = the level rises by 20%, ``-0.2`` = falls by 20%),
        or absolute on the scale of ``baseline`` when ``relative=False``. A proportion is kept
        within [0, 1].
    chart : {"p", "u", "i"}
        Chart type. Simulated as binomial counts of n cases (p), Poisson counts of rate x exposure
        (u), normal values with the baseline's sigma (i).
    rules : {"anhoej", "ihi", "mdc", "western_electric"}
        Rule set, as :func:`qi_helpers.spc.signals`.
    power : float
        The detection probability wanted, in (0, 1).
    sims : int
        Simulated series with a stable baseline (the Monte Carlo error of a probability p is
        sqrt(p (1 - p) / sims): 0.013 at p = 0.8 with 1000 series).
    seed : int
        Seed of the random generator; the same inputs and seed give the same answer.
    horizon : int, keyword-only
        Periods after the change that are simulated; a change not signalled with probability
        ``power`` within them gives ``periods = <NA>``.
    relative : bool, keyword-only
        Whether ``effect`` is relative (default) or absolute.
    sd : float, keyword-only, optional
        The process standard deviation of an i chart whose ``baseline`` is a single mean.
    baseline_periods : int, keyword-only, optional
        Number of baseline periods when it is not the number of denominators or baseline values.

    Returns
    -------
    DataFrame
        One row:

        - ``periods``: periods after the change until the chart signals it with probability
          ``power`` (nullable integer; ``<NA>`` when not within the horizon);
        - ``within_horizon``: whether it does so within ``horizon`` periods;
        - ``probability``, ``se``: the simulated probability of a signal by ``periods`` (by
          ``horizon`` when not within it) and its Monte Carlo standard error;
        - ``power``, ``horizon``, ``effect``, ``chart``, ``rules``: the question asked;
        - ``baseline_rate``, ``changed_rate``: the level before and after the change (proportion,
          rate per unit of denominator, or mean); ``sigma``: the i chart's process sd (NaN
          otherwise);
        - ``baseline_periods``: baseline length; ``sims``: simulated series used;
          ``discarded``: simulated series left out because their baseline already signalled.

    Raises
    ------
    ConfigError
        Unknown chart or rule set, bad ``power``, ``sims`` or ``horizon``.
    DataError
        Impossible baseline or denominators (a proportion outside [0, 1], a p chart's
        fractional denominators, an i chart without a spread).

    Notes
    -----
    Each simulated series has ``B`` baseline periods at the baseline level followed by
    ``horizon`` periods at the changed level. Its chart has centre line and limits frozen at the
    baseline (``qic(freeze=B)``), estimated from the simulated baseline itself, so the
    uncertainty of the limits is part of the answer. The change counts as detected at period t
    when the chart of the baseline and the first t periods after the change has

    - a point after the change flagged by a point rule of the set in the direction of the change
      (beyond a limit, in a long run or shift, in a trend, or in a k-of-m zone window on that
      side), or
    - a part rule without a direction firing (Anhøj: too few crossings of the centre line; IHI:
      too few or too many runs).

    Series whose baseline signals on its own are left out and replaced by new draws: a
    candidate with such a baseline would not be chosen as a pilot, and its chart would need a
    new baseline first. The answer is the first t at which the share of series detected by t
    reaches ``power``.

    The approach follows the average-run-length studies of control chart rules (Montgomery
    2009, 5.3; Anhøj & Olesen 2014, PLoS ONE 9(11): e113825; Anhøj & Wentzel-Larsen 2018, BMC
    Med Res Methodol 18:100), asked the way a team needs it: "how long until we would see it?".

    Examples
    --------
    >>> res = periods_to_detect(0.65, [25] * 26, 0.2, "p", "anhoej", sims=200, seed=1)
    >>> int(res["periods"].iloc[0]) > 0
    True
    """
    if not isinstance(power, float | int) or not 0 < power < 1:
        raise ConfigError(f"periods_to_detect: power must be between 0 and 1; got {power!r}.")
    setup, curve, used, discarded = _run(
        baseline, denominators, effect, chart, rules, sims, seed, horizon, relative, sd,
        baseline_periods,
    )  # fmt: skip
    reached = np.flatnonzero(curve["probability"].to_numpy() >= power)
    within = reached.size > 0
    at = int(reached[0]) if within else horizon - 1
    return pd.DataFrame(
        {
            "periods": pd.array([at + 1 if within else pd.NA], dtype="Int64"),
            "within_horizon": [within],
            "probability": [float(curve["probability"].iloc[at])],
            "se": [float(curve["se"].iloc[at])],
            "power": [float(power)],
            "horizon": [int(horizon)],
            "effect": [float(effect)],
            "chart": [chart],
            "rules": [rules],
            "baseline_rate": [setup["rate"]],
            "changed_rate": [setup["changed"]],
            "sigma": [setup["sigma"]],
            "baseline_periods": [setup["B"]],
            "sims": [used],
            "discarded": [int(discarded)],
        }
    )
