"""The pilot explorer of workbook 02: sliders for the criteria weights that re-rank live."""

from __future__ import annotations

from typing import Any

import pandas as pd

from qi_helpers.pilots.figures import plot_criteria_heatmap
from qi_helpers.pilots.ranking import rank, shortlist
from qi_helpers.pilots.scoring import CRITERIA, CRITERIA_LABELS
from qi_helpers.widgets._base import explorer


def pilot_explorer(
    criteria: pd.DataFrame,
    weights: dict[str, float],
    *,
    k: int = 3,
    max_per_site: int | None = None,
    max_per_kind: int | None = None,
    interactive: bool = True,
) -> Any:
    """Sliders for the weight of each criterion and for ``k``; the ranking redraws as they move.

    Parameters
    ----------
    criteria : DataFrame
        From :func:`qi_helpers.pilots.scoring.criteria`.
    weights : dict of str to float
        The starting weights (from the parameters).
    k : int
        The starting number of pilots.
    max_per_site, max_per_kind : int, optional
        Caps passed to :func:`qi_helpers.pilots.ranking.rank`.
    interactive : bool
        False in batch runs: return the ranked table for the starting values.

    Returns
    -------
    object
        In batch, :func:`qi_helpers.pilots.ranking.shortlist` of the ranking. Interactively, the
        :func:`qi_helpers.widgets.explorer` box: one ``FloatSlider`` per criterion (0-1), an
        ``IntSlider`` for ``k``, and below them the re-ranked shortlist and its heatmap.
    """
    names = [c for c in CRITERIA if c in criteria.columns]
    n = len(criteria)
    if not interactive:
        ranked = rank(criteria, weights, k=k, max_per_site=max_per_site, max_per_kind=max_per_kind)
        return shortlist(ranked)

    import ipywidgets as widgets  # slow to import, and batch runs never need it

    controls: dict[str, Any] = {
        c: widgets.FloatSlider(
            value=float(weights.get(c, 0.0)),
            min=0.0,
            max=1.0,
            step=0.05,
            description=CRITERIA_LABELS[c],
            style={"description_width": "initial"},
            continuous_update=False,
        )
        for c in names
    }
    controls["k"] = widgets.IntSlider(
        value=int(k), min=1, max=max(1, n), description="pilots", continuous_update=False
    )

    def render(k: int, **values: float) -> Any:
        if sum(values.values()) <= 0:
            return "Give at least one criterion a weight above 0."
        ranked = rank(criteria, values, k=k, max_per_site=max_per_site, max_per_kind=max_per_kind)
        return shortlist(ranked), plot_criteria_heatmap(ranked, names)

    return explorer(
        controls,
        render,
        interactive=True,
        title="Move the weights: the ranking and the selected pilots follow.",
    )
