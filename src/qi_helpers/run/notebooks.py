"""Executed notebooks: made deterministic, marked when stopped, logged and written atomically.

Two runs on the same inputs must give the same bytes (:func:`normalise_notebook`); a notebook
stopped by a timeout or a dying kernel shows where it stopped (:func:`mark_interrupted`); every
task leaves a plain-text log (:func:`task_log`). Files are written through
:func:`qi_helpers.io.atomic_write`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from qi_helpers.io import atomic_write

if TYPE_CHECKING:  # nbformat is imported where notebooks are handled: it pulls in jsonschema,
    import nbformat  # slow to import, and deciding that nothing needs to run must stay fast.

_TIMING_KEYS = ("start_time", "end_time", "duration")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def normalise_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove what differs from run to run (timestamps, durations, random ids) from a notebook.

    papermill records start and end times and durations in the notebook and cell metadata;
    nbclient records execution timings per cell; cell ids are random; widget state and widget
    views carry random model ids. Without this, two runs on the same inputs would give different
    bytes.
    """
    pm = nb.metadata.get("papermill", {})
    for key in _TIMING_KEYS:
        pm.pop(key, None)
    # Widget state is only meaningful with a live kernel; reports show static output.
    nb.metadata.pop("widgets", None)
    model_ids: dict[str, str] = {}
    for index, cell in enumerate(nb.cells):
        cell_pm = cell.metadata.get("papermill")
        if cell_pm is not None:
            for key in _TIMING_KEYS:
                cell_pm.pop(key, None)
        cell.metadata.pop("execution", None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"
        elif "id" in cell:
            cell["id"] = f"cell-{index:03d}"
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if isinstance(view, dict) and "model_id" in view:
                old = view["model_id"]
                view["model_id"] = model_ids.setdefault(old, f"widget-{len(model_ids):04d}")
    return nb


def write_notebook(nb: nbformat.NotebookNode, path: Path) -> Path:
    """Write a notebook atomically (see :func:`qi_helpers.io.atomic_write`)."""
    import nbformat  # slow to import: see the TYPE_CHECKING import above

    return atomic_write(path, lambda tmp: nbformat.write(nb, str(tmp)))


def started_cells(nb: nbformat.NotebookNode | None) -> int:
    """How many cells of a notebook papermill started (0 for no notebook)."""
    if nb is None:
        return 0
    return sum(
        c.metadata.get("papermill", {}).get("status") in ("running", "completed", "failed")
        for c in nb.cells
    )


def mark_interrupted(nb: nbformat.NotebookNode, message: str) -> None:
    """Put an error output in the cell that was running, so the report shows what happened."""
    import nbformat  # slow to import: see the TYPE_CHECKING import above

    error = nbformat.v4.new_output(
        "error", ename="NotebookStopped", evalue=message, traceback=[f"NotebookStopped: {message}"]
    )
    started = [
        cell
        for cell in nb.cells
        if cell.cell_type == "code" and cell.metadata.get("papermill", {}).get("start_time")
    ]
    if started:  # the last cell that started is the one that was running
        cell = started[-1]
        cell.outputs.append(error)
        cell.metadata["papermill"]["status"] = "failed"
        cell.metadata["papermill"]["exception"] = True
    else:
        cell = nbformat.v4.new_code_cell("")
        cell.outputs.append(error)
        nb.cells.append(cell)
    nb.metadata.setdefault("papermill", {})["exception"] = True


def task_log(
    label: str, nb: nbformat.NotebookNode | None, lines: list[str], status: str, error: str
) -> str:
    """A task's log: its own lines, then each code cell's status, duration, output and errors."""
    out = [f"task {label}", *lines]
    if nb is not None:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            meta = cell.metadata.get("papermill", {})
            seconds = meta.get("duration")
            took = f" {seconds:.2f}s" if isinstance(seconds, int | float) else ""
            out.append(f"--- cell {index} [{meta.get('status', 'not run')}]{took}")
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream":
                    out.append(f"{output.get('name')}: {output.get('text', '').rstrip()}")
                elif output.get("output_type") == "error":
                    out.append(_ANSI.sub("", "\n".join(output.get("traceback", []))))
    out.append(f"status: {status}")
    if error:
        out.append(f"error: {error}")
    return "\n".join(out) + "\n"
