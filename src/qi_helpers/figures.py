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
from qi_helpers.drawing import figure, plain_text, subplots

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
            color=colour[ms] if colour[ms] != "#F0E442" else "#8a7d00",
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


def plot_pdsa_timeline(
    pdsa: pd.DataFrame,
    *,
    end: str | pd.Timestamp | None = None,
    start: str | pd.Timestamp | None = None,
) -> Figure:
    """PDSA cycles as bars on a time line, one row per change, coloured by decision.

    Parameters
    ----------
    pdsa : DataFrame
        The PDSA log of one microsystem (``cycle_id, change, start`` and optionally ``end,
        decision``).
    end : date, optional
        Where a cycle without an end stops (e.g. the last measured period); also the right end
        of the time axis.
    start : date, optional
        The left end of the time axis (e.g. the first measured period), so that the time line
        lines up with the measures' charts.

    Returns
    -------
    matplotlib.figure.Figure
        One bar per cycle labelled with its number (the end of its ``cycle_id``), coloured by
        decision (adopt, adapt,
        abandon, ongoing: :data:`DECISION_COLOURS`).
    """
    fig, ax = subplots(figsize=(10, 1.2 + 0.5 * max(1, pdsa["change"].nunique())))
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
    starts = pd.to_datetime(pdsa["start"])
    last = pd.Timestamp(end) if end is not None else starts.max() + pd.Timedelta(weeks=4)
    for (_, row), begin in zip(pdsa.iterrows(), starts, strict=True):
        finish = pd.Timestamp(row["end"]) if pd.notna(row.get("end")) else last
        decision = row.get("decision")
        decision = str(decision).lower() if pd.notna(decision) and decision else "ongoing"
        y = changes.index(row["change"])
        ax.barh(
            y,
            max((finish - begin).days, 1),
            left=begin,
            height=0.5,
            color=DECISION_COLOURS.get(decision, "#999999"),
            edgecolor="white",
        )
        ax.text(begin, y - 0.3, str(row["cycle_id"]).rsplit("-", 1)[-1], fontsize=7)
    ax.set_yticks(range(len(changes)), labels=changes)
    ax.invert_yaxis()
    if start is not None:
        ax.set_xlim(left=pd.Timestamp(start))
    if end is not None:
        ax.set_xlim(right=pd.Timestamp(end))
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


def _change_title(item) -> str:
    """``name (family): verdict, effect`` for one measure's chart."""
    m = item.measure
    v = item.verdicts
    first = v.iloc[0] if len(v) else None
    verdict = "no data" if first is None else str(first["verdict"])
    extra = ""
    if first is not None and pd.notna(first.get("effect")) and first["verdict"] != "baseline only":
        kind = str(first.get("effect_kind", ""))
        if kind == "rate ratio":
            extra = f"; rate ratio {first['effect']:.2f}"
        else:
            extra = f"; change {first['effect']:+.3g}"
    balances = m.get("balances")
    family = str(m.get("family", ""))
    if family == "balancing" and isinstance(balances, str) and balances:
        family = f"balancing {balances}"
    return f"{m.get('name', item.measure_id)} ({family}): {verdict}{extra}"


