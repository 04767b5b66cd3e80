"""Drawing and reading funnel plots computed by :func:`qi_helpers.spc.funnel.funnel_table`.

:func:`plot_funnel` draws one funnel (one measure, one kind of microsystem);
:func:`funnel_caption` says in words what it shows (the page's caption and the alt text);
:func:`funnel_outliers` is the readable table of the microsystems outside the limits, and
:func:`distance_from_best` ranks every microsystem by how far it is from the best of its kind
(workbook 02's room to improve, workbook 04's who gains most). Nothing here computes limits.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import qi_helpers.notebook_display  # noqa: F401 - shows returned figures in notebooks
from qi_helpers.chart_display import with_caption
from qi_helpers.drawing import OKABE_ITO, subplots
from qi_helpers.errors import ConfigError
from qi_helpers.privacy.small_cells import SMALL_CELL_THRESHOLD, small_cell_label
from qi_helpers.spc.funnel import Z_95, Z_998, limits_curve

__all__ = [
    "distance_from_best",
    "funnel_caption",
    "funnel_outliers",
    "plot_funnel",
]

_COLOURS = {
    "better": OKABE_ITO["blue"],
    "worse": OKABE_ITO["vermillion"],
    "inside": "#555555",
    "small": "#999999",
}


def _plain(text: object) -> str:
    """A name or unit from the catalogue as text (``""`` for a blank cell)."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    return str(text)


def _one(table: pd.DataFrame, measure_id: str, kind: str | None) -> pd.DataFrame:
    """The rows of one funnel, or a clear error naming what there is."""
    rows = table[table["measure_id"] == measure_id]
    if kind is not None:
        rows = rows[rows["kind"] == kind]
    if rows.empty:
        known = sorted(set(zip(table["measure_id"], table["kind"], strict=False)))
        raise ConfigError(
            f"no funnel for measure {measure_id!r}"
            + (f" and kind {kind!r}" if kind else "")
            + f"; the table has (measure, kind): {known[:20]}."
        )
    if rows["kind"].nunique() > 1:
        raise ConfigError(
            f"measure {measure_id!r} has funnels for kinds {sorted(rows['kind'].unique())}: "
            "name one with kind=."
        )
    return rows


def _axis_label(row: pd.Series) -> str:
    family = row["family"]
    return {
        "proportion": "Cases in the window",
        "rate": "Exposure in the window (e.g. patient-days)",
        "mean": "Values in the window",
    }.get(family, "Denominator")


def _unit(unit: str) -> str:
    return f" ({unit})" if unit else ""


#: A title wraps at this many characters (the width of the chart at its text size) and keeps at
#: most :data:`TITLE_LINES` lines: a measure named by a long paragraph squeezed the plot to
#: nothing (matplotlib's "axes sizes collapsed to zero").
TITLE_WIDTH = 80
TITLE_LINES = 3


def _title(text: str) -> str:
    """``text`` wrapped to :data:`TITLE_WIDTH` characters, at most :data:`TITLE_LINES` lines
    (the last one ends with an ellipsis when text was left out; the caption has it whole)."""
    lines = textwrap.wrap(" ".join(text.split()), TITLE_WIDTH) or [""]
    if len(lines) > TITLE_LINES:
        lines = lines[:TITLE_LINES]
        lines[-1] = lines[-1][: TITLE_WIDTH - 1].rstrip() + "\u2026"
    return "\n".join(lines)


