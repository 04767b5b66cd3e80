"""The rules of a rule set, applied one period at a time to many charts at once.

A simulation of time to detect (:mod:`qi_helpers.spc.detect`) charts every simulated series one
period at a time, as an analyst would. :class:`RuleState` carries the state of every rule of a
rule set of :func:`qi_helpers.spc.rules.signals` (current run, trend, window of zone points,
crossings) from one period to the next over all series together, so that after each period it
tells which series' charts signal, exactly as ``signals(qic(...))`` on the series so far would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qi_helpers.spc.rules import ihi_run_bounds
from qi_helpers.spc.runs import runs_limits

__all__ = ["RuleState"]

_Flags = tuple[np.ndarray, np.ndarray]  # (up, down): a rule fired above / below the centre line


class _Window:
    """Counts of zone points among the last ``m`` charted points (the k-of-m rules).

    ``same_side``: Making Data Count's two of three, whose window counts only when all ``m``
    points lie strictly on the side of its zone points. A qualifying window flags its zone
    points, which may all be earlier than the last point, so it reports the window.
    """

    def __init__(self, size: int, k: int, m: int, same_side: bool = False) -> None:
        self.k, self.m, self.same_side = k, m, same_side
        self.hi = np.zeros((size, m), dtype=np.int8)
        self.lo = np.zeros((size, m), dtype=np.int8)
        self.above = np.zeros((size, m), dtype=np.int8)
        self.below = np.zeros((size, m), dtype=np.int8)
        self.count = 0

    def push(
        self, hi: np.ndarray, lo: np.ndarray, side: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Add one point; flags (up, down): a point of the window is flagged on that side."""
        slot = self.count % self.m
        self.hi[:, slot] = hi
        self.lo[:, slot] = lo
        self.above[:, slot] = side > 0
        self.below[:, slot] = side < 0
        self.count += 1
        if self.count < self.m:
            false = np.zeros(hi.shape, dtype=bool)
            return false, false
        up, down = self.hi.sum(axis=1) >= self.k, self.lo.sum(axis=1) >= self.k
        if self.same_side:
            up &= self.above.sum(axis=1) == self.m
            down &= self.below.sum(axis=1) == self.m
        return up, down


def _first_rule(fired: list[_Flags]) -> _Flags:
    """The direction of the first rule that flags a point (Making Data Count's precedence)."""
    up, down = np.zeros(fired[0][0].shape, bool), np.zeros(fired[0][0].shape, bool)
    taken = np.zeros(up.shape, bool)
    for hi, lo in fired:
        up |= hi & ~taken
        down |= lo & ~taken
        taken |= hi | lo
    return up, down


@dataclass
class _Zones:
    """Where the points of one period lie: side of the centre line, beyond 3, 2 and 1 sigma."""

    side: np.ndarray
    hi3: np.ndarray
    lo3: np.ndarray
    hi2: np.ndarray
    lo2: np.ndarray
    hi1: np.ndarray
    lo1: np.ndarray

    @classmethod
    def of(cls, yj: np.ndarray, lim: dict[str, np.ndarray], j: int) -> _Zones:
        """The zones of the values ``yj`` of period ``j`` (limits as ``frozen_limits``)."""
        cl, sigma = lim["cl"][:, j], lim["sigma"][:, j]
        with np.errstate(invalid="ignore"):
            side = np.sign(yj - cl)
            hi3, lo3 = yj > lim["ucl"][:, j], yj < lim["lcl"][:, j]
            hi2, lo2 = yj > lim["ucl95"][:, j], yj < lim["lcl95"][:, j]
            hi1, lo1 = yj > cl + sigma, yj < cl - sigma
        return cls(side, hi3, lo3, hi2, lo2, hi1, lo1)


def _by_side(flag: np.ndarray, side: np.ndarray) -> _Flags:
    return flag & (side > 0), flag & (side < 0)


def _zeros(size: int, dtype: type = np.int64) -> np.ndarray:
    return np.zeros(size, dtype=dtype)


