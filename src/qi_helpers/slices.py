"""Where the per-microsystem slices live, and whether they are current (cheap, no table read).

The slices themselves are made and read by :mod:`qi_helpers.changes.prepare` (see its notes on
the layout). This module holds only their paths and the record of what they were made from, so
``qi run`` can tell in milliseconds whether they must be prepared again without importing the
analysis stack.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qi_helpers.privacy.names import inside, safe_filename
from qi_helpers.project import Project
from qi_helpers.workflow import WORKBOOKS

__all__ = [
    "PREPARED_INPUTS",
    "PREPARED_UPSTREAM",
    "RECORD",
    "SERIES",
    "SLICES_FORMAT",
    "SLICE_TABLES",
    "inputs_stamp",
    "read_record",
    "slice_folder",
    "slices_current",
    "slices_dir",
]

#: The input tables the slices are made from: workbook 03's inputs, which it reads through
#: them (``observations``, ``patients`` and ``drivers`` optional; ``readiness`` makes the
#: assessment by characteristic).
PREPARED_INPUTS = WORKBOOKS["03"].inputs
#: Workbook 01's outputs the slices depend on.
PREPARED_UPSTREAM = (
    "registry.parquet",
    "membership_staff.parquet",
    "membership_patients.parquet",
    "membership_locations.parquet",
)
#: The tables of one microsystem's folder.
SLICE_TABLES = (
    "cases",
    "observations",
    "pdsa",
    "patients",
    "registry",
    "drivers",
    "assessment",
)
#: Version of the layout; slices of another version are made again (2: with ``series.parquet``,
#: 3: with ``drivers.parquet``, the microsystem's own driver diagram; 4: with
#: ``assessment.parquet``, the team's readiness profile by characteristic against the
#: organisation's).
SLICES_FORMAT = 4
#: The organisation's measure series, every microsystem in one compact table (what funnel plots
#: compare), written beside the slices.
SERIES = "series.parquet"
#: The record of a preparation, written last.
RECORD = "prepared.json"


def slices_dir(project: Project) -> Path:
    """``outputs/data/slices/``."""
    return project.data_dir / "slices"


def slice_folder(project: Project, microsystem_id: str) -> Path:
    """The folder of one microsystem's slice, ``outputs/data/slices/ms=<safe id>/``."""
    base = slices_dir(project)
    return inside(base, base / f"ms={safe_filename(str(microsystem_id))}")


def inputs_stamp(project: Project) -> dict[str, Any]:
    """Size and modification time of every file the slices are made from.

    A table read from a database other than a SQLite file cannot be stamped: it is
    ``"volatile"``, and slices made from it are always prepared again.
    """
    stamp: dict[str, Any] = {}
    for name in PREPARED_INPUTS:
        spec = project.table_spec(name)
        if spec is None:
            stamp[name] = None
            continue
        if "path" in spec:
            path = project.path(spec["path"])
        elif str(spec.get("url", "")).startswith("sqlite:///"):
            path = project.path(str(spec["url"]).removeprefix("sqlite:///"))
        else:
            stamp[name] = "volatile"
            continue
        stamp[name] = _file_stamp(path)
    for name in PREPARED_UPSTREAM:
        stamp[name] = _file_stamp(project.data_dir / name)
    stamp["period"] = project.section("analysis").get("period", "week")
    return stamp


def _file_stamp(path: Path) -> list[Any] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [str(path), st.st_size, st.st_mtime_ns]


def read_record(project: Project) -> dict[str, Any]:
    try:
        record = json.loads((slices_dir(project) / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def slices_current(project: Project) -> bool:
    """Whether the slices were made from the input tables and workbook 01 outputs as they are now.

    Compares sizes and modification times (no table is read), so it takes milliseconds.
    """
    record = read_record(project)
    stamp = inputs_stamp(project)
    return (
        record.get("format") == SLICES_FORMAT
        and "volatile" not in stamp.values()
        and record.get("stamp") == json.loads(json.dumps(stamp))
    )
