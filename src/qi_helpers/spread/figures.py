"""Figures of workbook 04: the spread waves, the adoption curve and whether adopters' gains hold.

Every function takes computed tables and returns a matplotlib ``Figure`` with its caption and
alt text in words (:func:`qi_helpers.chart_display.with_caption`); nothing here computes.
"""

from __future__ import annotations

import textwrap

import matplotlib.dates as mdates
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

import qi_helpers.notebook_display  # noqa: F401 - shows returned figures in notebooks
from qi_helpers.chart_display import with_caption
from qi_helpers.drawing import CATEGORY_COLOURS, OKABE_ITO, subplots
from qi_helpers.spc.plots import plot_qic
from qi_helpers.spread.tracking import SustainTracking

#: Above this many adopters, :func:`plot_waves` draws one bar per change and wave, and
#: :func:`plot_sustain` the adopters that most need a look: a bar or a panel for each of the
#: hundreds of adopters of a large organisation made workbook 04's page 4 MB (issue 17).
MAX_WAVE_BARS = 60
MAX_SUSTAIN_PANELS = 24


def _waves_by_group(plan: pd.DataFrame) -> pd.DataFrame:
    """One row per change and wave: its dates and ``microsystem_id`` as "<n> microsystems"."""
    columns = {"wave_start": ("wave_start", "min"), "wave_end": ("wave_end", "max"),
               "n": ("microsystem_id", "size")}  # fmt: skip
    if "adopter_category" in plan:
        columns["adopter_category"] = ("adopter_category", "first")
    grouped = plan.groupby(["change", "wave"], sort=False, as_index=False).agg(**columns)
    grouped["microsystem_id"] = [f"wave {w}, {n} microsystems" for w, n in
                                 zip(grouped["wave"], grouped["n"], strict=True)]  # fmt: skip
    return grouped.drop(columns="n")


def plot_waves(plan: pd.DataFrame, *, max_bars: int = MAX_WAVE_BARS) -> Figure:
    """The spread plan as a Gantt chart: one bar per adopting microsystem, coloured by wave.

    Parameters
    ----------
    plan : DataFrame
        From :func:`qi_helpers.spread.waves.plan` (``change, microsystem_id, wave, wave_start,
        wave_end``; ``adopter_category`` labels the legend when present).
    max_bars : int
        With more adopters than this, one bar per change and wave, labelled with its number of
        microsystems (the plan's table lists them).

    Returns
    -------
    matplotlib.figure.Figure
        Changes are grouped top to bottom, each adopter's bar spans its wave; an empty plan gives
        a figure that says there is nothing to spread.
    """
    caption = waves_caption(plan)
    grouped = len(plan) > max_bars
    if grouped:
        plan = _waves_by_group(plan)
    fig, ax = subplots(figsize=(10, 1.2 + 0.28 * max(1, len(plan))))
    with_caption(fig, caption, f"Gantt chart of the spread plan. {caption}")
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
            color=CATEGORY_COLOURS[(wave - 1) % len(CATEGORY_COLOURS)],
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
            color=CATEGORY_COLOURS[(w - 1) % len(CATEGORY_COLOURS)],
            label=f"wave {w}" + (f" ({category[w]})" if w in category.index else ""),
        )
        for w in sorted(set(waves))
    ]
    ax.legend(handles=handles, fontsize=8, frameon=False, loc="lower right")
    ax.set_yticks(range(len(labels)), labels=labels, fontsize=8)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(mdates.AutoDateLocator()))
    ax.set_title("Spread plan: adopters in waves" + (" (one bar per wave)" if grouped else ""))
    return fig


