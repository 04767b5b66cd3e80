"""The weekly run chart of a 5 Ps card as a small SVG, with its description in words.

The SVG is embedded as an image (``<img src="data:image/svg+xml;base64,...">``) with its
description in words as ``alt`` text: the published page keeps inline images but escapes tags
outside its allow-list (:func:`qi_helpers.privacy.html.clean_html`, which has no ``<svg>``), and
an SVG loaded as an image can run no script. The run chart draws the numbers of
:attr:`qi_helpers.identify.profiles.Profiles.weekly` as they are (the ``qic`` result: ``y``,
``cl``, the runs analysis) and colours the points that :func:`qi_helpers.spc.rules.signals`
flags, as :func:`qi_helpers.spc.plots.plot_qic` does. The card around it is in
:mod:`qi_helpers.identify.cards`.
"""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd

from qi_helpers.privacy.html import escape
from qi_helpers.spc.plots import POINT_COLOURS
from qi_helpers.spc.rules import signals

__all__ = ["number_text", "run_chart_description", "run_chart_figure", "run_chart_svg"]

_MEDIAN_COLOUR = "#6E6E6E"  # the centre line of qi_helpers.spc.plots
_SVG_BOX = (1200, 260)  # drawn at twice the size it is shown
_SVG_MARGIN = (80, 16, 16, 36)  # left, right, top, bottom


def number_text(value: float, decimals: int = 1) -> str:
    """``312`` for whole numbers, else ``105.5`` (thousands separated), as a card writes it."""
    value = float(value)
    return f"{value:,.0f}" if value.is_integer() else f"{value:,.{decimals}f}"


def _day(when: object) -> str:
    """``1 Jan 2024`` (no platform-specific ``strftime`` flag)."""
    when = pd.Timestamp(when)
    return f"{when.day} {when:%b %Y}"


def _runs_reason(part: pd.Series) -> str:
    """Why one part of a run chart shows non-random variation, from its runs analysis."""
    reasons = []
    if pd.notna(part.get("longest_run")) and part["longest_run"] > part["longest_run_max"]:
        reasons.append(
            f"a run of {part['longest_run']} weeks on one side of the median (at most "
            f"{part['longest_run_max']} expected by chance)"
        )
    if pd.notna(part.get("n_crossings")) and part["n_crossings"] < part["n_crossings_min"]:
        reasons.append(
            f"{part['n_crossings']} crossings of the median (at least "
            f"{part['n_crossings_min']} expected)"
        )
    return " and ".join(reasons) or "a runs signal"


def run_chart_description(chart: pd.DataFrame) -> str:
    """The weekly run chart in words: the chart's ``alt`` text and the note under it.

    Parameters
    ----------
    chart : DataFrame
        One microsystem's rows of :attr:`qi_helpers.identify.profiles.Profiles.weekly` (a
        ``qic`` run chart).

    Returns
    -------
    str
        For example "Run chart of weekly activities, 104 weeks from 1 Jan 2024 to 22 Dec 2025:
        median 312, from 250 to 380; no non-random variation."
    """
    y = chart["y"].dropna()
    if y.empty:
        return "Run chart of weekly activities: no weekly data."
    first, last = chart["x"].iloc[0], chart["x"].iloc[-1]
    parts = chart.drop_duplicates("part", keep="last")
    medians = ", ".join(number_text(cl) for cl in parts["cl"])
    signalling = parts[parts["runs_signal"].astype(bool)] if "runs_signal" in parts else parts[:0]
    verdict = (
        "non-random variation: " + "; ".join(_runs_reason(p) for _, p in signalling.iterrows())
        if len(signalling)
        else "no non-random variation"
    )
    return (
        f"Run chart of weekly activities, {len(y)} weeks from {_day(first)} to "
        f"{_day(last)}: median{'s' if len(parts) > 1 else ''} {medians}, from "
        f"{number_text(y.min())} to {number_text(y.max())}; {verdict}."
    )


def _scale(values: np.ndarray, low: float, high: float, out_low: float, out_high: float):
    span = high - low or 1.0
    return out_low + (values - low) / span * (out_high - out_low)


def _points(xs: np.ndarray, ys: np.ndarray) -> str:
    return " ".join(f"{x:.0f},{y:.0f}" for x, y in zip(xs, ys, strict=True))


def _marker(name: str, radius: int, fill: str, stroke: str = "none") -> str:
    size = 2 * radius + 2
    return (
        f'<marker id="{name}" markerWidth="{size}" markerHeight="{size}" refX="{size / 2:g}" '
        f'refY="{size / 2:g}" markerUnits="userSpaceOnUse"><circle cx="{size / 2:g}" '
        f'cy="{size / 2:g}" r="{radius}" fill="{fill}" stroke="{stroke}"/></marker>'
    )


def _dots(name: str, xs: np.ndarray, ys: np.ndarray, *, line: str = "none", series: str) -> str:
    """A polyline with a marker on every vertex: one dot per point, a few bytes each."""
    ends = f'marker-start="url(#{name})" marker-mid="url(#{name})" marker-end="url(#{name})"'
    width = ' stroke-width="2"' if line != "none" else ""
    return (
        f'<polyline data-series="{series}" fill="none" stroke="{line}"{width} {ends} '
        f'points="{_points(xs, ys)}"/>'
    )


