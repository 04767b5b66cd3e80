"""Judging one change of one measure: its periods against its frozen baseline, in words.

:func:`qi_helpers.changes.analysis.analyse` cuts a measure's chart into phases; each change is
judged here by :func:`judge_change`: the periods after it are charted with the baseline's centre
line and limits frozen (the verdict rule of
:func:`qi_helpers.changes.verdicts.judge_after_baseline`), the size of the effect is estimated
with its 95% interval (:func:`qi_helpers.changes.effects.estimate_effect`), and a special cause
counts only when that interval does not contradict it. Without one, the verdict says how long the
chart still needs (:func:`qi_helpers.changes.verdicts.periods_needed`) or, for an abandoned
change, that the data support the decision. :class:`MeasureData` holds what every step needs:
the measure's row, its charted data and the analysis settings; :func:`baseline_stable` says
whether some periods, charted alone, show no sustained special cause.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from qi_helpers.changes.effects import (
    detectable_shift,
    effect_direction,
    effect_kind,
    estimate_effect,
)
from qi_helpers.changes.series import period_kind, period_start
from qi_helpers.changes.verdicts import (
    DETECTION_HORIZON,
    NOT_SUSTAINED_RULES,
    baseline_sigma,
    judge_after_baseline,
    periods_needed,
    phase_level,
)
from qi_helpers.measures import Measure
from qi_helpers.spc.qic import qic
from qi_helpers.spc.rules import signals

__all__ = ["MeasureData", "baseline_stable", "judge_change", "verdict_since"]


@dataclass(frozen=True, eq=False)
class MeasureData:
    """One measure's data in one microsystem, and the settings of its analysis.

    Built by :func:`qi_helpers.changes.analysis.analyse`, whose every step reads it. Periods are
    addressed by their index in :attr:`periods`; ``[i0, i1)`` is a half-open range.
    """

    measure: Measure
    catalogue_chart: str  # the catalogue's chart: the kind of effect follows the data
    chart_type: str  # the chart drawn and judged
    rules: str
    own: pd.DataFrame  # the measure's series, sorted by period
    data: pd.DataFrame  # the rows charted (the cases for xbar and s charts)
    y: str
    n: str | None
    case_rows: pd.DataFrame | None
    periods: np.ndarray  # the sorted distinct periods charted
    data_periods: np.ndarray  # the period of each row of ``data``
    baseline_periods: int | None
    min_points: int
    min_after: int

    @property
    def up(self) -> bool:
        return self.measure.up

    @property
    def improvement(self) -> str:
        return "up" if self.up else "down"

    @property
    def kind(self) -> str:
        return effect_kind(self.catalogue_chart)

    @property
    def target(self) -> float | None:
        """The target to draw and to judge the last point against; None without one."""
        return self.measure.target if np.isfinite(self.measure.target) else None

    def index_of(self, when: Any) -> int:
        """First period in or after the period that contains ``when``."""
        start = period_start(pd.Series([pd.Timestamp(when)]), period_kind(self.periods)).iloc[0]
        return int(np.searchsorted(self.periods, np.datetime64(start), side="left"))

    def rows_of(self, i0: int, i1: int) -> pd.DataFrame:
        """The charted rows of periods ``[i0, i1)``."""
        if i1 <= i0:
            return self.data.iloc[0:0]
        lo, hi = self.periods[i0], self.periods[i1 - 1]
        return self.data[(self.data_periods >= lo) & (self.data_periods <= hi)]

    def series_of(self, i0: int, i1: int) -> pd.DataFrame:
        """The measure series of periods ``[i0, i1)``."""
        if i1 <= i0:
            return self.own.iloc[0:0]
        p = pd.to_datetime(self.own["period"]).to_numpy()
        return self.own[(p >= self.periods[i0]) & (p <= self.periods[i1 - 1])]

    def values_of(self, i0: int, i1: int) -> np.ndarray | None:
        """The case values of periods ``[i0, i1)`` (None unless the chart is drawn from cases)."""
        if self.case_rows is None or i1 <= i0:
            return None
        p = pd.to_datetime(self.case_rows["period"]).to_numpy()
        sel = (p >= self.periods[i0]) & (p <= self.periods[i1 - 1])
        return self.case_rows.loc[sel, "value"].to_numpy(float)

    def level(self, i0: int, i1: int) -> float:
        """The level of periods ``[i0, i1)`` on the charted scale."""
        return phase_level(
            self.rows_of(i0, i1), self.y, self.n, self.chart_type, self.measure.multiply
        )

    def chart_of(
        self, rows: pd.DataFrame, *, target: float | None = None, freeze: int | None = None
    ) -> pd.DataFrame:
        """:func:`qi_helpers.spc.qic.qic` of some charted rows."""
        return qic(rows, x="period", y=self.y, n=self.n, chart=self.chart_type, freeze=freeze,
                   multiply=self.measure.multiply, target=target)  # fmt: skip


def baseline_stable(ctx: MeasureData, i0: int, i1: int) -> bool | Any:
    """Whether periods ``[i0, i1)``, charted alone, show no sustained special cause.

    NA with fewer than ``min_points`` periods.
    """
    if i1 - i0 < ctx.min_points:
        return pd.NA
    res = ctx.chart_of(ctx.rows_of(i0, i1))
    parts = signals(res, rules=ctx.rules, improvement=ctx.improvement).parts
    sustained = [
        c for c in parts.columns if c not in NOT_SUSTAINED_RULES and parts[c].dtype != object
    ]
    return not bool(parts[sustained].to_numpy(dtype=float).any())


# ---- judging one change --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Comparison:
    """Periods ``[i0, i1)`` after a change against its baseline ``[ref0, i0)``."""

    window: tuple[int, int, int]  # ref0, i0, i1
    frozen: pd.DataFrame  # the chart of both, the baseline's limits frozen
    label: str | None  # "improved" or "worsened" by the signals (None without one)
    why: str  # the signals in words
    spc: bool  # whether any rule fired after the baseline
    baseline_mean: float
    after_mean: float
    effect: dict[str, Any]  # estimate_effect()
    side: int  # the effect's interval: +1 wholly above no effect, -1 wholly below, else 0
    signal: bool  # a special cause that the effect's interval does not contradict

    @property
    def means(self) -> str:
        return f"mean {self.baseline_mean:.3g} -> {self.after_mean:.3g}"

    @property
    def doubt(self) -> str:
        """Why a special cause does not count (empty when it does or there is none)."""
        if not (self.spc and not self.signal):
            return ""
        return (
            f"{self.why}, but the 95% interval of the effect includes no change, so the baseline "
            "may simply have been high or low by chance; "
        )

    def interval(self, side: str) -> str:
        """The effect's interval lying wholly on the ``side`` (better, worse) side, in words."""
        return (
            f"the 95% interval of the effect ({self.effect['effect_low']:.3g} to "
            f"{self.effect['effect_high']:.3g}) lies wholly on the {side} side"
        )