def plot_change(
    item,
    *,
    show_95: bool = False,
    rules: str | None = None,
    ax=None,
    title: str | None = None,
) -> Figure:
    """One measure's chart with its phases, PDSA cycles and abandoned test windows.

    Parameters
    ----------
    item : qi_helpers.measure_analysis.ChangeAnalysis
        From :func:`qi_helpers.measure_analysis.analyse`.
    show_95 : bool
        Also draw the 2-sigma (95%) limits.
    rules : str, optional
        Rule set colouring the special-cause points (default: the analysis' own).
    ax : matplotlib Axes, optional
        Draw on this axes.
    title : str, optional
        Default: the measure, its family and its verdict with the effect.

    Returns
    -------
    matplotlib.figure.Figure
        The :func:`qi_helpers.charts.plot_qic` chart (one part per phase); vertical lines and
        labels mark the PDSA cycles; the window of each abandoned test is shaded.
    """
    from qi_helpers.charts import plot_qic

    if ax is None:
        fig, ax = subplots(figsize=(8, 4))
    else:
        fig = ax.figure
    if item.chart.empty:
        ax.text(0.5, 0.5, f"{item.measure.get('name', item.measure_id)}: no data", ha="center",
                va="center", transform=ax.transAxes)  # fmt: skip
        ax.axis("off")
        return fig
    notes = item.annotations[["date", "label"]] if len(item.annotations) else None
    plot_qic(
        item.chart,
        ax=ax,
        title=title if title is not None else _change_title(item),
        improvement=str(item.measure["improvement"]),
        rules=rules or item.rules,
        annotations=notes,
        show_95=show_95,
    )
    for row in item.tested.itertuples():
        finish = row.end if pd.notna(row.end) else item.chart["x"].max()
        ax.axvspan(
            pd.Timestamp(row.start), pd.Timestamp(finish), color=OKABE_ITO[5], alpha=0.08,
            gid="abandoned_test",
        )  # fmt: skip
    unit = item.measure.get("unit")
    ax.set_ylabel("" if unit is None or pd.isna(unit) else str(unit))
    ax.set_xlabel("")
    return fig


def plot_measures(analysis, *, ncols: int = 2, show_95: bool = False) -> Figure:
    """One annotated SPC chart per measure of a microsystem (small multiples).

    Parameters
    ----------
    analysis : qi_helpers.changes.MicrosystemAnalysis
        Its measures are drawn in order: grouped by aim and family, each balancing measure
        right after the outcome it balances.
    ncols : int
        Charts per row.
    show_95 : bool
        Also draw the 2-sigma limits.

    Returns
    -------
    matplotlib.figure.Figure
        One :func:`plot_change` panel per measure with data.
    """
    charts = [a for a in analysis.analyses if not a.chart.empty]
    if not charts:
        fig, ax = subplots(figsize=(8, 2))
        ax.text(0.5, 0.5, "No measured data for this microsystem.", ha="center", va="center")
        ax.axis("off")
        return fig
    ncols = max(1, min(ncols, len(charts)))
    nrows = math.ceil(len(charts) / ncols)
    fig, axes = subplots(nrows, ncols, figsize=(7 * ncols, 3.8 * nrows), squeeze=False)
    for ax, item in zip(axes.flat, charts, strict=False):
        plot_change(item, ax=ax, show_95=show_95)
        ax.title.set_fontsize(9)
    for ax in list(axes.flat)[len(charts) :]:
        ax.axis("off")
    return fig


