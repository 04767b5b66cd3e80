"""Tables for people: every table a workbook shows, as a readable table that fits the page.

The one display helper of the project's tables (issue 20). :mod:`qi_helpers.notebook_display`
registers :func:`readable_html` as the HTML formatter of every ``DataFrame`` a notebook shows,
after the identifier screen, so JupyterLab and the published pages show the same table:

- readable headers with units, and cells as people write them (:mod:`qi_helpers.table_formats`:
  counts ``1,691``, means to three significant digits or the measure's decimals, shares as
  percentages, dates as ``12 Aug 2024``, Yes / No, empty cells for missing values);
- no index column: a meaningful index (names, a transposed record) becomes the first column;
- an effect and its interval as one column, ``+13.5 points (9.9 to 17.0)``;
- rows that share a measure and a change under one heading row (:func:`grouped`);
- at most :data:`MAX_COLUMNS_IN_VIEW` columns in view: the rest behind a ``<details>``
  disclosure ("More columns: ..."), as narrow tables that repeat the row's label column, so that
  the page never scrolls sideways and a reader still compares rows column by column;
- long tables cut like pandas does (``display.max_rows``, ``display.min_rows``): the first and
  last rows with a row that says how many are left out.

The HTML holds only elements and attributes that the page sanitiser keeps (no ``style``, no
script); the look comes from the report's stylesheet (``.qi-table``).

The summary cards that open a report ("summary first": workbooks 02, 03 and 04 and the index)
share their markup here too, for the same reasons: :func:`summary_card` (a heading, a line of
badges, then the card's text), :func:`summary_region` (the cards as one list),
:func:`status_badge` and :func:`icon_badge`, styled by the report's stylesheet
(``.qi-summary-card``, ``.qi-status``, ``.mdc``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from qi_helpers.table_formats import (
    KNOWN_COLUMNS,
    ColumnFormat,
    column_format,
    effect_text,
    format_value,
    is_missing,
    row_unit,
)

__all__ = [
    "DISPLAY_KEY",
    "MAX_COLUMNS_IN_VIEW",
    "display_options",
    "grouped",
    "icon_badge",
    "readable_html",
    "status_badge",
    "summary_card",
    "summary_region",
]

#: Columns a table shows in view; the others go behind the "More columns" disclosure.
MAX_COLUMNS_IN_VIEW = 8
#: Columns of each narrow table behind the disclosure, besides the repeated label column.
MORE_COLUMNS_PER_TABLE = 5
#: Where :func:`grouped` records a table's display options (``DataFrame.attrs``).
DISPLAY_KEY = "qi_display"


@dataclass
class _Column:
    """One column as shown: its header, format and cells as text."""

    name: object
    fmt: ColumnFormat
    cells: list[str] = field(default_factory=list)


def grouped(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """A copy of ``frame`` that shows its rows under one heading row per value of ``by``.

    The columns of ``by`` (those present) leave the table and become heading rows, so a table
    with one row per subgroup does not repeat the measure and the change on every row.

    Parameters
    ----------
    frame : pandas.DataFrame
    by : sequence of str
        Columns to group by, in the order they read in the heading.

    Returns
    -------
    pandas.DataFrame
        The same data, with ``attrs[DISPLAY_KEY]["group_by"]`` set.
    """
    out = frame.copy()
    out.attrs[DISPLAY_KEY] = {"group_by": [c for c in by if c in frame.columns]}
    return out


def display_options(frame: pd.DataFrame) -> dict[str, object]:
    """The display options a table carries (:func:`grouped`): keyword arguments of
    :func:`readable_html`."""
    options = frame.attrs.get(DISPLAY_KEY, {}) if hasattr(frame, "attrs") else {}
    return {"group_by": list(options.get("group_by", ()))}


def _meaningful_index(frame: pd.DataFrame) -> bool:
    """False for pandas' default row numbers (0, 1, 2, ... unnamed), True otherwise."""
    index = frame.index
    if isinstance(index, pd.MultiIndex) or any(n is not None for n in index.names):
        return True
    if isinstance(index, pd.RangeIndex):
        return False
    if pd.api.types.is_integer_dtype(index.dtype):
        return not index.equals(pd.RangeIndex(len(index)))
    return True


