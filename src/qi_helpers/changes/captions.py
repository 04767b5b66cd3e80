"""What workbook 03's charts show, in words: their captions and alt text, from the data.

A chart on a page needs a sentence that says what it shows, for a reader who cannot see it (the
image's alt text) and for one who reads before looking (the caption):

    HbA1c tested in diabetic review, weekly percentage, Jan 2024 to Jun 2025: centre line 66%
    before Recall register (adopted, from 12 Aug 2024) and 79% after it; 3 points above the
    upper limit; target 80%. Verdict: improved after Recall register.

Every number comes from the tables the chart draws (:class:`~qi_helpers.changes.analysis.
ChangeAnalysis`): the centre line of each part of the chart, the points outside the 3-sigma
limits, the runs analysis, the target and the verdicts. Nothing here draws.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from qi_helpers.table_formats import format_number, is_missing

if TYPE_CHECKING:
    from qi_helpers.changes.analysis import ChangeAnalysis

__all__ = [
    "change_alt_text",
    "change_caption",
    "chart_kind",
    "level_text",
    "pdsa_caption",
    "subgroups_caption",
]

#: How each chart type is named to a reader.
_CHART_NAMES = {
    "run": "Run chart",
    "i": "Control chart (I chart)",
    "mr": "Control chart (moving ranges)",
    "xbar": "Control chart (Xbar chart of means)",
    "s": "Control chart (S chart of standard deviations)",
    "t": "Control chart (T chart of times between events)",
    "p": "Control chart (P chart of a percentage)",
    "pp": "Control chart (P' chart of a percentage)",
    "c": "Control chart (C chart of counts)",
    "u": "Control chart (U chart of a rate)",
    "up": "Control chart (U' chart of a rate)",
    "g": "Control chart (G chart of cases between events)",
}


def chart_kind(chart_type: str) -> str:
    """``"Control chart (P chart of a percentage)"``, ``"Run chart"``... for a chart type."""
    return _CHART_NAMES.get(str(chart_type), f"Control chart ({chart_type} chart)")


def _day(value: object) -> str:
    """``12 Aug 2024``."""
    stamp = pd.Timestamp(value)
    return f"{stamp.day} {stamp:%b %Y}"


def _month(value: object) -> str:
    """``Aug 2024``."""
    return f"{pd.Timestamp(value):%b %Y}"


def _unit(measure: pd.Series) -> str:
    """The measure's unit: the catalogue's, else ``%`` for a proportion charted times 100."""
    unit = measure.get("unit")
    if not is_missing(unit):
        return str(unit)
    multiply = measure.get("multiply")
    percent = not is_missing(multiply) and float(multiply) == 100
    return "%" if str(measure.get("chart", "")) in ("p", "pp") and percent else ""


def level_text(value: float, unit: str) -> str:
    """A level of a measure in a sentence: ``66%``, ``9.94 days``, ``133``."""
    if unit == "%":
        return f"{format_number(value, 0)}%"
    return f"{format_number(value)} {unit}".strip()


def _frequency(x: pd.Series) -> str:
    """``weekly``, ``monthly``, ``daily`` from the spacing of the chart's dates (else empty)."""
    if not pd.api.types.is_datetime64_any_dtype(x) or x.nunique() < 2:
        return ""
    days = float(np.median(np.diff(np.sort(x.unique())).astype("timedelta64[D]").astype(float)))
    for low, high, word in ((0.5, 1.5, "daily"), (6, 8, "weekly"), (27, 32, "monthly"),
                            (88, 93, "quarterly")):  # fmt: skip
        if low <= days <= high:
            return word
    return ""


def _what(item: ChangeAnalysis) -> str:
    """``weekly percentage``, ``weekly, in days``..."""
    unit = _unit(item.measure)
    frequency = _frequency(item.chart["x"])
    if unit == "%":
        return f"{frequency} percentage".strip()
    if unit:
        return f"{frequency}, in {unit}" if frequency else f"in {unit}"
    return frequency


