"""The explorers of workbook 01: re-cluster with sliders, and leaf through the 5 Ps cards."""

from __future__ import annotations

from typing import Any

import pandas as pd
from IPython.display import HTML, Markdown
from matplotlib.figure import Figure

from qi_helpers.chart_display import chart_html
from qi_helpers.identify.cards import cards_html
from qi_helpers.identify.figures import plot_profile_card, plot_staff_network
from qi_helpers.identify.microsystems import Identification, identify
from qi_helpers.identify.network import encode
from qi_helpers.identify.profiles import Profiles
from qi_helpers.identify.published import published_registry
from qi_helpers.privacy.small_cells import SMALL_CELL_THRESHOLD
from qi_helpers.widgets._base import explorer

__all__ = ["REGISTRY_SHOWN", "Shown", "identify_explorer", "profile_cards"]

REGISTRY_SHOWN = ["microsystem_id", "kind", "n_staff", "n_patients", "weekly_volume", "measurable"]


class Shown:
    """Several things shown one after the other as one cell value (Markdown, figures, tables).

    Figures are shown as charts for people (:func:`qi_helpers.chart_display.chart_html`: the
    width of the page, alt text, caption), drawn once (no tight bounding box, which would draw
    them twice): a report with a card per microsystem stays quick to build.
    """

    def __init__(self, *items: Any) -> None:
        self.items = [item for item in items if item is not None]

    def _ipython_display_(self) -> None:
        # looked up when shown, not imported once: the front end (JupyterLab's Output widget,
        # or a test standing in for it) may route IPython's display elsewhere
        from IPython.display import display

        for item in self.items:
            if isinstance(item, Figure):
                item = HTML(chart_html(item, tight=False))
            display(item)

    def __repr__(self) -> str:  # outside IPython
        return "\n\n".join(str(item) for item in self.items)


def _summary(result: Identification) -> str:
    merges = result.merges
    n_split = int((merges["action"] == "split").sum())
    n_merge = int((merges["action"] == "merge").sum())
    not_measurable = int((~result.registry["measurable"]).sum())
    s = result.settings
    return (
        f"**{len(result.registry)} microsystems** with ties of at least "
        f"{s['min_shared_patients']} shared patients, resolution {s['resolution']:g} and a "
        f"minimum of {s['min_weekly_volume']:g} activities a week: {n_split} split(s) by work "
        f"area and activities or by the refinement, {n_merge} merge(s) of clusters too small to "
        f"measure, {not_measurable} kept but not measurable on their own."
    )


