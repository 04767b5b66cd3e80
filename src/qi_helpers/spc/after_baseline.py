"""The verdict rule of a change: the points after a frozen baseline, judged alone.

The periods before a change form its baseline: their centre line and limits are frozen and
extended over the periods after it, and a special cause after the change is the evidence that it
made a difference (Provost & Murray, The Health Care Data Guide, 2011, ch. 6). A rule set of
:func:`qi_helpers.spc.rules.signals` is applied to the later points alone, their runs analysis
recomputed over them against the frozen centre line (Anhøj & Olesen 2014), so that a run that
began in the baseline does not count for the change (:func:`signals_after_baseline`).
:func:`judge_after_baseline` labels a signal ``improved`` or ``worsened`` by the side with more
signalling points.

This is the one rule every verdict uses: workbook 03's verdicts
(:func:`qi_helpers.changes.judging.judge_change`), workbook 04's sustain tracking
(:func:`qi_helpers.spread.tracking.sustain`) and the time to detect of
:func:`qi_helpers.spc.detect.periods_to_detect`, whose simulation restarts every rule at the
change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from qi_helpers.spc.patterns import group_ids
from qi_helpers.spc.rules import signals
from qi_helpers.spc.runs import runs_analysis

__all__ = ["SignalsAfterBaseline", "judge_after_baseline", "runs_within", "signals_after_baseline"]


def runs_within(part: pd.DataFrame) -> pd.DataFrame:
    """Recompute the runs analysis (Anhøj) over the rows of ``part`` alone.

    Parameters
    ----------
    part : DataFrame
        Rows of a :func:`qi_helpers.spc.qic.qic` result (for instance those after a frozen
        baseline); each facet (``facet1``, ``facet2``) is one series, in order.

    Returns
    -------
    DataFrame
        A copy of ``part``, each facet as one part (``part`` = 1), with ``n_useful,
        longest_run, longest_run_max, n_crossings, n_crossings_min, runs_signal`` computed
        around its own ``cl`` column.
    """
    out = part.copy()
    gid = group_ids(out["facet1"], out["facet2"])
    ngroups = int(gid[-1]) + 1 if len(gid) else 0
    runs = runs_analysis(
        gid, ngroups, out["y"].to_numpy(float), out["cl"].to_numpy(float),
        out["include"].to_numpy(bool), "anhoej",
    )  # fmt: skip
    out["n_useful"] = runs["n_useful"][gid].astype(np.int64)
    for name in ["longest_run", "longest_run_max", "n_crossings", "n_crossings_min"]:
        out[name] = pd.array(runs[name][gid], dtype="Float64").round().astype("Int64")
    out["runs_signal"] = runs["runs_signal"][gid]
    out["part"] = 1
    return out


@dataclass(frozen=True)
class SignalsAfterBaseline:
    """The special causes in the rows of a frozen chart after its baseline.

    Attributes
    ----------
    tail : DataFrame
        The rows after the baseline, their runs analysis recomputed (:func:`runs_within`).
    parts : DataFrame
        The one-row part summary of :func:`qi_helpers.spc.rules.signals` over ``tail`` (the
        number of points each point rule flags, and each part rule).
    improving, concerning : int
        Points that signal improvement, and concern.
    part_rules : list of str
        The part-level rules that fired (for ``anhoej``: ``few_crossings``, ``runs_signal``).
    """

    tail: pd.DataFrame
    parts: pd.DataFrame
    improving: int
    concerning: int
    part_rules: list[str]

    @property
    def any(self) -> bool:
        """Whether any rule fired after the baseline."""
        return bool(self.improving or self.concerning or self.part_rules)


def signals_after_baseline(
    frozen: pd.DataFrame, n_ref: int, rules: str, improvement: str
) -> SignalsAfterBaseline:
    """Apply a rule set to the rows after ``n_ref`` of a frozen chart, alone.

    Parameters
    ----------
    frozen : DataFrame
        A :func:`qi_helpers.spc.qic.qic` result with ``freeze=n_ref``.
    n_ref : int
        The baseline rows (the first ``n_ref``).
    rules : {"anhoej", "ihi", "mdc", "western_electric"}
        The rule set (:func:`qi_helpers.spc.rules.signals`).
    improvement : {"up", "down"}
        Which direction is better.

    Returns
    -------
    SignalsAfterBaseline
    """
    tail = runs_within(frozen.iloc[n_ref:])
    sig = signals(tail, rules=rules, improvement=improvement)
    good = int((sig.points["point_type"] == "special_cause_improvement").sum())
    bad = int((sig.points["point_type"] == "special_cause_concern").sum())
    part_rules = [c for c in sig.parts.columns if sig.parts[c].dtype == bool and c != "signal"]
    part_hit = [c for c in part_rules if bool(sig.parts[c].iloc[0])]
    return SignalsAfterBaseline(tail, sig.parts, good, bad, part_hit)


def judge_after_baseline(
    frozen: pd.DataFrame, n_ref: int, rules: str, improvement: str
) -> tuple[str | None, str, bool]:
    """Signals in the rows after ``n_ref`` of a frozen chart: (label, why, any signal).

    Parameters
    ----------
    frozen, n_ref, rules, improvement
        As :func:`signals_after_baseline`.

    Returns
    -------
    label : {"improved", "worsened"} or None
        The side with more signalling points; on a tie (or a runs-only signal), the side of
        the later points' mean. None without a signal.
    why : str
        The signals in words (``"no special cause"`` without one).
    signal : bool
        Whether any rule fired.
    """
    found = signals_after_baseline(frozen, n_ref, rules, improvement)
    tail, good, bad, part_hit = found.tail, found.improving, found.concerning, found.part_rules
    if not found.any:
        return None, "no special cause", False
    side = float(np.nanmean(tail["y"]) - np.nanmean(tail["cl"]))
    better_side = side > 0 if improvement == "up" else side < 0
    if good != bad:
        label = "improved" if good > bad else "worsened"
    else:
        label = "improved" if better_side else "worsened"
    bits = []
    if good:
        bits.append(f"{good} point{'s' * (good > 1)} signalling improvement")
    if bad:
        bits.append(f"{bad} point{'s' * (bad > 1)} signalling concern")
    if part_hit:
        bits.append("a shift in the runs analysis (" + ", ".join(part_hit) + ")")
    return label, " and ".join(bits), True
