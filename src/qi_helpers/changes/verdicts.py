"""The verdict rule of a test of change: a phase judged against its frozen baseline.

The periods before a change form its baseline: their centre line and limits are frozen and
extended over the periods after it, and a special cause after the change is the evidence that it
made a difference (Provost & Murray, The Health Care Data Guide, 2011, ch. 6). The rule itself,
the later points judged alone and labelled by the side with more signalling points, lives in
:mod:`qi_helpers.spc.after_baseline` (:func:`signals_after_baseline`,
:func:`judge_after_baseline`, re-exported here); workbook 03
(:func:`qi_helpers.changes.analysis.analyse`), workbook 04's sustain tracking
(:func:`qi_helpers.spread.tracking.sustain`, with the analysis' rule set) and the time to
detect all use it. Without a signal yet, :func:`periods_needed` says how many periods a chart
needs to show the change (:func:`qi_helpers.spc.detect.periods_to_detect`, simulated with the
same rule, else :func:`qi_helpers.changes.effects.periods_to_signal`).
:data:`VERDICTS` lists the verdicts of workbook 03 and :data:`RESULT_COLUMNS` the columns of its
verdict table.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from qi_helpers.changes.effects import periods_to_signal
from qi_helpers.errors import QIError
from qi_helpers.measures import detection_chart
from qi_helpers.spc.after_baseline import (
    SignalsAfterBaseline,
    judge_after_baseline,
    runs_within,
    signals_after_baseline,
)
from qi_helpers.spc.detect import periods_to_detect

__all__ = [
    "DETECTION_HORIZON",
    "DETECTION_SEED",
    "DETECTION_SIMS",
    "NOT_SUSTAINED_RULES",
    "RESULT_COLUMNS",
    "VERDICTS",
    "SignalsAfterBaseline",
    "baseline_sigma",
    "judge_after_baseline",
    "periods_needed",
    "phase_level",
    "runs_within",
    "signals_after_baseline",
]


#: Every verdict, in the order a coach reads them.
VERDICTS = (
    "improved",
    "worsened",
    "no change",
    "no signal yet",
    "too little data",
    "baseline only",
)

#: The columns of the verdict table (and of ``outputs/data/results/<id>.parquet``).
RESULT_COLUMNS = [
    "microsystem_id",
    "measure_id",
    "name",
    "family",
    "aim",
    "change",
    "start",
    "decision",
    "verdict",
    "baseline_mean",
    "after_mean",
    "n_baseline",
    "n_after",
    "last_period",
    "last_value",
    "effect",
    "effect_low",
    "effect_high",
    "effect_kind",
    "periods_needed",
    "verdict_since",
    "balances",
    "balancing_flag",
    "baseline_stable",
    "variation_icon",
    "assurance_icon",
    "subgroups_flagged",
    "reason",
]

#: Point rules that flag a single point beyond the limits: they do not make a baseline unstable.
NOT_SUSTAINED_RULES = {
    "facet1", "facet2", "part", "n_points", "signal",
    "sigma", "outside_limits", "astronomical", "beyond_3sigma",
}  # fmt: skip

#: How :func:`periods_needed` times a change: ``DETECTION_SIMS`` simulated charts of
#: :func:`qi_helpers.spc.detect.periods_to_detect` from a fixed ``DETECTION_SEED`` (so that a
#: verdict's "about N more periods" is the same in every run), looking ``DETECTION_HORIZON``
#: periods ahead (three years of weeks) at most; beyond that a change is "too small to show".
DETECTION_SIMS = 400
DETECTION_SEED = 0
DETECTION_HORIZON = 156


def phase_level(data: pd.DataFrame, y: str, n: str | None, chart: str, multiply: float) -> float:
    """The level of some rows on the charted scale (pooled for ratios, mean otherwise).

    Parameters
    ----------
    data : DataFrame
        The rows charted (periods, or cases for xbar and s charts).
    y, n : str, str or None
        The value column and, for ratios, the denominator column.
    chart : str
        The chart type.
    multiply : float
        The chart's multiplier.

    Returns
    -------
    float
        NaN without rows (or with a zero denominator).
    """
    if data.empty:
        return math.nan
    if n is not None:
        den = data[n].sum()
        return float(data[y].sum() / den * multiply) if den > 0 else math.nan
    return float(data[y].mean() * multiply)


def baseline_sigma(frozen: pd.DataFrame, n_ref: int) -> float:
    """Sigma per point of the baseline, on the charted scale.

    Parameters
    ----------
    frozen : DataFrame
        A :func:`qi_helpers.spc.qic.qic` result with ``freeze=n_ref``.
    n_ref : int
        The baseline rows.

    Returns
    -------
    float
        The mean of ``(ucl - cl) / 3`` over the baseline; without limits (run chart), the mean
        moving range over 1.128; NaN with 2 points or fewer.
    """
    base = frozen.iloc[:n_ref]
    s = ((base["ucl"] - base["cl"]) / 3).to_numpy(float)
    s = s[np.isfinite(s)]
    if s.size:
        return float(s.mean())
    y = base["y"].to_numpy(float)
    y = y[np.isfinite(y)]
    return float(np.abs(np.diff(y)).mean() / 1.128) if y.size > 2 else math.nan


def periods_needed(
    before: pd.DataFrame,
    chart: str,
    multiply: float,
    sigma: float,
    baseline: float,
    effect_now: float,
    target: float,
    up: bool,
    rules: str,
) -> tuple[float, str]:
    """Periods after the change a chart needs to show it, and what size of change that is.

    The size is the change seen so far when it is an improvement, else the change that would
    reach the target. The Monte Carlo estimate of :func:`qi_helpers.spc.detect.periods_to_detect`
    (simulated from the baseline periods ``before`` on the chart of
    :func:`qi_helpers.measures.detection_chart`, with :data:`DETECTION_SIMS`,
    :data:`DETECTION_SEED` and :data:`DETECTION_HORIZON`) is used; when it cannot simulate the
    data, the closed-form :func:`qi_helpers.changes.effects.periods_to_signal`.

    Parameters
    ----------
    before : DataFrame
        The baseline periods of the measure series (``value``, ``denominator``).
    chart : str
        The chart type.
    multiply : float
        The chart's multiplier.
    sigma : float
        Sigma per point of the baseline (:func:`baseline_sigma`), for the closed form.
    baseline : float
        The baseline level, on the charted scale.
    effect_now : float
        The change seen so far, on the charted scale.
    target : float
        The measure's target (NaN: none).
    up : bool
        Whether higher is better.
    rules : str
        The rule set.

    Returns
    -------
    periods : float
        NaN when there is nothing to detect or it cannot be estimated.
    what : str
        The size of change timed, in words (empty with NaN).
    """
    gain = effect_now if up else -effect_now
    if np.isfinite(gain) and gain > 0:
        size, what = effect_now, "the change seen so far"
    elif np.isfinite(target) and ((target > baseline) if up else (target < baseline)):
        size, what = target - baseline, "a change that would reach the target"
    else:
        return math.nan, ""
    sim = detection_chart(chart)
    try:
        den = before["denominator"].to_numpy(float) if sim != "i" else None
        found = periods_to_detect(
            before["value"].to_numpy(float), den, size / multiply, chart=sim, rules=rules,
            sims=DETECTION_SIMS, seed=DETECTION_SEED, horizon=DETECTION_HORIZON, relative=False,
        )  # fmt: skip
        n = found["periods"].iloc[0]
        return (math.nan if pd.isna(n) else float(n)), what
    except (QIError, ValueError):
        pass
    if not np.isfinite(sigma) or sigma <= 0:
        return math.nan, ""
    return periods_to_signal(size / sigma, rules=rules, max_periods=DETECTION_HORIZON), what
