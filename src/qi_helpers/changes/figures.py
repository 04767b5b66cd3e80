"""Figures of workbook 03: the PDSA timeline, one change on its chart, a microsystem's measures
one chart per row, and the subgroup effects.

Every function takes computed tables and returns a matplotlib ``Figure`` (or, for the measures,
:class:`~qi_helpers.chart_display.Charts`), each with its caption and alt text in words
(:mod:`qi_helpers.changes.captions`); nothing here computes.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

import qi_helpers.notebook_display  # noqa: F401 - shows returned figures in notebooks
from qi_helpers.changes.captions import (
    change_alt_text,
    change_caption,
    pdsa_caption,
    subgroups_caption,
)
from qi_helpers.changes.equity import subgroup_mask
from qi_helpers.chart_display import Charts, with_caption
from qi_helpers.drawing import CATEGORY_COLOURS, DECISION_COLOURS, subplots
from qi_helpers.privacy.small_cells import SMALL_CELL_THRESHOLD
from qi_helpers.spc.plots import plot_qic

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from qi_helpers.changes.analysis import ChangeAnalysis
    from qi_helpers.changes.microsystem import MicrosystemAnalysis

__all__ = [
    "charted_measures",
    "measure_chart_anchor",
    "plot_change",
    "plot_measures",
    "plot_pdsa_timeline",
    "plot_subgroups",
]


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
        decision (adopt, adapt, abandon, ongoing:
        :data:`qi_helpers.drawing.DECISION_COLOURS`).
    """
    # 8 inches wide, the change names wrapped: shown at the page's width, its text (raised to
    # the page's body size, qi_helpers.chart_display) leaves room for the bars.
    fig, ax = subplots(figsize=(8, 1.6 + 0.6 * max(1, pdsa["change"].nunique())))
    caption = pdsa_caption(pdsa)
    with_caption(fig, caption, f"Timeline of PDSA cycles. {caption}")
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
    ax.set_yticks(range(len(changes)), labels=[textwrap.fill(str(c), 24) for c in changes])
    ax.invert_yaxis()
    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
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
    ax.set_title("PDSA cycles, coloured by the decision that closed each", loc="left", pad=18)
    return fig


def _change_title(item: ChangeAnalysis) -> str:
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
    item: ChangeAnalysis,
    *,
    show_95: bool = False,
    rules: str | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """One measure's chart with its phases, PDSA cycles and abandoned test windows.

    Parameters
    ----------
    item : qi_helpers.changes.analysis.ChangeAnalysis
        From :func:`qi_helpers.changes.analysis.analyse`.
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
        The :func:`qi_helpers.spc.plots.plot_qic` chart (one part per phase); vertical lines and
        labels mark the PDSA cycles; the window of each abandoned test is shaded. A figure made
        here (no ``ax``) carries its caption and alt text
        (:func:`qi_helpers.changes.captions.change_caption`).
    """
    if ax is None:
        fig, ax = subplots(figsize=(8, 4))
        with_caption(fig, change_caption(item), change_alt_text(item))
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
            pd.Timestamp(row.start), pd.Timestamp(finish), color=CATEGORY_COLOURS[5], alpha=0.08,
            gid="abandoned_test",
        )  # fmt: skip
    unit = item.measure.get("unit")
    ax.set_ylabel("" if unit is None or pd.isna(unit) else str(unit))
    ax.set_xlabel("")
    return fig


