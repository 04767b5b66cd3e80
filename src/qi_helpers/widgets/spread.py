"""The explorer of workbook 04: re-plan the spread waves live."""

from __future__ import annotations

from typing import Any

import pandas as pd

from qi_helpers.spread.figures import plot_waves
from qi_helpers.spread.waves import plan
from qi_helpers.widgets._base import explorer


def spread_explorer(
    candidate_table: pd.DataFrame,
    *,
    start: str,
    waves: int = 3,
    wave_size: int | None = None,
    wave_length_weeks: int = 12,
    interactive: bool = True,
) -> Any:
    """Choose the number of waves (or the wave size) and the wave length; see the plan redrawn.

    Parameters
    ----------
    candidate_table : DataFrame
        From :func:`qi_helpers.spread.adopters.all_candidates`.
    start : str
        ISO date of the first wave's start.
    waves, wave_size, wave_length_weeks
        The starting values (as :func:`qi_helpers.spread.waves.plan`); a wave size of 0 in the
        controls means "split into the chosen number of waves".
    interactive : bool
        False in batch: return the static Gantt chart and plan for the starting values.

    Returns
    -------
    object
        In batch, ``(Figure, DataFrame)``: :func:`qi_helpers.spread.figures.plot_waves` of the plan
        and the plan's main columns. Interactively, the explorer box (see
        :func:`qi_helpers.widgets.explorer`) with controls ``waves``, ``wave_size`` and
        ``wave_length_weeks``.
    """
    shown = ["change", "wave", "adopter_category", "wave_start", "microsystem_id", "score"]

    def render(waves: int, wave_size: int, wave_length_weeks: int) -> tuple[Any, pd.DataFrame]:
        table = plan(
            candidate_table,
            waves=waves,
            wave_size=wave_size or None,
            start=start,
            wave_length_weeks=wave_length_weeks,
        )
        return plot_waves(table), table[[c for c in shown if c in table.columns]]

    largest = int(candidate_table.groupby("change").size().max()) if len(candidate_table) else 1
    if not interactive:
        return render(waves, wave_size or 0, wave_length_weeks)

    import ipywidgets as widgets  # slow to import, and batch runs never need it

    controls = {
        "waves": widgets.IntSlider(value=waves, min=1, max=max(6, waves), description="waves"),
        "wave_size": widgets.IntSlider(
            value=wave_size or 0,
            min=0,
            max=max(largest, wave_size or 0, 1),
            description="wave size",
        ),
        "wave_length_weeks": widgets.IntSlider(
            value=wave_length_weeks, min=4, max=max(26, wave_length_weeks), description="weeks"
        ),
    }
    return explorer(
        controls,
        render,
        interactive=True,
        title="Spread plan: waves (wave size 0 = split into the number of waves)",
    )