def identify_explorer(
    activities: pd.DataFrame,
    staff: pd.DataFrame | None = None,
    *,
    start: str | None = None,
    end: str | None = None,
    min_shared_patients: int = 6,
    resolution: float = 1.0,
    min_weekly_volume: float = 20,
    seed: int = 0,
    interactive: bool = True,
    small_cell_threshold: int = SMALL_CELL_THRESHOLD,
    **options: Any,
) -> Any:
    """Sliders for ``min_shared_patients``, ``resolution`` and ``min_weekly_volume`` that redo
    the clustering of :func:`qi_helpers.identify.microsystems.identify`.

    The activities are read and encoded once (:func:`qi_helpers.identify.network.encode`); each move
    of a slider re-clusters from the encoded network, and results already seen are kept.

    Parameters
    ----------
    activities, staff : DataFrame
        As for ``identify``.
    start, end : str, optional
        The window.
    min_shared_patients, resolution, min_weekly_volume, seed
        The starting values (from the parameters).
    interactive : bool
        False in batch runs: show the static result for the starting values.
    small_cell_threshold : int
        Patient counts from 1 to this minus 1 in the registry show as ``"<threshold"``
        (:func:`qi_helpers.identify.published.published_registry`).
    **options
        Passed to ``identify`` (``kind_by_activity``, ``site_pattern``, ``refine``,
        ``work_areas``).

    Returns
    -------
    object
        In batch, a :class:`Shown` of a one-line summary, the staff network
        (:func:`qi_helpers.identify.figures.plot_staff_network`) and the main registry columns.
        Interactively, the :func:`qi_helpers.widgets.explorer` box with an ``IntSlider``
        (shared patients, 1-30), two ``FloatSlider`` (resolution 0.2-5, minimum weekly volume
        0-200) and the same three items below them.
    """
    encoded = encode(activities, staff, start=start, end=end)
    seen: dict[tuple, Any] = {}

    def render(min_shared_patients: int, resolution: float, min_weekly_volume: float) -> Shown:
        key = (int(min_shared_patients), float(resolution), float(min_weekly_volume))
        if key not in seen:
            seen[key] = identify(
                activities,
                staff,
                start=start,
                end=end,
                min_shared_patients=key[0],
                resolution=key[1],
                min_weekly_volume=key[2],
                seed=seed,
                encoded=encoded,
                **options,
            )
        result = seen[key]
        return Shown(
            Markdown(_summary(result)),
            plot_staff_network(result, seed=seed),
            published_registry(result.registry, small_cell_threshold)[REGISTRY_SHOWN],
        )

    if not interactive:
        return render(min_shared_patients, resolution, min_weekly_volume)

    import ipywidgets as widgets  # slow to import, and batch runs never need it

    style = {"description_width": "initial"}
    controls = {
        "min_shared_patients": widgets.IntSlider(
            value=int(min_shared_patients),
            min=1,
            max=30,
            description="min shared patients",
            style=style,
            continuous_update=False,
        ),
        "resolution": widgets.FloatSlider(
            value=float(resolution),
            min=0.2,
            max=5.0,
            step=0.1,
            description="resolution",
            style=style,
            continuous_update=False,
        ),
        "min_weekly_volume": widgets.FloatSlider(
            value=float(min_weekly_volume),
            min=0.0,
            max=200.0,
            step=5.0,
            description="min weekly volume",
            style=style,
            continuous_update=False,
        ),
    }
    return explorer(
        controls,
        render,
        interactive=True,
        title="Move a slider: the clustering is redone and the network and registry follow.",
    )


def profile_cards(
    profiles: Profiles,
    microsystem_ids: list[str] | None = None,
    *,
    max_cards: int = 60,
    interactive: bool = True,
    small_cell_threshold: int = SMALL_CELL_THRESHOLD,
) -> Any:
    """Show the 5 Ps card of every microsystem.

    Parameters
    ----------
    profiles : qi_helpers.identify.profiles.Profiles
    microsystem_ids : list of str, optional
        Which cards, in this order (default: every microsystem, by id).
    max_cards : int
        At most this many cards at once (a long report is slow to open); a note says how many
        more there are.
    interactive : bool
        In JupyterLab, a drop-down chooses one card (the first to start with) or all of them;
        False in batch runs: all cards.
    small_cell_threshold : int
        On the HTML cards (the published ones), patient numbers from 1 to this minus 1 show as
        ``"<threshold"`` (``publish.small_cell_threshold``).

    Returns
    -------
    object
        In batch, a :class:`Shown` of the cards as HTML (:func:`qi_helpers.identify.cards.
        cards_html`: a few KB a card, the numbers as text, the run chart as a small SVG).
        Interactively, the :func:`qi_helpers.widgets.explorer` box with a ``Dropdown`` of the
        microsystems: one microsystem's card is drawn by
        :func:`qi_helpers.identify.figures.plot_profile_card`, "(all)" shows the HTML cards.
    """
    ids = list(microsystem_ids or sorted(profiles.summary["microsystem_id"]))
    everything = "(all)"

    def render(microsystem: str) -> Shown:
        if microsystem != everything:
            return Shown(plot_profile_card(profiles, microsystem, threshold=small_cell_threshold))
        chosen, note = ids, None
        if len(chosen) > max_cards:
            note = Markdown(
                f"Showing the first {max_cards} of {len(chosen)} cards; pass "
                "`microsystem_ids` (or `max_cards`) to see others."
            )
            chosen = chosen[:max_cards]
        return Shown(note, HTML(cards_html(profiles, chosen, threshold=small_cell_threshold)))

    if not interactive:
        return render(everything)

    import ipywidgets as widgets  # slow to import, and batch runs never need it

    controls = {
        "microsystem": widgets.Dropdown(
            options=[*ids, everything], value=ids[0], description="microsystem"
        )
    }
    return explorer(controls, render, interactive=True, title="Choose a microsystem's card.")
