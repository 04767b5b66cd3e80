"""The manifest of runs, ``outputs/run.json``, and the registry's list of microsystems.

The manifest records every finished task at once (so an interrupted run resumes where it
stopped), the fingerprint of each task's last successful run (what makes the next run
incremental), the file digest cache and the registry's microsystem ids.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from qi_helpers import __version__
from qi_helpers.errors import RunError
from qi_helpers.io import FileHashes, write_json
from qi_helpers.project import Project
from qi_helpers.run.tasks import TaskResult

#: The manifest of runs, under ``outputs/``.
MANIFEST = "run.json"


def read_manifest(project: Project) -> dict[str, Any]:
    """The last run's manifest (empty when there is none or it cannot be read)."""
    path = project.outputs_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_manifest(
    project: Project,
    results: list[TaskResult],
    *,
    seconds: float,
    history: dict[str, Any] | None = None,
    complete: bool = True,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``outputs/run.json`` atomically.

    Parameters
    ----------
    project : Project
    results : list of TaskResult
        This run's tasks so far, in plan order.
    seconds : float
        Time since the run started.
    history : dict, optional
        ``{label: {"key", "parts", "output", "seconds"}}``: the fingerprint of each task's last
        successful run (what makes the next run incremental).
    complete : bool
        False while the run is going on (or when it was interrupted).
    extra : dict, optional
        Further entries (the file digest cache, the cached registry ids).

    Returns
    -------
    Path
        The manifest.
    """
    payload: dict[str, Any] = {
        "qi_helpers_version": __version__,
        "complete": complete,
        "seconds": round(seconds, 1),
        "tasks": [asdict(r) | {"seconds": round(r.seconds, 2)} for r in results],
        "history": history or {},
    }
    payload.update(extra or {})
    return write_json(project.outputs_dir / MANIFEST, payload)


def registry_ids(project: Project, manifest: dict[str, Any] | None = None) -> list[str]:
    """The microsystem ids in ``outputs/data/registry.parquet`` (written by workbook 01).

    Parameters
    ----------
    project : Project
    manifest : dict, optional
        A manifest whose cached ids are used when the registry's digest matches (so that deciding
        that nothing needs to run does not read Parquet).
    """
    path = project.data_dir / "registry.parquet"
    if not path.is_file():
        raise RunError(f"{path}: not found; workbook 01 must run first (`qi run --workbook 01`).")
    if manifest is not None:
        cached = manifest.get("registry") or {}
        digest = FileHashes(manifest.get("file_hashes")).digest(path)
        if cached.get("digest") == digest:
            return [str(i) for i in cached.get("ids", [])]
    return pd.read_parquet(path, columns=["microsystem_id"])["microsystem_id"].astype(str).tolist()
