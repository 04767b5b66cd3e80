"""Prepare once, slice per microsystem: what workbook 03 reads, one microsystem at a time.

Workbook 03 analyses one microsystem, but its inputs (``measure_events``, ``observations``,
``pdsa``, ``patients``) hold the whole organisation. Reading, validating and assigning every case
in every notebook makes a rerun of one microsystem cost as much as the organisation is large,
and a whole run grow with the square of its size. :func:`prepare_slices` does that work once,
after workbook 01: it reads and validates the tables (with their cross-checks), assigns each case
to its microsystem and period (:func:`qi_helpers.changes.series.assign_microsystems`), and writes
one folder per microsystem under ``outputs/data/slices/``::

    outputs/data/slices/
        prepared.json            what the slices were made from (written last)
        measures.parquet         the measure catalogue (organisation-wide, small)
        series.parquet           every microsystem's measure series (organisation-wide, one
                                 row per microsystem, measure and period: what the funnel
                                 plots of the site compare, without reading every slice)
        ms=<microsystem id>/     one folder per microsystem of the registry
            cases.parquet        its measured cases, with microsystem_id, period and weight
            observations.parquet its pre-aggregated points
            assessment.parquet   its readiness profile by characteristic, with the
                                 organisation's quartiles (:mod:`qi_helpers.pilots.assessment`)
            pdsa.parquet         its PDSA cycles
            patients.parquet     the patients rows of its cases (for the subgroup analysis)
            registry.parquet     its row of the registry
            drivers.parquet      its own driver diagram (rows of ``drivers``; the
                                 organisation's diagram, ``microsystem_id`` empty, is in none)

This is Hive-style partitioning by microsystem (``pyarrow.dataset`` reads the folder as one
table with a ``ms`` column): Parquet through pyarrow rather than DuckDB, because pyarrow is
already a dependency, a folder per microsystem is what a content-based rerun needs (a file's
digest changes only when that microsystem's rows do), and the same paths work on a shared file
system or object storage. A file is rewritten only when its bytes change (Parquet written by
:func:`qi_helpers.io.parquet_bytes` is byte-reproducible), so ``qi run`` reruns exactly the
microsystems whose rows changed (:mod:`qi_helpers.run.planning` fingerprints a workbook 03 task
by its slice).

:func:`load_slice` is what workbook 03 calls: it reads one folder, and prepares the slices on
demand when they are missing or older than the input tables (a workbook run by hand in JupyterLab
or under plain papermill).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from qi_helpers.changes.series import assign_microsystems, measure_series, period_start
from qi_helpers.errors import ConfigError
from qi_helpers.io import parquet_bytes, write_bytes, write_json
from qi_helpers.pilots.assessment import ASSESSMENT_COLUMNS, assess_characteristics
from qi_helpers.project import Project
from qi_helpers.slices import (
    PREPARED_UPSTREAM,
    RECORD,
    SERIES,
    SLICE_TABLES,
    SLICES_FORMAT,
    inputs_stamp,
    read_record,
    slice_folder,
    slices_current,
    slices_dir,
)

__all__ = [
    "MicrosystemSlice",
    "PreparedSlices",
    "load_slice",
    "load_slices",
    "organisation_measure_series",
    "organisation_series",
    "prepare_slices",
]


@dataclass
class PreparedSlices:
    """What :func:`prepare_slices` did.

    Attributes
    ----------
    microsystems : int
        Microsystems with a slice.
    rewritten : list of str
        Microsystems whose slice changed (written again); the others were left untouched.
    removed : list of str
        Folders removed (microsystems no longer in the registry).
    seconds : float
    skipped : bool
        True when the slices were already current and nothing was read.
    cut : list of str
        The slice tables cut again (:data:`SLICE_SOURCES`: those whose sources changed).
    """

    microsystems: int
    rewritten: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: bool = False
    cut: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the run's log."""
        if self.skipped:
            return f"slices of {self.microsystems} microsystems are up to date"
        return (
            f"prepared the slices of {self.microsystems} microsystems in {self.seconds:.1f}s "
            f"({', '.join(self.cut)}): {len(self.rewritten)} changed, "
            f"{len(self.removed)} removed"
        )


def _write_if_changed(path: Path, frame: pd.DataFrame) -> bool:
    """Write ``frame`` to ``path`` unless the file already holds the same bytes."""
    data = parquet_bytes(frame)
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except OSError:
        pass
    write_bytes(path, data)
    return True


