"""The PDSA log of workbook 03: which changes a microsystem tested, and what the team decided.

A test of change is a PDSA cycle (Plan-Do-Study-Act; Langley et al., The Improvement Guide, 2009):
a change goes through one or more cycles, each closed with a decision (adopt, adapt, abandon).
:func:`changes_tested` reads the log into one row per change with its status (``adopted``,
``abandoned`` or still ``testing``) and the date at which its phase starts on the chart (Provost &
Murray, The Health Care Data Guide, 2011, ch. 6); :func:`adopted_changes` keeps the adopted ones;
:func:`applies_to_measure` says whether a change concerns a measure.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = ["adopted_changes", "applies_to_measure", "changes_tested"]


def adopted_changes(pdsa: pd.DataFrame, microsystem_id: str) -> pd.DataFrame:
    """The changes a microsystem adopted, each with the start of its adopting cycle.

    Returns
    -------
    DataFrame
        ``change, start, measure_ids`` sorted by start; empty when nothing was adopted.
    """
    tests = changes_tested(pdsa, microsystem_id)
    adopted = tests[tests["status"] == "adopted"]
    return adopted[["change", "start", "measure_ids"]].reset_index(drop=True)


def changes_tested(pdsa: pd.DataFrame, microsystem_id: str | None = None) -> pd.DataFrame:
    """One row per change tested in a microsystem: what was decided and when.

    Parameters
    ----------
    pdsa : DataFrame
        The PDSA log (``microsystem_id, cycle_id, change, start`` and optionally ``end,
        decision, measure_ids``).
    microsystem_id : str, optional
        Keep this microsystem's changes only.

    Returns
    -------
    DataFrame
        ``microsystem_id, change, status, decision, first_start, start, end, cycles,
        measure_ids``, sorted by ``start``. ``status`` is ``adopted`` (a cycle closed with adopt;
        ``start`` is that cycle's start: the new phase begins there), ``abandoned`` (the last
        decisive cycle closed with abandon; ``start`` and ``end`` bound the abandoned cycle, the
        window in which the change was tried at full scale) or ``testing`` (no cycle adopted or
        abandoned it yet; ``start`` is the first cycle's start and the baseline is frozen
        before it). ``decision`` is the decision of the change's last cycle (``ongoing`` when
        missing); ``measure_ids`` is ``;``-joined (empty: every measure).
    """
    columns = [
        "microsystem_id",
        "change",
        "status",
        "decision",
        "first_start",
        "start",
        "end",
        "cycles",
        "measure_ids",
    ]
    mine = pdsa if microsystem_id is None else pdsa[pdsa["microsystem_id"] == microsystem_id]
    rows = []
    for (ms, change), cycles in mine.groupby(["microsystem_id", "change"], sort=True):
        cycles = cycles.sort_values("start", kind="stable")
        decision = (
            cycles["decision"].astype("string").str.strip().str.lower().fillna("ongoing")
            if "decision" in cycles.columns
            else pd.Series("ongoing", index=cycles.index, dtype="string")
        )
        starts = pd.to_datetime(cycles["start"])
        ends = (
            pd.to_datetime(cycles["end"])
            if "end" in cycles.columns
            else pd.Series(pd.NaT, index=cycles.index)
        )
        decisive = decision[decision.isin(["adopt", "abandon"])]
        end = pd.NaT
        if not decisive.empty and decisive.iloc[-1] == "abandon":
            status = "abandoned"
            adopt = decision[decision == "adopt"]
            first = adopt.index[0] if len(adopt) else decisive.index[-1]
            start, end = starts[first], ends[decisive.index[-1]]
        elif (decision == "adopt").any():
            status, start = "adopted", starts[decision[decision == "adopt"].index[0]]
        else:
            status, start = "testing", starts.iloc[0]
        ids = cycles.get("measure_ids", pd.Series("", index=cycles.index)).fillna("").astype(str)
        joined = sorted({i.strip() for v in ids for i in v.replace(",", ";").split(";")} - {""})
        rows.append(
            {
                "microsystem_id": ms,
                "change": change,
                "status": status,
                "decision": str(decision.iloc[-1]),
                "first_start": starts.iloc[0],
                "start": start,
                "end": end,
                "cycles": len(cycles),
                "measure_ids": ";".join(joined),
            }
        )
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["start", "change"], kind="stable").reset_index(drop=True)


def applies_to_measure(measure_ids: Any, measure_id: str) -> bool:
    """A change concerns a measure when it lists it, or lists no measure at all.

    Parameters
    ----------
    measure_ids : str or None
        The change's ``measure_ids`` (``;``- or ``,``-separated; empty or missing: every measure).
    measure_id : str
        The measure.

    Returns
    -------
    bool
    """
    if measure_ids is None or (isinstance(measure_ids, float) and math.isnan(measure_ids)):
        return True
    ids = {i.strip() for i in str(measure_ids).replace(",", ";").split(";")} - {""}
    return not ids or measure_id in ids
