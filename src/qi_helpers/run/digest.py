"""What changed since the last run: verdicts, icons, special causes and failures (the digest).

At the end of every completed ``qi run`` (failing notebooks included; not one that was
interrupted or stopped by invalid inputs), :func:`write_digest` compares what the run left with
what the previous completed run left, and writes:

- ``outputs/digest.json`` (:attr:`qi_helpers.project.Project.digest_file`): one entry per change
  (:data:`DIGEST_COLUMNS`, kinds :data:`KINDS`), the run's date and the previous run's date. The
  index of the site shows it as a "Changed since" panel, and ``qi run`` prints it in a few lines
  (:func:`digest_lines`), so a team that schedules ``qi run`` can read only the digest.
- ``outputs/snapshot.json`` (:data:`SNAPSHOT`): the state the next run compares with, one compact
  row per microsystem, measure and change judged (:data:`STATE_COLUMNS`), the status of every
  notebook and the registry's microsystems. It is written atomically after the digest, and only
  at the end of a completed run, so a run that fails or is interrupted leaves the previous
  snapshot as it was. The comparison never depends on the results files the current run
  overwrote: a microsystem whose workbook 03 failed keeps the rows of its last good run (and a
  ``failed`` entry says so), and one whose results file is unchanged (same size and time) keeps
  its rows without being read again, so a run where nothing changed reads no results table.

What counts as a change, per microsystem and measure (the results of workbook 03,
``outputs/data/results/<microsystem_id>.parquet``): its verdict for each change judged
(``verdict_changed``); the Making Data Count variation icon of its latest point turning into a
special cause (``new_signal``) or back to common cause (``signal_ended``), or any other change
of the variation or assurance icon (``icon_changed``); a measure that appears or goes
(``new_measure``, ``removed_measure``). Per notebook: it failed this run (``failed``) or it
failed last run and ran now (``recovered``). Per microsystem: its first results
(``new_microsystem``) or its removal from the registry (``removed``).

Nothing here is patient-level: the entries hold identifiers of microsystems and measures,
measure names, the changes of the PDSA log, verdicts and icons; never the text of an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from qi_helpers.io import write_json
from qi_helpers.privacy.names import safe_filename
from qi_helpers.project import Project
from qi_helpers.run.tasks import TaskResult
from qi_helpers.workflow import WORKBOOKS

__all__ = [
    "DIGEST_COLUMNS",
    "KINDS",
    "SNAPSHOT",
    "STATE_COLUMNS",
    "RunState",
    "compare_states",
    "current_state",
    "digest_lines",
    "read_digest",
    "read_snapshot",
    "write_digest",
]

#: The state the next run compares with, under ``outputs/``.
SNAPSHOT = "snapshot.json"

#: The columns of a state's rows: one per microsystem, measure and change judged.
STATE_COLUMNS = [
    "microsystem_id",
    "measure_id",
    "name",
    "change",
    "verdict",
    "variation_icon",
    "assurance_icon",
]

#: The columns of the digest: one row per change found.
DIGEST_COLUMNS = [
    "microsystem_id",
    "workbook",
    "measure_id",
    "name",
    "change",
    "kind",
    "before",
    "after",
    "date",
    "text",
]

#: Every kind of change, in the order a microsystem's entries are listed.
KINDS = (
    "failed",
    "recovered",
    "new_microsystem",
    "removed",
    "new_measure",
    "removed_measure",
    "verdict_changed",
    "new_signal",
    "signal_ended",
    "icon_changed",
)

#: The Making Data Count variation icons in words (NHS England, Making Data Count, 2019).
VARIATION_WORDS = {
    "common_cause": "common cause variation",
    "improvement_high": "special cause (improvement, higher)",
    "improvement_low": "special cause (improvement, lower)",
    "concern_high": "special cause (concern, higher)",
    "concern_low": "special cause (concern, lower)",
    "neutral_high": "special cause (neither better nor worse, higher)",
    "neutral_low": "special cause (neither better nor worse, lower)",
}

#: The Making Data Count assurance icons in words.
ASSURANCE_WORDS = {
    "consistent_pass": "the target will consistently be met",
    "consistent_fail": "the target will consistently be missed",
    "inconsistent": "the target may or may not be met",
}

#: Statuses of a notebook that did not give results this run.
_NOT_RUN = ("failed", "blocked")


@dataclass
class RunState:
    """What one completed run left, as the digest compares it.

    Attributes
    ----------
    date : str
        When the run ended, ISO 8601 in UTC (``2026-12-03T14:05:12Z``).
    rows : DataFrame
        :data:`STATE_COLUMNS`, text or None.
    statuses : dict
        ``{task label: "ok" | "failed" | "blocked"}`` of every notebook run so far (a task that
        this run did not include keeps its last status).
    microsystems : list of str
        The registry's microsystems.
    stamps : dict
        ``{microsystem_id: [size, mtime_ns]}`` of the results file each one's rows were read from.
    this_run : list of str
        The labels of this run's tasks (not kept in the snapshot).
    """

    date: str
    rows: pd.DataFrame
    statuses: dict[str, str] = field(default_factory=dict)
    microsystems: list[str] = field(default_factory=list)
    stamps: dict[str, list[int]] = field(default_factory=dict)
    this_run: list[str] = field(default_factory=list)


def _text(value: Any) -> str | None:
    """A cell as text, None when it is missing or empty."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value)
    return text if text.strip() else None


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` reduced to :data:`STATE_COLUMNS`, every cell text or None."""
    table = frame.reindex(columns=STATE_COLUMNS)
    if table.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in STATE_COLUMNS})
    table = table.astype(object).map(_text)
    return table[table["microsystem_id"].notna() & table["measure_id"].notna()].reset_index(
        drop=True
    )


def read_snapshot(project: Project) -> RunState | None:
    """The state the previous completed run left (None: no run completed yet, or unreadable)."""
    try:
        data = json.loads((project.outputs_dir / SNAPSHOT).read_text(encoding="utf-8"))
        rows = pd.DataFrame(data["rows"], columns=data["columns"], dtype=object)
        return RunState(
            date=str(data["date"]),
            rows=_rows(rows),
            statuses={str(k): str(v) for k, v in data.get("statuses", {}).items()},
            microsystems=[str(m) for m in data.get("microsystems", [])],
            stamps={str(k): list(v) for k, v in data.get("stamps", {}).items()},
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _stamp(path: Path) -> list[int] | None:
    """``[size, mtime_ns]`` of a file (None when it is missing): an atomic rewrite changes it."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _read_results(path: Path) -> pd.DataFrame:
    """The state rows of one results table (none when it is missing or unreadable)."""
    try:
        return _rows(pd.read_parquet(path))
    except (OSError, ValueError):
        return _rows(pd.DataFrame())


def current_state(
    project: Project,
    results: Iterable[TaskResult],
    *,
    previous: RunState | None,
    registry_ids: Iterable[str] | None,
    date: str,
) -> RunState:
    """What this run left: the results of every microsystem of the registry, and the statuses.

    A microsystem whose workbook 03 failed or was blocked this run keeps the rows of
    ``previous``; one whose results file has the size and time recorded in ``previous`` keeps
    them too (not read again); the others are read from ``outputs/data/results``.

    Parameters
    ----------
    project : Project
    results : iterable of TaskResult
        This run's tasks.
    previous : RunState or None
        The previous run's state.
    registry_ids : iterable of str, optional
        The registry's microsystems now (None: those of ``previous``).
    date : str
        When this run ended (ISO 8601, UTC).

    Returns
    -------
    RunState
    """
    prev = previous or RunState(date="", rows=_rows(pd.DataFrame()))
    statuses, this_run = dict(prev.statuses), []
    for result in results:
        statuses[result.label] = result.status
        this_run.append(result.label)
    ids = list(dict.fromkeys(str(i) for i in (registry_ids or prev.microsystems)))
    # Statuses of microsystems gone from the registry are forgotten (unless they ran now).
    listed = set(ids) | {label[3:] for label in this_run}
    statuses = {k: v for k, v in statuses.items() if not k.startswith("03:") or k[3:] in listed}
    kept = {str(ms): g for ms, g in prev.rows.groupby("microsystem_id", sort=False)}
    frames, stamps = [], {}
    for ms in ids:
        stamp = _stamp(project.results_dir / f"{safe_filename(ms)}.parquet")
        if statuses.get(f"03:{ms}") in _NOT_RUN or (stamp and prev.stamps.get(ms) == stamp):
            if ms in kept:
                frames.append(kept[ms])
            if ms in prev.stamps:
                stamps[ms] = prev.stamps[ms]
            continue
        if stamp:
            frames.append(_read_results(project.results_dir / f"{safe_filename(ms)}.parquet"))
            stamps[ms] = stamp
    rows = _rows(pd.concat(frames, ignore_index=True)) if frames else _rows(pd.DataFrame())
    return RunState(date, rows[rows["microsystem_id"].isin(ids)], statuses, ids, stamps, this_run)


def _entry(
    kind: str, text: str, *, ms: str | None = None, workbook: str = "03", **values: Any
) -> dict[str, Any]:
    """One digest entry (:data:`DIGEST_COLUMNS`; ``date`` is set by :func:`compare_states`)."""
    return {"microsystem_id": ms, "workbook": workbook, "kind": kind, "text": text} | values


def _task_entries(before: RunState, after: RunState) -> list[dict[str, Any]]:
    """``failed`` for every notebook that failed this run, ``recovered`` for one that failed
    last run and ran now. Blocked notebooks are counted in the failure that blocked them."""
    entries = []
    blocked = sum(after.statuses.get(label) == "blocked" for label in after.this_run)
    for label in after.this_run:
        now, was = after.statuses.get(label), before.statuses.get(label)
        code, _, ms = label.partition(":")
        where = "workbook 03" if ms else f"workbook {code} ({WORKBOOKS[code].title[3:]})"
        if now == "failed":
            text = f"{where} failed this run" + (
                "; the last good report is kept" if was is not None else ""
            )
            if not ms and blocked:
                text += f"; {blocked} notebook{'s' if blocked != 1 else ''} after it not run"
            entries.append(
                _entry("failed", text, ms=ms or None, workbook=code, before=was, after="failed")
            )
        elif now == "ok" and was == "failed":
            text = f"{where} ran again after failing in the previous run"
            entries.append(
                _entry("recovered", text, ms=ms or None, workbook=code, before=was, after="ok")
            )
    return entries


def _known(state: RunState) -> set[str]:
    """The microsystems a state has results or a workbook 03 status for."""
    with_rows = set(state.rows["microsystem_id"])
    return {ms for ms in state.microsystems if ms in with_rows or f"03:{ms}" in state.statuses}


def _icon_entries(ms: str, mid: str, name: str, b: pd.Series, a: pd.Series) -> list[dict]:
    """The variation and assurance icons of one measure, before and after."""
    entries = []
    keys = {"ms": ms, "measure_id": mid, "name": name}
    bv, av = b["variation_icon"], a["variation_icon"]
    words = {None: "no icon"} | VARIATION_WORDS

    def special(icon: str | None) -> bool:
        return icon is not None and icon != "common_cause"

    if special(av) and av != bv:
        text = f"{name}: new {words.get(av, av)}; was {words.get(bv, bv)}"
        entries.append(_entry("new_signal", text, before=bv, after=av, **keys))
    elif special(bv) and not special(av):
        text = f"{name}: {words.get(bv, bv)} ended; now {words.get(av, av)}"
        entries.append(_entry("signal_ended", text, before=bv, after=av, **keys))
    elif bv != av:
        text = f"{name}: variation icon changed from {words.get(bv, bv)} to {words.get(av, av)}"
        entries.append(_entry("icon_changed", text, before=bv, after=av, **keys))
    ba, aa = b["assurance_icon"], a["assurance_icon"]
    if ba != aa:
        sure = {None: "no assurance icon (no target)"} | ASSURANCE_WORDS
        text = f"{name}: assurance changed from '{sure.get(ba, ba)}' to '{sure.get(aa, aa)}'"
        entries.append(_entry("icon_changed", text, before=ba, after=aa, **keys))
    return entries


def _verdict_entries(ms: str, mid: str, name: str, b: pd.DataFrame, a: pd.DataFrame) -> list:
    """The verdict of each change judged, matched by the change's name; the changes judged
    before or after only are paired in their order (a renamed change, or a first change
    after ``baseline only``)."""
    keys = {"ms": ms, "measure_id": mid, "name": name}
    old = dict(zip(b["change"].fillna(""), b["verdict"], strict=True))
    new = dict(zip(a["change"].fillna(""), a["verdict"], strict=True))
    pairs = [(c, c) for c in new if c in old]
    only_old, only_new = [c for c in old if c not in new], [c for c in new if c not in old]
    pairs += list(zip(only_old, only_new, strict=False))
    pairs += [(c, None) for c in only_old[len(only_new) :]]
    pairs += [(None, c) for c in only_new[len(only_old) :]]
    entries = []
    for was_change, change in pairs:
        was = old.get(was_change) if was_change is not None else None
        now = new.get(change) if change is not None else None
        if was == now:
            continue
        label = change if change is not None else was_change
        of = f" (change: {label})" if label else ""
        if was is None:
            text = f"{name}: first verdict '{now}'{of}"
        elif now is None:
            text = f"{name}: no longer judged (the verdict was '{was}'){of}"
        else:
            text = f"{name}: verdict changed from '{was}' to '{now}'{of}"
        entries.append(
            _entry("verdict_changed", text, change=label or None, before=was, after=now, **keys)
        )
    return entries


def _measure_entries(ms: str, before: pd.DataFrame, after: pd.DataFrame) -> list[dict]:
    """Every change of one microsystem's measures."""
    entries = []
    old = {m: g for m, g in before.groupby("measure_id", sort=False)}
    new = {m: g for m, g in after.groupby("measure_id", sort=False)}
    for mid in list(new) + [m for m in old if m not in new]:
        b, a = old.get(mid), new.get(mid)
        name = str((a if a is not None else b)["name"].iloc[0] or mid)
        keys = {"ms": ms, "measure_id": mid, "name": name}
        if b is None:
            verdicts = ", ".join(f"'{v}'" for v in a["verdict"].dropna())
            text = f"{name}: new measure, verdict {verdicts or 'none'}"
            entries.append(_entry("new_measure", text, before=None, after=verdicts, **keys))
        elif a is None:
            text = f"{name}: no longer measured here"
            entries.append(_entry("removed_measure", text, before=name, after=None, **keys))
        else:
            entries += _verdict_entries(ms, mid, name, b, a)
            entries += _icon_entries(ms, mid, name, b.iloc[0], a.iloc[0])
    return entries


def compare_states(before: RunState | None, after: RunState) -> pd.DataFrame:
    """Every change from one run's state to the next.

    Parameters
    ----------
    before : RunState or None
        The previous completed run (None: this is the first, and nothing is compared).
    after : RunState
        This run (:func:`current_state`).

    Returns
    -------
    DataFrame
        One row per change (:data:`DIGEST_COLUMNS`): ``microsystem_id`` (None for a workbook
        of the whole organisation), ``workbook`` (``"01"`` to ``"04"``), ``measure_id``,
        ``name`` (the measure's) and ``change`` (the PDSA change judged) where they apply,
        ``kind`` (one of :data:`KINDS`), ``before`` and ``after`` (verdicts, icons, notebook
        statuses; None for "none"), ``date`` (this run's) and ``text`` (the change in words,
        without the microsystem). Organisation-wide entries first, then by microsystem, by
        measure in the results' order, and by :data:`KINDS` order.
    """
    entries: list[dict[str, Any]] = []
    if before is not None:
        entries += _task_entries(before, after)
        known_before, known_after = _known(before), _known(after)
        rows_of = {
            "before": dict(iter(before.rows.groupby("microsystem_id", sort=False))),
            "after": dict(iter(after.rows.groupby("microsystem_id", sort=False))),
        }
        empty = _rows(pd.DataFrame())
        for ms in after.microsystems:
            mine = rows_of["after"].get(ms, empty)
            if ms in known_after and ms not in known_before:
                n = mine["measure_id"].nunique()
                text = f"new microsystem: first results, {n} measure{'s' if n != 1 else ''}"
                entries.append(_entry("new_microsystem", text, ms=ms, before=None, after="new"))
            elif ms in known_before:
                entries += _measure_entries(ms, rows_of["before"].get(ms, empty), mine)
        for ms in sorted(known_before - set(after.microsystems)):
            text = "no longer in the registry of microsystems"
            entries.append(_entry("removed", text, ms=ms, before="listed", after=None))
    frame = pd.DataFrame(entries, columns=DIGEST_COLUMNS).astype(object)
    frame = frame.where(frame.notna(), None).assign(date=after.date)
    if frame.empty:
        return frame
    order = {ms: i for i, ms in enumerate(after.microsystems)}
    measures = {m: i for i, m in enumerate(dict.fromkeys(after.rows["measure_id"]))}
    frame["_sort"] = [
        (ms is not None, order.get(ms, len(order)), ms or "", m is not None,
         measures.get(m, len(measures)), KINDS.index(k))
        for ms, m, k in zip(frame["microsystem_id"], frame["measure_id"], frame["kind"],
                            strict=True)
    ]  # fmt: skip
    return frame.sort_values("_sort", kind="stable").drop(columns="_sort").reset_index(drop=True)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_digest(
    project: Project,
    results: Iterable[TaskResult],
    *,
    registry_ids: Iterable[str] | None = None,
    now: str | None = None,
) -> dict[str, Any]:
    """Write ``outputs/digest.json``, then the snapshot the next run compares with.

    Called by :func:`qi_helpers.run.runner.run` once a run has completed (never after an
    interrupted run, whose snapshot stays as it was). Both files are written atomically, the
    digest first: a run stopped between the two compares the next time with the older state,
    and repeats changes rather than losing them.

    Parameters
    ----------
    project : Project
    results : iterable of TaskResult
        This run's tasks.
    registry_ids : iterable of str, optional
        The registry's microsystems now (default: those of the previous snapshot).
    now : str, optional
        This run's date (ISO 8601, UTC); default the clock's.

    Returns
    -------
    dict
        What ``digest.json`` holds: ``date``, ``previous_date`` (None on a first run),
        ``first_run``, ``changes`` (how many), ``counts`` (by kind) and ``entries`` (the
        records of :func:`compare_states`).
    """
    results = list(results)
    previous = read_snapshot(project)
    state = current_state(
        project, results, previous=previous, registry_ids=registry_ids, date=now or _now()
    )
    changes = compare_states(previous, state)
    digest = {
        "date": state.date,
        "previous_date": previous.date if previous else None,
        "first_run": previous is None,
        "changes": len(changes),
        "counts": {k: int(n) for k, n in changes["kind"].value_counts(sort=False).items()},
        "entries": changes.to_dict(orient="records"),
    }
    write_json(project.digest_file, digest)
    write_json(
        project.outputs_dir / SNAPSHOT,
        {
            "date": state.date,
            "microsystems": state.microsystems,
            "statuses": dict(sorted(state.statuses.items())),
            "stamps": state.stamps,
            "columns": STATE_COLUMNS,
            "rows": state.rows[STATE_COLUMNS].to_numpy().tolist(),
        },
    )
    return digest


def read_digest(project: Project) -> dict[str, Any] | None:
    """The last run's digest (None when there is none or it cannot be read)."""
    try:
        data = json.loads(project.digest_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _when(date: str | None) -> str:
    """``2026-12-01 09:00 UTC`` from an ISO date in UTC."""
    return (date or "").replace("T", " ")[:16] + " UTC" if date else "an unknown date"


def digest_lines(
    digest: dict[str, Any], *, limit: int = 10, where: str = "outputs/digest.json"
) -> list[str]:
    """The digest in a few lines for the end of ``qi run``.

    Parameters
    ----------
    digest : dict
        From :func:`write_digest` or :func:`read_digest`.
    limit : int
        Changes listed; the others are counted, with where to read them.
    where : str
        The digest file, as the lines name it.

    Returns
    -------
    list of str
        E.g. ``["1 change since 2026-12-01 09:00 UTC (outputs/digest.json):", "  NOR-PC1 HbA1c
        tested in diabetic review: verdict changed from 'no signal yet' to 'improved' (change:
        ...)"]``.
    """
    if digest.get("first_run"):
        return [
            f"First run: nothing to compare with yet; the next run lists what changed ({where})."
        ]
    entries = digest.get("entries") or []
    since = _when(digest.get("previous_date"))
    if not entries:
        return [f"No changes since {since} ({where})."]
    n = len(entries)
    lines = [f"{n} change{'s' if n != 1 else ''} since {since} ({where}):"]
    for entry in entries[:limit]:
        who = entry.get("microsystem_id") or "Organisation:"
        lines.append(f"  {who} {entry.get('text', '')}")
    if n > limit:
        lines.append(f"  ... and {n - limit} more in {where}")
    return lines