def plot_funnel(
    table: pd.DataFrame,
    measure_id: str,
    kind: str | None = None,
    *,
    name: str = "",
    unit: str = "",
    threshold: int = SMALL_CELL_THRESHOLD,
    label: bool = True,
) -> Figure:
    """One funnel plot: each microsystem's value against its denominator, with the limits.

    Parameters
    ----------
    table : DataFrame
        From :func:`qi_helpers.spc.funnel.funnel_table`.
    measure_id : str
    kind : str, optional
        The kind of microsystem (needed when the measure has funnels for several kinds).
    name, unit : str
        The measure's name and unit, for the title and the axis.
    threshold : int
        The small-cell threshold: the shaded band marks denominators below it. Withheld
        microsystems (``withheld``: a denominator or a count below it) are not drawn.
    label : bool
        Write the microsystem id beside every point outside the 95% limits.

    Returns
    -------
    matplotlib.figure.Figure
        The organisation's value (solid line), the 95% (dashed) and 99.8% (dotted) limits, and
        one point per microsystem: blue when better than expected, vermillion when worse
        (filled outside 99.8%, ringed outside 95%), grey inside. Its caption and alt text
        are :func:`funnel_caption`.
    """
    rows = _one(table, measure_id, kind)
    first = rows.iloc[0]
    name, unit = _plain(name), _plain(unit)
    fig, ax = subplots(figsize=(10, 5.2), layout="constrained")
    n = rows["denominator"].astype(float).to_numpy()
    small = rows["small_denominator"].to_numpy(dtype=bool)
    shown_n = np.where(small, float(threshold), n)
    top = max(float(np.nanmax(shown_n)) * 1.1, threshold * 2.0)
    grid = np.linspace(max(1.0, float(threshold) * 0.8), top, 300)
    ax.axhline(float(first["target"]), color=OKABE_ITO["black"], lw=1.4, label="Organisation")
    for z, style, text in ((Z_95, "--", "95% limits"), (Z_998, ":", "99.8% limits")):
        lo, hi = limits_curve(first, grid, z=z)
        ax.plot(grid, lo, style, color="#333333", lw=1.2, label=text)
        ax.plot(grid, hi, style, color="#333333", lw=1.2)
    ax.axvspan(0, float(threshold), color="#eeeeee", zorder=0, label=f"Fewer than {threshold}")
    for (_, r), x in zip(rows.iterrows(), shown_n, strict=True):
        _point(ax, r, x, label=label)
    title = _title(f"{name or measure_id}: {str(first['kind']).replace('_', ' ')}")
    ax.set_title(title, loc="left", fontsize=13)
    ax.set_xlabel(_axis_label(first), fontsize=12)
    ax.set_ylabel(f"Value over the window{_unit(unit)}", fontsize=12)
    ax.tick_params(labelsize=11)
    ax.set_xlim(0, top)
    ax.legend(fontsize=10, frameon=False, loc="best")
    caption = funnel_caption(table, measure_id, kind, name=name, unit=unit, threshold=threshold)
    return with_caption(fig, caption, f"Funnel plot. {caption}")


def _point(ax: object, r: pd.Series, x: float, *, label: bool) -> None:
    """Draw one microsystem's point (and its id when it is outside the 95% limits)."""
    y = float(r["value"])
    if not math.isfinite(y):
        return
    if bool(r.get("withheld", r["small_denominator"])):
        return  # withheld: its value and denominator could give away a small count
    colour = _COLOURS[r["direction"]] if r["outside_95"] else _COLOURS["inside"]
    face = colour if r["outside_998"] or not r["outside_95"] else "white"
    ax.scatter([x], [y], s=55, color=face, edgecolors=colour, linewidths=1.8, zorder=4)
    if label and r["outside_95"]:
        ax.annotate(
            str(r["microsystem_id"]),
            (x, y),
            xytext=(5, 4),
            textcoords="offset points",
            fontsize=11,
            color=colour,
        )


def _words(value: float) -> str:
    if not math.isfinite(value):
        return ""
    return (
        f"{value:,.0f}"
        if abs(value) >= 100
        else f"{value:.3g}"
        if abs(value) >= 1
        else (f"{value:.2g}")
    )


def funnel_caption(
    table: pd.DataFrame, measure_id: str, kind: str | None = None, *, name: str = "",
    unit: str = "", threshold: int = SMALL_CELL_THRESHOLD,
) -> str:  # fmt: skip
    """What one funnel plot shows, in words (its caption and its alt text).

    Returns
    -------
    str
        How many microsystems of the kind, the organisation's value, how many lie outside the
        95% and 99.8% limits and which, better or worse, whether the limits were widened for
        overdispersion, and how many were withheld by the small-cell rule (``threshold``).
    """
    rows = _one(table, measure_id, kind)
    first = rows.iloc[0]
    name, unit = _plain(name), _plain(unit)
    kind_text = str(first["kind"]).replace("_", " ") or "microsystem"
    sep = "" if unit == "%" else " "
    target = f"{_words(float(first['target']))}{sep}{unit}".strip()
    text = [
        f"{name or measure_id}: {len(rows)} {kind_text} microsystems over the window "
        f"{pd.Timestamp(first['first_period']):%d %b %Y} to "
        f"{pd.Timestamp(first['last_period']):%d %b %Y}; the organisation's value is {target}."
    ]
    for column, words in (("outside_998", "99.8%"), ("outside_95", "95%")):
        out = rows[rows[column].astype(bool)]
        if out.empty:
            text.append(f"None is outside the {words} limits.")
            continue
        parts = [f"{r.microsystem_id} ({r.direction})" for r in out.itertuples()]
        text.append(f"Outside the {words} limits: {', '.join(parts)}.")
    method = str(first.get("overdispersion", "") or "")
    phi = float(first["phi"])
    if method == "multiplicative" and phi > 1:
        text.append(
            f"The microsystems vary {phi:.1f} times more than chance alone would make them, so "
            f"the limits are widened by the square root of that (Spiegelhalter 2005)."
        )
    elif method == "additive" and float(first["tau2"]) > 0:
        text.append("The limits are widened for the real differences between microsystems.")
    elif int((~rows["withheld"].astype(bool)).sum()) < 5:
        text.append(
            "Too few microsystems to tell how much more than chance they vary: the limits are "
            "those of chance alone, so more of them lie outside than would with more teams."
        )
    else:
        text.append("The limits are those of chance alone (no overdispersion adjustment).")
    small = int(rows["withheld"].sum()) if "withheld" in rows else 0
    if small:
        text.append(
            f"{small} microsystem{'s' if small > 1 else ''} not shown: fewer than {threshold} "
            "cases, or a count of fewer than that which their value would give away (the "
            "small-cell rule); the organisation's value leaves them out."
        )
    return " ".join(text)


