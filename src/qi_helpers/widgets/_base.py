"""The mechanism every explorer shares: controls, a render function, an output area."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


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
        In batch, what ``render`` returns. Interactively, an ``ipywidgets.VBox`` of the controls
        and an ``Output`` holding the latest rendering; the box has ``.output`` and ``.controls``
        attributes so that tests can drive it.
    """
    values = {name: control.value for name, control in controls.items()}
    if not interactive:
        return render(**values)

    import ipywidgets as widgets
    from IPython.display import display

    output = widgets.Output()

    def redraw(*_: Any) -> None:
        current = {name: control.value for name, control in controls.items()}
        output.clear_output(wait=True)
        with output:
            shown = render(**current)
            for item in shown if isinstance(shown, tuple) else (shown,):
                display(item)

    for control in controls.values():
        control.observe(redraw, names="value")
    header = [widgets.HTML(f"<b>{title}</b>")] if title else []
    box = widgets.VBox([*header, widgets.HBox(list(controls.values())), output])
    box.output = output
    box.controls = dict(controls)
    redraw()
    return box
