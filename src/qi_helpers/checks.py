"""``qi check``: every problem of every configured input table, at once, grouped by table.

:func:`check_project` reads each table of ``data.tables`` (see ``qi_helpers.sources``), checks it
against its contract (:func:`qi_helpers.schema.inspect`) and then checks the tables against each
other (:func:`cross_check`): measures referenced by events and observations must be in the
catalogue, proportions cannot exceed their denominators, staff in the activities should be in the
roster, a measure needs enough periods without gaps to be charted. The result is a
:class:`CheckReport` of :class:`~qi_helpers.schema.Problem` objects, printed grouped by table or as
JSON. ``qi run`` and the workbooks stop on the same errors with the same lines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from qi_helpers.errors import QIError
from qi_helpers.schema import CONTRACTS, Problem, inspect, render_table

__all__ = [
    "MIN_PERIODS",
    "OPTIONAL_TABLES",
    "REQUIRED_TABLES",
    "CheckReport",
    "TableInfo",
    "check_project",
    "check_tables",
    "cross_check",
]

#: Tables the workbooks need; ``qi check`` reports them as errors when not configured.
REQUIRED_TABLES = ("activities", "staff", "measures", "measure_events", "pdsa", "readiness")
#: Tables the workbooks use when present.
OPTIONAL_TABLES = ("patients", "observations", "adoption")
#: A measure with fewer periods than this cannot show a run chart signal (Anhøj rules need 10+).
MIN_PERIODS = 10

_PROPORTION_CHARTS = {"p", "pp"}
_COUNT_CHARTS = {"p", "pp", "c", "u", "up", "g"}


@dataclass
class TableInfo:
    """What ``qi check`` learned about one table's source."""

    name: str
    source: str
    rows: int | None = None
    encoding: str | None = None
    required: bool = True