def plot_measures(analysis: MicrosystemAnalysis, *, show_95: bool = False) -> Charts:
    """One annotated SPC chart per measure of a microsystem, one per row, each with its caption.

    Parameters
    ----------
    analysis : qi_helpers.changes.microsystem.MicrosystemAnalysis
        Its measures are drawn in order: grouped by aim and family, each balancing measure
        right after the outcome it balances.
    show_95 : bool
        Also draw the 2-sigma limits.

    Returns
    -------
    qi_helpers.chart_display.Charts
        One :func:`plot_change` figure per measure with data, each full width with its caption
        and alt text in words (a notebook shows them one below the other), the n-th with the
        ``id`` :func:`measure_chart_anchor` of n; one figure saying so when no measure has data.
    """
    charts = charted_measures(analysis)
    if not charts:
        fig, ax = subplots(figsize=(8, 2))
        ax.text(0.5, 0.5, "No measured data for this microsystem.", ha="center", va="center")
        ax.axis("off")
        with_caption(fig, "No measured data for this microsystem yet.")
        return Charts([fig])
    figures = []
    for number, item in enumerate(charts, start=1):
        fig = plot_change(item, show_95=show_95)
        figures.append(with_caption(fig, fig.caption, fig.alt, anchor=measure_chart_anchor(number)))
    return Charts(figures)


def charted_measures(analysis: MicrosystemAnalysis) -> list[ChangeAnalysis]:
    """The measures of a microsystem that :func:`plot_measures` charts, in its order.

    Parameters
    ----------
    analysis : qi_helpers.changes.microsystem.MicrosystemAnalysis

    Returns
    -------
    list of ChangeAnalysis
        Those with data to chart; the n-th (from 1) is the figure whose ``id`` is
        :func:`measure_chart_anchor` of n.
    """
    return [a for a in analysis.analyses if not a.chart.empty]


def measure_chart_anchor(number: int) -> str:
    """The ``id`` of the ``number``-th chart (from 1) of :func:`plot_measures`: ``qi-chart-<n>``.

    The driver diagram links each measure to its chart with it.
    """
    return f"qi-chart-{int(number)}"


def plot_subgroups(subgroups: pd.DataFrame, *, threshold: int = SMALL_CELL_THRESHOLD) -> Figure:
    """The effect of each change in each patient subgroup, next to the whole (a forest plot).

    Parameters
    ----------
    subgroups : DataFrame
        From :func:`qi_helpers.changes.equity.subgroup_effects`.
    threshold : int
        ``publish.small_cell_threshold``: subgroups whose numbers the published table hides
        (``<11`` or ``*``, :func:`qi_helpers.changes.equity.subgroup_mask`) are left out of the
        picture.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per measure and change; each subgroup's effect with its 95% interval, flagged
        subgroups (did not improve when the whole did) in vermillion, the whole's effect as a
        vertical line and no effect as a dashed one.
    """
    hidden = subgroup_mask(subgroups, threshold=threshold).ne("").any(axis=1)
    shown = subgroups[~hidden & subgroups["effect"].notna()]
    panels = list(dict.fromkeys(zip(shown["measure_id"], shown["change"], strict=True)))
    if not panels:
        fig, ax = subplots(figsize=(8, 1.5))
        ax.text(0.5, 0.5, "No change with enough patients to compare subgroups yet.",
                ha="center", va="center", transform=ax.transAxes)  # fmt: skip
        ax.axis("off")
        return with_caption(fig, "No change with enough patients to compare subgroups yet.")
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
        colours = np.where(groups["flag"].to_numpy(bool), CATEGORY_COLOURS[5], CATEGORY_COLOURS[4])
        ax.hlines(ys, groups["effect_low"], groups["effect_high"], colors=colours, lw=1.6)
        ax.scatter(groups["effect"], ys, c=colours, s=22, zorder=3)
        kind = str(part["effect_kind"].iloc[0])
        ax.axvline(1.0 if kind == "rate ratio" else 0.0, color="#777777", ls="--", lw=0.9)
        if len(whole):
            ax.axvline(float(whole["effect"].iloc[0]), color=CATEGORY_COLOURS[7], lw=1.0)
        ax.set_yticks(ys, labels=labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(kind, fontsize=8)
        name = str(part["name"].iloc[0])
        title = f"{name} after {change}: whole (black line) and subgroups"
        ax.set_title(textwrap.fill(title, 70), loc="left", fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
    caption = subgroups_caption(shown, int((hidden & (subgroups["dimension"] != "all")).sum()))
    return with_caption(fig, caption, f"Forest plot of subgroup effects. {caption}")
