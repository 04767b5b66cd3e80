"""Rule sets for run and control charts beyond the Anhøj runs analysis, and point types.

:func:`signals` applies one of four rule sets to a :func:`qi_helpers.spc.qic.qic` result and
returns per-point flags and point types, a per-part summary and per-series icons
(:class:`Signals`); :func:`point_types` is the short form the rest of the project uses.
:func:`ihi_run_bounds` gives the bounds of the IHI run chart rule on the number of runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from qi_helpers.errors import SPCError
from qi_helpers.spc.patterns import (
    astronomical,
    group_ids,
    k_of_m,
    run_lengths,
    side_runs,
    trend,
    two_of_three_mdc,
)

__all__ = ["POINT_TYPES", "RULE_SETS", "Signals", "ihi_run_bounds", "point_types", "signals"]

# --------------------------------------------------------------------------------------------
# Rule sets applied to a qic() result
# --------------------------------------------------------------------------------------------

#: Rule sets known to :func:`signals`.
RULE_SETS: tuple[str, ...] = ("anhoej", "ihi", "mdc", "western_electric")

#: Point types, as NHS Making Data Count names them.
POINT_TYPES: tuple[str, ...] = (
    "special_cause_improvement",
    "special_cause_concern",
    "special_cause_neutral",
    "common_cause",
)

# Perla, Provost & Murray (2011), Table 1 (after Swed & Eisenhart 1943): for n useful observations
# (points not on the median), fewer runs than the first number are too few, more than the second
# too many. Beyond 40 the Swed-Eisenhart normal approximation is used (it gives 15..27 at 40).
_IHI_RUNS = {
    10: (3, 9), 11: (3, 10), 12: (3, 11), 13: (4, 11), 14: (4, 12), 15: (5, 12), 16: (5, 13),
    17: (5, 13), 18: (6, 14), 19: (6, 15), 20: (6, 16), 21: (7, 16), 22: (7, 17), 23: (7, 17),
    24: (8, 18), 25: (8, 18), 26: (9, 19), 27: (9, 20), 28: (10, 20), 29: (10, 21),
    30: (11, 22), 31: (11, 22), 32: (11, 23), 33: (11, 24), 34: (12, 24), 35: (12, 25),
    36: (13, 25), 37: (13, 26), 38: (14, 26), 39: (14, 27), 40: (15, 27),
}  # fmt: skip
_REQUIRED = ("x", "facet1", "facet2", "part", "y", "cl", "ucl", "lcl", "ucl_95", "lcl_95")
_REQUIRED += ("include",)


@dataclass
class Signals:
    """The result of :func:`signals`.

    Attributes
    ----------
    rules : str
        The rule set applied.
    improvement : str or None
        ``"up"``, ``"down"`` or ``None`` (no preferred direction).
    points : DataFrame
        One row per row of the :func:`qic` result, in the same order and with the same index:
        ``x, facet1, facet2, part, y, cl``, one boolean column per point rule of the set,
        ``signal`` (any point rule fired), ``direction`` (``"high"``, ``"low"`` or ``None``) and
        ``point_type`` (one of :data:`POINT_TYPES`).
    parts : DataFrame
        One row per facet and part: ``facet1, facet2, part, n_points`` (included points with a
        value), the number of points flagged by each point rule, the part-level rules of the set
        (booleans) and ``signal`` (any rule fired in the part).
    series : DataFrame
        One row per facet: ``facet1, facet2, last_x, last_point_type``, ``variation`` (the NHS
        variation icon of the last included point, common cause when its value is missing:
        ``common_cause``, ``improvement_high``,
        ``improvement_low``, ``concern_high``, ``concern_low``, ``neutral_high``,
        ``neutral_low``) and ``assurance`` (``consistent_pass``, ``consistent_fail``,
        ``inconsistent``, or ``None`` without a target, limits or improvement direction).
    """

    rules: str
    improvement: str | None
    points: pd.DataFrame
    parts: pd.DataFrame
    series: pd.DataFrame


def ihi_run_bounds(n_useful: np.ndarray, above: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on the number of runs of the IHI run chart rules (Perla, Provost & Murray 2011).

    Parameters
    ----------
    n_useful : ndarray of int
        Useful observations (points not on the median) of each chart or part.
    above : ndarray of int
        How many of them lie above the median.

    Returns
    -------
    low, high : ndarray
        Fewer runs than ``low`` or more than ``high`` signal: Perla's Table 1 for 10 to 40 useful
        observations, the Swed-Eisenhart normal approximation beyond; ``-inf`` and ``inf``
        (no signal) below 10 or where the approximation has no spread.
    """
    n = np.asarray(n_useful)
    low = np.full(n.shape, -np.inf)
    high = np.full(n.shape, np.inf)
    for size, (lo, hi) in _IHI_RUNS.items():
        at = n == size
        low[at], high[at] = lo, hi
    big = n > 40
    if big.any():
        a = np.asarray(above)[big].astype(float)
        m = n[big].astype(float)
        b = m - a
        mean = 1 + 2 * a * b / m
        var = 2 * a * b * (2 * a * b - m) / (m * m * (m - 1))
        pos = var > 0
        sd = np.sqrt(np.where(pos, var, 0.0))
        low[big] = np.where(pos, np.ceil(mean - 1.96 * sd), -np.inf)
        high[big] = np.where(pos, np.floor(mean + 1.96 * sd), np.inf)
    return low, high


