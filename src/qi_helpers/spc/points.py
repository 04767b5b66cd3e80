"""The points of a chart: observations aggregated per subgroup, numbered, and grouped by part.

:func:`aggregate` turns the observations into one point per facet and x (sum, count, mean and sd
of y, and the plotted value), :func:`number_points` numbers them within each facet and marks
parts, baseline and excluded points, and :class:`Points` holds the arrays every chart's limits
are computed from, with the group-wise arithmetic over all facets and parts at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "AGG_FUNS",
    "PointArrays",
    "Points",
    "aggregate",
    "changes",
    "group_fsum",
    "number_points",
]

#: ``agg_fun`` names (R's and pandas') -> pandas groupby aggregation.
AGG_FUNS: dict[str, str] = {
    "mean": "mean",
    "median": "median",
    "sum": "sum",
    "sd": "std",
    "std": "std",
}


@dataclass
class PointArrays:
    """The aggregated points as arrays, one element per point, sorted by facets then x.

    What :func:`aggregate` gives as a frame (:meth:`from_frame`), or what
    :func:`qi_helpers.spc.one_series.one_series` reads straight from one series. ``fid``
    numbers the facets 0, 1, ... in order; ``notes`` and ``partlab`` are None when not asked
    for; ``categorical``: x has no time order (neither numbers nor dates).
    """

    x: np.ndarray
    facet1: np.ndarray
    facet2: np.ndarray
    fid: np.ndarray
    y: np.ndarray
    n: np.ndarray
    y_sum: np.ndarray
    y_length: np.ndarray
    y_mean: np.ndarray
    y_sd: np.ndarray
    categorical: bool
    notes: np.ndarray | None = None
    partlab: np.ndarray | None = None

    @classmethod
    def from_frame(cls, pts: pd.DataFrame) -> PointArrays:
        """The points of :func:`aggregate`'s frame."""
        fkey = pts["facet1"].astype(str) + "\x00" + pts["facet2"].astype(str)
        fid = (fkey != fkey.shift()).cumsum().to_numpy() - 1
        return cls(
            x=pts["x"].to_numpy(),
            facet1=pts["facet1"].to_numpy(),
            facet2=pts["facet2"].to_numpy(),
            fid=fid,
            y=pts["y"].to_numpy(dtype=float),
            n=pts["n"].to_numpy(dtype=float),
            y_sum=pts["y_sum"].to_numpy(dtype=float),
            y_length=pts["y_length"].to_numpy(dtype=np.int64),
            y_mean=pts["y_mean"].to_numpy(dtype=float),
            y_sd=pts["y_sd"].to_numpy(dtype=float),
            categorical=not (
                pd.api.types.is_numeric_dtype(pts["x"])
                or pd.api.types.is_datetime64_any_dtype(pts["x"])
            ),
            notes=pts["notes"].to_numpy() if "notes" in pts else None,
            partlab=pts["partlab"].to_numpy() if "partlab" in pts else None,
        )