def run_chart_svg(chart: pd.DataFrame) -> str:
    """A small SVG of one microsystem's weekly run chart.

    Parameters
    ----------
    chart : DataFrame
        One microsystem's rows of :attr:`qi_helpers.identify.profiles.Profiles.weekly` (``x``,
        ``y``, ``cl``, ``part``, the runs analysis), in week order.

    Returns
    -------
    str
        An SVG document (``role="img"``, its ``<title>`` the short description "Run chart of
        weekly activities"; :func:`run_chart_description` says the rest in words): the weekly
        values as a line with one dot per week with a value (the polyline ``data-series="y"``),
        the median of each part as a dashed line, the points flagged by
        :func:`qi_helpers.spc.rules.signals` (Anhoej rules) in the colours of
        :func:`qi_helpers.spc.plots.plot_qic` (a polyline without a line per point type,
        ``data-series`` the type), and the range of the values and of the weeks as
        text. Drawn in a 1200 x 260 box shown at 600 x 130, so that whole-number coordinates
        are precise enough.
    """
    width, height = _SVG_BOX
    left, right, top, bottom = _SVG_MARGIN
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width // 2}" height="{height // 2}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>Run chart of weekly activities</title>'
    )
    chart = chart.reset_index(drop=True)
    y = chart["y"].to_numpy(dtype=float)
    keep = ~np.isnan(y)
    if not keep.any():
        return head + "</svg>"
    cl = chart["cl"].to_numpy(dtype=float)
    low = float(np.nanmin(np.concatenate([y, cl])))
    high = float(np.nanmax(np.concatenate([y, cl])))
    xs = _scale(np.arange(len(chart), dtype=float), 0, max(len(chart) - 1, 1), left, width - right)
    ys = _scale(y, low, high, height - bottom, top)
    cls = _scale(cl, low, high, height - bottom, top)
    kinds = signals(chart, rules="anhoej").points["point_type"].to_numpy()
    special = [kind for kind in POINT_COLOURS if kind != "common_cause" and (kinds == kind).any()]
    markers = [_marker("w", 3, "#000")] + [
        _marker(f"s{i}", 6, POINT_COLOURS[kind], "#fff") for i, kind in enumerate(special)
    ]
    body = ["<defs>" + "".join(markers) + "</defs>"]
    part = chart["part"].to_numpy()
    for p in pd.unique(part):
        at = np.flatnonzero(part == p)
        body.append(
            f'<line x1="{xs[at[0]]:.0f}" x2="{xs[at[-1]]:.0f}" y1="{cls[at[0]]:.0f}" '
            f'y2="{cls[at[0]]:.0f}" stroke="{_MEDIAN_COLOUR}" stroke-width="2" '
            'stroke-dasharray="10 6"/>'
        )
    body.append(_dots("w", xs[keep], ys[keep], line="#000", series="y"))
    for i, kind in enumerate(special):
        at = keep & (kinds == kind)
        body.append(_dots(f"s{i}", xs[at], ys[at], series=kind))
    first, last = _day(chart["x"].iloc[0]), _day(chart["x"].iloc[-1])
    body.append(
        '<g font-family="sans-serif" font-size="20" fill="#52606d">'
        f'<text x="{left - 8}" y="{top + 16}" text-anchor="end">{number_text(high)}</text>'
        f'<text x="{left - 8}" y="{height - bottom}" text-anchor="end">{number_text(low)}</text>'
        f'<text x="{left}" y="{height - 6}">{first}</text>'
        f'<text x="{width - right}" y="{height - 6}" text-anchor="end">{last}</text>'
        "</g>"
    )
    return head + "".join(body) + "</svg>"


def run_chart_figure(chart: pd.DataFrame) -> str:
    """The weekly run chart as a card's wide figure (HTML).

    Parameters
    ----------
    chart : DataFrame
        One microsystem's rows of :attr:`qi_helpers.identify.profiles.Profiles.weekly`.

    Returns
    -------
    str
        A ``<figure>``: the SVG of :func:`run_chart_svg` as an image whose ``alt`` text is
        :func:`run_chart_description`, the description again as a note, and the weekly values as
        text (in ``<details>``); without weekly data, the description alone.
    """
    description = run_chart_description(chart)
    if chart["y"].isna().all():
        return (
            '<figure class="qi-card-wide"><figcaption>Patterns: activities a week</figcaption>'
            f'<p class="qi-card-note">{escape(description)}</p></figure>'
        )
    source = base64.b64encode(run_chart_svg(chart).encode("utf-8")).decode("ascii")
    width, height = _SVG_BOX[0] // 2, _SVG_BOX[1] // 2
    values = ", ".join(number_text(v) for v in chart["y"].dropna())
    return (
        '<figure class="qi-card-wide"><figcaption>Patterns: activities a week (run chart; '
        "dashed line: the median; coloured points: non-random variation)</figcaption>"
        f'<img class="qi-card-run" src="data:image/svg+xml;base64,{source}" '
        f'alt="{escape(description)}" width="{width}" height="{height}">'
        f'<p class="qi-card-note">{escape(description)}</p>'
        "<details><summary>The weekly values</summary>"
        f'<p class="qi-card-note qi-card-values">{escape(values)}</p></details></figure>'
    )
