"""The tables under ``outputs/data/`` the site shows: the registry and each microsystem's results.

Every reader gives an empty frame when its table is missing or cannot be read: a site is
published from whatever the workbooks wrote.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qi_helpers.errors import QIError
from qi_helpers.privacy.names import inside, safe_filename
from qi_helpers.project import Project


def read_output_table(path: Path) -> pd.DataFrame:
    """A Parquet table, or an empty frame when it is missing or cannot be read."""
    if not path.is_file():
        return pd.DataFrame()
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError):
        return pd.DataFrame()


def read_registry(project: Project) -> pd.DataFrame:
    """Workbook 01's registry, one row per microsystem, indexed by ``microsystem_id`` (str)."""
    frame = read_output_table(project.data_dir / "registry.parquet")
    if frame.empty or "microsystem_id" not in frame.columns:
        return pd.DataFrame()
    frame = frame.assign(microsystem_id=frame["microsystem_id"].astype(str))
    return frame.drop_duplicates("microsystem_id").set_index("microsystem_id")


def read_results(project: Project, ms_id: str) -> pd.DataFrame:
    """Workbook 03's results of one microsystem (empty when its file is missing or outside)."""
    folder = project.results_dir
    path = folder / f"{safe_filename(ms_id)}.parquet"
    try:
        path = inside(folder, path)
    except QIError:
        return pd.DataFrame()
    return read_output_table(path)
