"""The tables workbook 03 shows: verdicts and subgroups in the order a team reads them.

The data stay as :func:`~qi_helpers.changes.microsystem.analyse_microsystem` made them; these
functions only choose and order the columns a reader needs first (the verdict and the effect
before the counts and the icons' codes) and, for the subgroups, group the rows under their
measure, change and patient grouping, so that a table shows at most eight columns in view and
never repeats a measure's name on every row (:mod:`qi_helpers.readable_tables`).
"""

from __future__ import annotations

import pandas as pd

from qi_helpers.changes.equity import suppress_small
from qi_helpers.privacy.small_cells import SMALL_CELL_THRESHOLD
from qi_helpers.readable_tables import grouped

__all__ = ["SUBGROUP_TABLE_COLUMNS", "VERDICT_TABLE_COLUMNS", "subgroup_table", "verdict_table"]

#: The verdict table's columns, in reading order (the first eight are in view).
VERDICT_TABLE_COLUMNS = [
    "name",
    "change",
    "verdict",
    "effect",
    "effect_low",
    "effect_high",
    "baseline_mean",
    "after_mean",
    "periods_needed",
    "reason",
    "start",
    "decision",
    "last_period",
    "last_value",
    "variation_icon",
    "assurance_icon",
    "family",
    "aim",
    "n_baseline",
    "n_after",
    "balances",
    "balancing_flag",
    "baseline_stable",
    "measure_id",
    "effect_kind",
]

#: The subgroup table: rows grouped by these columns (a heading row each) ...
SUBGROUP_GROUPS = ["name", "change", "whole_verdict", "dimension"]
#: ... and these columns in each row, in reading order.
SUBGROUP_TABLE_COLUMNS = [
    "subgroup",
    "verdict",
    "flag",
    "effect",
    "effect_low",
    "effect_high",
    "baseline_mean",
    "after_mean",
    "n_baseline",
    "n_after",
    "reason",
    "measure_id",
    "effect_kind",
]


def _ordered(table: pd.DataFrame, first: list[str], drop: tuple[str, ...]) -> pd.DataFrame:
    """``first`` (those present), then any other column, without ``drop``."""
    head = [c for c in first if c in table.columns]
    rest = [c for c in table.columns if c not in head and c not in drop]
    return table.loc[:, head + rest].reset_index(drop=True)


def verdict_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Workbook 03's verdicts as a team reads them: measure, change, verdict and effect first.

    Parameters
    ----------
    verdicts : pandas.DataFrame
        ``MicrosystemAnalysis.verdicts`` (the columns of
        :data:`~qi_helpers.changes.verdicts.RESULT_COLUMNS`).

    Returns
    -------
    pandas.DataFrame
        The same rows; the columns of :data:`VERDICT_TABLE_COLUMNS` in that order, then any
        other, without ``microsystem_id`` (the page's) and ``subgroups_flagged`` (the subgroup
        table shows them).
    """
    return _ordered(verdicts, VERDICT_TABLE_COLUMNS, ("microsystem_id", "subgroups_flagged"))


def subgroup_table(
    subgroups: pd.DataFrame, *, threshold: int = SMALL_CELL_THRESHOLD
) -> pd.DataFrame:
    """The subgroup effects safe to publish, grouped under their measure, change and grouping.

    Parameters
    ----------
    subgroups : pandas.DataFrame
        ``MicrosystemAnalysis.subgroups`` (:func:`~qi_helpers.changes.equity.subgroup_effects`).
    threshold : int
        ``publish.small_cell_threshold`` (:func:`~qi_helpers.changes.equity.suppress_small`).

    Returns
    -------
    pandas.DataFrame
        :func:`~qi_helpers.changes.equity.suppress_small` of ``subgroups``, without
        ``microsystem_id``; the columns of :data:`SUBGROUP_GROUPS` then
        :data:`SUBGROUP_TABLE_COLUMNS`, marked to show one heading row per measure, change,
        verdict for all patients and grouping (:func:`qi_helpers.readable_tables.grouped`).
    """
    safe = suppress_small(subgroups, threshold=threshold)
    table = _ordered(safe, SUBGROUP_GROUPS + SUBGROUP_TABLE_COLUMNS, ("microsystem_id",))
    return grouped(table, SUBGROUP_GROUPS)