def plot_adoption_curve(curve: pd.DataFrame) -> Figure:
    """The adoption curve of each change: share of targeted microsystems adopted, by date.

    Parameters
    ----------
    curve : DataFrame
        From :func:`qi_helpers.spread.tracking.adoption_curve` (``change, date, kind, share,
        wave``).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per change, one per row: the actual adoptions as a solid step line, the
        plan's waves as a dashed step line with the wave numbers at the ends of the waves; y
        from 0 to 100%.
    """
    changes = sorted(curve["change"].unique()) if not curve.empty else []
    nrows = max(1, len(changes))  # one change per row, the page's width each
    fig, axes = subplots(nrows, 1, figsize=(8, 2.8 * nrows + 0.4), squeeze=False)
    axes = axes.ravel()
    caption = adoption_caption(curve)
    with_caption(fig, caption, f"Adoption curves. {caption}")
    if not changes:
        axes[0].text(0.5, 0.5, "No adoption and no plan yet.", ha="center", va="center")
        axes[0].axis("off")
        return fig
    for ax, change in zip(axes, changes, strict=False):
        own = curve[curve["change"] == change].sort_values("date", kind="stable")
        actual = own[own["kind"] == "actual"]
        planned = own[own["kind"] == "planned"]
        if not actual.empty:
            ax.step(actual["date"], 100 * actual["share"], where="post", color=OKABE_ITO["blue"],
                    lw=2, label="adopted")  # fmt: skip
        if not planned.empty:
            start = actual.iloc[[-1]] if not actual.empty else planned.iloc[[0]]
            line = pd.concat([start, planned])
            ax.step(line["date"], 100 * line["share"], where="post", color=OKABE_ITO["orange"],
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


#: The order in which adopters are shown when not all fit: those whose gain is lost or who got
#: worse first, then those still waiting for a signal.
_ATTENTION = ("lost", "worsened", "no signal yet", "too little data", "improved and holding")


def plot_sustain(
    tracking: SustainTracking, *, ncols: int = 2, max_panels: int = MAX_SUSTAIN_PANELS
) -> Figure:
    """Small multiples of every adopter's measure, with a phase at its adoption date.

    Parameters
    ----------
    tracking : SustainTracking
        From :func:`qi_helpers.spread.tracking.sustain`.
    ncols : int
        Panels per row (two: the figure is shown at the page's width, and its text must stay
        as large as the page's, :func:`qi_helpers.chart_display.min_text_points`).
    max_panels : int
        With more adopters and measures than this, the first ``max_panels`` in the order of
        attention (gain lost, worsened, no signal yet, too little data, holding), and the title
        says how many are shown; the verdicts table lists every adopter.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per adopter and measure (drawn by :func:`qi_helpers.spc.plots.plot_qic`, special
        causes coloured by the measure's direction of improvement), titled with the microsystem,
        the change and the sustain verdict; a vertical line marks the adoption date.
    """
    verdicts = tracking.verdicts
    caption = sustain_caption(verdicts)
    total = n = len(verdicts)
    if n > max_panels:
        rank = verdicts["verdict"].map({v: i for i, v in enumerate(_ATTENTION)})
        verdicts = verdicts.assign(_rank=rank.fillna(len(_ATTENTION)))
        verdicts = verdicts.sort_values("_rank", kind="stable").head(max_panels)
        n = max_panels
    if n == 0:
        fig, ax = subplots(figsize=(6, 1.5))
        ax.text(0.5, 0.5, "No adopter to track yet.", ha="center", va="center")
        ax.axis("off")
        return with_caption(fig, caption)
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
        lines = (f"{row.microsystem_id}: {row.change}", f"{row.name} - {row.verdict}")
        ax.set_title("\n".join(textwrap.fill(line, 40) for line in lines), fontsize=8,
                     loc="left")  # fmt: skip
    for ax in axes[n:]:
        fig.delaxes(ax)
    title = "Adopters: does the gain hold?"
    if total > n:
        title += (f" The {n} of {total} that most need a look (gain lost or worse first); "
                  "the table lists every adopter.")  # fmt: skip
    fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    return with_caption(fig, caption, f"Control charts of the adopters. {caption}")


# ---- captions: what each figure shows, in words -----------------------------------------------


def _day(value: object) -> str:
    stamp = pd.Timestamp(value)
    return f"{stamp.day} {stamp:%b %Y}"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def waves_caption(plan: pd.DataFrame) -> str:
    """What :func:`plot_waves` shows: adopters, changes and waves, first start and last end."""
    if plan.empty:
        return "No change has improved results yet: nothing to spread."
    adopters = _count(plan["microsystem_id"].nunique(), "microsystem", "microsystems")
    changes = _count(plan["change"].nunique(), "change", "changes")
    waves = _count(plan.groupby("change")["wave"].nunique().max(), "wave", "waves")
    return (
        f"Spread plan: {adopters} to adopt {changes}, in at most {waves} per change, from "
        f"{_day(pd.to_datetime(plan['wave_start']).min())} to "
        f"{_day(pd.to_datetime(plan['wave_end']).max())}."
    )


def adoption_caption(curve: pd.DataFrame) -> str:
    """What :func:`plot_adoption_curve` shows: per change, the share adopted so far."""
    if curve.empty:
        return "No adoption and no plan yet."
    parts = []
    for change, own in curve.groupby("change", sort=True):
        actual = own[own["kind"] == "actual"].sort_values("date", kind="stable")
        targeted = int(own["targeted"].max())
        if actual.empty:
            parts.append(f"{change}: none of {targeted} targeted has adopted it yet")
        else:
            last = actual.iloc[-1]
            parts.append(
                f"{change}: {round(100 * float(last['share']))}% of {targeted} targeted by "
                f"{_day(last['date'])}"
            )
    return "Adoption so far against the planned waves. " + "; ".join(parts) + "."


def sustain_caption(verdicts: pd.DataFrame) -> str:
    """What :func:`plot_sustain` shows: how many adopters' gains hold, by verdict."""
    if verdicts.empty:
        return "No adopter to track yet."
    counts = verdicts["verdict"].value_counts()
    order = [v for v in _ATTENTION if v in counts.index] + [
        v for v in counts.index if v not in _ATTENTION
    ]
    words = ", ".join(f"{int(counts[v])} {v}" for v in order)
    n = _count(len(verdicts), "adopter and measure", "adopters and measures")
    return f"Whether the gain holds after adoption, {n}: {words}."