def _index_label(value: object) -> object:
    """A row label: a known column name (a transposed record) reads as its header."""
    if isinstance(value, str) and (value in KNOWN_COLUMNS or re.fullmatch(r"[a-z0-9]+_\w+", value)):
        return column_format(value).header
    return value


def _source_columns(frame: pd.DataFrame) -> tuple[list[object], list[list[object]]]:
    """Column names and values, a meaningful index first (its levels as columns)."""
    names: list[object] = []
    values: list[list[object]] = []
    if _meaningful_index(frame):
        index = frame.index
        for level, level_name in enumerate(index.names):
            labels = index.get_level_values(level)
            names.append(level_name if level_name is not None else "")
            values.append([_index_label(v) for v in labels])
    for position, name in enumerate(frame.columns):
        names.append(name)
        values.append(list(frame.iloc[:, position]))
    return names, values


def _effect_ci(rows: list[dict[str, object]]) -> list[str]:
    """``+13.5 points (9.9 to 17.0)``: each row's effect with its 95% interval."""
    cells = []
    for row in rows:
        effect, low, high = row.get("effect"), row.get("effect_low"), row.get("effect_high")
        if is_missing(effect):
            cells.append("")
            continue
        unit, kind = row_unit(row), str(row.get("effect_kind", "") or "")
        text = effect_text(float(effect), unit, kind)
        if not is_missing(low) and not is_missing(high):
            bounds = [effect_text(float(b), unit, kind).split(" ")[0] for b in (low, high)]
            text += f" ({bounds[0].lstrip('+')} to {bounds[1].lstrip('+')})"
        cells.append(text)
    return cells


def _numbers(cells: list[object]) -> bool:
    """Whether every value of a column is a number (not a boolean) or missing."""
    present = [v for v in cells if not is_missing(v)]
    return bool(present) and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
        for v in present
    )


def _record_formats(frame: pd.DataFrame) -> list[ColumnFormat] | None:
    """The format of each row of a transposed record (its index holds column names), else None.

    ``registry.set_index("microsystem_id").T`` has one row per field: each row's cells read
    by that field's format (a count as a count, a kind as words).
    """
    index = frame.index
    if isinstance(index, pd.MultiIndex) or index.name is not None or not len(index):
        return None
    known = sum(isinstance(v, str) and v in KNOWN_COLUMNS for v in index)
    return [column_format(v) for v in index] if known * 2 >= len(index) else None


def _columns(frame: pd.DataFrame) -> list[_Column]:
    """The columns as shown: formatted cells, the effect and its interval as one column."""
    names, values = _source_columns(frame)
    rows = [{str(n): v[i] for n, v in zip(names, values, strict=True)} for i in range(len(frame))]
    has_ci = {"effect", "effect_low", "effect_high"} <= {str(n) for n in names}
    by_row = _record_formats(frame) if _meaningful_index(frame) else None
    n_index = len(names) - len(frame.columns)
    columns = []
    for position, (name, cells) in enumerate(zip(names, values, strict=True)):
        if has_ci and name in ("effect_low", "effect_high"):
            continue
        if has_ci and name == "effect":
            columns.append(_Column("effect_ci", column_format("effect_ci"), _effect_ci(rows)))
            continue
        fmt = column_format(name)
        if fmt.kind == "auto" and _numbers(cells):
            fmt = replace(fmt, kind="number")
        formats = by_row if by_row is not None and position >= n_index else [fmt] * len(cells)
        texts = [format_value(v, f, row) for v, f, row in zip(cells, formats, rows, strict=True)]
        columns.append(_Column(name, fmt, texts))
    return columns