def plot_subgroups(subgroups: pd.DataFrame, *, threshold: int = 11) -> Figure:
    """The effect of each change in each patient subgroup, next to the whole (a forest plot).

    Parameters
    ----------
    subgroups : DataFrame
        From :func:`qi_helpers.equity.subgroup_effects`.
    threshold : int
        ``publish.small_cell_threshold``: subgroups whose numbers the published table hides
        (``<11`` or ``*``, :func:`qi_helpers.equity.subgroup_mask`) are left out of the picture.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per measure and change; each subgroup's effect with its 95% interval, flagged
        subgroups (did not improve when the whole did) in vermillion, the whole's effect as a
        vertical line and no effect as a dashed one.
    """
    from qi_helpers.equity import subgroup_mask

    hidden = subgroup_mask(subgroups, threshold=threshold).ne("").any(axis=1)
    shown = subgroups[~hidden & subgroups["effect"].notna()]
    panels = list(dict.fromkeys(zip(shown["measure_id"], shown["change"], strict=True)))
    if not panels:
        fig, ax = subplots(figsize=(8, 1.5))
        ax.text(0.5, 0.5, "No change with enough patients to compare subgroups yet.",
                ha="center", va="center", transform=ax.transAxes)  # fmt: skip
        ax.axis("off")
        return fig
    sizes = [int(((shown["measure_id"] == m) & (shown["change"] == c)).sum()) for m, c in panels]
    fig, axes = subplots(len(panels), 1, figsize=(8, sum(0.28 * s + 1.2 for s in sizes)),
                         layout="constrained", squeeze=False,
                         height_ratios=[s + 3 for s in sizes])  # fmt: skip
    for ax, (mid, change) in zip(axes[:, 0], panels, strict=True):
        part = shown[(shown["measure_id"] == mid) & (shown["change"] == change)]
        whole = part[part["dimension"] == "all"]
        groups = part[part["dimension"] != "all"]
        labels = (groups["dimension"].str.replace("_", " ") + ": " + groups["subgroup"]).tolist()
        ys = np.arange(len(groups))
        colours = np.where(groups["flag"].to_numpy(bool), OKABE_ITO[5], OKABE_ITO[4])
        ax.hlines(ys, groups["effect_low"], groups["effect_high"], colors=colours, lw=1.6)
        ax.scatter(groups["effect"], ys, c=colours, s=22, zorder=3)
        kind = str(part["effect_kind"].iloc[0])
        ax.axvline(1.0 if kind == "rate ratio" else 0.0, color="#777777", ls="--", lw=0.9)
        if len(whole):
            ax.axvline(float(whole["effect"].iloc[0]), color=OKABE_ITO[7], lw=1.0)
        ax.set_yticks(ys, labels=labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(kind, fontsize=8)
        name = str(part["name"].iloc[0])
        ax.set_title(f"{name} after {change}: whole (black line) and subgroups", loc="left",
                     fontsize=9)  # fmt: skip
        ax.spines[["top", "right"]].set_visible(False)
    return fig


def plot_criteria_heatmap(
    ranked: pd.DataFrame, criteria: list[str] | None = None, *, top: int = 25
) -> Figure:
    """The pilot criteria scores (0 worst, 1 best) of the best-ranked candidates, as a heatmap.

    Parameters
    ----------
    ranked : DataFrame
        From :func:`qi_helpers.pilots.rank` (``microsystem_id``, the criteria, ``score``, and
        optionally ``rank`` and ``selected``).
    criteria : list of str, optional
        The criteria columns to show (default: those of :data:`qi_helpers.pilots.CRITERIA`
        present).
    top : int
        Show at most this many candidates, best first.

    Returns
    -------
    matplotlib.figure.Figure
        One row per candidate (labelled ``rank. id``, with ``(pilot)`` when selected), one column
        per criterion plus the total ``score``, each cell annotated with its value.
    """
    import seaborn as sns

    from qi_helpers.pilots import CRITERIA, CRITERIA_LABELS

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
    shown.columns = [CRITERIA_LABELS.get(c, c).replace(" ", "\n", 1) for c in shown.columns]
    fig, ax = subplots(figsize=(1.4 * len(shown.columns) + 3, 0.35 * len(shown) + 1.8))
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
    charts: pd.DataFrame, *, rules: str | None = None, ncols: int = 3
) -> Figure:
    """The baseline control chart of each top candidate, as small multiples.

    Parameters
    ----------
    charts : DataFrame
        From :func:`qi_helpers.pilots.baseline_charts` (a :func:`qi_helpers.spc.qic` frame
        faceted by microsystem, in rank order).
    rules : str, optional
        Rule set that colours the special-cause points (default Anhøj's).
    ncols : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per candidate, titled with its id; special causes in the direction of
        improvement and of concern coloured as in :func:`qi_helpers.charts.plot_qic`.
    """
    from qi_helpers.charts import plot_qic_facets

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


