"""A driver diagram as accessible HTML: a tree of text, readable without colour or pictures.

The diagram reads left to right, aim, primary drivers, secondary drivers, change ideas, as
nested lists (a screen reader announces the levels; without the stylesheet, as in JupyterLab,
it reads as an indented outline). Every status is written in words beside its symbol, and the
colour of its badge (the site's ``qi-status-*`` styles) only repeats them. All text is text:
selectable, searchable, screened for identifiers and escaped. Links stay on the page: a change
idea to its PDSA cycles (``#qi-dd-cycle-<n>``, listed under the diagram), a measure to its
chart (``#qi-chart-<n>``, the ``id`` of the n-th figure of
:func:`qi_helpers.changes.figures.plot_measures`). The
layout is ``drivers.css`` of the report template.
"""

from __future__ import annotations

import html

import pandas as pd

from qi_helpers.changes.figures import measure_chart_anchor
from qi_helpers.table_formats import column_format, format_value

__all__ = ["STATUS_BADGES", "diagram_html"]

#: A status of a change idea: (the site's status style, a symbol that repeats it in shape).
STATUS_BADGES: dict[str, tuple[str, str]] = {
    "tested and improved": ("qi-status-ok", "\u2713"),  # check mark
    "tested, a measure worsened": ("qi-status-failed", "!"),
    "tested, no signal yet": ("qi-status-stale", "\u2026"),  # ellipsis
    "not tested yet": ("qi-status-none", "\u25cb"),  # white circle
    "abandoned": ("qi-status-none", "\u2717"),  # ballot x
    "spreading": ("qi-status-ok", "\u2197"),  # north-east arrow
    "ready to spread": ("qi-status-ok", "\u2713"),
    "held back": ("qi-status-failed", "!"),
}

_DATE = column_format("start")
_E = html.escape


def _badge(status: str) -> str:
    css, symbol = STATUS_BADGES.get(status, ("qi-status-none", "?"))
    return (
        f'<span class="qi-status {css}"><span aria-hidden="true">{_E(symbol)}</span> '
        f"{_E(status)}</span>"
    )


def _kind(label: str) -> str:
    return f'<span class="qi-dd-kind">{_E(label)}</span>'


def _cycle_links(change: str, cycles: pd.DataFrame) -> str:
    numbers = [i for i, c in enumerate(cycles["change"], start=1) if c == change]
    if not numbers:
        return ""
    links = ", ".join(
        f'<a href="#qi-dd-cycle-{i}">{_E(str(cycles["cycle_id"].iloc[i - 1]))}</a>' for i in numbers
    )
    return f'<p class="qi-dd-cycles">PDSA cycles: {links}</p>'


def _measure_links(change: str, links: pd.DataFrame) -> str:
    items = []
    for link in links[links["change"] == change].itertuples():
        name = _E(str(link.name))
        anchor = measure_chart_anchor(int(link.chart)) if int(link.chart) else ""
        shown = f'<a href="#{anchor}">{name}</a>' if anchor else name
        verdict = f": {_E(str(link.verdict))}" if str(link.verdict) else ""
        items.append(f"<li>{shown}{verdict}</li>")
    if not items:
        return '<p class="qi-dd-detail">No measure linked yet.</p>'
    return f'<ul class="qi-dd-measures" aria-label="Measures">{"".join(items)}</ul>'


def _idea(row: pd.Series, links: pd.DataFrame, cycles: pd.DataFrame) -> str:
    change = str(row["change"])
    return (
        '<li><div class="qi-dd-node qi-dd-idea">'
        f"{_kind('Change idea')}<strong>{_E(change)}</strong>"
        f'<p class="qi-dd-status">{_badge(str(row["status"]))}</p>'
        f'<p class="qi-dd-detail">{_E(str(row["detail"]))}</p>'
        f"{_cycle_links(change, cycles)}{_measure_links(change, links)}</div></li>"
    )