def funnel_outliers(
    table: pd.DataFrame,
    *,
    level: str = "95",
    names: pd.Series | None = None,
    threshold: int = SMALL_CELL_THRESHOLD,
) -> pd.DataFrame:
    """The microsystems outside the funnel's limits, as a table to read.

    Parameters
    ----------
    table : DataFrame
        From :func:`qi_helpers.spc.funnel.funnel_table`.
    level : {"95", "998"}
        Outside the 95% limits (which includes those outside the 99.8% limits) or only 99.8%.
    names : Series, optional
        Measure names by ``measure_id``.
    threshold : int
        The small-cell threshold (denominators below it show as ``<11``; such rows are never
        outside the limits anyway).

    Returns
    -------
    DataFrame
        One row per microsystem and measure outside the limits, worst first: ``Measure``,
        ``Kind``, ``Microsystem``, ``Value``, ``Denominator`` (text), ``Organisation``,
        ``95% limits``, ``99.8% limits``, ``Outside`` (``99.8%`` or ``95%``), ``Better or
        worse``, ``z``. No index.
    """
    if level not in ("95", "998"):
        raise ConfigError(f"funnel_outliers: level must be '95' or '998', found {level!r}.")
    out = table[table[f"outside_{level}"].astype(bool)].copy()
    out = out.assign(_order=-out["z"].abs()).sort_values(["measure_id", "_order"])
    label = small_cell_label(threshold)

    def limits(lo: float, hi: float) -> str:
        return f"{_words(lo)} to {_words(hi)}"

    rows = []
    for r in out.itertuples():
        den = float(r.denominator)
        rows.append(
            {
                "Measure": str(names.get(r.measure_id, r.measure_id))
                if names is not None
                else r.measure_id,
                "Kind": str(r.kind).replace("_", " "),
                "Microsystem": r.microsystem_id,
                "Value": _words(float(r.value)),
                "Denominator": label if 0 < den < threshold else _words(den),
                "Organisation": _words(float(r.target)),
                "95% limits": limits(r.lower_95, r.upper_95),
                "99.8% limits": limits(r.lower_998, r.upper_998),
                "Outside": "99.8%" if r.outside_998 else "95%",
                "Better or worse": r.direction,
                "z": round(float(r.z), 2),
            }
        )
    columns = ["Measure", "Kind", "Microsystem", "Value", "Denominator", "Organisation",
               "95% limits", "99.8% limits", "Outside", "Better or worse", "z"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def distance_from_best(table: pd.DataFrame, measure_id: str | None = None) -> pd.DataFrame:
    """Every judged microsystem's distance from the best of its kind on each measure.

    The best is the judged microsystem (not below the small-cell threshold) with the best value
    in the measure's direction of improvement; the distance is how much worse a microsystem is,
    on the shown scale (0 for the best). A microsystem far from the best *and* worse than the
    organisation beyond the funnel's limits has the most room to improve.

    Parameters
    ----------
    table : DataFrame
        From :func:`qi_helpers.spc.funnel.funnel_table`.
    measure_id : str, optional
        Only this measure.

    Returns
    -------
    DataFrame
        ``measure_id, kind, microsystem_id, value, best, best_microsystem_id, gap_to_best, z,
        position`` (``worse than expected`` outside the 95% limits on the worse side,
        ``better than expected``, or ``as expected``), furthest from the best first.
    """
    rows = table[~table["withheld"].astype(bool)]
    if measure_id is not None:
        rows = rows[rows["measure_id"] == measure_id]
    frames = []
    for (_, _), group in rows.groupby(["measure_id", "kind"], sort=True):
        higher_better = str(group["improvement"].iloc[0]) == "up"
        best_pos = group["value"].idxmax() if higher_better else group["value"].idxmin()
        best = float(group.at[best_pos, "value"])
        gap = (best - group["value"]) if higher_better else (group["value"] - best)
        frames.append(
            group.assign(
                best=best,
                best_microsystem_id=group.at[best_pos, "microsystem_id"],
                gap_to_best=gap,
            )
        )
    columns = ["measure_id", "kind", "microsystem_id", "value", "best", "best_microsystem_id",
               "gap_to_best", "z", "position"]  # fmt: skip
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    out = pd.concat(frames, ignore_index=True)
    out["position"] = np.where(
        out["outside_95"].astype(bool),
        out["direction"].map({"better": "better than expected", "worse": "worse than expected"}),
        "as expected",
    )
    out = out.sort_values(["measure_id", "gap_to_best"], ascending=[True, False], kind="stable")
    return out[columns].reset_index(drop=True)