def _compare(ctx: MeasureData, ref0: int, i0: int, i1: int) -> _Comparison:
    """Chart periods ``[ref0, i1)`` with the baseline ``[ref0, i0)`` frozen; estimate the effect."""
    before, after = ctx.rows_of(ref0, i0), ctx.rows_of(i0, i1)
    frozen = ctx.chart_of(pd.concat([before, after]), freeze=i0 - ref0)
    label, why, spc = judge_after_baseline(frozen, i0 - ref0, ctx.rules, ctx.improvement)
    eff = estimate_effect(
        ctx.series_of(ref0, i0),
        ctx.series_of(i0, i1),
        ctx.catalogue_chart,
        multiply=ctx.measure.multiply,
        before_values=ctx.values_of(ref0, i0),
        after_values=ctx.values_of(i0, i1),
    )
    side = effect_direction(eff["effect"], eff["effect_low"], eff["effect_high"], ctx.kind)
    unsure = np.isnan(eff["effect_low"]) or np.isnan(eff["effect_high"])
    wanted = (1 if ctx.up else -1) * (1 if label == "improved" else -1)
    return _Comparison(
        (ref0, i0, i1), frozen, label, why, spc, ctx.level(ref0, i0), ctx.level(i0, i1), eff,
        side, spc and (unsure or side == wanted),
    )  # fmt: skip


def _verdict_by_interval(ctx: MeasureData, side: int) -> str | None:
    """``improved`` or ``worsened`` when the effect's interval lies wholly on one side."""
    return {1 if ctx.up else -1: "improved", -1 if ctx.up else 1: "worsened"}.get(side)


def _abandoned_verdict(ctx: MeasureData, found: _Comparison) -> dict[str, Any]:
    """An abandoned change without a special cause while it was tested: ``no change``."""
    by_interval = _verdict_by_interval(ctx, found.side)
    hint = (
        f"; yet {found.interval('better' if by_interval == 'improved' else 'worse')}: "
        "worth a second look"
        if by_interval
        else ""
    )
    return {
        "verdict": "no change",
        "reason": f"{found.doubt}no special cause while it was tested; {found.means}; "
        f"the team abandoned it{hint}",
    }


def _unsignalled_verdict(ctx: MeasureData, found: _Comparison) -> dict[str, Any]:
    """A change without a special cause yet: ``no signal yet``, and what more data could show.

    Only a special cause makes a change ``improved`` or ``worsened``; the effect's interval
    alone never does, it is only mentioned. ``periods_needed`` is the number of periods still
    to come before the chart would show the change seen so far (or the change that would reach
    the target) with 80% probability; when the chart has already had that many, the change seen
    so far is too small to tell from noise, and the note says what size the chart could still
    show within the time to detect that is left.
    """
    ref0, i0, i1 = found.window
    n_after = i1 - i0
    sigma = baseline_sigma(found.frozen, i0 - ref0)
    need, what = periods_needed(
        ctx.series_of(ref0, i0), ctx.chart_type, ctx.measure.multiply, sigma,
        found.baseline_mean, found.after_mean - found.baseline_mean, ctx.measure.target, ctx.up,
        ctx.rules,
    )  # fmt: skip
    by_interval = _verdict_by_interval(ctx, found.side)
    hint = ""
    if by_interval:
        side = "better" if by_interval == "improved" else "worse"
        hint = f"; {found.interval(side)}, a hint only: without a special cause it is no verdict"
    left = need - n_after if np.isfinite(need) else math.nan
    if np.isfinite(left) and left >= 1:
        tail = f"about {int(left)} more periods to see {what}"
    elif np.isfinite(left):
        left = math.nan
        tail = f"{what} is too small to detect: the chart has had the {int(need)} periods it "
        tail += "needs to show a change of this size 4 times in 5, and has not shown it"
        tail += _detectable_later(ctx, sigma, n_after)
    elif what:
        tail = f"{what} is too small for this chart to show within {DETECTION_HORIZON} periods"
    else:
        tail = "nothing better so far and no target to aim for: adapt or rethink the change"
    return {
        "verdict": "no signal yet",
        "periods_needed": left,
        "reason": f"{found.doubt}{found.means}; {tail}{hint}",
    }