def _ihi_runs(y: np.ndarray, cl: np.ndarray, ok: np.ndarray, gid: np.ndarray) -> dict:
    """Too few / too many runs per part from Perla (2011) Table 1 (normal approximation > 40).

    Runs are counted over the included points not on the median.
    """
    with np.errstate(invalid="ignore"):
        side = np.sign(y - cl)
    idx = np.flatnonzero(ok & (side != 0) & ~np.isnan(side))
    g, sd = gid[idx], side[idx]
    ng = int(gid.max()) + 1 if gid.size else 0
    new = np.r_[True, (sd[1:] != sd[:-1]) | (g[1:] != g[:-1])] if idx.size else np.zeros(0, bool)
    runs = np.bincount(g[new], minlength=ng)
    n_useful = np.bincount(g, minlength=ng)
    above = np.bincount(g[sd > 0], minlength=ng)
    low, high = ihi_run_bounds(n_useful, above)
    return {"too_few_runs": (runs < low)[gid], "too_many_runs": (runs > high)[gid]}


def _point_rules(
    res: pd.DataFrame, rules: str, gid: np.ndarray
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, np.ndarray]]:
    """Point rules (flag, direction) and part rules (per-point copies of the part flag)."""
    y = res["y"].to_numpy(dtype=float)
    cl = res["cl"].to_numpy(dtype=float)
    ucl = res["ucl"].to_numpy(dtype=float)
    lcl = res["lcl"].to_numpy(dtype=float)
    ucl95 = res["ucl_95"].to_numpy(dtype=float)
    lcl95 = res["lcl_95"].to_numpy(dtype=float)
    ok = res["include"].to_numpy(dtype=bool) & ~np.isnan(y)
    with np.errstate(invalid="ignore"):
        above3, below3 = ok & (y > ucl), ok & (y < lcl)
        above2, below2 = ok & (y > ucl95), ok & (y < lcl95)
        sigma = ucl - ucl95  # one sigma, from the upper side (never truncated)
        above1, below1 = ok & (y > cl + sigma), ok & (y < cl - sigma)
    outside = (above3 | below3, np.where(above3, 1.0, np.where(below3, -1.0, 0.0)))

    def pair(k: int, m: int, hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fh, fl = k_of_m(hi, ok, gid, k, m), k_of_m(lo, ok, gid, k, m)
        return fh | fl, np.where(fh, 1.0, np.where(fl, -1.0, 0.0))

    point: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    part: dict[str, np.ndarray] = {}
    if rules == "anhoej":
        # Anhøj & Olesen 2014: runs longer than round(log2(n_useful) + 3) (points on the centre
        # line skipped); the crossings rule and runs_signal are part-level.
        lr_max = res["longest_run_max"].to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            side = np.sign(y - cl)
        use = ok & (side != 0)
        idx = np.flatnonzero(use)
        lens, _ = run_lengths(side[idx], gid[idx])
        flag = np.zeros(len(y), dtype=bool)
        flag[idx[lens > lr_max[idx]]] = True
        # Moving ranges are autocorrelated: qicharts2 reports the runs figures of an MR chart
        # but never signals on them, and neither do its runs rules here.
        runs_apply = res.attrs.get("qic", {}).get("chart") != "mr"
        flag &= runs_apply
        point["sigma"] = outside
        point["long_run"] = (flag, np.where(flag, side, 0.0))
        ncr = res["n_crossings"].to_numpy(dtype=float, na_value=np.nan)
        ncr_min = res["n_crossings_min"].to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            part["few_crossings"] = (ncr < ncr_min) & runs_apply
        part["runs_signal"] = res["runs_signal"].to_numpy(dtype=bool)
    elif rules == "ihi":
        # Perla, Provost & Murray 2011: shift of 6+ on one side of the median (points on the
        # median skipped), trend of 5+ (like values skipped), runs table, astronomical point.
        point["shift"] = side_runs(y, cl, ok, gid, 6, skip_ties=True)
        point["trend"] = trend(y, ok, gid, 5, skip_ties=True)
        point["astronomical"] = astronomical(y, cl, ucl, lcl, ok, gid)
        part.update(_ihi_runs(y, cl, ok, gid))
    elif rules == "mdc":
        # NHS England Making Data Count (2019), as in NHSRplotthedots 0.2.2, in its order of
        # precedence: a point outside the limits, 7 points in a row all increasing or all
        # decreasing, 2 of 3 points in a row in the near zone (2 to 3 sigma) with all 3 on the
        # same side of the mean, 7 points in a row on one side of the mean.
        # A missing value breaks a trend, a shift and a two of three.
        rows = res["include"].to_numpy(dtype=bool)
        point["outside_limits"] = outside
        point["trend"] = trend(y, rows, gid, 7, skip_ties=False, missing_breaks=True)
        point["two_of_three"] = two_of_three_mdc(
            y, cl, rows, gid, (above2, below2), (above3, below3)
        )
        point["shift"] = side_runs(y, cl, rows, gid, 7, skip_ties=False, missing_breaks=True)
    elif rules == "western_electric":
        # Western Electric Statistical Quality Control Handbook (1956); Montgomery 2009, 5.3.6.
        point["beyond_3sigma"] = outside
        point["two_of_three_2sigma"] = pair(2, 3, above2, below2)
        point["four_of_five_1sigma"] = pair(4, 5, above1, below1)
        point["eight_one_side"] = side_runs(y, cl, ok, gid, 8, skip_ties=False)
    return point, part


def _classify(signal: np.ndarray, direction: np.ndarray, improvement: str | None) -> np.ndarray:
    good = 1.0 if improvement == "up" else -1.0
    out = np.full(signal.shape, "common_cause", dtype=object)
    if improvement is None:
        out[signal] = "special_cause_neutral"
    else:
        out[signal & (direction == good)] = "special_cause_improvement"
        out[signal & (direction == -good)] = "special_cause_concern"
        out[signal & (direction == 0)] = "special_cause_neutral"
    return out


def _check(result: pd.DataFrame, rules: str, improvement: str | None) -> None:
    if not isinstance(result, pd.DataFrame):
        raise SPCError(f"signals() needs the DataFrame returned by qic(); got {type(result)}.")
    missing = [c for c in _REQUIRED if c not in result.columns]
    if missing:
        raise SPCError(f"signals() needs a qic() result; columns missing: {missing}.")
    if rules not in RULE_SETS:
        raise SPCError(f"Unknown rule set {rules!r}; choose one of {RULE_SETS}.")
    if improvement not in ("up", "down", None):
        raise SPCError(f"improvement must be 'up', 'down' or None; got {improvement!r}.")


def signals(
    result: pd.DataFrame,
    rules: str = "anhoej",
    improvement: str | None = None,
    target: float | None = None,
) -> Signals:
    """Apply a rule set to a :func:`qi_helpers.spc.qic.qic` result, without changing it.

    Rules are evaluated within each facet and part, over the included points with a value.

    Parameters
    ----------
    result : DataFrame
        The output of :func:`~qi_helpers.spc.qic.qic` (rows sorted by facet then x, as returned).
    rules : {"anhoej", "ihi", "mdc", "western_electric"}
        The rule set:

        - ``anhoej``: point rules ``sigma`` (outside the 3-sigma limits) and ``long_run`` (in a
          run longer than ``longest_run_max``); part rules ``runs_signal`` and
          ``few_crossings``;
        - ``ihi`` (Perla, Provost & Murray 2011): ``shift`` (6 or more points on one side of
          the median; points on the median skipped), ``trend`` (5 or more points all going up
          or all going down; like values skipped), ``astronomical`` (outside the control
          limits; on a run chart, outside median +- 2.66 x the average moving range, an
          operational stand-in for "obviously different"); part rules ``too_few_runs`` and
          ``too_many_runs`` from Perla's Table 1;
        - ``mdc`` (NHS England, Making Data Count 2019, as NHSRplotthedots 0.2.2):
          ``outside_limits``, ``trend`` (7 in a row all increasing or all decreasing; a tie
          ends it), ``two_of_three`` (2 of 3 in a row between 2 and 3 sigma, all 3 on the same
          side of the mean), ``shift`` (7 in a row on one side of the mean);
        - ``western_electric`` (1956; Montgomery 2009, 5.3.6): ``beyond_3sigma``,
          ``two_of_three_2sigma``, ``four_of_five_1sigma`` and ``eight_one_side``. Sigma is
          ``ucl - ucl_95``; the lower zones use the (possibly truncated) lower limits.
    improvement : {"up", "down"} or None
        Which direction is better; ``None`` makes every special cause ``special_cause_neutral``.
    target : float, optional
        Target for the assurance icon, on the plotted scale; defaults to the result's
        ``target`` column.

    Returns
    -------
    Signals
        ``points`` (per-point flags, ``signal``, ``direction``, ``point_type``), ``parts``
        (per facet and part) and ``series`` (per facet: variation and assurance icons); see
        :class:`Signals` for every column.

    Notes
    -----
    A point's direction is ``high`` or ``low`` from the rules that flag it (the side of the
    centre line, or the direction of a trend); when they disagree, the side of the centre line.
    ``mdc`` follows NHSRplotthedots 0.2.2 instead: the first rule that flags a point, in the
    order outside limits, trend, two of three, shift, gives its direction (a rising trend below
    the mean is rising). A trend point takes the direction of the step after it when the next
    point is also in a trend, else of the step before it, so a peak shared by a rise and a fall
    is falling and a shared trough rising.

    ``mdc``'s two of three counts only the near zone, beyond 2 sigma and inside the limits (a
    point beyond a limit is left to ``outside_limits``), and needs all three points strictly on
    the same side of the mean; only the near-zone points are flagged. Its shift needs 7 points
    strictly on one side: a point on the mean (computed as an accurate mean, see
    :func:`qi_helpers.spc.qic.qic`) or a missing value breaks the run.

    On an MR chart (``qic(chart="mr")``) the Anhøj rules ``long_run`` and ``few_crossings`` never
    fire: moving ranges are autocorrelated, and qicharts2 never sets their runs signal.
    Assurance (Making Data Count): with improvement up, ``consistent_pass`` when the lower
    limit of the last point is above the target, ``consistent_fail`` when the upper limit is
    below it, else ``inconsistent``; mirrored for improvement down.
    """
    _check(result, rules, improvement)
    res = result
    gid = group_ids(res["facet1"], res["facet2"], res["part"])
    point, part = _point_rules(res, rules, gid)
    n = len(res)
    y = res["y"].to_numpy(dtype=float)
    cl = res["cl"].to_numpy(dtype=float)
    signal = np.zeros(n, dtype=bool)
    up = np.zeros(n, dtype=bool)
    down = np.zeros(n, dtype=bool)
    for flag, d in point.values():
        signal |= flag
        up |= flag & (d > 0)
        down |= flag & (d < 0)
    with np.errstate(invalid="ignore"):
        side = np.nan_to_num(np.sign(y - cl))
    direction = np.where(up & ~down, 1.0, np.where(down & ~up, -1.0, side))
    if rules == "mdc":  # the first rule that flags a point gives its direction
        first_dir = np.zeros(n)
        for flag, d in reversed(list(point.values())):
            first_dir = np.where(flag, d, first_dir)
        direction = first_dir
    direction = np.where(signal, direction, 0.0)
    pts = res[["x", "facet1", "facet2", "part", "y", "cl"]].copy()
    for name, (flag, _) in point.items():
        pts[name] = flag
    pts["signal"] = signal
    pts["direction"] = np.where(direction > 0, "high", np.where(direction < 0, "low", None))
    pts["point_type"] = _classify(signal, direction, improvement)

    ok = res["include"].to_numpy(dtype=bool) & ~np.isnan(y)
    g = pd.Series(gid)
    parts = res[["facet1", "facet2", "part"]].groupby(gid, sort=True).first()
    parts["n_points"] = pd.Series(ok).groupby(gid).sum().to_numpy()
    for name, (flag, _) in point.items():
        parts[name] = pd.Series(flag).groupby(gid).sum().to_numpy()
    any_part = np.zeros(len(parts), dtype=bool)
    first = np.unique(gid, return_index=True)[1]
    for name, flag in part.items():
        parts[name] = np.asarray(flag, dtype=bool)[first]
        any_part |= parts[name].to_numpy()
    parts["signal"] = pd.Series(signal).groupby(g).any().to_numpy() | any_part
    parts = parts.reset_index(drop=True)

    series = _series(res, pts, ok, improvement, target)
    return Signals(rules=rules, improvement=improvement, points=pts, parts=parts, series=series)


def _series(
    res: pd.DataFrame,
    pts: pd.DataFrame,
    ok: np.ndarray,
    improvement: str | None,
    target: float | None,
) -> pd.DataFrame:
    fid = group_ids(res["facet1"], res["facet2"])
    rows = []
    for f in np.unique(fid):
        sel = np.flatnonzero((fid == f) & ok)
        first = np.flatnonzero(fid == f)[0]
        row = {"facet1": res["facet1"].iloc[first], "facet2": res["facet2"].iloc[first]}
        if not sel.size:
            rows.append({**row, "last_x": None, "last_point_type": None, "variation": None,
                         "assurance": None})  # fmt: skip
            continue
        # the latest included row: a missing last value is common cause (Making Data Count,
        # as NHSRplotthedots 0.2.2 draws the icon of the point with the latest date)
        i = np.flatnonzero((fid == f) & res["include"].to_numpy(dtype=bool))[-1]
        ptype = pts["point_type"].iloc[i]
        side = pts["direction"].iloc[i]
        kind = {
            "special_cause_improvement": "improvement",
            "special_cause_concern": "concern",
            "special_cause_neutral": "neutral",
        }.get(ptype)
        variation = "common_cause" if kind is None else f"{kind}_{side}"
        t = target
        if t is None and "target" in res.columns:
            tv = res["target"].iloc[i]
            t = None if pd.isna(tv) else float(tv)
        rows.append(
            {
                **row,
                "last_x": res["x"].iloc[i],
                "last_point_type": ptype,
                "variation": variation,
                "assurance": _assurance(res["lcl"].iloc[i], res["ucl"].iloc[i], t, improvement),
            }
        )
    return pd.DataFrame(rows)


def _assurance(lcl: float, ucl: float, target: float | None, improvement: str | None) -> str | None:
    """Making Data Count assurance icon from the limits of the last point and the target."""
    if target is None or improvement is None or (pd.isna(lcl) and pd.isna(ucl)):
        return None
    lo = -np.inf if pd.isna(lcl) else lcl
    hi = np.inf if pd.isna(ucl) else ucl
    if improvement == "up":
        return (
            "consistent_pass"
            if lo > target
            else "consistent_fail"
            if hi < target
            else ("inconsistent")
        )
    return (
        "consistent_pass" if hi < target else "consistent_fail" if lo > target else ("inconsistent")
    )


def point_types(
    result: pd.DataFrame, rules: str = "mdc", improvement: str | None = None
) -> pd.Series:
    """The point type of every row of a :func:`qi_helpers.spc.qic.qic` result.

    Parameters
    ----------
    result : DataFrame
        The output of :func:`~qi_helpers.spc.qic.qic`.
    rules : {"anhoej", "ihi", "mdc", "western_electric"}
        Rule set, as :func:`signals`.
    improvement : {"up", "down"} or None
        Which direction is better.

    Returns
    -------
    Series
        Aligned with ``result`` (same index), named ``point_type``, with values
        ``special_cause_improvement``, ``special_cause_concern``, ``special_cause_neutral`` or
        ``common_cause``.
    """
    sig = signals(result, rules=rules, improvement=improvement)
    return sig.points["point_type"].rename("point_type")
