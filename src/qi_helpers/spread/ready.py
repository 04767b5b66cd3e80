"""What is ready to spread: the changes that improved results and harmed nothing (workbook 04).

A change that improved its outcome but worsened a balancing measure (or any other measure) where
it was tested is held back: the team must first study that cost (Massoud et al., *A Framework for
Spread*, IHI, 2006: spread what the pilots have shown to work).
"""

from __future__ import annotations

import pandas as pd

from qi_helpers.data.columns import require_columns

#: What to do when a table lacks a column (the end of :func:`require_columns`' error).
RERUN_ADVICE = "Run the workbook that writes it again, or check the table's source."


def successful_changes(results: pd.DataFrame) -> pd.DataFrame:
    """The changes ready to spread: improved in at least one microsystem, worsened in none.

    A change that improved its outcome but worsened a balancing measure (or any other measure)
    where it was tested is held back: the team must first study that cost.

    Parameters
    ----------
    results : DataFrame
        Every workbook 03 verdict (``microsystem_id, measure_id, change, verdict``).

    Returns
    -------
    DataFrame
        ``change, pilots`` (``;``-joined ids of the microsystems where it improved: the pilots and
        any earlier adopters, the evidence for spreading it), ``measures`` (``;``-joined ids of the
        measures it improved), one row per change, sorted by change.
    """
    require_columns(
        results,
        ["microsystem_id", "measure_id", "change", "verdict"],
        "results",
        advice=RERUN_ADVICE,
    )
    tested = results[results["change"].notna()]
    harmful = set(tested.loc[tested["verdict"] == "worsened", "change"])
    won = tested[(tested["verdict"] == "improved") & ~tested["change"].isin(harmful)]
    grouped = won.groupby("change").agg(
        pilots=("microsystem_id", lambda s: ";".join(sorted(set(s)))),
        measures=("measure_id", lambda s: ";".join(sorted(set(s)))),
    )
    return grouped.reset_index()


def held_back(results: pd.DataFrame) -> pd.DataFrame:
    """Changes that improved somewhere but worsened a measure where they were tested.

    Returns
    -------
    DataFrame
        ``change, microsystem_id, measure_id, name, reason`` for each worsened measure.
    """
    tested = results[results["change"].notna()]
    improved = set(tested.loc[tested["verdict"] == "improved", "change"])
    worse = tested[(tested["verdict"] == "worsened") & tested["change"].isin(improved)]
    return worse[["change", "microsystem_id", "measure_id", "name", "reason"]].reset_index(
        drop=True
    )
