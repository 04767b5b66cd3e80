"""Show the figures that ``qi_helpers`` returns when a notebook cell ends with one.

Our drawing functions build ``matplotlib.figure.Figure`` objects without pyplot, so that a figure
is shown once (as the cell's value) and never leaks into pyplot's global state. IPython shows a
bare Figure as an image only once a formatter is registered for it; this module registers them
when imported inside an IPython kernel and does nothing elsewhere: a figure of ``qi_helpers``
(a :class:`~qi_helpers.drawing.ScreenedFigure`) shows as a chart for people, an HTML
``<figure>`` with its alt text and caption (:func:`qi_helpers.chart_display.chart_html`), any
other figure as a PNG. It also registers display
formatters that screen every displayed table for identifiers, then show it as a table for
people (:func:`qi_helpers.readable_tables.readable_html`): the same table in JupyterLab and in
the published page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from qi_helpers.chart_display import chart_html, chart_text
from qi_helpers.drawing import ScreenedFigure
from qi_helpers.privacy.screen import active_screen
from qi_helpers.readable_tables import display_options, readable_html

if TYPE_CHECKING:
    from IPython.display import Markdown

__all__ = ["enable_figure_display", "enable_table_screening", "table_or_note"]


def enable_figure_display() -> bool:
    """Register PNG display of matplotlib figures in the running IPython shell, if any.

    Returns
    -------
    bool
        True when a shell was found and the formatter registered.
    """
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:  # not in IPython: nothing to do
        return False
    shell = get_ipython()
    if shell is None:
        return False
    # no dpi here: each figure's own dpi applies (100 by default; lighter where a figure asks)
    select_figure_formats(shell, {"png"}, bbox_inches="tight")
    # Our figures: one HTML <figure> (the PNG inline, its alt text and caption), and no
    # separate PNG (None: the PNG formatter gives nothing for them, the image is in the HTML).
    formatters = shell.display_formatter.formatters
    formatters["text/html"].for_type(ScreenedFigure, chart_html)
    formatters["image/png"].for_type(ScreenedFigure, lambda fig: None)
    formatters["text/plain"].for_type(ScreenedFigure, lambda fig, p, cycle: p.text(chart_text(fig)))
    return True


def _screened(obj: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """``obj`` (a DataFrame or Series) with the active identifier screen applied, or itself."""
    screen = active_screen()
    if screen is None:
        return obj
    if isinstance(obj, pd.Series):
        frame, _ = screen.redact_frame(obj.to_frame())
        return frame.iloc[:, 0]
    frame, _ = screen.redact_frame(obj)
    return frame


def _table_html(frame: pd.DataFrame) -> str:
    """A displayed table's HTML: screened first, then formatted for people."""
    return readable_html(_screened(frame), **display_options(frame))


def enable_table_screening() -> bool:
    """Screen every table a notebook displays for identifiers, then format it for people.

    Formatting shortens long cells and rounds numbers, so an identifier cut in two could slip
    past a screen of the finished page; the display formatters registered here apply the
    project's screen (:func:`qi_helpers.privacy.screen.active_screen`, set by
    ``load_project``) to the table first, and only then format it
    (:func:`qi_helpers.readable_tables.readable_html`). Without a loaded project tables are
    formatted as they are.

    Returns
    -------
    bool
        True when a shell was found and the formatters registered.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    formatters = shell.display_formatter.formatters
    for kind in (pd.DataFrame, pd.Series):
        if kind is pd.DataFrame:
            formatters["text/html"].for_type(kind, _table_html)
        formatters["text/plain"].for_type(kind, lambda obj, p, cycle: p.text(repr(_screened(obj))))
    return True


enable_figure_display()
enable_table_screening()


def table_or_note(table: pd.DataFrame, note: str) -> pd.DataFrame | Markdown:
    """A table to show as a cell's value, or a sentence when it has no rows.

    An empty table shows only its header, which a reader of the report cannot interpret; the
    sentence says what its emptiness means.

    Parameters
    ----------
    table : pandas.DataFrame
        The table.
    note : str
        Markdown shown instead when ``table`` has no rows.

    Returns
    -------
    pandas.DataFrame or IPython.display.Markdown
    """
    if len(table):
        return table
    # IPython only where a note is shown: this module also loads outside a kernel.
    from IPython.display import Markdown

    return Markdown(note)