class _Rows:
    """Where each microsystem's rows are in one table; its slice is taken only when written.

    Holding 502 slices of every table at once doubled the memory of the preparation (the cases
    twice, the patients once per microsystem that saw them); positions cost a few bytes a row.
    """

    def __init__(self, frame: pd.DataFrame, positions: dict[str, np.ndarray | slice]) -> None:
        self.frame = frame
        self.positions = positions

    def take(self, microsystem_id: str) -> pd.DataFrame:
        """The rows of ``microsystem_id`` (none: an empty frame with the table's columns)."""
        rows = self.positions.get(microsystem_id)
        return self.frame.iloc[0:0] if rows is None else self.frame.iloc[rows]


def _groups(frame: pd.DataFrame | None, key: str) -> _Rows:
    """``frame``'s rows by ``key``, each microsystem's in their order in ``frame``.

    The frame is reordered once (a stable sort by ``key``, rows without a key dropped), so each
    microsystem's rows are one contiguous block: taking scattered rows from text columns read by
    pyarrow cost a quarter of a second per microsystem of the large demo, a block costs nothing.
    """
    if frame is None:
        frame = pd.DataFrame({key: pd.Series(dtype="string")})
    if frame.empty:
        return _Rows(frame, {})
    codes, names = pd.factorize(frame[key].astype("string"), sort=False)
    order = np.argsort(codes, kind="stable")
    order = order[np.searchsorted(codes[order], 0) :]  # no key (code -1) sorts first: dropped
    sorted_codes = codes[order]
    ordered = frame.take(order)
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    stops = np.r_[starts[1:], len(order)]
    return _Rows(
        ordered,
        {str(names[sorted_codes[a]]): slice(a, b) for a, b in zip(starts, stops, strict=True)},
    )


def _patients_by_microsystem(cases: pd.DataFrame, patients: pd.DataFrame | None) -> _Rows:
    """The ``patients`` rows of each microsystem's cases (what its subgroup analysis joins), in
    their order in ``patients``."""
    if patients is None or "patient_id" not in cases.columns:
        empty = pd.DataFrame({"patient_id": pd.Series(dtype="string")})
        return _Rows(patients if patients is not None else empty, {})
    position = pd.Series(
        np.arange(len(patients)), index=pd.Index(patients["patient_id"].astype("string"))
    )
    pairs = pd.DataFrame(
        {
            "ms": cases["microsystem_id"].astype("string"),
            "row": cases["patient_id"].astype("string").map(position),
        }
    ).dropna()
    pairs = pairs.drop_duplicates().sort_values(["ms", "row"], kind="stable")
    rows = pairs["row"].to_numpy(dtype="int64")
    return _Rows(
        patients,
        {str(ms): rows[at] for ms, at in pairs.groupby("ms", sort=False).indices.items()},
    )


#: What each table of a slice is cut from: when one of these changed (an input table, a table
#: of workbook 01, the period), that table is cut again for every microsystem; the others are
#: left as they are (a PDSA log edited after a team meeting re-reads ``pdsa`` only).
_CASES_SOURCES = ("measure_events", *PREPARED_UPSTREAM[1:], "period")
SLICE_SOURCES: dict[str, tuple[str, ...]] = {
    "cases": _CASES_SOURCES,
    "patients": ("patients", *_CASES_SOURCES),
    "observations": ("observations",),
    "pdsa": ("pdsa",),
    "registry": ("registry.parquet",),
    "drivers": ("drivers",),
    # every team against the organisation: made again when the survey or the staff changed,
    # and rewritten only in the folders whose rows changed
    "assessment": ("readiness", PREPARED_UPSTREAM[1]),
}


def _to_cut(
    record: dict[str, Any], stamp: dict[str, Any], ids: list[str], *, has_series: bool = True
) -> set[str]:
    """The slice tables to cut again, from what changed since the last preparation."""
    old = record.get("stamp") if record.get("format") == SLICES_FORMAT else None
    if not old or set(record.get("microsystems", {})) != set(ids) or not has_series:
        return set(SLICE_TABLES)
    changed = {k for k, v in stamp.items() if v == "volatile" or old.get(k) != v}
    return {t for t, sources in SLICE_SOURCES.items() if changed & set(sources)}