def _tree(aim: str, ideas: pd.DataFrame, links: pd.DataFrame, cycles: pd.DataFrame) -> str:
    primaries = []
    for primary, under_p in ideas.groupby("primary_driver", sort=False):
        secondaries = []
        for secondary, under_s in under_p.groupby("secondary_driver", sort=False):
            items = "".join(_idea(r, links, cycles) for _, r in under_s.iterrows())
            secondaries.append(
                '<li class="qi-dd-branch"><div class="qi-dd-node qi-dd-secondary">'
                f"{_kind('Secondary driver')}{_E(str(secondary))}</div>"
                f'<ul class="qi-dd-level">{items}</ul></li>'
            )
        primaries.append(
            '<li class="qi-dd-branch"><div class="qi-dd-node qi-dd-primary">'
            f"{_kind('Primary driver')}{_E(str(primary))}</div>"
            f'<ul class="qi-dd-level">{"".join(secondaries)}</ul></li>'
        )
    return (
        '<div class="qi-dd-tree"><div class="qi-dd-node qi-dd-aim">'
        f"{_kind('Aim')}{_E(aim)}</div>"
        f'<ul class="qi-dd-level">{"".join(primaries)}</ul></div>'
    )


def _cycle_list(cycles: pd.DataFrame) -> str:
    if cycles.empty:
        return ""
    items = []
    for i, c in enumerate(cycles.to_dict("records"), start=1):
        when = format_value(c.get("start"), _DATE)
        end = format_value(c.get("end"), _DATE)
        span = f"{when} to {end}" if end else when
        decision = str(c.get("decision") or "") if pd.notna(c.get("decision")) else ""
        texts = [str(c[k]) for k in ("prediction", "result") if pd.notna(c.get(k)) and c.get(k)]
        story = f": {_E(' Result: '.join(texts))}" if texts else ""
        items.append(
            f'<li id="qi-dd-cycle-{i}"><strong>{_E(str(c["cycle_id"]))}</strong> '
            f"({_E(str(c['change']))}, {_E(span)}"
            f"{', ' + _E(decision) if decision else ''}){story}</li>"
        )
    return (
        '<p class="qi-dd-cycles-title">The PDSA cycles of these change ideas, in order:</p>'
        f'<ol class="qi-dd-cycle-list">{"".join(items)}</ol>'
    )


def diagram_html(
    microsystem_id: str,
    aim: str,
    ideas: pd.DataFrame,
    links: pd.DataFrame,
    cycles: pd.DataFrame,
    statuses: tuple[str, ...],
) -> str:
    """A driver diagram as HTML (see the module's notes).

    Parameters
    ----------
    microsystem_id : str
        Whose diagram (``""``: the organisation's).
    aim : str
    ideas : DataFrame
        ``primary_driver, secondary_driver, change, status, detail``, one row per change idea.
    links : DataFrame
        ``change, name, verdict, chart`` (``chart`` 0: no chart to link to).
    cycles : DataFrame
        ``cycle_id, change, start, end, decision, prediction, result``.
    statuses : tuple of str
        The statuses of the legend, in order.

    Returns
    -------
    str
    """
    whose = f"the microsystem {microsystem_id}" if microsystem_id else "the organisation"
    if ideas.empty:
        return (
            '<div class="qi-dd qi-dd-none"><p>No driver diagram for '
            f"{_E(whose)} yet. Write its aim, primary and secondary drivers and change ideas "
            "in the <code>drivers</code> table (one row per change idea and measure that "
            "shows it), then run the workbook again.</p></div>"
        )
    legend = "".join(f"<li>{_badge(s)}</li>" for s in statuses)
    return (
        f'<div class="qi-dd" role="group" aria-label="Driver diagram of {_E(whose)}">'
        f'<ul class="qi-dd-legend" aria-label="What the statuses mean">{legend}</ul>'
        f"{_tree(aim, ideas, links, cycles)}{_cycle_list(cycles)}</div>"
    )