@dataclass
class CheckReport:
    """Every problem found in a project's inputs.

    Attributes
    ----------
    tables : dict of str to TableInfo
        The tables checked (configured or required), in checking order.
    problems : list of Problem
        Errors and warnings, in table order.
    """

    tables: dict[str, TableInfo] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """The problems that stop a run."""
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """The problems printed as warnings."""
        return [p for p in self.problems if p.level == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def by_table(self) -> dict[str, list[Problem]]:
        """The problems of each table that has some, errors first."""
        grouped: dict[str, list[Problem]] = {}
        for p in sorted(self.problems, key=lambda p: p.level != "error"):
            grouped.setdefault(p.table, []).append(p)
        return {name: grouped[name] for name in self._order(grouped)}

    def _order(self, names) -> list[str]:
        known = list(self.tables)
        return sorted(names, key=lambda n: known.index(n) if n in known else len(known))

    def source(self, name: str) -> str:
        """Where a table comes from, for the report."""
        info = self.tables.get(name)
        return info.source if info else name

    def messages(self, *, warnings: bool = False) -> list[str]:
        """One block of lines per table with errors (and warnings when asked), as printed."""
        out = []
        for name, problems in self.by_table().items():
            shown = [p for p in problems if warnings or p.level == "error"]
            if any(p.level == "error" for p in problems) or (warnings and shown):
                out.append(render_table(name, self.source(name), shown))
        return out

    def to_text(self) -> str:
        """The report ``qi check`` prints: problems grouped by table, then a summary."""
        lines = []
        grouped = self.by_table()
        for name, info in self.tables.items():
            rows = "not read"
            if info.rows is not None:
                rows = f"{info.rows:,} row{'s' if info.rows != 1 else ''}"
            enc = f", {info.encoding}" if info.encoding else ""
            levels = {p.level for p in grouped.get(name, [])}
            status = "ERROR" if "error" in levels else "warn" if levels else "ok"
            lines.append(f"{name:15} {status:5} {rows + enc:24} {info.source}")
        lines.append("")
        for block in self.messages(warnings=True):
            lines.extend([block, ""])
        n_err, n_warn = len(self.errors), len(self.warnings)
        bad = sorted({p.table for p in self.errors})
        lines.append(
            f"Checked {len(self.tables)} tables: {len(bad)} with errors"
            f"{' (' + ', '.join(bad) + ')' if bad else ''}; {n_err} error(s), {n_warn} warning(s)."
        )
        if self.problems:
            lines.append("Rows count from 1 = the first row under the header.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (for ``qi check --json``)."""
        return {
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "tables": {
                name: {
                    "source": info.source,
                    "rows": info.rows,
                    "encoding": info.encoding,
                    "required": info.required,
                    "problems": [p.to_dict() for p in self.problems if p.table == name],
                }
                for name, info in self.tables.items()
            },
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)


# ------------------------------------------------------------------------------- cross checks


def _rows(mask) -> tuple[tuple[int, ...], int]:
    hits = np.flatnonzero(np.asarray(mask, dtype=bool))
    return tuple(int(i) + 1 for i in hits[:10]), int(hits.size)


def _among(ids: pd.Series, attribute: Mapping[str, str], values) -> np.ndarray:
    """Rows whose id's attribute (e.g. the measure's chart) is one of ``values``."""
    chosen = [k for k, v in attribute.items() if v in values]
    return ids.isin(chosen).to_numpy(dtype=bool, na_value=False)


def _period_index(ts: pd.Series, period: str) -> np.ndarray:
    """Whole weeks (Monday-based) or months since 1970, as integers (NaT as -1)."""
    values = ts.to_numpy(dtype="datetime64[D]")
    bad = np.isnat(values)
    if period == "month":
        idx = values.astype("datetime64[M]").astype(np.int64)
    else:
        # 1970-01-05 was a Monday.
        idx = (values.astype(np.int64) - 4) // 7
    return np.where(bad, -1, idx)


def _series_problems(
    table: str,
    source: str,
    keys: pd.DataFrame,
    periods: np.ndarray,
    period_of: Mapping[str, str],
    label: str,
) -> list[Problem]:
    """Warnings for series (one per key) with too few periods or gaps between periods."""
    out: list[Problem] = []
    frame = keys.assign(_p=periods)
    frame = frame[frame["_p"] >= 0].drop_duplicates()
    few, gaps = [], []
    for key, group in frame.groupby(list(keys.columns), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        measure_id = key[-1]
        unit = period_of.get(measure_id, "week")
        p = np.sort(group["_p"].to_numpy())
        name = " / ".join(map(str, key))
        if p.size < MIN_PERIODS:
            few.append(f"{name} ({p.size} {unit}{'s' if p.size != 1 else ''})")
        missing = int(p[-1] - p[0] + 1 - p.size)
        if missing > 0:
            gaps.append(f"{name} ({missing} {unit}{'s' if missing != 1 else ''} missing)")
    if few:
        out.append(
            Problem(
                "warning",
                "few_periods",
                table,
                source,
                f"{len(few)} {label} with fewer than {MIN_PERIODS} periods: "
                f"{', '.join(few[:5])}{', ...' if len(few) > 5 else ''}; a run chart needs at "
                f"least {MIN_PERIODS} points",
                "collect more periods before judging a change, or use a shorter period",
                "measure_id",
            )
        )
    if gaps:
        out.append(
            Problem(
                "warning",
                "period_gap",
                table,
                source,
                f"gaps in the periods of {len(gaps)} {label}: "
                f"{', '.join(gaps[:5])}{', ...' if len(gaps) > 5 else ''}",
                "check that no data is missing; periods without data are left out of the charts",
                "period" if table == "observations" else "timestamp",
            )
        )
    return out


def cross_check(
    tables: Mapping[str, pd.DataFrame],
    sources: Mapping[str, str] | None = None,
    *,
    default_period: str = "week",
) -> list[Problem]:
    """Check typed tables against each other (whichever of them are given).

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Tables returned by :func:`qi_helpers.schema.inspect` (typed), by contract name.
    sources : mapping of str to str, optional
        Where each table came from, for messages.
    default_period : {"week", "month"}
        The period of measures whose catalogue entry gives none.

    Returns
    -------
    list of Problem
        Errors: ``unknown_measure`` (events or observations of a measure not in the catalogue),
        ``numerator_above_denominator`` (proportions above 1), ``negative`` (negative counts).
        Warnings: ``unknown_staff`` (staff in activities but not in the roster),
        ``unknown_measure`` (in ``pdsa.measure_ids``), ``few_periods``, ``period_gap``.
    """
    sources = dict(sources or {})
    out: list[Problem] = []

    def add(level, kind, table, message, fix, column, mask=None):
        rows, count = _rows(mask) if mask is not None else ((), 0)
        out.append(
            Problem(
                level, kind, table, sources.get(table, table), message, fix, column, rows, count
            )
        )

    measures = tables.get("measures")
    has_catalogue = measures is not None and "measure_id" in measures.columns
    chart_of: dict[str, str] = {}
    period_of: dict[str, str] = {}
    if has_catalogue:
        ids = measures["measure_id"].dropna()
        if "chart" in measures.columns:
            chart_of = dict(zip(ids, measures.loc[ids.index, "chart"], strict=True))
        if "period" in measures.columns:
            period_of = {
                k: (v if v in ("week", "month") else default_period)
                for k, v in zip(ids, measures.loc[ids.index, "period"], strict=True)
            }
        period_of = {k: period_of.get(k, default_period) for k in ids}
    for table in ("measure_events", "observations"):
        frame = tables.get(table)
        if frame is None or "measure_id" not in frame.columns:
            continue
        mid = frame["measure_id"]
        if has_catalogue:
            unknown = (mid.notna() & ~mid.isin(list(chart_of) or list(period_of))).to_numpy()
            if unknown.any():
                names = ", ".join(map(repr, pd.unique(mid[unknown])[:5]))
                add(
                    "error",
                    "unknown_measure",
                    table,
                    f"measure(s) {names} not in the measure catalogue "
                    f"({sources.get('measures', 'measures')})",
                    "add them to the measures table or correct the measure_id",
                    "measure_id",
                    unknown,
                )
        if chart_of:
            proportion = _among(mid, chart_of, _PROPORTION_CHARTS)
            counted = _among(mid, chart_of, _COUNT_CHARTS)
            if "value" in frame.columns:  # (negative numerators are the schema's)
                v = frame["value"].to_numpy(dtype=float, na_value=np.nan)
                neg = counted & (v < 0)
                if neg.any():
                    add(
                        "error",
                        "negative",
                        table,
                        "negative counts for a count or proportion measure "
                        f"(e.g. {v[neg][0]:g} for {mid[neg].iloc[0]!r})",
                        "correct the values: cases and events are counted from zero",
                        "value",
                        neg,
                    )
            if table == "measure_events" and "value" in frame.columns:
                v = frame["value"].to_numpy(dtype=float, na_value=np.nan)
                over = proportion & (v > 1)
                if over.any():
                    add(
                        "error",
                        "numerator_above_denominator",
                        table,
                        "a case of a proportion measure counts 0 or 1, found "
                        f"{v[over][0]:g} (numerator above its denominator) for "
                        f"{mid[over].iloc[0]!r}",
                        "record 1 when the case meets the measure and 0 when it does not",
                        "value",
                        over,
                    )
            if table == "observations" and {"numerator", "denominator"} <= set(frame.columns):
                num = frame["numerator"].to_numpy(dtype=float, na_value=np.nan)
                den = frame["denominator"].to_numpy(dtype=float, na_value=np.nan)
                over = proportion & (num > den) & (den > 0)  # zero: warned by the schema
                if over.any():
                    add(
                        "error",
                        "numerator_above_denominator",
                        table,
                        f"numerator above denominator for a proportion (e.g. {num[over][0]:g} of "
                        f"{den[over][0]:g} for {mid[over].iloc[0]!r})",
                        "check both counts: the numerator counts cases among the denominator's",
                        "numerator",
                        over,
                    )
    pdsa = tables.get("pdsa")
    if has_catalogue and pdsa is not None and "measure_ids" in pdsa.columns:
        listed = pdsa["measure_ids"].astype("string").str.split(";")
        known = set(period_of)
        bad = listed.map(
            lambda ids: isinstance(ids, list) and any(i.strip() not in known for i in ids if i),
        ).astype(bool)
        if bad.any():
            first = [i for i in listed[bad].iloc[0] if i.strip() not in known]
            add(
                "warning",
                "unknown_measure",
                "pdsa",
                f"measure_ids lists measures not in the catalogue (e.g. {first[0]!r})",
                "separate measure ids with ';' and use ids from the measures table",
                "measure_ids",
                bad,
            )
    activities, staff = tables.get("activities"), tables.get("staff")
    if (
        activities is not None
        and staff is not None
        and "staff_id" in activities.columns
        and "staff_id" in staff.columns
    ):
        sid = activities["staff_id"]
        missing = (sid.notna() & ~sid.isin(staff["staff_id"].dropna().unique())).to_numpy()
        if missing.any():
            n_staff = pd.unique(sid[missing]).size
            add(
                "warning",
                "unknown_staff",
                "activities",
                f"{n_staff} staff member(s) in the activities are not in the staff roster "
                f"({sources.get('staff', 'staff')}), e.g. {sid[missing].iloc[0]!r}; they get no "
                "role",
                "add them to the staff table (with their role)",
                "staff_id",
                missing,
            )
    if has_catalogue:
        events = tables.get("measure_events")
        if events is not None and {"measure_id", "timestamp"} <= set(events.columns):
            known_events = events[events["measure_id"].isin(list(period_of))]
            if len(known_events):
                periods = np.full(len(known_events), -1)
                for unit in ("week", "month"):
                    sel = _among(known_events["measure_id"], period_of, {unit})
                    if sel.any():
                        periods[sel] = _period_index(known_events["timestamp"][sel], unit)
                out += _series_problems(
                    "measure_events",
                    sources.get("measure_events", "measure_events"),
                    known_events[["measure_id"]].reset_index(drop=True),
                    periods,
                    period_of,
                    "measure(s)",
                )
        obs = tables.get("observations")
        if obs is not None and {"microsystem_id", "measure_id", "period"} <= set(obs.columns):
            known_obs = obs[obs["measure_id"].isin(list(period_of))]
            if len(known_obs):
                periods = np.full(len(known_obs), -1)
                for unit in ("week", "month"):
                    sel = _among(known_obs["measure_id"], period_of, {unit})
                    if sel.any():
                        periods[sel] = _period_index(known_obs["period"][sel], unit)
                out += _series_problems(
                    "observations",
                    sources.get("observations", "observations"),
                    known_obs[["microsystem_id", "measure_id"]].reset_index(drop=True),
                    periods,
                    period_of,
                    "microsystem / measure series",
                )
    return out


# ------------------------------------------------------------------------------------ project


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


def check_project(project, *, today: date | None = None) -> CheckReport:
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
    from qi_helpers.project import PROJECT_FILE
    from qi_helpers.sources import read_source

    report = CheckReport()
    configured = project.section("data").get("tables") or {}
    if not isinstance(configured, dict):
        configured = {}
    names = [n for n in CONTRACTS if n in configured or n in REQUIRED_TABLES]
    unknown = [n for n in configured if n not in CONTRACTS]
    frames: dict[str, tuple[pd.DataFrame, str]] = {}
    date_formats: dict[str, str | None] = {}
    config_file = str(project.root / PROJECT_FILE)
    for name in unknown:
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
    for name in names:
        info = TableInfo(name, config_file, required=name in REQUIRED_TABLES)
        report.tables[name] = info
        spec = configured.get(name)
        if spec is None:
            report.problems.append(
                Problem(
                    "error",
                    "not_configured",
                    name,
                    config_file,
                    f"no source configured for the required table `{name}`",
                    f"add data.tables.{name} with a `path:` (CSV, TSV, Excel, Parquet) or a "
                    "`url:` (database) to parameters/project.yaml",
                )
            )
            continue
        try:
            loaded = read_source(spec, root=project.root, name=name)
        except QIError as exc:
            where = _where(spec, project.root)
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
            continue
        info.source, info.rows, info.encoding = loaded.where, len(loaded.frame), loaded.encoding
        for note in loaded.notes:
            kind = "encoding" if "Windows-1252" in note else "columns"
            report.problems.append(Problem("warning", kind, name, loaded.where, note))
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


def _where(spec: Any, root) -> str:
    if isinstance(spec, dict) and "path" in spec:
        from pathlib import Path

        path = Path(str(spec["path"]))
        return str(path if path.is_absolute() else root / path)
    if isinstance(spec, dict) and "url" in spec:
        try:
            import sqlalchemy as sa

            url = sa.engine.make_url(spec["url"]).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - an unparsable URL is reported by read_source
            url = "<database URL>"
        return f"{url} {spec.get('table') or 'query'}"
    return "parameters/project.yaml"
