"""Figures of workbook 01: the staff network and the 5 Ps profile card of a microsystem.

Every function takes computed tables and returns a matplotlib ``Figure``; nothing here computes.
No patient identifier is ever drawn, and staff are shown only as anonymous points.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

import qi_helpers.notebook_display  # noqa: F401 - shows returned figures in notebooks
from qi_helpers.drawing import CATEGORY_COLOURS, OKABE_ITO, figure, subplots
from qi_helpers.identify.cards import card_facts, profile_row
from qi_helpers.identify.microsystems import Identification
from qi_helpers.identify.profiles import DAYS, Profiles
from qi_helpers.identify.published import patient_cells, published_summary
from qi_helpers.privacy.small_cells import SMALL_CELL_THRESHOLD
from qi_helpers.spc.plots import plot_qic

__all__ = ["network_layout", "plot_profile_card", "plot_staff_network"]


def network_layout(
    identification: Identification, *, seed: int = 0
) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[float, float]]]:
    """Positions for drawing the staff network: microsystems on a circle, staff around them.

    Microsystems are placed on a circle in the order of their ids (which keeps a site's teams
    together); each one's staff sit on a small circle around its centre, in a seeded random order.
    Deterministic, and readable whatever the shape of the network (isolated teams included).

    Returns
    -------
    staff_positions : dict
        ``staff_id -> (x, y)``.
    centres : dict
        ``microsystem_id -> (x, y)``.
    """
    rng = np.random.default_rng(seed)
    main = (
        identification.staff.sort_values("share", ascending=False, kind="stable")
        .drop_duplicates("staff_id")
        .set_index("staff_id")["microsystem_id"]
    )
    ids = sorted(identification.registry["microsystem_id"])
    angles = np.linspace(0, 2 * np.pi, len(ids), endpoint=False)
    centres = {ms: (float(np.cos(a)), float(np.sin(a))) for ms, a in zip(ids, angles, strict=True)}
    radius = min(0.25, 2.5 / max(len(ids), 1))
    positions: dict[str, tuple[float, float]] = {}
    for ms, members in main.groupby(main, sort=True):
        names = sorted(members.index)
        turn = rng.permutation(len(names)) * 2 * np.pi / max(len(names), 1)
        cx, cy = centres.get(ms, (0.0, 0.0))
        for name, t in zip(names, turn, strict=True):
            positions[name] = (cx + radius * float(np.cos(t)), cy + radius * float(np.sin(t)))
    return positions, centres


def plot_staff_network(
    identification: Identification, *, seed: int = 0, max_nodes: int = 1500
) -> Figure:
    """The staff network: one point per staff member, coloured by microsystem.

    Microsystems sit on a circle, their staff around them; lines are the kept ties of shared
    patients (darker for more shared patients). Long chords across the circle are staff who share
    patients with another microsystem. No label names a person. Above ``max_nodes`` staff only
    the ties between microsystems are drawn.
    """
    positions, centres = network_layout(identification, seed=seed)
    main = (
        identification.staff.sort_values("share", ascending=False, kind="stable")
        .drop_duplicates("staff_id")
        .set_index("staff_id")["microsystem_id"]
    )
    ids = sorted(centres)
    colour = {ms: CATEGORY_COLOURS[i % len(CATEGORY_COLOURS)] for i, ms in enumerate(ids)}
    ties = identification.ties
    fig, ax = subplots(figsize=(7.5, 7.5))
    if ties is not None and len(ties):
        ties = ties[ties["staff_a"].isin(positions) & ties["staff_b"].isin(positions)]
        strength = ties["shared_patients"] / ties["shared_patients"].max()
        if len(main) <= max_nodes:
            segments = [
                [positions[a], positions[b]]
                for a, b in zip(ties["staff_a"], ties["staff_b"], strict=True)
            ]
            widths = 0.2 + 1.2 * strength.to_numpy()
        else:
            pairs = ties.assign(a=ties["staff_a"].map(main), b=ties["staff_b"].map(main))
            pairs = pairs[pairs["a"] != pairs["b"]].groupby(["a", "b"]).size()
            segments = [[centres[a], centres[b]] for a, b in pairs.index]
            widths = 0.3 + 1.5 * (pairs / pairs.max()).to_numpy()
        ax.add_collection(
            LineCollection(segments, linewidths=widths, colors="#52606d", alpha=0.25, zorder=1)
        )
    if len(main) <= max_nodes:
        xy = np.array([positions[s] for s in main.index])
        ax.scatter(
            xy[:, 0],
            xy[:, 1],
            s=18,
            zorder=2,
            c=[colour.get(ms, "#999999") for ms in main.to_numpy()],
        )
    for ms, (x, y) in centres.items():
        ax.annotate(
            ms,
            (x * 1.18, y * 1.18),
            fontsize=8,
            ha="center",
            va="center",
            weight="bold",
            color=colour[ms] if colour[ms] != OKABE_ITO["yellow"] else "#8a7d00",
        )
    ax.set_title(
        f"Who works with whom: {len(main)} staff in {len(ids)} microsystems; lines are "
        "ties of shared patients",
        fontsize=10,
    )
    ax.set_xlim(-1.4, 1.4)
    ax.set_ylim(-1.4, 1.4)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig


# ---- 5 Ps profile cards (workbook 01) --------------------------------------------------------
def _mix_bars(
    ax: Axes,
    mix: pd.DataFrame,
    title: str,
    *,
    top: int = 6,
    colour: str = OKABE_ITO["blue"],
    hidden: dict[str, str] | None = None,
) -> None:
    """Horizontal bars of a mix; a category in ``hidden`` shows its small-cell label, no bar."""
    hidden = hidden or {}
    part = mix.sort_values(["n", "category"], ascending=[False, True]).head(top)
    if part.empty:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.axis("off")
    else:
        names = [f"{c} ({hidden[c]})" if c in hidden else str(c) for c in part["category"]]
        shares = (part["share"] * 100).where(~part["category"].isin(list(hidden)), 0.0)
        ax.barh(names, shares, color=colour)
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=8)
        ax.set_xlabel("%", fontsize=8)
    ax.set_title(title, loc="left", fontsize=9)


def _hidden_categories(
    profiles: Profiles, microsystem_id: str, threshold: int
) -> dict[str, dict[str, str]]:
    """The small-cell label of each hidden category, by dimension (``age_band``, ...)."""
    cells = patient_cells(profiles, threshold)
    cells = cells[(cells["microsystem_id"] == microsystem_id) & (cells["code"] != "")]
    return {
        dimension: dict(zip(part["category"].astype(str), part["label"], strict=True))
        for dimension, part in cells.groupby("dimension")
    }


def _facts_panel(ax: Axes, facts: dict[str, str]) -> None:
    """The card's summary in words: Purpose, Professionals and Processes."""
    ax.axis("off")
    lines = [f"{p}: {facts[p]}" for p in ("Purpose", "Professionals", "Processes")]
    wrapped = "\n\n".join(textwrap.fill(line, 52) for line in lines)
    ax.text(0, 1, wrapped, va="top", ha="left", fontsize=8, transform=ax.transAxes)


