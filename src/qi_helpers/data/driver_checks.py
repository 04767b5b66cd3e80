"""The rules of the ``drivers`` table: driver diagrams that can be drawn and linked to the data.

A driver diagram (IHI QI Essentials Toolkit; Langley et al., *The Improvement Guide*, 2009) has
one **aim**, the **primary drivers** that must change to reach it, the **secondary drivers**
under each, and the **change ideas** that act on them. The ``drivers`` table holds one row per
change idea and measure that shows it; ``microsystem_id`` says whose diagram the row belongs to
(empty: the whole organisation's). A diagram is a tree, so:

* every row names its aim, primary driver, secondary driver and change idea (no empty cell);
* a diagram has one aim;
* a change idea sits under one secondary driver, and a secondary driver under one primary
  driver, within a diagram;
* a change idea and measure appear once per diagram;
* a change idea without a measure cannot be judged (a warning).

Against the other tables (:func:`unknown_driver_measures`, :func:`unknown_change_ideas`): every
measure must be in the catalogue, and every PDSA cycle of a microsystem that has a diagram (its
own, or the organisation's) must test one of its change ideas, named as the diagram names it
(the PDSA log's ``change``).
"""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from qi_helpers.data.parsing import blank_cells
from qi_helpers.data.problems import Problem, affected_rows

__all__ = [
    "DIAGRAM_TEXT",
    "diagram_of",
    "driver_table_problems",
    "unknown_change_ideas",
    "unknown_driver_measures",
]

#: The text columns every row of ``drivers`` fills in, from the aim to the change idea.
DIAGRAM_TEXT = ("aim", "primary_driver", "secondary_driver", "change")

_LABELS = {
    "aim": "aim",
    "primary_driver": "primary driver",
    "secondary_driver": "secondary driver",
    "change": "change idea",
}


def diagram_of(frame: pd.DataFrame) -> pd.Series:
    """Whose diagram each row belongs to: its ``microsystem_id``, ``""`` for the organisation."""
    if "microsystem_id" not in frame.columns:
        return pd.Series("", index=frame.index, dtype="string")
    ids = frame["microsystem_id"].astype("string").str.strip()
    return ids.fillna("")


def _name(diagram: str) -> str:
    return f"the diagram of {diagram}" if diagram else "the organisation's diagram"


def _problem(level, kind, source, message, fix, column, mask=None, table="drivers") -> Problem:
    rows, count = affected_rows(mask) if mask is not None else ((), 0)
    return Problem(level, kind, table, source, message, fix, column, rows, count)


def _empty_cells(frame: pd.DataFrame, source: str) -> list[Problem]:
    out = []
    for column in [c for c in DIAGRAM_TEXT if c in frame.columns]:
        blank = blank_cells(frame[column]).to_numpy(dtype=bool)
        if blank.any():
            label = _LABELS[column]
            out.append(
                _problem(
                    "error",
                    "missing_value",
                    source,
                    f"empty {label}: every row of a driver diagram names its aim, primary "
                    "driver, secondary driver and change idea",
                    f"fill in the {label} (repeat it on every row of the diagram) or delete "
                    "the row",
                    column,
                    blank,
                )
            )
    return out


def _several_aims(frame: pd.DataFrame, diagram: pd.Series, source: str) -> list[Problem]:
    out = []
    aims = frame["aim"].astype("string")
    for key, group in aims.dropna().groupby(diagram[aims.notna()], sort=True):
        found = list(dict.fromkeys(group))
        if len(found) > 1:
            mask = (diagram == key).to_numpy(dtype=bool) & aims.notna().to_numpy(dtype=bool)
            shown = ", ".join(repr(a) for a in found[:3])
            out.append(
                _problem(
                    "error",
                    "several_aims",
                    source,
                    f"{_name(key)} has {len(found)} aims ({shown}); a driver diagram has one aim",
                    "write the same aim on every row of the diagram (or split it between "
                    "microsystems)",
                    "aim",
                    mask,
                )
            )
    return out


def _two_parents(
    frame: pd.DataFrame, diagram: pd.Series, source: str, child: str, parent: str
) -> list[Problem]:
    """A child (change idea, secondary driver) under two parents within one diagram."""
    if child not in frame.columns or parent not in frame.columns:
        return []
    table = pd.DataFrame(
        {"d": diagram, "c": frame[child].astype("string"), "p": frame[parent].astype("string")}
    ).dropna()
    counts = table.groupby(["d", "c"])["p"].nunique()
    twice = counts[counts > 1]
    if twice.empty:
        return []
    keys = set(twice.index)
    names = frame[child].astype("string").fillna("")
    mask = np.array([(d, c) in keys for d, c in zip(diagram, names, strict=True)], dtype=bool)
    d, c = twice.index[0]
    parents = list(dict.fromkeys(table.loc[(table["d"] == d) & (table["c"] == c), "p"]))
    return [
        _problem(
            "error",
            "two_parents",
            source,
            f"{len(twice)} {_LABELS[child]}(s) sit under two different {_LABELS[parent]}s in "
            f"one diagram, e.g. {c!r} under {parents[0]!r} and {parents[1]!r} in {_name(d)}",
            f"put each {_LABELS[child]} under one {_LABELS[parent]} (a driver diagram is a "
            "tree), or give the two a different name",
            child,
            mask,
        )
    ]


