"""Drawing run and control charts computed by :func:`qi_helpers.spc.qic.qic`.

:func:`plot_qic` draws one series, :func:`plot_qic_facets` small multiples of a facetted result.
Both draw exactly the numbers of the result (no recomputation), colour special-cause points by
point type (:func:`qi_helpers.spc.rules.signals`) in the colour-blind-safe Okabe-Ito palette, and
return a :class:`matplotlib.figure.Figure` without touching pyplot's global state.

Every line carries a ``gid`` so it can be found again: ``"y"`` (the data), ``"cl"``, ``"ucl"``,
``"lcl"``, ``"ucl_95"``, ``"lcl_95"`` (one line per part; limits stepped per subgroup) and
``"target"``; special-cause points are a scatter collection with gid ``"signals"`` and PDSA
annotations vertical lines with gid ``"annotation"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

import qi_helpers.notebook_display  # noqa: F401 - shows returned figures in notebooks
from qi_helpers.drawing import OKABE_ITO, subplots
from qi_helpers.errors import SPCError
from qi_helpers.spc.rules import signals

__all__ = ["POINT_COLOURS", "plot_qic", "plot_qic_facets"]

#: Marker colour of each point type (improvement blue, concern orange, as NHS Making Data Count).
POINT_COLOURS: dict[str, str] = {
    "special_cause_improvement": OKABE_ITO["blue"],
    "special_cause_concern": OKABE_ITO["orange"],
    "special_cause_neutral": OKABE_ITO["reddish_purple"],
    "common_cause": "#7F7F7F",
}
_LABELS = {
    "special_cause_improvement": "Special cause: improvement",
    "special_cause_concern": "Special cause: concern",
    "special_cause_neutral": "Special cause",
}
_LIMIT_COLOUR = "#6E6E6E"
_TARGET_COLOUR = OKABE_ITO["bluish_green"]
_REQUIRED = ("x", "facet1", "facet2", "part", "y", "cl", "ucl", "lcl", "ucl_95", "lcl_95")


def _check(result: pd.DataFrame) -> None:
    if not isinstance(result, pd.DataFrame):
        raise SPCError(f"plot_qic() needs the DataFrame returned by qic(); got {type(result)}.")
    missing = [c for c in _REQUIRED if c not in result.columns]
    if missing:
        raise SPCError(f"plot_qic() needs a qic() result; columns missing: {missing}.")


def _x_kind(x: pd.Series) -> str:
    if pd.api.types.is_datetime64_any_dtype(x):
        return "date"
    if pd.api.types.is_numeric_dtype(x):
        return "number"
    return "category"


def _positions(x: pd.Series, kind: str) -> np.ndarray:
    """Plot positions: dates and numbers as they are; categories 0..k-1 in result order."""
    if kind == "category":
        return np.arange(len(x), dtype=float)
    return x.to_numpy()


def _facet_title(res: pd.DataFrame) -> str:
    f1, f2 = res["facet1"].iloc[0], res["facet2"].iloc[0]
    names = res.attrs.get("qic", {}).get("facets", [])
    parts = [str(v) for v, name in zip((f1, f2), (0, 1), strict=True) if len(names) > name]
    return " / ".join(parts)


def _draw(
    ax: Axes,
    res: pd.DataFrame,
    ptypes: pd.Series,
    *,
    show_95: bool,
    annotations: pd.DataFrame | None,
    legend: bool,
) -> None:
    """Draw one facet of a qic() result on ``ax``."""
    kind = _x_kind(res["x"])
    xs = _positions(res["x"], kind)
    y = res["y"].to_numpy(dtype=float)
    ax.plot(
        xs, y, color=OKABE_ITO["black"], lw=1.2, marker="o", ms=3.5, zorder=3, gid="y", label="_y"
    )
    runs = res["runs_signal"].to_numpy(dtype=bool) if "runs_signal" in res else np.zeros(len(res))
    _draw_limits(ax, res, xs, runs, show_95)
    if _has_target(res):
        ax.plot(
            xs,
            res["target"].to_numpy(dtype=float),
            color=_TARGET_COLOUR,
            lw=1.1,
            ls="-.",
            gid="target",
            label="Target",
        )
    _draw_special_causes(ax, xs, y, ptypes)
    if "notes" in res:
        _draw_notes(ax, xs, y, res["notes"])
    if annotations is not None:
        _annotate(ax, res["x"], xs, kind, annotations)
    _format_axes(ax, res["x"], xs, kind)
    if legend:
        _legend(ax, res, ptypes, runs)


def _has_target(res: pd.DataFrame) -> bool:
    return "target" in res and res["target"].notna().any()


def _draw_limits(
    ax: Axes, res: pd.DataFrame, xs: np.ndarray, runs: np.ndarray, show_95: bool
) -> None:
    """Centre line and limits, one line per part (dashed centre line: a runs signal)."""
    part = res["part"].to_numpy()
    for p in pd.unique(part):
        sel = part == p
        px = xs[sel]
        dashed = bool(runs[sel].any())
        ax.plot(
            px,
            res["cl"].to_numpy(dtype=float)[sel],
            color=_LIMIT_COLOUR,
            lw=1.1,
            ls="--" if dashed else "-",
            drawstyle="steps-mid",
            gid="cl",
            label="_cl",
        )
        names = ["ucl", "lcl"] + (["ucl_95", "lcl_95"] if show_95 else [])
        for name in names:
            v = res[name].to_numpy(dtype=float)[sel]
            if np.isnan(v).all():
                continue
            ax.plot(
                px,
                v,
                color=_LIMIT_COLOUR,
                lw=0.9 if name in ("ucl", "lcl") else 0.7,
                ls="-" if name in ("ucl", "lcl") else ":",
                drawstyle="steps-mid",
                gid=name,
                label=f"_{name}",
            )


def _draw_special_causes(ax: Axes, xs: np.ndarray, y: np.ndarray, ptypes: pd.Series) -> None:
    """Special-cause points in the colour of their point type."""
    special = ptypes.to_numpy() != "common_cause"
    if special.any():
        cols = [POINT_COLOURS[t] for t in ptypes.to_numpy()[special]]
        ax.scatter(
            xs[special],
            y[special],
            c=cols,
            s=36,
            zorder=4,
            gid="signals",
            edgecolors="white",
            linewidths=0.5,
        )


def _draw_notes(ax: Axes, xs: np.ndarray, y: np.ndarray, notes: pd.Series) -> None:
    """The notes of the result above their points."""
    for xi, yi, note in zip(xs, y, notes, strict=True):
        if isinstance(note, str) and note:
            ax.annotate(
                note,
                (xi, yi),
                xytext=(0, 8),
                textcoords="offset points",
                fontsize=7,
                ha="center",
                gid="note",
            )


def _format_axes(ax: Axes, x: pd.Series, xs: np.ndarray, kind: str) -> None:
    """Ticks for dates or categories, a light grid, no top or right spine."""
    if kind == "date":
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    elif kind == "category":
        ax.set_xticks(xs)
        ax.set_xticklabels(x.astype(str), rotation=90 if len(xs) > 8 else 0, fontsize=8)
    ax.grid(axis="y", color="#E5E5E5", lw=0.6)
    ax.spines[["top", "right"]].set_visible(False)


def _legend(ax: Axes, res: pd.DataFrame, ptypes: pd.Series, runs: np.ndarray) -> None:
    """A legend of the point types shown, the lines and the target."""
    handles = [
        Line2D([], [], color=POINT_COLOURS[t], marker="o", ls="", label=_LABELS[t])
        for t in _LABELS
        if (ptypes == t).any()
    ]
    handles.append(Line2D([], [], color=_LIMIT_COLOUR, ls="-", label="Centre line / limits"))
    if runs.any():
        handles.append(Line2D([], [], color=_LIMIT_COLOUR, ls="--", label="Runs signal"))
    if _has_target(res):
        handles.append(Line2D([], [], color=_TARGET_COLOUR, ls="-.", label="Target"))
    ax.legend(handles=handles, fontsize=7, frameon=False, loc="best")


def _annotate(ax: Axes, x: pd.Series, xs: np.ndarray, kind: str, annotations: pd.DataFrame) -> None:
    """PDSA cycles (or any events): a vertical line and a label at each ``date``."""
    if not isinstance(annotations, pd.DataFrame) or not {"date", "label"} <= set(annotations):
        raise SPCError("annotations must be a DataFrame with columns 'date' and 'label'.")
    trans = ax.get_xaxis_transform()
    for when, label in zip(annotations["date"], annotations["label"], strict=True):
        if kind == "date":
            pos = pd.Timestamp(when).to_datetime64()
        elif kind == "category":
            hit = np.flatnonzero(x.astype(str).to_numpy() == str(when))
            if not hit.size:
                continue
            pos = float(xs[hit[0]])
        else:
            pos = when
        ax.axvline(pos, color=OKABE_ITO["sky_blue"], lw=1.0, ls="-", zorder=1, gid="annotation")
        ax.text(
            pos,
            0.98,
            f" {label}",
            transform=trans,
            rotation=90,
            va="top",
            ha="right",
            fontsize=7,
            color=OKABE_ITO["blue"],
            gid="annotation_label",
        )


def _title(res: pd.DataFrame, title: str | None) -> str:
    if title is not None:
        return title
    info = res.attrs.get("qic", {})
    chart = str(info.get("chart", "run"))
    name = "Run chart" if chart == "run" else f"{chart.upper()} chart"
    return f"{name} of {info['y']}" if info.get("y") else name


def _types(result: pd.DataFrame, rules: str | None, improvement: str | None) -> pd.Series:
    return signals(result, rules=rules or "anhoej", improvement=improvement).points["point_type"]


def _facet_ids(result: pd.DataFrame) -> np.ndarray:
    key = result["facet1"].astype(str) + "\x00" + result["facet2"].astype(str)
    return (key != key.shift()).cumsum().to_numpy() - 1


def plot_qic(
    result: pd.DataFrame,
    *,
    title: str | None = None,
    improvement: str | None = None,
    rules: str | None = None,
    annotations: pd.DataFrame | None = None,
    show_95: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """Draw a run or control chart from a :func:`qi_helpers.spc.qic.qic` result.

    Parameters
    ----------
    result : DataFrame
        The output of :func:`~qi_helpers.spc.qic.qic`. A result with several facets is drawn as
        small multiples (:func:`plot_qic_facets`) unless ``ax`` is given.
    title : str, optional
        Chart title (default: the chart type and the y column).
    improvement : {"up", "down"} or None
        Which direction is better; colours special-cause points as improvement or concern.
    rules : {"anhoej", "ihi", "mdc", "western_electric"}, optional
        Rule set for the special-cause points (default ``"anhoej"``: outside the limits or in
        an unusually long run).
    annotations : DataFrame, optional
        PDSA cycles or other events: columns ``date`` (an x value) and ``label``; drawn as
        labelled vertical lines.
    show_95 : bool
        Also draw the 2-sigma (95%) limits.
    ax : matplotlib Axes, optional
        Draw on this axes (its figure is returned; nothing is closed or cleared).

    Returns
    -------
    matplotlib.figure.Figure
        The figure. Lines carry gids ``y, cl, ucl, lcl, ucl_95, lcl_95, target`` (see the module
        docstring); the centre line of a part with a runs signal is dashed, as in qicharts2.
    """
    _check(result)
    fids = _facet_ids(result)
    if len(result) and fids.max() > 0:
        if ax is not None:
            raise SPCError("The result has several facets; use plot_qic_facets() or filter it.")
        return plot_qic_facets(
            result,
            title=title,
            improvement=improvement,
            rules=rules,
            annotations=annotations,
            show_95=show_95,
        )
    if ax is None:
        fig, ax = subplots(figsize=(8, 4), layout="constrained")
    else:
        fig = ax.figure
    ptypes = _types(result, rules, improvement)
    _draw(ax, result, ptypes, show_95=show_95, annotations=annotations, legend=True)
    ax.set_title(_title(result, title), loc="left", fontsize=11)
    info = result.attrs.get("qic", {})
    ax.set_xlabel(str(info.get("x") or ""))
    ax.set_ylabel(str(info.get("y") or ""))
    return fig


def plot_qic_facets(
    result: pd.DataFrame,
    *,
    ncols: int = 3,
    title: str | None = None,
    improvement: str | None = None,
    rules: str | None = None,
    annotations: pd.DataFrame | None = None,
    show_95: bool = False,
    sharey: bool = True,
    panel_size: Sequence[float] = (3.6, 2.4),
) -> Figure:
    """Small multiples: one panel per facet of a :func:`qi_helpers.spc.qic.qic` result.

    Parameters
    ----------
    result : DataFrame
        The output of :func:`~qi_helpers.spc.qic.qic` (with or without facets).
    ncols : int
        Panels per row.
    title, improvement, rules, annotations, show_95
        As :func:`plot_qic`; the title is the figure's suptitle.
    sharey : bool
        Share the y axis between panels.
    panel_size : (float, float)
        Width and height of one panel in inches.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per facet in result order, titled by the facet values; unused grid cells are
        removed.
    """
    _check(result)
    if not isinstance(ncols, int) or ncols < 1:
        raise SPCError(f"ncols must be a positive integer; got {ncols!r}.")
    fids = _facet_ids(result)
    nf = int(fids.max()) + 1 if len(result) else 0
    ncols_ = max(1, min(ncols, nf))
    nrows = max(1, -(-nf // ncols_))
    fig, axes = subplots(
        nrows,
        ncols_,
        figsize=(panel_size[0] * ncols_, panel_size[1] * nrows + 0.6),
        layout="constrained",
        sharex=False,
        sharey=sharey,
        squeeze=False,
    )
    axes = axes.ravel()
    ptypes = _types(result, rules, improvement)
    for f in range(nf):
        sel = fids == f
        sub = result.loc[sel]
        ax = axes[f]
        _draw(ax, sub, ptypes[sel], show_95=show_95, annotations=annotations, legend=False)
        ax.set_title(_facet_title(sub) or f"Facet {f + 1}", fontsize=9, loc="left")
    for ax in axes[nf:]:
        fig.delaxes(ax)
    fig.suptitle(_title(result, title), x=0.01, ha="left", fontsize=11)
    return fig