def _kept_rows(n: int, max_rows: int | None, min_rows: int | None) -> list[int | None]:
    """Row positions shown, with None where rows are left out (pandas' rule)."""
    max_rows = pd.get_option("display.max_rows") if max_rows is None else max_rows
    min_rows = pd.get_option("display.min_rows") if min_rows is None else min_rows
    if not max_rows or n <= max_rows:
        return list(range(n))
    head = max(1, (min(min_rows or max_rows, max_rows) + 1) // 2)
    tail = max(1, min(min_rows or max_rows, max_rows) // 2)
    return [*range(head), None, *range(n - tail, n)]


def _cell(tag: str, text: str, fmt: ColumnFormat, extra: str = "") -> str:
    css = ' class="qi-num"' if fmt.numeric else ""
    return f"<{tag}{css}{extra}>{html.escape(text)}</{tag}>"


def _group_parts(groups: list[_Column], i: int) -> list[str]:
    """The parts of a row's group heading: ``name``, ``Change: ...``, ``Patients by: ...``."""
    parts = []
    for column in groups:
        text = column.cells[i]
        plain = column.name in ("name", "measure_id", "microsystem_id")
        parts.append(text if plain or not text else f"{column.fmt.header}: {text}")
    return parts


def _group_heading(parts: list[str], previous: list[str] | None) -> str:
    """A heading row's text: the parts from the first that differs from the previous heading
    (``name · Change: ... · Patients by: sex``, then ``Patients by: age band``)."""
    start = 0
    if previous is not None:
        while start < len(parts) and parts[start] == previous[start]:
            start += 1
    return " · ".join(p for p in parts[start:] if p)


def _table(
    columns: list[_Column],
    kept: list[int | None],
    groups: list[_Column],
    n_rows: int,
    *,
    label: int = 0,
) -> str:
    """One ``<table>`` of the given columns and rows; the first ``label`` + 1 cells are
    row headers."""
    head = "".join(_cell("th", c.fmt.header, c.fmt, ' scope="col"') for c in columns)
    body: list[str] = []
    heading: list[str] | None = None
    width = max(len(columns), 1)
    for i in kept:
        if i is None:
            left_out = n_rows - sum(k is not None for k in kept)
            body.append(
                f'<tr class="qi-gap"><td colspan="{width}">… {left_out:,} more rows …</td></tr>'
            )
            heading = None
            continue
        parts = _group_parts(groups, i)
        if groups and parts != heading:
            body.append(
                f'<tr class="qi-group"><th colspan="{width}" scope="colgroup">'
                f"{html.escape(_group_heading(parts, heading))}</th></tr>"
            )
            heading = parts
        cells = [
            _cell("th" if k <= label else "td", c.cells[i], c.fmt, ' scope="row"' * (k <= label))
            for k, c in enumerate(columns)
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not kept:
        body.append(f'<tr><td colspan="{width}">No rows.</td></tr>')
    return (
        '<table class="qi-readable">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _chunks(items: list[_Column], size: int) -> Iterable[list[_Column]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _label_columns(view: list[_Column], kept: list[int | None]) -> list[_Column]:
    """The column(s) that name a row: the first, and the second when the first repeats."""
    if not view:
        return []
    shown = [view[0].cells[i] for i in kept if i is not None]
    if len(view) > 1 and len(set(shown)) < len(shown):
        return view[:2]
    return view[:1]


def readable_html(
    frame: pd.DataFrame,
    *,
    group_by: Sequence[str] | None = None,
    max_columns: int = MAX_COLUMNS_IN_VIEW,
    max_rows: int | None = None,
    min_rows: int | None = None,
) -> str:
    """A table as people read it, in HTML: readable headers and cells, at most
    ``max_columns`` columns in view and the rest behind a "More columns" disclosure.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table (screened for identifiers before it comes here).
    group_by : sequence of str, optional
        Columns whose values head groups of rows instead of repeating on each row; default
        those :func:`grouped` recorded on ``frame``.
    max_columns : int
        Columns in view.
    max_rows, min_rows : int, optional
        Longer tables show ``min_rows`` rows (first and last); default pandas' options.

    Returns
    -------
    str
        ``<div class="qi-table">`` with one table, a ``<details>`` for the other columns,
        and a note when rows were left out. Every text is HTML-escaped.
    """
    if group_by is None:
        group_by = display_options(frame)["group_by"]
    columns = _columns(frame)
    groups = [c for name in group_by for c in columns if c.name == name]
    shown = [c for c in columns if c not in groups]
    shown = [c for c in shown if not c.fmt.detail] + [c for c in shown if c.fmt.detail]
    kept = _kept_rows(len(frame), max_rows, min_rows)
    view, more = shown[:max_columns], shown[max_columns:]
    parts = ['<div class="qi-table">', _table(view, kept, groups, len(frame))]
    if more:
        labels = _label_columns(view, kept)
        names = ", ".join(html.escape(c.fmt.header) for c in more)
        parts.append(f'<details class="qi-more"><summary>More columns: {names}</summary>')
        for chunk in _chunks(more, MORE_COLUMNS_PER_TABLE):
            parts.append(_table(labels + chunk, kept, groups, len(frame), label=len(labels) - 1))
        parts.append("</details>")
    if None in kept:
        n_shown = sum(k is not None for k in kept)
        parts.append(f'<p class="qi-table-note">{n_shown} of {len(frame):,} rows shown.</p>')
    parts.append("</div>")
    return "".join(parts)


# --- Summary cards: the markup every "summary first" shares --------------------------------------


def status_badge(text: str, css: str) -> str:
    """A status badge, e.g. a verdict: ``<span class="qi-status qi-status-ok">improved</span>``.

    ``css`` is one of the index's status styles: ``qi-status-ok`` (good), ``qi-status-failed``
    (bad), ``qi-status-stale`` (wait and see), ``qi-status-none`` (nothing to tell).
    """
    return f'<span class="qi-status {html.escape(css)}">{html.escape(text)}</span>'


def icon_badge(css: str, glyph: str, text: str) -> str:
    """A Making Data Count icon as a small badge, with its meaning for screen readers.

    Parameters
    ----------
    css : str
        The icon's style (``mdc-improve``, ``mdc-pass``, ... or ``mdc-none``).
    glyph : str
        What the badge shows (``H``, ``L``, ``~``, ``P``, ``F``, ``?``), hidden from screen
        readers.
    text : str
        What the icon means, in words: the badge's title and its text for screen readers.
    """
    e = html.escape
    return (
        f'<span class="mdc {e(css)}" title="{e(text)}"><span aria-hidden="true">'
        f'{e(glyph)}</span><span class="visually-hidden">{e(text)}. </span></span>'
    )


def summary_card(title: str, badges: str, body: Sequence[str] = (), *, href: str = "") -> str:
    """One summary card: its title, a line of badges, then its text.

    Parameters
    ----------
    title : str
        The card's heading, as text (escaped here).
    badges : str
        HTML of the badges (:func:`status_badge`, :func:`icon_badge`), already escaped.
    body : sequence of str
        HTML blocks that follow (paragraphs ``<p class="qi-summary-...">``, lists), already
        escaped.
    href : str
        When given, the title links there.

    Returns
    -------
    str
        ``<li class="qi-summary-card">``: a card of :func:`summary_region`'s list.
    """
    name = html.escape(title)
    if href:
        name = f'<a href="{html.escape(href)}">{name}</a>'
    return (
        '<li class="qi-summary-card">'
        f'<h3 class="qi-summary-name">{name}</h3>'
        f'<p class="qi-summary-badges">{badges}</p>' + "".join(body) + "</li>"
    )


def summary_region(cards: Sequence[str], label: str, empty: str) -> str:
    """The summary cards of a report as one region (or a sentence when there is none).

    Parameters
    ----------
    cards : sequence of str
        :func:`summary_card` items.
    label : str
        The region's name for screen readers, e.g. "Summary: one card per measure".
    empty : str
        What shows when there is no card.
    """
    if not cards:
        return f'<p class="qi-summary-none">{html.escape(empty)}</p>'
    return (
        f'<div class="qi-summary" role="region" aria-label="{html.escape(label)}">'
        f'<ul class="qi-summary-cards">{"".join(cards)}</ul></div>'
    )
