"""The runs analysis of a run or control chart (Anhøj & Olesen 2014; Anhøj 2015).

A part of a chart shows non-random variation (a shift) when its longest run of points on one side
of the centre line is too long or the points cross the centre line too rarely for the number of
useful observations (those not on the line). :func:`runs_limits` gives Anhøj's critical values,
:func:`box_signal` the "best box" and "cut box" rules of Anhøj & Wentzel-Larsen (2018), and
:func:`runs_analysis` the runs statistics and signal of every part of a chart at once.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import stats

from qi_helpers.spc.points import changes

__all__ = ["RUNS_METHODS", "box_signal", "runs_analysis", "runs_limits"]

#: Runs analysis rules of :func:`runs_analysis` (and :func:`qi_helpers.spc.qic.qic`'s ``method``).
RUNS_METHODS: tuple[str, ...] = ("anhoej", "bestbox", "cutbox")

# Critical values of the "best box" and "cut box" run rules for 10..100 useful observations
# (Anhøj & Wentzel-Larsen 2018), as numbers from qicharts2 0.8.1's reference output:
# "n cb lb cbord lbord": signal when crossings < cb or longest run > lb (best box); the cut box
# also signals when crossings < cbord and longest run > lbord (0 0 = no cut corner).
_BOX_TABLE = """
10 2 6 3 5;11 3 7 4 6;12 3 6 0 0;13 3 6 0 0;14 3 6 0 0;15 4 7 6 6;16 5 8 6 7;17 5 7 0 0;
18 5 7 6 6;19 5 7 6 5;20 6 7 0 0;21 7 8 0 0;22 6 7 7 6;23 6 7 7 6;24 6 7 7 6;25 6 7 0 0;
26 9 9 10 7;27 9 8 10 7;28 9 8 11 7;29 10 8 0 0;30 11 10 12 9;31 11 9 14 8;32 11 8 0 0;
33 11 8 12 7;34 11 8 13 7;35 12 8 0 0;36 13 9 15 8;37 14 10 0 0;38 13 8 0 0;39 15 11 0 0;
40 15 9 0 0;41 15 9 17 8;42 14 8 0 0;43 14 8 0 0;44 17 10 0 0;45 17 9 0 0;46 17 9 19 8;
47 17 9 20 7;48 19 12 20 11;49 19 10 21 9;50 19 9 0 0;51 19 9 21 8;52 19 9 21 7;53 21 11 23 9;
54 21 10 23 8;55 21 9 0 0;56 21 9 23 8;57 23 12 25 11;58 23 10 24 9;59 23 10 26 8;60 23 9 0 0;
61 23 9 24 8;62 25 11 27 9;63 25 10 27 9;64 26 11 27 10;65 26 10 27 9;66 27 12 29 10;
67 27 10 0 0;68 27 10 29 8;69 28 11 29 8;70 29 14 30 13;71 29 11 31 9;72 29 10 30 9;
73 30 11 31 10;74 30 10 0 0;75 31 12 32 9;76 31 11 34 8;77 31 10 33 9;78 32 11 33 8;
79 33 13 37 11;80 33 11 35 9;81 33 10 0 0;82 34 11 36 10;83 33 10 36 7;84 35 11 0 0;
85 35 11 38 8;86 35 10 36 9;87 35 10 38 8;88 37 12 38 10;89 37 11 39 9;90 38 12 0 0;
91 37 10 39 9;92 39 13 41 12;93 39 11 40 10;94 39 11 42 8;95 39 10 0 0;96 39 10 41 8;
97 41 12 42 9;98 41 11 44 9;99 42 12 43 10;100 41 10 42 9
"""
_BOX = np.array([row.split() for row in _BOX_TABLE.replace("\n", "").split(";")], dtype=float)


def box_signal(
    n_useful: np.ndarray, n_crossings: np.ndarray, longest_run: np.ndarray, method: str
) -> np.ndarray:
    """Best-box / cut-box runs signal: 1.0, 0.0, or NaN outside 10..100 useful observations.

    Parameters
    ----------
    n_useful, n_crossings, longest_run : ndarray
        Runs statistics per part.
    method : {"bestbox", "cutbox"}
        Which box.

    Returns
    -------
    ndarray
        1.0 for a signal, 0.0 for none, NaN where the table has no entry (the caller falls back to
        Anhøj's rules).

    Notes
    -----
    Anhøj J, Wentzel-Larsen T (2018). Sense and sensibility: on the diagnostic value of control
    chart rules for detection of shifts in time series data. BMC Med Res Methodol 18:100.
    """
    n = np.asarray(n_useful, dtype=float)
    row = np.clip(n - 10, 0, len(_BOX) - 1).astype(np.int64)
    inside = (n >= 10) & (n <= 100)
    cb, lb, cbo, lbo = (_BOX[row, k] for k in range(1, 5))
    with np.errstate(invalid="ignore"):
        sig = (n_crossings < cb) | (longest_run > lb)
        if method == "cutbox":
            sig |= (n_crossings < cbo) & (longest_run > lbo)
    return np.where(inside, sig.astype(float), np.nan)


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
    table = _crossings_table()
    whole = (n >= 1) & (n < len(table)) & (n == np.round(n))
    if whole.all():  # a lookup: scipy's ppf costs a tenth of a millisecond per call
        return longest, table[n.astype(np.int64)]
    crossings = stats.binom.ppf(0.05, n - 1, 0.5)
    return longest, crossings


@functools.cache
def _crossings_table(size: int = 2001) -> np.ndarray:
    """``qbinom(0.05, n - 1, 0.5)`` for n = 0..size-1 (n = 0 gives NaN), computed once."""
    n = np.arange(size, dtype=float)
    with np.errstate(invalid="ignore"):
        table = stats.binom.ppf(0.05, n - 1, 0.5)
    table.flags.writeable = False
    return table


def runs_analysis(
    gid: np.ndarray,
    ngroups: int,
    y: np.ndarray,
    cl: np.ndarray,
    include: np.ndarray,
    method: str,
) -> dict[str, np.ndarray]:
    """Per-group runs statistics, vectorised over all groups.

    ``gid`` numbers the groups (facets and parts) 0..ngroups-1, each a contiguous block.
    Returns ``n_obs, n_useful, runs_signal, longest_run, longest_run_max, n_crossings,
    n_crossings_min`` per group (NaN statistics and no signal without useful observations).
    """
    if ngroups == 1:
        return _one_group(y, cl, include, method)
    G = ngroups
    with np.errstate(invalid="ignore"):
        s = np.sign(y - cl)
    useful = include & (s != 0) & ~np.isnan(s)
    idx = np.flatnonzero(useful)
    su, gu = s[idx], gid[idx]
    n_obs = np.bincount(gid[include], minlength=G)
    n_useful = np.bincount(gu, minlength=G)
    longest = np.zeros(G)
    n_runs = np.zeros(G)
    if idx.size:
        new_run = changes(su, gu)
        run_id = np.cumsum(new_run) - 1
        run_len = np.bincount(run_id)
        run_g = gu[new_run]
        n_runs = np.bincount(run_g, minlength=G).astype(float)
        # runs are ordered by group, so the longest per group is a segmented maximum
        starts = np.flatnonzero(changes(run_g))
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


def _one_group(y: np.ndarray, cl: np.ndarray, include: np.ndarray, method: str) -> dict:
    """:func:`runs_analysis` of a single group, in a third of the time (one series per call).

    The same statistics from the run boundaries of the one sequence of useful points, without
    the group-wise bookkeeping.
    """
    with np.errstate(invalid="ignore"):  # an infinite y on an infinite centre line
        side = np.sign(y[include] - cl[include])
    side = side[side * side == 1]  # neither on the centre line (0) nor missing (NaN)
    n_obs, n_useful = int(include.sum()), len(side)
    if n_useful == 0:
        nan = np.array([np.nan])
        return {
            "n_obs": np.array([n_obs]),
            "n_useful": np.array([0]),
            "runs_signal": np.array([False]),
            "longest_run": nan,
            "longest_run_max": nan.copy(),
            "n_crossings": nan.copy(),
            "n_crossings_min": nan.copy(),
        }
    ends = np.flatnonzero(side[1:] != side[:-1])
    longest = float(np.diff(ends, prepend=-1, append=n_useful - 1).max())
    crossings = float(len(ends))
    lr_max, cr_min = _critical_values(n_useful)
    signal = longest > lr_max or crossings < cr_min
    if method != "anhoej":
        box = box_signal(np.array([n_useful]), crossings, longest, method)[0]
        signal = signal if np.isnan(box) else bool(box == 1)
    return {
        "n_obs": np.array([n_obs]),
        "n_useful": np.array([n_useful]),
        "runs_signal": np.array([signal]),
        "longest_run": np.array([longest]),
        "longest_run_max": np.array([lr_max]),
        "n_crossings": np.array([crossings]),
        "n_crossings_min": np.array([cr_min]),
    }


@functools.lru_cache(maxsize=4096)
def _critical_values(n_useful: int) -> tuple[float, float]:
    """:func:`runs_limits` of one number of useful observations, remembered."""
    longest, crossings = runs_limits(np.array([n_useful]))
    return float(longest[0]), float(crossings[0])
