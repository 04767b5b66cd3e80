"""Point patterns of the rule sets: runs on one side, trends, k-of-m zone windows, limits.

Each function finds one pattern over the points of every facet and part at once (``gid``
numbers the consecutive blocks of a facet and part) and returns which points it flags and their
direction (+1 above or rising, -1 below or falling). :func:`qi_helpers.spc.rules.signals`
assembles them into its rule sets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "astronomical",
    "group_ids",
    "k_of_m",
    "run_lengths",
    "side_runs",
    "trend",
    "two_of_three_mdc",
]


def group_ids(*cols: pd.Series) -> np.ndarray:
    """Consecutive-block ids: a new block starts where any of the columns changes."""
    n = len(cols[0])
    change = np.zeros(n, dtype=bool)
    if n:
        change[0] = True
    for c in cols:
        v = c.astype(str).to_numpy()
        change[1:] |= v[1:] != v[:-1]
    return np.cumsum(change) - 1


def run_lengths(key: np.ndarray, grp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Length of the run each element belongs to (runs break where key or group changes)."""
    if key.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    new = np.r_[True, (key[1:] != key[:-1]) | (grp[1:] != grp[:-1])]
    rid = np.cumsum(new) - 1
    return np.bincount(rid)[rid], rid


def side_runs(
    y: np.ndarray,
    cl: np.ndarray,
    ok: np.ndarray,
    gid: np.ndarray,
    k: int,
    skip_ties: bool,
    missing_breaks: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Points in runs of ``k`` or more on one side of the centre line.

    ``skip_ties``: points on the line neither count nor break the run (Perla 2011; Anhøj 2014);
    otherwise they break it (Western Electric; Making Data Count). ``missing_breaks``: a
    missing value among the ``ok`` rows breaks the run (Making Data Count) instead of being
    skipped.
    """
    with np.errstate(invalid="ignore"):
        side = np.sign(y - cl)
    use = ok & (True if missing_breaks else ~np.isnan(side)) & ((side != 0) if skip_ties else True)
    idx = np.flatnonzero(use)
    lens, _ = run_lengths(side[idx], gid[idx])
    flag = np.zeros(y.shape, dtype=bool)
    hit = idx[(lens >= k) & (side[idx] != 0) & ~np.isnan(side[idx])]
    flag[hit] = True
    return flag, np.where(flag, side, 0)


def trend(
    y: np.ndarray,
    ok: np.ndarray,
    gid: np.ndarray,
    k: int,
    skip_ties: bool,
    missing_breaks: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Points in ``k`` or more consecutive points all increasing or all decreasing.

    ``skip_ties``: a point equal to the one before is ignored (Perla 2011); otherwise a tie ends
    the trend (Making Data Count). ``missing_breaks``: a missing value among the ``ok`` rows
    ends the trend instead of being skipped.
    """
    idx = np.flatnonzero(ok & (True if missing_breaks else ~np.isnan(y)))
    v, g = y[idx], gid[idx]
    if skip_ties and idx.size:
        keep = np.r_[True, (v[1:] != v[:-1]) | (g[1:] != g[:-1])]
        idx, v, g = idx[keep], v[keep], g[keep]
    flag = np.zeros(y.shape, dtype=bool)
    dirs = np.zeros(y.shape)
    if idx.size < 2:
        return flag, dirs
    d = np.r_[0.0, np.where(g[1:] == g[:-1], np.sign(np.diff(v)), 0.0)]
    lens, _ = run_lengths(d, g)
    long_ = (d != 0) & (lens >= k - 1)  # a trend of k points is k - 1 steps the same way
    end = long_  # the point a qualifying step arrives at
    start = np.r_[long_[1:], False]  # the point a qualifying step leaves
    hit = end | start
    flag[idx[hit]] = True
    # A trend point takes the direction of the step after it when the next point is also a trend
    # point, else of the step before it: a peak shared by a rise and the following fall is a
    # falling point, a shared trough a rising one (NHSRplotthedots 0.2.2). A tie before the next
    # trend point (possible only when ties end trends) reads as falling, as there.
    d_next = np.r_[d[1:], 0.0]
    next_in_trend = np.r_[hit[1:] & (g[1:] == g[:-1]), False]
    step_dir = np.where(next_in_trend, np.where(d_next == 0, -1.0, d_next), d)
    dirs[idx[hit]] = step_dir[hit]
    return flag, dirs


def k_of_m(
    beyond: np.ndarray,
    ok: np.ndarray,
    gid: np.ndarray,
    k: int,
    m: int,
    within: np.ndarray | None = None,
) -> np.ndarray:
    """Points beyond a zone that lie in a window of ``m`` consecutive points with ``k`` beyond.

    ``within``: when given, a window counts only when all its ``m`` points are ``within`` (the
    Making Data Count rule: all three points strictly on the same side of the mean).
    """
    idx = np.flatnonzero(ok)
    b, g = beyond[idx].astype(np.int64), gid[idx]
    flag = np.zeros(beyond.shape, dtype=bool)
    if idx.size < k:
        return flag
    cs = np.r_[0, np.cumsum(b)]
    pos = np.arange(idx.size)
    lo = pos - m + 1
    inside = (lo >= 0) & (g[np.maximum(lo, 0)] == g)
    count = cs[pos + 1] - cs[np.maximum(lo, 0)]
    qual = inside & (count >= k)  # windows ending at pos
    if within is not None:
        ws = np.r_[0, np.cumsum(within[idx].astype(np.int64))]
        qual &= ws[pos + 1] - ws[np.maximum(lo, 0)] == m
    hit = np.zeros(idx.size, dtype=bool)
    for j in range(m):  # a point belongs to the windows ending 0..m-1 places after it
        hit[: idx.size - j] |= qual[j:]
    flag[idx[hit & (b == 1)]] = True
    return flag


def two_of_three_mdc(
    y: np.ndarray,
    cl: np.ndarray,
    rows: np.ndarray,
    gid: np.ndarray,
    beyond2: tuple[np.ndarray, np.ndarray],
    beyond3: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Making Data Count's two of three: 2 of 3 points in a row in the near zone, all 3 on one side.

    The near zone lies beyond 2 sigma but inside the process limits: a point beyond a limit is
    left to the outside-limits rule and does not count towards the two (NHSRplotthedots issue
    #153). The third point must lie strictly on the same side of the mean; a point on the mean, a
    missing value or a point across the mean breaks the pattern (issues #143, #194). Only the
    near-zone points are flagged. ``rows`` are the rows the windows run over (included points;
    a missing value among them breaks a window); ``beyond2`` and ``beyond3`` are the points
    above and below the 2-sigma lines and the limits.
    """
    (above2, below2), (above3, below3) = beyond2, beyond3
    with np.errstate(invalid="ignore"):
        side = np.sign(y - cl)
    fh = k_of_m(above2 & ~above3, rows, gid, 2, 3, within=side > 0)
    fl = k_of_m(below2 & ~below3, rows, gid, 2, 3, within=side < 0)
    return fh | fl, np.where(fh, 1.0, np.where(fl, -1.0, 0.0))


def astronomical(
    y: np.ndarray, cl: np.ndarray, ucl: np.ndarray, lcl: np.ndarray, ok: np.ndarray, gid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Outside the control limits; on a run chart outside median +- 2.66 x mean moving range."""
    ucl, lcl = ucl.copy(), lcl.copy()
    nolim = np.isnan(ucl) & np.isnan(lcl)
    if nolim.any():
        idx = np.flatnonzero(ok & ~np.isnan(y))
        g = gid[idx]
        mr = np.abs(np.diff(y[idx]))
        same = g[1:] == g[:-1]
        ng = int(gid.max()) + 1
        with np.errstate(invalid="ignore", divide="ignore"):
            amr = np.bincount(g[1:][same], weights=mr[same], minlength=ng) / np.bincount(
                g[1:][same], minlength=ng
            )
        half = 2.66 * amr[gid]
        ucl = np.where(nolim, cl + half, ucl)
        lcl = np.where(nolim, cl - half, lcl)
    with np.errstate(invalid="ignore"):
        hi = ok & (y > ucl)
        lo = ok & (y < lcl)
    return hi | lo, np.where(hi, 1.0, np.where(lo, -1.0, 0.0))
