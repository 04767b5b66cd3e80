"""Figures of the method's workbooks other than single SPC charts: the staff network, the PDSA
timeline, the pilot criteria heatmap, a microsystem's measures as small multiples, spread waves.

Every function takes computed tables and returns a matplotlib ``Figure``; nothing here computes.
No patient identifier is ever drawn, and staff are shown only as anonymous points.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

import qi_helpers.notebook_display  # noqa: F401 - shows returned figures in notebooks

#: Okabe-Ito, a palette that colour-blind readers can tell apart (Okabe & Ito 2008).
OKABE_ITO = [
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#000000",
    "#999999",
]


def _subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """Like ``plt.subplots`` without pyplot: the figure is not registered with pyplot, so a
    notebook shows it once (as the cell's value), and nothing needs closing."""
    figsize = kwargs.pop("figsize", None)
    fig = Figure(figsize=figsize, layout="tight")
    axes = fig.subplots(nrows, ncols, **kwargs)
    return fig, axes


DECISION_COLOURS = {
    "adopt": "#009E73",
    "adapt": "#E69F00",
    "abandon": "#D55E00",
    "ongoing": "#56B4E9",
}


def network_layout(
    identification, *, seed: int = 0
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


def plot_staff_network(identification, *, seed: int = 0, max_nodes: int = 1500) -> Figure:
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
    colour = {ms: OKABE_ITO[i % len(OKABE_ITO)] for i, ms in enumerate(ids)}
    ties = identification.ties
    fig, ax = _subplots(figsize=(9, 9))
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
            color=colour[ms] if colour[ms] != "#F0E442" else "#8a7d00",
        )
    ax.set_title(
        f"Who works with whom: {len(main)} staff in {len(ids)} microsystems; lines are "
        "ties of shared patients"
    )
    ax.set_xlim(-1.4, 1.4)
    ax.set_ylim(-1.4, 1.4)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig


def plot_pdsa_timeline(pdsa: pd.DataFrame, *, end: str | pd.Timestamp | None = None) -> Figure:
    """PDSA cycles as bars on a time line, one row per change, coloured by decision."""
    fig, ax = _subplots(figsize=(10, 1.2 + 0.5 * max(1, pdsa["change"].nunique())))
    if pdsa.empty:
        ax.text(
            0.5,
            0.5,
            "No PDSA cycles recorded for this microsystem yet.",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.axis("off")
        return fig
    changes = list(dict.fromkeys(pdsa.sort_values("start")["change"]))
    last = pd.Timestamp(end) if end is not None else pdsa["start"].max() + pd.Timedelta(weeks=4)
    for _, row in pdsa.iterrows():
        start = row["start"]
        finish = row.get("end")
        finish = finish if pd.notna(finish) else last
        decision = str(row.get("decision") or "ongoing").lower()
        y = changes.index(row["change"])
        ax.barh(
            y,
            (finish - start).days,
            left=start,
            height=0.5,
            color=DECISION_COLOURS.get(decision, "#999999"),
            edgecolor="white",
        )
        ax.text(start, y + 0.32, str(row["cycle_id"]), fontsize=7)
    ax.set_yticks(range(len(changes)), labels=changes)
    ax.invert_yaxis()
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in DECISION_COLOURS.values()]
    ax.legend(
        handles,
        list(DECISION_COLOURS),
        ncols=4,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.15),
        frameon=False,
    )
    ax.set_title("PDSA cycles: each bar is one cycle, coloured by the decision that closed it")
    return fig


def plot_measures(analysis, *, ncols: int = 2) -> Figure:
    """One annotated SPC chart per measure of a microsystem (small multiples).

    Parameters
    ----------
    analysis : qi_helpers.changes.MicrosystemAnalysis
    ncols : int
    """
    from qi_helpers.charts import plot_qic

    charts = [a for a in analysis.analyses if not a.chart.empty]
    if not charts:
        fig, ax = _subplots(figsize=(8, 2))
        ax.text(0.5, 0.5, "No measured data for this microsystem.", ha="center", va="center")
        ax.axis("off")
        return fig
    nrows = math.ceil(len(charts) / ncols)
    fig, axes = _subplots(nrows, ncols, figsize=(7 * ncols, 3.8 * nrows), squeeze=False)
    info = analysis.measures.set_index("measure_id")
    pdsa = analysis.pdsa
    notes = (
        pd.DataFrame({"date": pdsa["start"], "label": pdsa["cycle_id"].astype(str)})
        if len(pdsa)
        else None
    )
    for ax, item in zip(axes.flat, charts, strict=False):
        row = info.loc[item.measure_id]
        verdict = item.verdict["verdict"]
        plot_qic(
            item.chart,
            ax=ax,
            title=f"{row['name']} ({row['family']}): {verdict}",
            improvement=str(row["improvement"]),
            annotations=notes,
        )
        unit = row.get("unit")
        ax.set_ylabel("" if unit is None or pd.isna(unit) else str(unit))
    for ax in list(axes.flat)[len(charts) :]:
        ax.axis("off")
    return fig


def plot_criteria_heatmap(ranked: pd.DataFrame, criteria: list[str], *, top: int = 25) -> Figure:
    """The pilot criteria scores (0 worst, 1 best) of the top candidates, as a heatmap."""
    import seaborn as sns

    shown = ranked.head(top).set_index("microsystem_id")[criteria + ["score"]]
    fig, ax = _subplots(figsize=(1.4 * len(shown.columns) + 3, 0.35 * len(shown) + 1.5))
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


def plot_waves(plan: pd.DataFrame) -> Figure:
    """The spread plan as a Gantt chart: one bar per adopting microsystem, coloured by wave."""
    fig, ax = _subplots(figsize=(10, 1 + 0.3 * max(1, len(plan))))
    if plan.empty:
        ax.text(
            0.5,
            0.5,
            "No change has improved results yet: nothing to spread.",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.axis("off")
        return fig
    labels = (plan["change"] + ": " + plan["microsystem_id"]).tolist()
    for y, row in enumerate(plan.itertuples()):
        ax.barh(
            y,
            (row.wave_end - row.wave_start).days,
            left=row.wave_start,
            height=0.6,
            color=OKABE_ITO[(row.wave - 1) % len(OKABE_ITO)],
        )
    ax.set_yticks(range(len(labels)), labels=labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_title("Spread plan: adopters in waves")
    return fig