@dataclass
class RuleState:
    """The state of every rule of ``rules`` on ``size`` charts, after the periods seen so far.

    Build it with :meth:`start` and feed it one period at a time with :meth:`step`. ``part``
    holds the part rules without a direction (Anhøj: too few crossings; IHI: too few or too
    many runs) on the chart of the points so far.
    """

    rules: str
    size: int
    lr_max: np.ndarray  # Anhøj's critical values, indexed by the number of useful observations
    cr_min: np.ndarray
    windows: list[tuple[_Window, str]]
    n_useful: np.ndarray = field(init=False)
    above: np.ndarray = field(init=False)
    crossings: np.ndarray = field(init=False)
    run_side: np.ndarray = field(init=False)  # current run of useful points (ties skipped)
    run_len: np.ndarray = field(init=False)
    longest: np.ndarray = field(init=False)
    tb_side: np.ndarray = field(init=False)  # current run of charted points, ties breaking it
    tb_len: np.ndarray = field(init=False)
    last: np.ndarray = field(init=False)  # last value seen by the trend rule
    tr_dir: np.ndarray = field(init=False)
    tr_len: np.ndarray = field(init=False)
    part: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        S = self.size
        self.n_useful, self.above, self.crossings = _zeros(S), _zeros(S), _zeros(S)
        self.run_side, self.run_len, self.longest = np.zeros(S), _zeros(S), _zeros(S)
        self.tb_side, self.tb_len = np.full(S, np.nan), _zeros(S)
        self.last, self.tr_dir, self.tr_len = np.full(S, np.nan), np.zeros(S), _zeros(S)
        self.part = _zeros(S, bool)

    @classmethod
    def start(cls, size: int, rules: str, periods: int) -> RuleState:
        """The state before the first of at most ``periods`` periods."""
        n = np.arange(periods + 1, dtype=float)
        n[0] = 1
        lr_max, cr_min = runs_limits(n)
        windows: list[tuple[_Window, str]] = []
        if rules == "mdc":
            windows = [(_Window(size, 2, 3, same_side=True), "near")]
        elif rules == "western_electric":
            windows = [(_Window(size, 2, 3), "2"), (_Window(size, 4, 5), "1")]
        return cls(rules, size, lr_max, cr_min, windows)

    @property
    def _skip_tie_runs(self) -> bool:
        return self.rules in ("anhoej", "ihi")

    @property
    def _trend_k(self) -> int | None:
        return {"ihi": 5, "mdc": 7}.get(self.rules)

    @property
    def _side_k(self) -> int | None:
        return {"ihi": 6, "mdc": 7, "western_electric": 8}.get(self.rules)

    def step(
        self, yj: np.ndarray, lim: dict[str, np.ndarray], j: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Chart the values ``yj`` of period ``j`` (missing: not charted) against ``lim``.

        Returns the point rules firing at this point, by direction (up, down), and Anhøj's long
        run by direction (its limit grows with the chart, so it is judged apart).
        """
        up, down = _zeros(self.size, bool), _zeros(self.size, bool)
        long_up, long_down = _zeros(self.size, bool), _zeros(self.size, bool)
        charted = ~np.isnan(yj)
        if not charted.any():
            if self.rules == "mdc":  # a missing value breaks shifts, trends and windows
                self.tb_len, self.tb_side = _zeros(self.size), np.full(self.size, np.nan)
                self.last = np.full(self.size, np.nan)
                self.windows[0][0].push(up, down, np.full(self.size, np.nan))
            return up, down, long_up, long_down
        z = _Zones.of(yj, lim, j)
        fired = [(z.hi3 & charted, z.lo3 & charted)]
        if self._skip_tie_runs:
            useful = self._useful_runs(charted, z.side)
            if self.rules == "anhoej":
                long_up, long_down = _by_side(
                    useful & (self.run_len > self.lr_max[self.n_useful]), z.side
                )
            else:
                fired.append(_by_side(useful & (self.run_len >= self._side_k), z.side))
        else:
            fired.append(_by_side(self._charted_runs(charted, z.side), z.side))
        if self._trend_k is not None:
            fired.append(self._trend(yj, charted))
        if self.rules == "mdc":
            return (*self._mdc(fired, z, charted), long_up, long_down)
        if charted.all():  # k-of-m windows run over charted points
            zones = {
                "2": (z.hi2, z.lo2),
                "near": (z.hi2 & ~z.hi3, z.lo2 & ~z.lo3),  # inside the limits (Making Data Count)
                "1": (z.hi1, z.lo1),
            }
            for window, zone in self.windows:
                fired.append(window.push(*zones[zone], z.side))
        for hi, lo in fired:
            up |= hi
            down |= lo
        self._part_rules()
        return up, down, long_up, long_down

    def _mdc(self, fired: list[_Flags], z: _Zones, charted: np.ndarray) -> _Flags:
        """Making Data Count: the last point takes the direction of its first rule.

        The order is outside the limits, trend, two of three, shift; a two of three may also
        flag the earlier points of its window (a missing value breaks the window).
        """
        outside, shift, trend = fired
        window = self.windows[0][0]
        near_hi, near_lo = z.hi2 & ~z.hi3 & charted, z.lo2 & ~z.lo3 & charted
        win_up, win_down = window.push(near_hi, near_lo, np.where(charted, z.side, np.nan))
        now_up, now_down = _first_rule(
            [outside, trend, (win_up & near_hi, win_down & near_lo), shift]
        )
        self._part_rules()
        return now_up | (win_up & ~near_hi), now_down | (win_down & ~near_lo)

    def _useful_runs(self, charted: np.ndarray, side: np.ndarray) -> np.ndarray:
        """Runs of useful points (not on the centre line), ties skipped: Anhøj and IHI."""
        useful = charted & (side != 0)
        same = useful & (side == self.run_side)
        new = useful & ~same
        self.crossings += (new & (self.run_side != 0)).astype(np.int64)
        self.run_len = np.where(same, self.run_len + 1, np.where(new, 1, self.run_len))
        self.run_side = np.where(new, side, self.run_side)
        self.n_useful += useful
        self.above += useful & (side > 0)
        self.longest = np.maximum(self.longest, self.run_len)
        return useful

    def _charted_runs(self, charted: np.ndarray, side: np.ndarray) -> np.ndarray:
        """Points in a shift: runs of charted points, a point on the centre line breaking them."""
        same = charted & (side == self.tb_side)
        breaks = self.rules == "mdc"  # Making Data Count: a missing value breaks the run
        self.tb_len = np.where(
            same, self.tb_len + 1, np.where(charted, 1, 0 if breaks else self.tb_len)
        )
        self.tb_side = np.where(charted | breaks, side, self.tb_side)
        return charted & (side != 0) & (self.tb_len >= self._side_k)

    def _trend(self, yj: np.ndarray, charted: np.ndarray) -> _Flags:
        """Points in a trend, by direction."""
        with np.errstate(invalid="ignore"):
            step = np.sign(yj - self.last)  # NaN for the first point
        # IHI skips like values; Making Data Count lets a tie end the trend
        moved = charted & (step != 0) if self.rules == "ihi" else charted.copy()
        go = moved & ~np.isnan(step)
        cont = go & (step == self.tr_dir)
        self.tr_len = np.where(cont, self.tr_len + 1, np.where(go, 1, self.tr_len))
        self.tr_dir = np.where(go, step, self.tr_dir)
        start = moved & np.isnan(step)
        self.tr_len = np.where(start, 0, self.tr_len)
        self.tr_dir = np.where(start, 0, self.tr_dir)
        self.last = np.where(moved, yj, self.last)
        if self.rules == "mdc":  # a missing value ends the trend
            self.last = np.where(charted, self.last, np.nan)
        trend = go & (self.tr_dir != 0) & (self.tr_len >= self._trend_k - 1)
        return trend & (self.tr_dir > 0), trend & (self.tr_dir < 0)

    def _part_rules(self) -> None:
        """Part rules without a direction, on the chart of the points so far."""
        if self.rules == "anhoej":
            self.part = (self.n_useful > 0) & (self.crossings < self.cr_min[self.n_useful])
        elif self.rules == "ihi":
            low, high = ihi_run_bounds(self.n_useful, self.above)
            runs = np.where(self.n_useful > 0, self.crossings + 1, 0)
            self.part = (runs < low) | (runs > high)

    def long_run(self) -> np.ndarray:
        """Anhøj's long run on the chart so far (False throughout for the other rule sets)."""
        if self.rules != "anhoej":
            return _zeros(self.size, bool)
        return (self.n_useful > 0) & (self.longest > self.lr_max[self.n_useful])