def _load_inputs(project: Project, cut: set[str]) -> dict[str, pd.DataFrame | None]:
    """Read and validate the input tables the tables to cut need (and the catalogue, always),
    checked against each other as :meth:`qi_helpers.project.Project.load_tables` does."""
    required = ["measures"]
    required += ["measure_events"] if "cases" in cut else []
    required += ["pdsa"] if "pdsa" in cut else []
    # drivers (optional) with the others, so its measures and change ideas are checked too
    required += ["drivers"] if "drivers" in cut and project.table_spec("drivers") else []
    tables = project.load_tables(*required)
    tables.setdefault("drivers", None)
    # the organisation's series needs the observations whenever cases or observations change
    tables["observations"] = (
        project.load_table("observations", required=False)
        if cut & {"cases", "observations"}
        else None
    )
    tables["patients"] = (
        project.load_table("patients", required=False) if "patients" in cut else None
    )
    tables["readiness"] = (
        project.load_table("readiness", required=False) if "assessment" in cut else None
    )
    return tables


def _kept_cases(project: Project, ids: list[str]) -> pd.DataFrame:
    """The microsystem and patient of every case, read back from the slices as they are."""
    frames = []
    for ms in ids:
        path = slice_folder(project, ms) / "cases.parquet"
        names = pq.read_schema(path).names
        frames.append(pd.read_parquet(path, columns=[c for c in _PAIR if c in names]))
    return pd.concat(frames, ignore_index=True).reindex(columns=list(_PAIR))


_PAIR = ("microsystem_id", "patient_id")

#: The columns of a case that :func:`measure_series` sums.
_CASE_COLUMNS = {
    "microsystem_id": "string",
    "measure_id": "string",
    "period": "datetime64[ns]",
    "value": "float64",
    "weight": "float64",
}


def _organisation_series(
    path: Path,
    tables: dict[str, pd.DataFrame | None],
    cases: pd.DataFrame | None,
    ids: list[str],
    *,
    period: str,
) -> pd.DataFrame:
    """Every microsystem's measure series in one table, with where each row came from.

    The rows summed from the cases are computed from ``cases`` when they were cut again, else
    read back from ``path``; the rows of ``observations`` are always made again (the table is
    small, and already one row per point). ``source`` says which is which.
    """
    measures = tables["measures"]
    if cases is not None:
        from_cases = measure_series(cases, measures, period=period)
    else:
        old = pd.read_parquet(path)
        from_cases = old[old["source"] == "cases"].drop(columns="source")
        from_cases = from_cases[from_cases["measure_id"].isin(measures["measure_id"])]
    parts = [from_cases.assign(source="cases")]
    observations = tables.get("observations")
    if observations is not None and not observations.empty:
        none = pd.DataFrame({c: pd.Series(dtype=t) for c, t in _CASE_COLUMNS.items()})
        kept = observations[observations["microsystem_id"].astype("string").isin(ids)]
        from_obs = measure_series(none, measures, kept, period=period)
        parts.append(from_obs.assign(source="observations"))
    series = pd.concat(parts, ignore_index=True)
    series["microsystem_id"] = series["microsystem_id"].astype("string")
    series["measure_id"] = series["measure_id"].astype("string")
    keys = ["microsystem_id", "measure_id", "period", "source"]
    return series.sort_values(keys, kind="stable").reset_index(drop=True)


def organisation_series(project: Project) -> pd.DataFrame:
    """Every microsystem's measure series, read from the one compact table beside the slices.

    What funnel plots compare (:func:`qi_helpers.spc.funnel.funnel_table`): the same rows as
    :func:`qi_helpers.changes.series.measure_series` of the whole organisation's cases and
    observations, written by :func:`prepare_slices` (prepared first when the slices are
    missing or out of date, as :func:`load_slice` does).

    Returns
    -------
    DataFrame
        ``microsystem_id, measure_id, period, numerator, denominator, n_cases, value,
        sum_squares, source`` (``cases`` or ``observations``).
    """
    if not slices_current(project) or not (slices_dir(project) / SERIES).is_file():
        prepare_slices(project)
    return pd.read_parquet(slices_dir(project) / SERIES)


def organisation_measure_series(
    project: Project,
    measures: pd.DataFrame,
    observations: pd.DataFrame | None = None,
    *,
    period: str = "week",
) -> pd.DataFrame:
    """Every microsystem's measure series, as workbooks 02 and 04 compare them.

    :func:`qi_helpers.changes.series.measure_series` of the whole organisation's cases and
    ``observations``: read from the compact table beside the slices when ``qi run`` prepared
    them for these tables and this ``period`` (and no observation is of a microsystem outside
    the registry, which that table leaves out); otherwise, as before (a workbook run by hand
    before the slices exist), every measure event is read and assigned to its microsystem,
    which holds them all in memory (4.4 million on the large demo: 1.6 GB).

    Returns
    -------
    DataFrame
        The same rows, values and types either way.
    """
    path = slices_dir(project) / SERIES
    record = read_record(project)
    if (
        record.get("stamp", {}).get("period") == period
        and slices_current(project)
        and path.is_file()
        and (
            observations is None
            or observations["microsystem_id"].astype("string").isin(record["microsystems"]).all()
        )
    ):
        series = pd.read_parquet(path).drop(columns="source")
        series = series[series["measure_id"].isin(measures["measure_id"])]
        return series.sort_values(_SERIES_KEYS).reset_index(drop=True)
    events = project.load_tables("measures", "measure_events")["measure_events"]  # checked too
    cases = assign_microsystems(events, project.membership(), period=period)
    del events
    return measure_series(cases, measures, observations, period=period)


