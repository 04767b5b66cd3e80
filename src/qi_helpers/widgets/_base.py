"""The mechanism every explorer shares: controls, a render function, an output area."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from qi_helpers.privacy.html import escape


def explorer(
    controls: Mapping[str, Any],
    render: Callable[..., Any],
    *,
    interactive: bool = True,
    title: str | None = None,
) -> Any:
    """Build an explorer: ``render(**values)`` redrawn whenever a control changes.

    Parameters
    ----------
    controls : mapping of str to ipywidgets.ValueWidget
        Keyword name -> control; each control's ``value`` is passed to ``render`` under its name.
    render : callable
        Returns what to show (a Figure, a DataFrame, Markdown, or a tuple of those).
    interactive : bool
        False in batch runs: return ``render`` of the current values, with no widget at all.
    title : str, optional
        A line of text shown above the controls.

    Returns
    -------
    object
        In batch, what ``render`` returns (a tuple's items are displayed one by one and None is
        returned). Interactively, an ``ipywidgets.VBox`` of the controls
        and an ``Output`` holding the latest rendering; the box has ``.output``, ``.controls``,
        ``.rendered`` (what ``render`` last returned) and ``.renders`` (how many times it ran)
        attributes, so that tests can drive it outside a notebook.
    """
    values = {name: control.value for name, control in controls.items()}
    if not interactive:
        shown = render(**values)
        if not isinstance(shown, tuple):
            return shown
        from IPython.display import display

        for item in shown:  # a tuple would show as its text; show each item as itself
            display(item)
        return None

    import ipywidgets as widgets
    from IPython.display import display

    output = widgets.Output()

    def redraw(*_: Any) -> None:
        current = {name: control.value for name, control in controls.items()}
        output.clear_output(wait=True)
        shown = render(**current)
        box.rendered = shown
        box.renders += 1
        with output:
            for item in shown if isinstance(shown, tuple) else (shown,):
                display(item)

    header = [widgets.HTML(f"<b>{escape(title)}</b>")] if title else []
    box = widgets.VBox([*header, widgets.HBox(list(controls.values())), output])
    box.output = output
    box.controls = dict(controls)
    box.rendered = None
    box.renders = 0
    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    return box
