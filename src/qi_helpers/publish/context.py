"""What every page of one build shares: settings, the identifier screen, provenance, the period.

:func:`site_context` reads the ``publish`` settings, builds the identifier screen from the
configured input tables, and computes once what every page's header and footer show.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from qi_helpers.data.sources import read_table
from qi_helpers.errors import ConfigError, QIError
from qi_helpers.io import write_json
from qi_helpers.privacy.screen import IdentifierScreen, project_screen
from qi_helpers.privacy.small_cells import SMALL_CELL_THRESHOLD
from qi_helpers.project import Project
from qi_helpers.publish.provenance import git_commit, input_hashes


@dataclass
class SiteContext:
    """What every page of one build shares."""

    organisation: str
    screen: IdentifierScreen | None
    on_identifier: str
    show_staff: bool
    threshold: int
    hashes: dict[str, str]
    commit: str
    generated: str
    period_start: Any
    period_end: Any
    measures: pd.DataFrame
    adoption: pd.DataFrame
    notes: list[str]


def _read_input(project: Project, name: str, notes: list[str]) -> pd.DataFrame | None:
    """An input table, or None when it is not configured or cannot be read (with a note)."""
    spec = project.table_spec(name)
    if spec is None:
        return None
    try:
        frame, _ = read_table(spec, root=project.root, name=name)
    except QIError as exc:
        notes.append(f"input table `{name}` could not be read for screening: {exc}")
        return None
    return frame


def _on_identifier(settings: dict[str, Any]) -> str:
    """``publish.on_identifier``: ``redact`` (the default) or ``refuse``."""
    on_identifier = str(settings.get("on_identifier", "redact"))
    if on_identifier not in ("redact", "refuse"):
        raise ConfigError(
            f"publish.on_identifier must be `redact` or `refuse`, found {on_identifier!r}."
        )
    return on_identifier


def _table_period(project: Project, name: str, notes: list[str]) -> tuple[Any, Any] | None:
    """The first and last ``timestamp`` of one input table (None: no table or no dates)."""
    spec = project.table_spec(name)
    if spec is None:
        return None
    try:
        frame, _ = read_table(spec, root=project.root, name=name, columns=frozenset({"timestamp"}))
    except QIError as exc:
        notes.append(f"input table `{name}` could not be read for the data period: {exc}")
        return None
    if "timestamp" not in frame.columns:
        return None
    ts = pd.to_datetime(frame["timestamp"], errors="coerce", format="ISO8601")
    if ts.isna().any():
        ts = pd.to_datetime(frame["timestamp"], errors="coerce", format="mixed")
    return (ts.min(), ts.max()) if ts.notna().any() else None


#: Where the data period of each table is kept, by the size and time of its file, so that
#: publishing does not read 6 million timestamps again while the tables are unchanged.
PERIOD_CACHE = ".data_period.json"


def _data_period(project: Project, notes: list[str]) -> tuple[Any, Any]:
    """The first and last timestamps of the activities and measure events (None: none).

    Only the ``timestamp`` columns are read, and only when a table's file changed since the
    last time (kept in ``outputs/data/.data_period.json``).
    """
    cache_path = project.data_dir / PERIOD_CACHE
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    starts, ends, kept = [], [], {}
    for name in ("activities", "measure_events"):
        spec = project.table_spec(name) or {}
        path = project.path(spec["path"]) if "path" in spec else None
        stamp = None
        if path is not None and path.is_file():
            stat = path.stat()
            stamp = [str(path), stat.st_size, stat.st_mtime_ns]
        hit = cache.get(name) if isinstance(cache, dict) else None
        if stamp is not None and isinstance(hit, dict) and hit.get("stamp") == stamp:
            found = (pd.Timestamp(hit["start"]), pd.Timestamp(hit["end"])) if hit["start"] else None
        else:
            found = _table_period(project, name, notes)
        if stamp is not None:
            kept[name] = {
                "stamp": stamp,
                "start": found[0].isoformat() if found else "",
                "end": found[1].isoformat() if found else "",
            }
        if found:
            starts.append(found[0])
            ends.append(found[1])
    if kept != cache:
        with contextlib.suppress(OSError):
            write_json(cache_path, kept)
    return (min(starts) if starts else None), (max(ends) if ends else None)


def site_context(project: Project) -> SiteContext:
    """Read the settings and input tables once for a whole build.

    Raises
    ------
    ConfigError
        When ``publish.on_identifier`` is neither ``redact`` nor ``refuse``.
    """
    settings = project.section("publish")
    show_staff = bool(settings.get("show_staff", False))
    threshold = int(settings.get("small_cell_threshold", SMALL_CELL_THRESHOLD))
    on_identifier = _on_identifier(settings)
    # The project's screen, built once per change of its tables and kept under outputs/data.
    screen = project_screen(project)
    notes: list[str] = list(screen.notes)
    tables = {
        "measures": _read_input(project, "measures", notes),
        "adoption": _read_input(project, "adoption", notes),
    }
    if project.table_spec("patients") is None and project.table_spec("activities") is None:
        notes.append("no patients or activities table: pages were screened by id shape only")
    period_start, period_end = _data_period(project, notes)
    generated = ""
    if settings.get("timestamp"):
        generated = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
    measures = tables.get("measures")
    adoption = tables.get("adoption")
    return SiteContext(
        organisation=str(project.section("project").get("organisation", "")),
        screen=screen,
        on_identifier=on_identifier,
        show_staff=show_staff,
        threshold=threshold,
        hashes=input_hashes(project),
        commit=git_commit(project.root),
        generated=generated,
        period_start=period_start,
        period_end=period_end,
        measures=measures if measures is not None else pd.DataFrame(),
        adoption=adoption if adoption is not None else pd.DataFrame(),
        notes=notes,
    )
