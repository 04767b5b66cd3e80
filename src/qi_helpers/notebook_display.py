"""Show the figures that ``qi_helpers`` returns when a notebook cell ends with one.

Our drawing functions build ``matplotlib.figure.Figure`` objects without pyplot, so that a figure
is shown once (as the cell's value) and never leaks into pyplot's global state. IPython shows a
bare Figure as an image only once a PNG formatter is registered for it; this module registers it
when imported inside an IPython kernel and does nothing elsewhere.
"""

from __future__ import annotations


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
    return True


enable_figure_display()


def table_or_note(table, note: str):
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
    from IPython.display import Markdown

    return Markdown(note)