def _part_level(chart: pd.DataFrame, part: int) -> float:
    """The centre line of one part of the chart (its first value: it is flat within a part)."""
    values = chart.loc[chart["part"] == part, "cl"].dropna()
    return float(values.iloc[0]) if len(values) else math.nan


def _levels(item: ChangeAnalysis) -> str:
    """``centre line 66% before X (adopted, from 12 Aug 2024) and 79% after it``."""
    chart, unit = item.chart, _unit(item.measure)
    line = "median" if item.chart_type == "run" else "centre line"
    phases = item.phases.reset_index(drop=True) if len(item.phases) else pd.DataFrame()
    first = _part_level(chart, 1)
    if math.isnan(first):
        return ""
    if len(phases) < 2:
        return f"{line} {level_text(first, unit)}"
    pieces = [f"{line} {level_text(first, unit)} before {_phase_name(phases.iloc[1])}"]
    for k in range(1, len(phases)):
        phase = phases.iloc[k]
        label = "it" if k == 1 else _phase_name(phase)
        if str(phase.get("limits", "own")) == "extended":
            pieces.append(f"the same line carried on after {label} (no new level shown yet)")
        else:
            pieces.append(f"{level_text(_part_level(chart, k + 1), unit)} after {label}")
    if len(pieces) == 2:
        return " and ".join(pieces)
    return ", ".join(pieces[:-1]) + " and " + pieces[-1]


def _phase_name(phase: pd.Series) -> str:
    """``Recall register (adopted, from 12 Aug 2024)``."""
    status = "" if is_missing(phase.get("status")) else str(phase.get("status"))
    start = phase.get("start")
    start = phase.get("first_period") if is_missing(start) else start
    when = "" if is_missing(start) else f"from {_day(start)}"
    detail = ", ".join(p for p in (status, when) if p)
    return f"{phase.get('label')} ({detail})" if detail else str(phase.get("label"))


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _signals(item: ChangeAnalysis) -> str:
    """``3 points above the upper limit, 1 below the lower limit`` or what the runs show."""
    chart = item.chart
    y = chart["y"].astype(float)
    outside = chart["sigma_signal"].fillna(False).astype(bool)
    above = int((outside & (y > chart["ucl"].astype(float))).sum())
    below = int((outside & (y < chart["lcl"].astype(float))).sum())
    runs = bool(chart["runs_signal"].fillna(False).astype(bool).any())
    found = []
    if above:
        found.append(_plural(above, "point above the upper limit", "points above the upper limit"))
    if below:
        found.append(_plural(below, "point below the lower limit", "points below the lower limit"))
    if runs:
        found.append("non-random variation in the runs analysis (a shift or too few crossings)")
    if found:
        return ", ".join(found)
    if item.chart_type == "run":
        return "no non-random variation"
    return "no point outside the limits and no non-random run"


def _verdicts(item: ChangeAnalysis) -> str:
    """``Verdict: improved after Recall register.`` (one clause per change judged)."""
    rows = item.verdicts
    if rows.empty or "verdict" not in rows.columns:
        return ""
    clauses = []
    for row in rows.to_dict("records"):
        verdict = str(row.get("verdict") or "")
        if not verdict or verdict == "baseline only":
            continue
        change = row.get("change")
        clauses.append(verdict if is_missing(change) else f"{verdict} after {change}")
    if not clauses:
        return ""
    return ("Verdict: " if len(clauses) == 1 else "Verdicts: ") + "; ".join(clauses) + "."