def _ages_panel(ax: Axes, mix: pd.DataFrame, shown: pd.Series, small: dict[str, str]) -> None:
    """Age bands (% of the panel; hidden ones labelled, without a bar), titled with the panel."""
    ages = mix[(mix["dimension"] == "age_band") & (mix["category"] != "unknown")]
    if ages.empty:
        ax.axis("off")
    else:
        ages = ages.sort_values("category")
        names = [f"{c}\n({small[c]})" if c in small else str(c) for c in ages["category"]]
        heights = (ages["share"] * 100).where(~ages["category"].isin(list(small)), 0.0)
        ax.bar(names, heights, color=OKABE_ITO["orange"])
        ax.tick_params(axis="x", labelsize=8)
        ax.set_ylabel("% of panel", fontsize=8)
    female = shown["share_female"]  # empty when a count of its dimension is hidden
    sex = "" if pd.isna(female) else f", {100 * female:.0f}% female"
    panel = shown["panel_size"]
    panel = f"{panel:,}" if isinstance(panel, int | float | np.integer) else str(panel)
    ax.set_title(f"Patients: panel of {panel}{sex}", loc="left", fontsize=9)


def _weekly_panel(ax: Axes, chart: pd.DataFrame) -> None:
    """The weekly run chart (:func:`qi_helpers.spc.plots.plot_qic`), without its legend."""
    if len(chart):
        plot_qic(chart, ax=ax, title="Patterns: activities a week (run chart)")
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
        ax.set_xlabel("")
        ax.set_ylabel("activities", fontsize=8)
    else:
        ax.axis("off")