def _duplicates(frame: pd.DataFrame, diagram: pd.Series, source: str) -> list[Problem]:
    if "change" not in frame.columns:
        return []
    measure = (
        frame["measure_id"].astype("string").fillna("")
        if "measure_id" in frame.columns
        else pd.Series("", index=frame.index, dtype="string")
    )
    keys = pd.DataFrame({"d": diagram, "c": frame["change"].astype("string"), "m": measure})
    dup = keys.duplicated(keep=False).to_numpy() & keys["c"].notna().to_numpy()
    if not dup.any():
        return []
    first = keys[dup].iloc[0]
    return [
        _problem(
            "error",
            "duplicate_id",
            source,
            f"the same change idea and measure appear twice in one diagram (e.g. "
            f"{first['c']!r} and {first['m'] or 'no measure'!r} in {_name(first['d'])})",
            "delete the repeated rows",
            "microsystem_id, change, measure_id",
            dup,
        )
    ]


def _no_measure(frame: pd.DataFrame, source: str) -> list[Problem]:
    column = "measure_id"
    blank = (
        blank_cells(frame[column]).to_numpy(dtype=bool)
        if column in frame.columns
        else np.ones(len(frame), dtype=bool)
    )
    if not blank.any():
        return []
    return [
        _problem(
            "warning",
            "no_measure",
            source,
            "change ideas without a measure: the diagram cannot say whether they worked",
            "add the measure_id of the measure that would show the change working (one row per "
            "measure)",
            column,
            blank,
        )
    ]


def driver_table_problems(frame: pd.DataFrame, source: str) -> list[Problem]:
    """Every problem of a ``drivers`` table on its own (its text columns already trimmed).

    Parameters
    ----------
    frame : DataFrame
        The table as typed by :func:`qi_helpers.data.validation.inspect`.
    source : str
        Where it came from, for messages.

    Returns
    -------
    list of Problem
        Errors: ``missing_value`` (an empty aim, driver or change idea), ``several_aims``,
        ``two_parents`` (a change idea under two secondary drivers, or a secondary driver under
        two primary drivers, in one diagram), ``duplicate_id`` (the same change idea and measure
        twice in a diagram). Warning: ``no_measure``.
    """
    diagram = diagram_of(frame)
    out = _empty_cells(frame, source)
    if "aim" in frame.columns:
        out += _several_aims(frame, diagram, source)
    out += _two_parents(frame, diagram, source, "change", "secondary_driver")
    out += _two_parents(frame, diagram, source, "secondary_driver", "primary_driver")
    out += _duplicates(frame, diagram, source)
    out += _no_measure(frame, source)
    return out


def unknown_driver_measures(
    drivers: pd.DataFrame, known: set[str], source: str, catalogue: str
) -> list[Problem]:
    """Rows of ``drivers`` whose ``measure_id`` is not in the measure catalogue."""
    if "measure_id" not in drivers.columns:
        return []
    mid = drivers["measure_id"].astype("string").str.strip()
    unknown = (mid.notna() & (mid != "") & ~mid.isin(list(known))).to_numpy(dtype=bool)
    if not unknown.any():
        return []
    names = ", ".join(map(repr, pd.unique(mid[unknown])[:5]))
    return [
        _problem(
            "error",
            "unknown_measure",
            source,
            f"measure(s) {names} not in the measure catalogue ({catalogue})",
            "use measure ids from the measures table, or add the measures there",
            "measure_id",
            unknown,
        )
    ]


def unknown_change_ideas(
    pdsa: pd.DataFrame, drivers: pd.DataFrame, source: str, drivers_source: str
) -> list[Problem]:
    """PDSA cycles that test a change idea their microsystem's diagram does not have.

    A microsystem with a diagram of its own may test its own change ideas and the
    organisation's; when the organisation has a diagram, every microsystem may test its change
    ideas. Cycles of a microsystem without any diagram are not checked.
    """
    if not {"microsystem_id", "change"} <= set(pdsa.columns) or "change" not in drivers.columns:
        return []
    diagram = diagram_of(drivers)
    ideas = drivers["change"].astype("string").str.strip()
    own = {k: set(g.dropna()) for k, g in ideas.groupby(diagram, sort=False)}
    shared = own.pop("", None)
    ms = pdsa["microsystem_id"].astype("string").fillna("")
    change = pdsa["change"].astype("string").str.strip()
    allowed = [
        None if (m not in own and shared is None) else own.get(m, set()) | (shared or set())
        for m in ms
    ]
    bad = np.array(
        [a is not None and pd.notna(c) and c not in a for a, c in zip(allowed, change, strict=True)],
        dtype=bool,
    )
    if not bad.any():
        return []
    i = int(np.flatnonzero(bad)[0])
    example, where = str(change.iloc[i]), str(ms.iloc[i])
    close = difflib.get_close_matches(example, sorted(allowed[i]), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    n = len(set(zip(ms[bad], change[bad], strict=True)))
    return [
        _problem(
            "error",
            "unknown_change",
            source,
            f"{n} change(s) tested in PDSA cycles are not change ideas of the driver diagram "
            f"of their microsystem or of the organisation ({drivers_source}), e.g. {example!r} "
            f"in {where}{hint}",
            "name the change exactly as the drivers table names the change idea (spelling and "
            "capitals matter), or add the change idea to the drivers table",
            "change",
            bad,
            table="pdsa",
        )
    ]