@dataclass
class Points:
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

    @classmethod
    def from_arrays(
        cls, pts: PointArrays, gid: np.ndarray, base: np.ndarray, cl: float | None, screened: bool
    ) -> Points:
        """The points ``pts`` grouped by ``gid`` (:func:`number_points`).

        ``base`` marks the points the centre line and limits come from, ``cl`` is a fixed centre
        line (or None) and ``screened`` asks for Nelson-screened moving ranges.
        """
        return cls(
            gid=gid,
            ngroups=int(gid[-1] + 1) if len(gid) else 0,
            y=pts.y,
            n=pts.n,
            y_sum=pts.y_sum,
            y_length=pts.y_length.astype(float),
            y_mean=pts.y_mean,
            y_sd=pts.y_sd,
            base=base,
            cl=cl,
            categorical=pts.categorical,
            screened=screened,
        )

    def gsum(self, v: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Sum of ``v`` over ``mask`` per group, NaN values skipped, correctly rounded.

        Each group's sum is :func:`math.fsum` of its values (groups are contiguous blocks), so
        that a centre line does not depend on the order of the values (see :meth:`gmean`).
        """
        ok = mask & ~np.isnan(v)
        return group_fsum(v[ok], self.gid[ok], self.ngroups)

    def gcount(self, mask: np.ndarray) -> np.ndarray:
        return np.bincount(self.gid[mask], minlength=self.ngroups).astype(float)

    def gmean(self, v: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mean of the non-missing ``v`` over ``mask`` per group (NaN for an empty group).

        An accurate two-pass mean, as R's ``mean()`` (which sums in extended precision and adds
        the mean of the residuals): the correctly rounded sum (:func:`math.fsum`) over the count,
        then corrected by the mean of the residuals. A plain left-to-right sum can put the mean
        one unit in the last place off (5.000000000000001 for values whose mean is exactly 5),
        and then points equal to the mean fall on one side of it, joining runs and changing the
        number of useful observations.
        """
        ok = mask & ~np.isnan(v)
        cnt = self.gcount(ok)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = self.gsum(v, ok) / cnt
            resid = np.where(ok, v - m[self.gid], 0.0)
            return m + group_fsum(resid[ok], self.gid[ok], self.ngroups) / cnt

    def gmedian(self, v: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Median of the non-missing ``v`` over ``mask`` per group (NaN for an empty group)."""
        if self.ngroups == 1:
            kept = v[mask & ~np.isnan(v)]
            return np.array([np.median(kept) if kept.size else np.nan])
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
            with np.errstate(invalid="ignore", divide="ignore"):
                mr = mr / scale(idx[1:], idx[:-1])
        same = g[1:] == g[:-1]
        keep = same & ~np.isnan(mr)
        return mr[keep], g[1:][keep]

    def expand(self, per_group: np.ndarray) -> np.ndarray:
        return per_group[self.gid]

    def centre(self, per_group: np.ndarray) -> np.ndarray:
        """Per-point centre line: the user's ``cl`` when given, else the group value."""
        if self.cl is not None:
            return np.full(self.gid.shape, float(self.cl))
        return self.expand(per_group)


def changes(*keys: np.ndarray) -> np.ndarray:
    """True where any of ``keys`` differs from the element before it (and at the first one)."""
    out = np.empty(len(keys[0]), dtype=bool)
    if out.size:
        out[0] = True
        out[1:] = False
        for key in keys:
            out[1:] |= key[1:] != key[:-1]
    return out


def group_fsum(v: np.ndarray, gid: np.ndarray, ngroups: int) -> np.ndarray:
    """Correctly rounded sum (:func:`math.fsum`) of ``v`` per group; ``gid`` never decreases."""
    out = np.zeros(ngroups)
    if v.size == 0:
        return out
    if gid[0] == gid[-1]:  # one group (gid never decreases)
        out[gid[0]] = math.fsum(v.tolist())
        return out
    cuts = np.flatnonzero(np.diff(gid)) + 1
    starts = np.concatenate(([0], cuts))
    for g, chunk in zip(gid[starts], np.split(v, cuts), strict=True):
        out[g] = math.fsum(chunk.tolist())
    return out


def number_points(
    fid: np.ndarray,
    parts: np.ndarray | None,
    freeze: int | None,
    excl: np.ndarray,
    labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Group ids (facet x part), part numbers, baseline and include flags of sorted points.

    ``fid`` numbers the facet of each point (0, 1, ... in order). Points are numbered 1..k
    within each facet (``xx``); parts come from ``parts``, the sorted 1-based numbers where
    parts end, or from ``labels``, the per-point phase labels (each change of label starts a
    part).
    """
    npts = len(fid)
    fstart = np.flatnonzero(changes(fid))
    xx = np.arange(npts) - fstart[fid] + 1
    if labels is not None:
        lab = pd.Series(labels).astype(str).to_numpy()
        change = np.r_[False, (lab[1:] != lab[:-1]) & (fid[1:] == fid[:-1])]
        cum = np.cumsum(change)
        partno = cum - cum[fstart][fid] + 1
    elif parts is None:
        partno = np.ones(npts, dtype=np.int64)
    else:
        partno = 1 + np.searchsorted(parts, xx, side="left")
    baseline = xx <= freeze if freeze is not None else np.ones(npts, dtype=bool)
    include = ~np.isin(xx, excl) if excl.size else np.ones(npts, dtype=bool)
    gid = np.cumsum(changes(fid, partno)) - 1
    return gid, partno, baseline, include


def aggregate(
    frame: pd.DataFrame,
    keys: list[str],
    agg_fun: str,
    fixed: str | None,
    got_n: bool,
    with_notes: bool,
    with_part: bool,
) -> pd.DataFrame:
    """One row per (facet1, facet2, x), sorted; a fast path when keys are already unique.

    ``fixed`` is the chart's own aggregation of y when there is no n (``"mean"``, ``"sd"``,
    ``"sum"`` or ``"ip"``), else ``agg_fun`` (a key of :data:`AGG_FUNS`) applies.
    """
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
        elif fixed == "sd" or (fixed is None and AGG_FUNS[agg_fun] == "std"):
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
        out["y"] = out[how] if how else g["y"].agg(AGG_FUNS[agg_fun])
    if with_notes:
        notes = frame["notes"].where(frame["notes"].notna() & (frame["notes"] != ""))
        out["notes"] = notes.groupby([frame[k] for k in keys], sort=True, dropna=False).agg(
            lambda s: " | ".join(map(str, s.dropna())) or None
        )
    if with_part:
        out["partlab"] = g["partlab"].first()
    return out.reset_index()