def _days_panel(ax: Axes, mix: pd.DataFrame) -> None:
    """The day-of-week mix, Monday to Sunday."""
    days = mix[mix["dimension"] == "day_of_week"].copy()
    order = list(DAYS)
    days = days.set_index("category").reindex(order).fillna({"share": 0.0})
    ax.bar(order, days["share"] * 100, color=OKABE_ITO["sky_blue"])
    ax.set_title("Patterns: day of the week (%)", loc="left", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)


def plot_profile_card(
    profiles: Profiles, microsystem_id: str, *, threshold: int = SMALL_CELL_THRESHOLD
) -> Figure:
    """One microsystem's 5 Ps on one card: the team's picture of itself.

    Parameters
    ----------
    profiles : qi_helpers.identify.profiles.Profiles
        The result of :func:`qi_helpers.identify.profiles.profile`.
    microsystem_id : str
        Which microsystem.
    threshold : int
        ``publish.small_cell_threshold``: patient numbers are drawn as the published cards show
        them (:func:`qi_helpers.identify.published.patient_cells`): a hidden age band or
        condition has no bar and its label says ``<11`` or ``*``; a hidden panel size or share
        is not written.

    Returns
    -------
    matplotlib.figure.Figure
        Panels: a summary in words (purpose, patients, professionals, processes); Purpose
        (activity mix); Professionals (full-time equivalents by role); Patients (age bands and
        leading conditions, % of the panel); Patterns (weekly run chart, drawn by
        :func:`qi_helpers.spc.plots.plot_qic`, and day-of-week mix). Only counts and shares: no
        patient or staff identifier. :func:`qi_helpers.identify.cards.card_html` shows the same
        card as light HTML (the published reports use it).

    Raises
    ------
    DataError
        No profile for ``microsystem_id``.
    """
    row = profile_row(profiles, microsystem_id)
    mix = profiles.mix[profiles.mix["microsystem_id"] == microsystem_id]
    published = published_summary(profiles, threshold)
    shown = published[published["microsystem_id"] == microsystem_id].iloc[0]
    hidden = _hidden_categories(profiles, microsystem_id, threshold)
    # a fixed layout: a constrained one costs several extra draws per card; 60 dpi keeps a
    # report of many cards light (each card is wide, so its text stays readable)
    fig = figure(figsize=(16, 6.6), dpi=60)
    grid = fig.add_gridspec(
        2, 4, left=0.07, right=0.99, top=0.9, bottom=0.07, wspace=0.45, hspace=0.35
    )
    _facts_panel(fig.add_subplot(grid[0, 0]), dict(card_facts(profiles, microsystem_id)))
    _mix_bars(
        fig.add_subplot(grid[0, 1]), mix[mix["dimension"] == "activity"], "Purpose: main activities"
    )
    _mix_bars(
        fig.add_subplot(grid[0, 2]),
        mix[mix["dimension"] == "role_fte"],
        f"Professionals: FTE by role ({row['fte']:.1f} FTE)",
        colour=OKABE_ITO["bluish_green"],
    )
    _ages_panel(fig.add_subplot(grid[0, 3]), mix, shown, hidden.get("age_band", {}))
    _mix_bars(
        fig.add_subplot(grid[1, 0]),
        mix[mix["dimension"] == "condition"],
        "Patients: leading conditions (% of panel)",
        top=5,
        colour=OKABE_ITO["vermillion"],
        hidden=hidden.get("condition", {}),
    )
    chart = profiles.weekly[profiles.weekly["facet1"] == microsystem_id]
    _weekly_panel(fig.add_subplot(grid[1, 1:3]), chart)
    _days_panel(fig.add_subplot(grid[1, 3]), mix)
    fig.suptitle(
        f"{microsystem_id}: {row.get('name', row['kind'])}", x=0.01, ha="left", fontsize=12
    )
    return fig
