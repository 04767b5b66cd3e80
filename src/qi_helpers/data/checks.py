"""``qi check``: every problem of every configured input table, at once, grouped by table.

:func:`check_project` reads each table of ``data.tables`` (see :mod:`qi_helpers.data.sources`),
checks it against its contract (:func:`qi_helpers.data.validation.inspect`) and then checks the
tables against each other (:func:`qi_helpers.data.cross_checks.cross_check`): measures referenced
by events and observations must be in the catalogue, proportions cannot exceed their
denominators, staff in the activities should be in the roster, a measure needs enough periods
without gaps to be charted. The result is a :class:`~qi_helpers.data.report.CheckReport` of
:class:`~qi_helpers.data.problems.Problem` objects, printed grouped by table or as JSON.
``qi run`` and the workbooks stop on the same errors with the same lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from qi_helpers.data.contracts import CONTRACTS
from qi_helpers.data.cross_checks import cross_check
from qi_helpers.data.loaded import Loaded
from qi_helpers.data.problems import Problem
from qi_helpers.data.report import CheckReport, TableInfo
from qi_helpers.data.sources import read_source
from qi_helpers.data.validation import inspect
from qi_helpers.errors import QIError

if TYPE_CHECKING:
    from qi_helpers.project import Project

__all__ = ["OPTIONAL_TABLES", "REQUIRED_TABLES", "check_project", "check_tables"]

#: Tables the workbooks need; ``qi check`` reports them as errors when not configured.
REQUIRED_TABLES = ("activities", "staff", "measures", "measure_events", "pdsa", "readiness")
#: Tables the workbooks use when present.
OPTIONAL_TABLES = ("patients", "observations", "adoption", "drivers")


def check_tables(
    frames: Mapping[str, tuple[pd.DataFrame, str]],
    *,
    date_formats: Mapping[str, str | None] | None = None,
    default_period: str = "week",
    today: date | None = None,
) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    """Check tables already read: each against its contract, then against each other.

    Parameters
    ----------
    frames : mapping of str to (DataFrame, str)
        The tables as read and where each came from, by contract name.
    date_formats : mapping of str to str, optional
        ``date_format`` of each table.
    default_period : {"week", "month"}
        The period of measures whose catalogue entry gives none.
    today : date, optional
        For the future-dates warning (default: today).

    Returns
    -------
    typed : dict of str to DataFrame
        The typed tables.
    problems : list of Problem
    """
    date_formats = date_formats or {}
    typed: dict[str, pd.DataFrame] = {}
    problems: list[Problem] = []
    sources = {}
    for name, (frame, where) in frames.items():
        table, found = inspect(
            name, frame, source=where, date_format=date_formats.get(name), today=today
        )
        problems += found
        sources[name] = where
        if not table.empty:
            typed[name] = table
    problems += cross_check(typed, sources, default_period=default_period)
    return typed, problems


def _unknown_tables(report: CheckReport, configured: dict, config_file: str) -> None:
    """Warn about ``data.tables`` entries that are not tables of the contracts."""
    for name in [n for n in configured if n not in CONTRACTS]:
        report.tables[name] = TableInfo(name, config_file, required=False)
        report.problems.append(
            Problem(
                "warning",
                "unknown_table",
                name,
                config_file,
                f"data.tables.{name} is not one of the tables the workbooks read "
                f"({', '.join(CONTRACTS)}); it is ignored",
                "correct the table name or remove it",
            )
        )


def _not_configured(name: str, config_file: str) -> Problem:
    return Problem(
        "error",
        "not_configured",
        name,
        config_file,
        f"no source configured for the required table `{name}`",
        f"add data.tables.{name} with a `path:` (CSV, TSV, Excel, Parquet) or a "
        "`url:` (database) to parameters/project.yaml",
    )


def _read(report: CheckReport, info: TableInfo, spec: Any, root: Path) -> Loaded | None:
    """Read one table's source into ``info``; None (and one error) when it cannot be read."""
    name = info.name
    try:
        loaded = read_source(spec, root=root, name=name)
    except QIError as exc:
        where = _where(spec, root)
        info.source = where
        report.problems.append(
            Problem(
                "error",
                getattr(exc, "kind", "config"),
                name,
                where,
                str(exc).rstrip("."),
                column=getattr(exc, "column", None),
                rows=getattr(exc, "rows", ()),
                count=getattr(exc, "count", 0),
            )
        )
        return None
    info.source, info.rows, info.encoding = loaded.where, len(loaded.frame), loaded.encoding
    for note in loaded.notes:
        kind = "encoding" if "Windows-1252" in note else "columns"
        report.problems.append(Problem("warning", kind, name, loaded.where, note))
    return loaded


def check_project(project: Project, *, today: date | None = None) -> CheckReport:
    """Read and check every configured input table of a project.

    Parameters
    ----------
    project : qi_helpers.project.Project
        The project (``data.tables`` gives the sources).
    today : date, optional
        For the future-dates warning (default: today).

    Returns
    -------
    CheckReport
        Every error and warning, by table. A table that cannot be read (missing file, sheet or
        database table, unreadable encoding) gives one error and is left out of the checks
        across tables.
    """
    report = CheckReport()
    configured = project.section("data").get("tables") or {}
    if not isinstance(configured, dict):
        configured = {}
    config_file = str(project.config_file)
    _unknown_tables(report, configured, config_file)
    frames: dict[str, tuple[pd.DataFrame, str]] = {}
    date_formats: dict[str, str | None] = {}
    for name in [n for n in CONTRACTS if n in configured or n in REQUIRED_TABLES]:
        info = TableInfo(name, config_file, required=name in REQUIRED_TABLES)
        report.tables[name] = info
        spec = configured.get(name)
        if spec is None:
            report.problems.append(_not_configured(name, config_file))
            continue
        loaded = _read(report, info, spec, project.root)
        if loaded is not None:
            frames[name] = (loaded.frame, loaded.where)
            date_formats[name] = spec.get("date_format") if isinstance(spec, dict) else None
    period = (project.section("analysis") or {}).get("period", "week")
    _, problems = check_tables(
        frames, date_formats=date_formats, default_period=period, today=today
    )
    report.problems += problems
    order = list(report.tables)
    report.problems.sort(key=lambda p: order.index(p.table) if p.table in order else len(order))
    return report


def _where(spec: Any, root: Path) -> str:
    """Where a source that could not be read points: its file, or its database and table."""
    if isinstance(spec, dict) and "path" in spec:
        path = Path(str(spec["path"]))
        return str(path if path.is_absolute() else root / path)
    if isinstance(spec, dict) and "url" in spec:
        try:
            # sqlalchemy is needed for database sources only and is slow to import.
            import sqlalchemy as sa

            url = sa.engine.make_url(spec["url"]).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - an unparsable URL is reported by read_source
            url = "<database URL>"
        return f"{url} {spec.get('table') or 'query'}"
    return "parameters/project.yaml"
