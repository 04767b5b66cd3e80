"""How soon would a chart see a change? Time to detect, by Monte Carlo simulation.

Before a team tests a change it helps to know how many periods of data the chart needs before a
change of a given size shows up as a special cause. :func:`periods_to_detect` answers that for a
p, u or i chart with a frozen baseline and any rule set of :func:`qi_helpers.spc.rules.signals`:
it simulates many series (baseline, then the changed process), charts each one period at a time
as an analyst would, and records the first period after the change at which the rules signal it.
:func:`detection_curve` gives the whole curve: the probability that the change has been seen
after 1, 2, ... periods.

The simulation runs over all simulated series at once, one period at a time, carrying the state
of every rule (current run, trend, window of zone points, crossings) forward
(:class:`qi_helpers.spc.sequential.RuleState`), so it reproduces the verdict rule
(:func:`qi_helpers.spc.after_baseline.signals_after_baseline` on ``qic(freeze=...)``) on every
truncated series without charting them one by one (``tests/spc/test_detection.py`` checks that,
series by series, against the brute force).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qi_helpers.errors import ConfigError, DataError
from qi_helpers.spc.limits import frozen_limits, screened_sigma
from qi_helpers.spc.rules import RULE_SETS
from qi_helpers.spc.sequential import RuleState

__all__ = ["DETECTION_CHARTS", "detection_curve", "periods_to_detect"]

#: Chart types :func:`periods_to_detect` can simulate.
DETECTION_CHARTS: tuple[str, ...] = ("p", "u", "i")

_MAX_ROUNDS = 12  # batches of simulations drawn to replace baselines that signal on their own


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def _check_options(chart: str, rules: str, sims: int, horizon: int, effect: float) -> None:
    """Refuse an unknown chart or rule set, a bad ``sims`` or ``horizon``, a non-finite effect."""
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


def _denominators(denominators: np.ndarray | None) -> np.ndarray | None:
    """The denominators as a flat array of finite numbers of 0 or more (None when not given)."""
    if denominators is None:
        return None
    den = np.asarray(denominators, dtype=float).ravel()
    if den.size == 0 or np.any(~np.isfinite(den)) or np.any(den < 0):
        raise DataError(
            "periods_to_detect: denominators must be a non-empty list of finite numbers of 0 "
            f"or more; got {denominators!r}."
        )
    return den


def _baseline_values(baseline: float | np.ndarray) -> tuple[np.ndarray, bool]:
    """The baseline as an array, and whether it is a series of values (not a single level)."""
    base = np.asarray(baseline, dtype=float)
    series = base.ndim > 0
    if series:
        base = base.ravel()
        if base.size < 2 or np.isnan(base).all():
            raise DataError(
                f"periods_to_detect: a baseline series needs at least 2 values; got {base.size}."
            )
    return base, series


def _ratio_baseline(
    chart: str,
    base: np.ndarray,
    series: bool,
    den: np.ndarray | None,
    baseline_periods: int | None,
) -> tuple[float, int | None]:
    """A p or u chart's baseline rate (weighted by the denominators) and number of periods."""
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
                f"periods_to_detect: a p chart's baseline is a proportion in [0, 1]; got {rate!r}."
            )
    elif not rate >= 0:
        raise DataError(f"periods_to_detect: a u chart's rate must be 0 or more; got {rate!r}.")
    if not np.any(den > 0):
        raise DataError("periods_to_detect: every denominator is 0; there is nothing to chart.")
    return rate, baseline_periods or den.size


def _mean_baseline(
    base: np.ndarray,
    series: bool,
    den: np.ndarray | None,
    sd: float | None,
    baseline_periods: int | None,
) -> tuple[float, float, int | None]:
    """An i chart's baseline mean, process sd (as qic estimates it) and number of periods."""
    if series:
        rate = float(np.nanmean(base))
        sigma = float(sd) if sd is not None else screened_sigma(base)
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
    return rate, sigma, n_base


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
    _check_options(chart, rules, sims, horizon, effect)
    den = _denominators(denominators)
    base, series = _baseline_values(baseline)
    if chart in ("p", "u"):
        rate, n_base = _ratio_baseline(chart, base, series, den, baseline_periods)
        sigma = float("nan")
    else:
        rate, sigma, n_base = _mean_baseline(base, series, den, sd, baseline_periods)
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
    lim = frozen_limits(y, n, B, chart)
    state = RuleState.start(S, rules, T)
    point_signal = np.zeros(S, dtype=bool)  # a point rule fired on the baseline alone
    first = np.zeros(S, dtype=np.int64)
    stable = np.ones(S, dtype=bool)
    for j in range(T):
        up, down, long_up, long_down = state.step(y[:, j], lim, j)
        if j < B:
            point_signal |= up | down
            if j == B - 1:
                stable = ~(point_signal | state.part | state.long_run())
                # the verdict's rule: the points after the change are judged alone
                state = RuleState.start(S, rules, T - B)
            continue
        up |= long_up
        down |= long_down
        hit = (up if direction > 0 else down) | state.part
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
        :func:`qi_helpers.spc.qic.qic` estimates them).
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
        Rule set, as :func:`qi_helpers.spc.rules.signals`.
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
    by the rule of a verdict (:func:`qi_helpers.spc.after_baseline.signals_after_baseline`):
    the first t periods after the change, judged alone against the frozen limits (every rule,
    the runs analysis included, starts afresh at the change, so a run that began in the
    baseline does not count), have

    - a point flagged by a point rule of the set in the direction of the change (beyond a
      limit, in a long run or shift, in a trend, or in a k-of-m zone window on that side), or
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
