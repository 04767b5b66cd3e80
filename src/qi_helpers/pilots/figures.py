"""Figures of workbook 02: the pilot criteria heatmap and the candidates' baselines.

Every function takes computed tables and returns a matplotlib ``Figure``; nothing here computes.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import qi_helpers.notebook_display  # noqa: F401 - shows returned figures in notebooks
from qi_helpers.drawing import plain_text, subplots
from qi_helpers.pilots.scoring import CRITERIA, CRITERIA_LABELS
from qi_helpers.spc.plots import plot_qic_facets


def plot_criteria_heatmap(
    ranked: pd.DataFrame, criteria: list[str] | None = None, *, top: int = 25
) -> Figure:
    """The pilot criteria scores (0 worst, 1 best) of the best-ranked candidates, as a heatmap.

    Parameters
    ----------
    ranked : DataFrame
        From :func:`qi_helpers.pilots.ranking.rank` (``microsystem_id``, the criteria, ``score``,
        and optionally ``rank`` and ``selected``).
    criteria : list of str, optional
        The criteria columns to show (default: those of
        :data:`qi_helpers.pilots.scoring.CRITERIA` present).
    top : int
        Show at most this many candidates, best first.

    Returns
    -------
    matplotlib.figure.Figure
        One row per candidate (labelled ``rank. id``, with ``(pilot)`` when selected), one column
        per criterion plus the total ``score``, each cell annotated with its value.
    """
    import seaborn as sns  # slow to import, and only this figure uses it

    if criteria is None:
        criteria = [c for c in CRITERIA if c in ranked.columns]
    head = ranked.head(top)
    shown = head[criteria + ["score"]].astype(float)
    labels = head["microsystem_id"].astype(str)
    if "rank" in head.columns:
        labels = head["rank"].astype(str) + ". " + labels
    if "selected" in head.columns:
        labels = labels + np.where(head["selected"].to_numpy(dtype=bool), " (pilot)", "")
    shown.index = labels.to_numpy()
    # Labels wrapped and the figure kept narrow: it is shown at the page's width with its text
    # raised to the page's body size (qi_helpers.chart_display.min_text_points).
    shown.columns = [textwrap.fill(CRITERIA_LABELS.get(c, c), 11) for c in shown.columns]
    fig, ax = subplots(figsize=(1.15 * len(shown.columns) + 2.6, 0.45 * len(shown) + 2.4))
    with plain_text():  # seaborn measures its tick labels before any draw
        sns.heatmap(
            shown,
            annot=True,
            fmt=".2f",
            vmin=0,
            vmax=1,
            cmap="viridis",
            ax=ax,
            cbar_kws={"label": "score (1 = best)"},
        )
    ax.set_ylabel("")
    ax.set_title("Pilot criteria, best candidates first")
    return fig


def plot_pilot_baselines(
    charts: pd.DataFrame, *, rules: str | None = None, ncols: int = 2
) -> Figure:
    """The baseline control chart of each top candidate, as small multiples.

    Parameters
    ----------
    charts : DataFrame
        From :func:`qi_helpers.pilots.baselines.baseline_charts` (a
        :func:`qi_helpers.spc.qic.qic` frame faceted by microsystem, in rank order).
    rules : str, optional
        Rule set that colours the special-cause points (default Anhøj's).
    ncols : int
        Panels per row (two: the figure is shown at the page's width, and its text must stay
        as large as the page's, :func:`qi_helpers.chart_display.min_text_points`).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per candidate, titled with its id; special causes in the direction of
        improvement and of concern coloured as in :func:`qi_helpers.spc.plots.plot_qic`.
    """
    info = charts.attrs.get("pilots", {})
    unit = info.get("unit", "")
    title = f"Baselines of the best-ranked candidates: {info.get('name', '')}"
    title += f" ({unit})" if unit else ""
    return plot_qic_facets(
        charts,
        ncols=ncols,
        title=title,
        improvement=info.get("improvement"),
        rules=rules,
        sharey=True,
    )