_SERIES_KEYS = ["microsystem_id", "measure_id", "period"]


def _assessment(project: Project, readiness: pd.DataFrame | None) -> pd.DataFrame:
    """Every team's assessment by characteristic (empty without a readiness survey)."""
    if readiness is None or readiness.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ASSESSMENT_COLUMNS})
    return assess_characteristics(readiness, project.read_output("membership_staff"))


def prepare_slices(project: Project, *, force: bool = False) -> PreparedSlices:
    """Read and validate workbook 03's inputs once and write one slice per microsystem.

    Only what changed is read again: the tables of a slice whose sources changed
    (:data:`SLICE_SOURCES`) are cut again for every microsystem, and a file is rewritten only
    when its bytes differ, so a microsystem whose rows did not change keeps its files.

    Parameters
    ----------
    project : Project
    force : bool
        Read and cut every table even when :func:`slices_current` says the slices are current.

    Returns
    -------
    PreparedSlices

    Raises
    ------
    DataError
        When an input table breaks its contract (the same message as ``qi check``); the slices
        of the last good preparation are left as they were.
    ConfigError
        When workbook 01 has not written the registry and membership tables.
    """
    began = time.perf_counter()
    base = slices_dir(project)
    record = read_record(project)
    if not force and slices_current(project):
        return PreparedSlices(len(record.get("microsystems", {})), skipped=True)
    stamp = inputs_stamp(project)  # before reading: a file changed meanwhile is read next time
    registry = project.read_output("registry")
    ids = [str(i) for i in registry["microsystem_id"]]
    has_series = (base / SERIES).is_file()
    cut = set(SLICE_TABLES) if force else _to_cut(record, stamp, ids, has_series=has_series)
    tables = _load_inputs(project, cut)
    parts: dict[str, _Rows] = {}
    cases = None
    if "cases" in cut:
        events = tables.pop("measure_events")  # only its assigned cases are kept from here
        cases = assign_microsystems(events, project.membership(), period=stamp["period"])
        del events
        parts["cases"] = _groups(cases, "microsystem_id")
        cases = parts["cases"].frame  # the same rows by microsystem; the original is freed
    if "patients" in cut:
        pairs = cases if cases is not None else _kept_cases(project, ids)
        parts["patients"] = _patients_by_microsystem(pairs, tables.pop("patients"))
    for table, frame in (
        ("observations", tables.get("observations")),
        ("pdsa", tables.get("pdsa")),
        ("registry", registry),
        ("drivers", tables.get("drivers")),
    ):
        if table in cut:
            parts[table] = _groups(frame, "microsystem_id")
    _write_if_changed(base / "measures.parquet", tables["measures"])
    if cut & {"cases", "observations"}:
        series = _organisation_series(base / SERIES, tables, cases, ids, period=stamp["period"])
        _write_if_changed(base / SERIES, series)
        del series
    if "assessment" in cut:
        parts["assessment"] = _groups(
            _assessment(project, tables.pop("readiness")), "microsystem_id"
        )
    result = PreparedSlices(len(ids))
    folders = {}
    for ms in ids:
        folder = slice_folder(project, ms)
        folders[ms] = folder.name
        changed = [_write_if_changed(folder / f"{t}.parquet", parts[t].take(ms)) for t in parts]
        if any(changed):
            result.rewritten.append(ms)
    keep = set(folders.values())
    for old in sorted(base.glob("ms=*")):
        if old.is_dir() and old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)
            result.removed.append(old.name.removeprefix("ms="))
    write_json(base / RECORD, {"format": SLICES_FORMAT, "stamp": stamp, "microsystems": folders})
    result.seconds = time.perf_counter() - began
    result.cut = sorted(parts)
    return result