def plot_waves(plan: pd.DataFrame) -> Figure:
    """The spread plan as a Gantt chart: one bar per adopting microsystem, coloured by wave.

    Parameters
    ----------
    plan : DataFrame
        From :func:`qi_helpers.spread.plan` (``change, microsystem_id, wave, wave_start,
        wave_end``; ``adopter_category`` labels the legend when present).

    Returns
    -------
    matplotlib.figure.Figure
        Changes are grouped top to bottom, each adopter's bar spans its wave; an empty plan gives
        a figure that says there is nothing to spread.
    """
    import matplotlib.dates as mdates
    from matplotlib.patches import Patch

    fig, ax = subplots(figsize=(10, 1.2 + 0.28 * max(1, len(plan))))
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
    labels = (plan["change"].astype(str) + ": " + plan["microsystem_id"].astype(str)).tolist()
    starts = pd.to_datetime(plan["wave_start"])
    ends = pd.to_datetime(plan["wave_end"])
    waves = plan["wave"].astype(int).to_numpy()
    for y, (begin, end, wave) in enumerate(zip(starts, ends, waves, strict=True)):
        ax.barh(
            y,
            end - begin,
            left=begin,
            height=0.6,
            color=OKABE_ITO[(wave - 1) % len(OKABE_ITO)],
            edgecolor="white",
        )
    changes = plan["change"].astype(str).to_numpy()
    for y in range(1, len(changes)):
        if changes[y] != changes[y - 1]:
            ax.axhline(y - 0.5, color="#BBBBBB", lw=0.6)
    category = (
        plan.drop_duplicates("wave").set_index("wave")["adopter_category"]
        if "adopter_category" in plan
        else pd.Series(dtype=object)
    )
    handles = [
        Patch(
            color=OKABE_ITO[(w - 1) % len(OKABE_ITO)],
            label=f"wave {w}" + (f" ({category[w]})" if w in category.index else ""),
        )
        for w in sorted(set(waves))
    ]
    ax.legend(handles=handles, fontsize=8, frameon=False, loc="lower right")
    ax.set_yticks(range(len(labels)), labels=labels, fontsize=8)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(mdates.AutoDateLocator()))
    ax.set_title("Spread plan: adopters in waves")
    return fig