def change_caption(item: ChangeAnalysis) -> str:
    """What one measure's chart (:func:`qi_helpers.changes.figures.plot_change`) shows, in words.

    Parameters
    ----------
    item : qi_helpers.changes.analysis.ChangeAnalysis

    Returns
    -------
    str
        ``<name>, <weekly percentage>, <first month> to <last month>: <centre line of each
        part, before and after each change>; <points outside the limits, runs>; target <t>.
        Verdict: <verdict> after <change>.`` The levels are the centre lines drawn (a part
        whose limits are carried on from the part before says so); the points outside are
        the points beyond the 3-sigma limits (``sigma_signal``) above and below.
    """
    name = str(item.measure.get("name") or item.measure_id)
    if item.chart.empty:
        return f"{name}: no data to chart yet."
    what = _what(item)
    x = item.chart["x"]
    if pd.api.types.is_datetime64_any_dtype(x):
        span = f"{_month(x.min())} to {_month(x.max())}"
    else:
        span = f"{len(item.chart)} points"
    head = ", ".join(p for p in (name, what, span) if p)
    body = [p for p in (_levels(item), _signals(item)) if p]
    target = item.measure.get("target")
    if not is_missing(target):
        body.append(f"target {level_text(float(target), _unit(item.measure))}")
    tail = _verdicts(item)
    return f"{head}: {'; '.join(body)}." + (f" {tail}" if tail else "")


def change_alt_text(item: ChangeAnalysis) -> str:
    """The alt text of one measure's chart: its kind, then :func:`change_caption`."""
    return f"{chart_kind(item.chart_type)}. {change_caption(item)}"


def pdsa_caption(pdsa: pd.DataFrame) -> str:
    """What the PDSA timeline (:func:`qi_helpers.changes.figures.plot_pdsa_timeline`) shows.

    Returns
    -------
    str
        ``"4 PDSA cycles of 2 changes, from 12 Aug 2024 to 3 Mar 2025: 2 adopted, 1 adapted,
        1 ongoing."`` (decisions in the order adopt, adapt, abandon, ongoing; a cycle without
        a decision is ongoing).
    """
    if pdsa.empty:
        return "No PDSA cycles recorded for this microsystem yet."
    cycles = len(pdsa)
    changes = pdsa["change"].nunique()
    starts = pd.to_datetime(pdsa["start"])
    decisions = (
        pdsa["decision"].fillna("ongoing").astype(str).str.lower().replace("", "ongoing")
        if "decision" in pdsa.columns
        else pd.Series(["ongoing"] * cycles)
    )
    words = {"adopt": "adopted", "adapt": "adapted", "abandon": "abandoned", "ongoing": "ongoing"}
    counts = [
        f"{int((decisions == k).sum())} {w}" for k, w in words.items() if (decisions == k).any()
    ]
    cycles_text = _plural(cycles, "PDSA cycle", "PDSA cycles")
    return (
        f"{cycles_text} of {_plural(changes, 'change', 'changes')}, "
        f"from {_day(starts.min())} to {_day(starts.max())}: {', '.join(counts)}."
    )


def subgroups_caption(shown: pd.DataFrame, hidden: int) -> str:
    """What the subgroup chart (:func:`qi_helpers.changes.figures.plot_subgroups`) shows.

    Parameters
    ----------
    shown : DataFrame
        The subgroup effects drawn (``dimension``, ``subgroup``, ``flag``, ``measure_id``,
        ``change``, ``name``).
    hidden : int
        Subgroups left out by the small-cell rule.
    """
    groups = shown[shown["dimension"] != "all"]
    panels = groups[["measure_id", "change"]].drop_duplicates()
    flagged = groups[groups["flag"].astype(bool)]
    text = (
        f"The effect of {_plural(len(panels), 'change', 'changes')} in "
        f"{_plural(len(groups), 'patient subgroup', 'patient subgroups')}, each beside the whole"
    )
    if len(flagged):
        named = "; ".join(
            f"{str(r['dimension']).replace('_', ' ')} {r['subgroup']} ({r['name']})"
            for _, r in flagged.head(6).iterrows()
        )
        count = _plural(len(flagged), "subgroup", "subgroups")
        text += f": {count} did not improve when the whole did ({named})"
    else:
        text += ": every subgroup shared the improvement or the whole did not change"
    if hidden:
        text += f"; {_plural(hidden, 'subgroup', 'subgroups')} too small to show"
    return text + "."