@dataclass
class MicrosystemSlice:
    """One microsystem's data for workbook 03 (see :func:`load_slice`).

    Attributes
    ----------
    microsystem_id : str
    cases : DataFrame
        Its measured cases (as :func:`qi_helpers.changes.series.assign_microsystems` returns
        them), dated to ``period``.
    series : DataFrame
        Its measure series (:func:`qi_helpers.changes.series.measure_series`).
    measures : DataFrame
        The measure catalogue.
    pdsa : DataFrame
        Its PDSA cycles.
    patients : DataFrame or None
        The ``patients`` rows of its cases (None when the project has no patients table).
    registry : DataFrame
        Its row of the registry.
    drivers : DataFrame or None
        Its own driver diagram (its rows of the ``drivers`` table; empty when it has none, None
        when the project has no drivers table).
    assessment : DataFrame or None
        Its readiness profile by characteristic against the organisation's teams
        (:func:`qi_helpers.pilots.assessment.assess_characteristics`, its rows; empty when its
        team did not answer the survey or the project has none).
    """

    microsystem_id: str
    cases: pd.DataFrame
    series: pd.DataFrame
    measures: pd.DataFrame
    pdsa: pd.DataFrame
    patients: pd.DataFrame | None
    registry: pd.DataFrame
    drivers: pd.DataFrame | None = None
    assessment: pd.DataFrame | None = None


def load_slice(project: Project, microsystem_id: str, *, period: str = "week") -> MicrosystemSlice:
    """One microsystem's data for workbook 03, read from its slice.

    The slices are prepared first (:func:`prepare_slices`) when they are missing or older than
    the input tables or workbook 01's outputs, so a workbook run by hand gives the same result
    as one run by ``qi run``.

    Parameters
    ----------
    project : Project
    microsystem_id : str
    period : {"week", "month"}
        The period of the series (a microsystem's own parameters may differ from the project's).

    Returns
    -------
    MicrosystemSlice

    Raises
    ------
    ConfigError
        When the microsystem is not in the registry, naming a few that are.
    """
    if not slices_current(project):
        prepare_slices(project)
    folders = read_record(project).get("microsystems", {})
    if str(microsystem_id) not in folders:
        known = ", ".join(sorted(folders)[:20])
        raise ConfigError(
            f"microsystem_id {microsystem_id!r} is not in the registry "
            f"({project.relative(project.data_dir / 'registry.parquet')}); microsystems: {known}."
        )
    folder = slice_folder(project, microsystem_id)
    frames = {t: pd.read_parquet(folder / f"{t}.parquet") for t in SLICE_TABLES}
    return _assemble(project, str(microsystem_id), frames, period)


def _assemble(
    project: Project, microsystem_id: str, frames: dict[str, pd.DataFrame], period: str
) -> MicrosystemSlice:
    """A :class:`MicrosystemSlice` from the tables of one or more slice folders."""
    measures = pd.read_parquet(slices_dir(project) / "measures.parquet")
    cases = frames["cases"]
    if period != read_record(project).get("stamp", {}).get("period", "week"):
        cases = cases.assign(period=period_start(cases["timestamp"], period))
    observations = frames["observations"] if project.table_spec("observations") else None
    series = measure_series(cases, measures, observations, period=period)
    patients = frames["patients"] if project.table_spec("patients") is not None else None
    drivers = frames["drivers"] if project.table_spec("drivers") is not None else None
    return MicrosystemSlice(
        microsystem_id,
        cases,
        series,
        measures,
        frames["pdsa"],
        patients,
        frames["registry"],
        drivers,
        frames["assessment"],
    )


def load_slices(project: Project, *, period: str = "week") -> MicrosystemSlice:
    """Every microsystem's slice in one (for the explorer in JupyterLab, which lets a coach pick
    another microsystem); ``microsystem_id`` is ``""`` and ``registry`` the whole registry.

    See :func:`load_slice`; this reads every folder, so it costs as much as the organisation is
    large: batch runs use :func:`load_slice`.
    """
    if not slices_current(project):
        prepare_slices(project)
    folders = read_record(project).get("microsystems", {})
    tables: dict[str, list[pd.DataFrame]] = {t: [] for t in SLICE_TABLES}
    for ms in folders:
        folder = slice_folder(project, ms)
        for t in SLICE_TABLES:
            frame = pd.read_parquet(folder / f"{t}.parquet")
            if len(frame):
                tables[t].append(frame)
    frames = (
        {
            t: pd.concat(found, ignore_index=True)
            if found
            else pd.read_parquet(slice_folder(project, next(iter(folders))) / f"{t}.parquet")
            for t, found in tables.items()
        }
        if folders
        else {}
    )
    if not frames:
        raise ConfigError(f"{slices_dir(project)}: no microsystem has a slice; run workbook 01.")
    return _assemble(project, "", frames, period)