def plot_adoption_curve(curve: pd.DataFrame) -> Figure:
    """The adoption curve of each change: share of targeted microsystems adopted, by date.

    Parameters
    ----------
    curve : DataFrame
        From :func:`qi_helpers.tracking.adoption_curve` (``change, date, kind, share, wave``).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per change: the actual adoptions as a solid step line, the plan's waves as a
        dashed step line with the wave numbers at the ends of the waves; y from 0 to 100%.
    """
    import matplotlib.dates as mdates

    changes = sorted(curve["change"].unique()) if not curve.empty else []
    ncols = 2 if len(changes) > 1 else 1
    nrows = max(1, -(-len(changes) // ncols))
    fig, axes = subplots(nrows, ncols, figsize=(5.2 * ncols, 2.8 * nrows), squeeze=False)
    axes = axes.ravel()
    if not changes:
        axes[0].text(0.5, 0.5, "No adoption and no plan yet.", ha="center", va="center")
        axes[0].axis("off")
        return fig
    for ax, change in zip(axes, changes, strict=False):
        own = curve[curve["change"] == change].sort_values("date", kind="stable")
        actual = own[own["kind"] == "actual"]
        planned = own[own["kind"] == "planned"]
        if not actual.empty:
            ax.step(actual["date"], 100 * actual["share"], where="post", color=OKABE_ITO[4],
                    lw=2, label="adopted")  # fmt: skip
        if not planned.empty:
            start = actual.iloc[[-1]] if not actual.empty else planned.iloc[[0]]
            line = pd.concat([start, planned])
            ax.step(line["date"], 100 * line["share"], where="post", color=OKABE_ITO[0],
                    lw=1.5, ls="--", label="planned waves")  # fmt: skip
            for row in planned.itertuples():
                ax.annotate(f"wave {row.wave}", (row.date, 100 * row.share), xytext=(2, -10),
                            textcoords="offset points", fontsize=7)  # fmt: skip
        targeted = int(own["targeted"].max())
        ax.set_title(f"{change} ({targeted} targeted)", fontsize=9, loc="left")
        ax.set_ylim(0, 105)
        ax.set_ylabel("% adopted")
        locator = mdates.AutoDateLocator(minticks=3, maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.grid(axis="y", color="#E5E5E5", lw=0.6)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].legend(fontsize=7, frameon=False, loc="upper left")
    for ax in axes[len(changes) :]:
        fig.delaxes(ax)
    fig.suptitle("Adoption curves: actual and planned", x=0.01, ha="left", fontsize=11)
    return fig


def plot_sustain(tracking, *, ncols: int = 3) -> Figure:
    """Small multiples of every adopter's measure, with a phase at its adoption date.

    Parameters
    ----------
    tracking : SustainTracking
        From :func:`qi_helpers.tracking.sustain`.
    ncols : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per adopter and measure (drawn by :func:`qi_helpers.charts.plot_qic`, special
        causes coloured by the measure's direction of improvement), titled with the microsystem,
        the change and the sustain verdict; a vertical line marks the adoption date.
    """
    from qi_helpers.charts import plot_qic

    verdicts = tracking.verdicts
    n = len(verdicts)
    if n == 0:
        fig, ax = subplots(figsize=(6, 1.5))
        ax.text(0.5, 0.5, "No adopter to track yet.", ha="center", va="center")
        ax.axis("off")
        return fig
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = subplots(nrows, ncols, figsize=(4.2 * ncols, 2.9 * nrows + 0.5),
                         layout="constrained", squeeze=False)  # fmt: skip
    axes = axes.ravel()
    for ax, row in zip(axes, verdicts.itertuples(), strict=False):
        chart = tracking.charts[(row.microsystem_id, row.change, row.measure_id)]
        marks = pd.DataFrame({"date": [row.adopted], "label": ["adopted"]})
        plot_qic(chart, ax=ax, improvement=row.improvement, annotations=marks,
                 title="")  # fmt: skip
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_title(f"{row.microsystem_id}: {row.change}\n{row.name} - {row.verdict}",
                     fontsize=8, loc="left")  # fmt: skip
    for ax in axes[n:]:
        fig.delaxes(ax)
    fig.suptitle("Adopters: does the gain hold?", x=0.01, ha="left", fontsize=11)
    return fig


# ---- 5 Ps profile cards (workbook 01) --------------------------------------------------------
def _mix_bars(
    ax,
    mix: pd.DataFrame,
    title: str,
    *,
    top: int = 6,
    colour: str = "#0072B2",
    hidden: dict[str, str] | None = None,
):
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


def plot_profile_card(profiles, microsystem_id: str, *, threshold: int = 11) -> Figure:
    """One microsystem's 5 Ps on one card: the team's picture of itself.

    Parameters
    ----------
    profiles : qi_helpers.profiles.Profiles
        The result of :func:`qi_helpers.profiles.profile`.
    microsystem_id : str
        Which microsystem.
    threshold : int
        ``publish.small_cell_threshold``: patient numbers are drawn as the published cards show
        them (:func:`qi_helpers.profiles.patient_cells`): a hidden age band or condition has no
        bar and its label says ``<11`` or ``*``; a hidden panel size or share is not written.

    Returns
    -------
    matplotlib.figure.Figure
        Panels: a summary in words (purpose, patients, professionals, processes); Purpose
        (activity mix); Professionals (full-time equivalents by role); Patients (age bands and
        leading conditions, % of the panel); Patterns (weekly run chart, drawn by
        :func:`qi_helpers.charts.plot_qic`, and day-of-week mix). Only counts and shares: no
        patient or staff identifier. :func:`qi_helpers.profile_cards.card_html` shows the same
        card as light HTML (the published reports use it).

    Raises
    ------
    DataError
        No profile for ``microsystem_id``.
    """
    import textwrap

    from qi_helpers.charts import plot_qic
    from qi_helpers.profile_cards import card_facts, profile_row
    from qi_helpers.profiles import patient_cells, published_summary

    row = profile_row(profiles, microsystem_id)
    mix = profiles.mix[profiles.mix["microsystem_id"] == microsystem_id]
    published = published_summary(profiles, threshold)
    shown = published[published["microsystem_id"] == microsystem_id].iloc[0]
    cells = patient_cells(profiles, threshold)
    cells = cells[(cells["microsystem_id"] == microsystem_id) & (cells["code"] != "")]
    hidden = {
        dimension: dict(zip(part["category"].astype(str), part["label"], strict=True))
        for dimension, part in cells.groupby("dimension")
    }
    # a fixed layout: a constrained one costs several extra draws per card; 60 dpi keeps a
    # report of many cards light (each card is wide, so its text stays readable)
    fig = figure(figsize=(16, 6.6), dpi=60)
    grid = fig.add_gridspec(
        2, 4, left=0.07, right=0.99, top=0.9, bottom=0.07, wspace=0.45, hspace=0.35
    )
    text_ax = fig.add_subplot(grid[0, 0])
    text_ax.axis("off")
    facts = dict(card_facts(profiles, microsystem_id))
    lines = [f"{p}: {facts[p]}" for p in ("Purpose", "Professionals", "Processes")]
    wrapped = "\n\n".join(textwrap.fill(line, 52) for line in lines)
    text_ax.text(0, 1, wrapped, va="top", ha="left", fontsize=8, transform=text_ax.transAxes)
    _mix_bars(
        fig.add_subplot(grid[0, 1]), mix[mix["dimension"] == "activity"], "Purpose: main activities"
    )
    _mix_bars(
        fig.add_subplot(grid[0, 2]),
        mix[mix["dimension"] == "role_fte"],
        f"Professionals: FTE by role ({row['fte']:.1f} FTE)",
        colour="#009E73",
    )
    ages = mix[(mix["dimension"] == "age_band") & (mix["category"] != "unknown")]
    ax = fig.add_subplot(grid[0, 3])
    if ages.empty:
        ax.axis("off")
    else:
        ages = ages.sort_values("category")
        small = hidden.get("age_band", {})
        names = [f"{c}\n({small[c]})" if c in small else str(c) for c in ages["category"]]
        heights = (ages["share"] * 100).where(~ages["category"].isin(list(small)), 0.0)
        ax.bar(names, heights, color="#E69F00")
        ax.tick_params(axis="x", labelsize=8)
        ax.set_ylabel("% of panel", fontsize=8)
    female = shown["share_female"]  # empty when a count of its dimension is hidden
    sex = "" if pd.isna(female) else f", {100 * female:.0f}% female"
    panel = shown["panel_size"]
    panel = f"{panel:,}" if isinstance(panel, int | float | np.integer) else str(panel)
    ax.set_title(f"Patients: panel of {panel}{sex}", loc="left", fontsize=9)
    _mix_bars(
        fig.add_subplot(grid[1, 0]),
        mix[mix["dimension"] == "condition"],
        "Patients: leading conditions (% of panel)",
        top=5,
        colour="#D55E00",
        hidden=hidden.get("condition", {}),
    )
    chart = profiles.weekly[profiles.weekly["facet1"] == microsystem_id]
    ax = fig.add_subplot(grid[1, 1:3])
    if len(chart):
        plot_qic(chart, ax=ax, title="Patterns: activities a week (run chart)")
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
        ax.set_xlabel("")
        ax.set_ylabel("activities", fontsize=8)
    else:
        ax.axis("off")
    days = mix[mix["dimension"] == "day_of_week"].copy()
    ax = fig.add_subplot(grid[1, 3])
    order = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    days = days.set_index("category").reindex(order).fillna({"share": 0.0})
    ax.bar(order, days["share"] * 100, color="#56B4E9")
    ax.set_title("Patterns: day of the week (%)", loc="left", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(
        f"{microsystem_id}: {row.get('name', row['kind'])}", x=0.01, ha="left", fontsize=12
    )
    return fig
