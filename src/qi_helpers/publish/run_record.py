"""What ``qi run`` recorded about each report, read from ``outputs/run.json``.

The publisher reads the run's manifest as plain JSON (it does not import :mod:`qi_helpers.run`):
the tasks with the input hashes they read, and per task the fingerprint of its last successful
run (``history``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qi_helpers.project import Project
from qi_helpers.workflow import WORKBOOKS, workbook_named


def read_run_manifest(project: Project) -> dict[str, Any]:
    """The content of ``outputs/run.json`` (``{}`` when there is none or it cannot be read)."""
    path = project.outputs_dir / "run.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _task_workbook(task: dict[str, Any]) -> Any:
    """The notebook name of a task's workbook (tasks record its code, e.g. ``"01"``)."""
    recorded = task.get("workbook")
    known = WORKBOOKS.get(str(recorded))
    return known.name if known else recorded


def _hashes(value: Any) -> dict[str, str] | None:
    """``value`` as ``{table: hash}`` when it is a non-empty mapping, else None."""
    if isinstance(value, dict) and value:
        return {str(k): str(v) for k, v in value.items()}
    return None


def recorded_hashes(manifest: dict[str, Any], workbook: str, name: str) -> dict[str, str] | None:
    """Input hashes the runner recorded for a task, when it records them.

    The task's own ``input_hashes`` (or ``inputs``) first, else those of the whole run; None
    when neither is recorded.
    """
    for task in manifest.get("tasks", []):
        if _task_workbook(task) == workbook and str(task.get("name")) == str(name):
            for key in ("input_hashes", "inputs"):
                hashes = _hashes(task.get(key))
                if hashes:
                    return hashes
    for key in ("input_hashes", "inputs"):
        hashes = _hashes(manifest.get(key))
        if hashes:
            return hashes
    return None


def recorded_parts(
    project: Project, manifest: dict[str, Any], workbook: str, name: str, notebook: Path
) -> dict[str, str] | None:
    """The fingerprint the runner recorded when it made ``notebook`` (None when it recorded none).

    ``qi run`` keeps, per task, the content digests of everything the task read when it last ran
    successfully (``history`` in ``outputs/run.json``, see
    :func:`qi_helpers.run.planning.fingerprint`), including the upstream tables under
    ``outputs/data/``. A skipped task keeps the fingerprint of the run that made its notebook.
    """
    known = workbook_named(workbook)
    if known is None:
        return None
    label = f"{known.code}:{name}" if known.per_microsystem else known.code
    entry = (manifest.get("history") or {}).get(label)
    if not isinstance(entry, dict) or not isinstance(entry.get("parts"), dict):
        return None
    output = entry.get("output")
    if output and output != project.relative(notebook):
        return None
    return {str(k): str(v) for k, v in entry["parts"].items()} or None