def _detectable_later(ctx: MeasureData, sigma: float, n_after: int) -> str:
    """The size of change the chart could show in the periods left of the time to detect."""
    remaining = DETECTION_HORIZON - n_after
    if remaining < 1 or not np.isfinite(sigma) or sigma <= 0:
        return ""
    size = detectable_shift(remaining, rules=ctx.rules) * sigma
    if not np.isfinite(size):
        return ""
    word = "rise" if ctx.up else "fall"
    return (
        f"; in the {remaining} periods left of the {DETECTION_HORIZON} looked ahead it could "
        f"show a {word} of about {size:.3g} from the baseline"
    )


def verdict_since(ctx: MeasureData, ref0: int, i0: int, i1: int, label: str | None) -> Any:
    """The first period by which the data showed a signalled verdict: its date, no look-ahead.

    The change of periods ``[i0, i1)`` is judged again on the data up to earlier periods (the
    same frozen baseline ``[ref0, i0)`` and rule, at least ``min_after`` periods after the
    change). The period is found by bisection between the first period that could be judged
    and the last one (which gives ``label``): about log2(n) charts instead of n. The period
    returned always gives ``label`` when judged on the data up to it, so a team looking at its
    chart then would have seen this verdict (the evidence date of a progress score,
    :mod:`qi_helpers.changes.progress`); when a runs signal came and went, it is one of the
    periods where it was seen, not always the first.
    """
    before = ctx.rows_of(ref0, i0)

    def shows(k: int) -> bool:
        frozen = ctx.chart_of(pd.concat([before, ctx.rows_of(i0, k + 1)]), freeze=i0 - ref0)
        found, _, spc = judge_after_baseline(frozen, i0 - ref0, ctx.rules, ctx.improvement)
        return bool(spc) and found == label

    lo, hi = i0 + max(ctx.min_after, 1) - 1, i1 - 1
    if lo < hi and shows(lo):
        hi = lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if shows(mid) else (mid, hi)
    return pd.Timestamp(ctx.periods[hi])


def judge_change(
    ctx: MeasureData, ref0: int, i0: int, i1: int, test: pd.Series, *, abandoned: bool
) -> dict[str, Any]:
    """Judge periods ``[i0, i1)`` of a change against the baseline ``[ref0, i0)``.

    Returns the values of the change's row of the verdict table
    (:attr:`qi_helpers.changes.analysis.ChangeAnalysis.verdicts`), with ``_signal`` (whether it
    counts as a signal: the next phase then starts a new process) and, when compared,
    ``_window`` (``ref0, i0, i1``).
    """
    if ctx.baseline_periods:
        ref0 = max(ref0, i0 - int(ctx.baseline_periods))
    n_ref, n_new = i0 - ref0, i1 - i0
    common = {
        "change": str(test["change"]),
        "start": pd.Timestamp(test["start"]),
        "decision": test["decision"],
        "n_baseline": n_ref,
        "n_after": n_new,
    }
    if n_ref < ctx.min_points or n_new < ctx.min_after:
        need = f"need {ctx.min_points} and {ctx.min_after}"
        why = f"{n_ref} baseline and {n_new} later periods ({need})"
        return {**common, "verdict": "too little data", "reason": why, "_signal": False}
    found = _compare(ctx, ref0, i0, i1)
    out = {
        **common,
        **found.effect,
        "baseline_mean": found.baseline_mean,
        "after_mean": found.after_mean,
        "baseline_stable": baseline_stable(ctx, ref0, i0),
        "_signal": found.signal,
        "_window": found.window,
    }
    if found.signal:
        out.update(verdict=found.label, reason=f"{found.why} after the change; {found.means}")
        out["verdict_since"] = verdict_since(ctx, ref0, i0, i1, found.label)
    elif abandoned:
        out.update(_abandoned_verdict(ctx, found))
    else:
        out.update(_unsignalled_verdict(ctx, found))
    # Without a signal, an unstable baseline weakens whatever the data seem to say.
    if not out["_signal"] and out["baseline_stable"] is False:
        out["reason"] += "; the baseline itself is unstable"
    return out
