"""Checks of the typed input tables against each other, one small function per rule.

Measures referenced by events and observations must be in the catalogue, proportions cannot
exceed their denominators, counts cannot be negative, staff in the activities should be in the
roster, and a measure needs enough periods without gaps to be charted. The chart families come
from :mod:`qi_helpers.measures`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from qi_helpers.data.driver_checks import unknown_change_ideas, unknown_driver_measures
from qi_helpers.data.problems import Problem, affected_rows
from qi_helpers.measures import COUNT_CHARTS, PROPORTION_CHARTS

__all__ = ["MIN_PERIODS", "cross_check"]

#: A measure with fewer periods than this cannot show a run chart signal (Anhøj rules need 10+).
MIN_PERIODS = 10

#: The tables of measured values, checked against the measure catalogue.
_MEASURED = ("measure_events", "observations")


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


@dataclass
class _CrossCheck:
    """The tables being checked, what the measure catalogue says, and the problems found.

    ``chart_of`` and ``period_of`` give each catalogued measure's chart and period (the default
    period when the catalogue gives none or an unknown one).
    """

    tables: Mapping[str, pd.DataFrame]
    sources: dict[str, str]
    default_period: str
    problems: list[Problem] = field(default_factory=list)
    has_catalogue: bool = False
    chart_of: dict[str, str] = field(default_factory=dict)
    period_of: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        measures = self.tables.get("measures")
        self.has_catalogue = measures is not None and "measure_id" in measures.columns
        if not self.has_catalogue:
            return
        ids = measures["measure_id"].dropna()
        if "chart" in measures.columns:
            self.chart_of = dict(zip(ids, measures.loc[ids.index, "chart"], strict=True))
        if "period" in measures.columns:
            self.period_of = {
                k: (v if v in ("week", "month") else self.default_period)
                for k, v in zip(ids, measures.loc[ids.index, "period"], strict=True)
            }
        self.period_of = {k: self.period_of.get(k, self.default_period) for k in ids}

    def source(self, table: str) -> str:
        return self.sources.get(table, table)

    def add(self, level, kind, table, message, fix, column, mask=None) -> None:
        rows, count = affected_rows(mask) if mask is not None else ((), 0)
        self.problems.append(
            Problem(level, kind, table, self.source(table), message, fix, column, rows, count)
        )

    def measured(self) -> list[tuple[str, pd.DataFrame]]:
        """The tables of measured values that are given and name their measures."""
        return [
            (table, frame)
            for table in _MEASURED
            if (frame := self.tables.get(table)) is not None and "measure_id" in frame.columns
        ]


# ------------------------------------------------------------------------------------ measures


def _unknown_measures(cc: _CrossCheck, table: str, frame: pd.DataFrame) -> None:
    """Events or observations of a measure that is not in the catalogue."""
    if not cc.has_catalogue:
        return
    mid = frame["measure_id"]
    unknown = (mid.notna() & ~mid.isin(list(cc.chart_of) or list(cc.period_of))).to_numpy()
    if unknown.any():
        names = ", ".join(map(repr, pd.unique(mid[unknown])[:5]))
        cc.add(
            "error",
            "unknown_measure",
            table,
            f"measure(s) {names} not in the measure catalogue ({cc.source('measures')})",
            "add them to the measures table or correct the measure_id",
            "measure_id",
            unknown,
        )


def _negative_counts(cc: _CrossCheck, table: str, frame: pd.DataFrame) -> None:
    """Negative values of a count or proportion measure (negative numerators: the schema's)."""
    if not cc.chart_of or "value" not in frame.columns:
        return
    mid = frame["measure_id"]
    v = frame["value"].to_numpy(dtype=float, na_value=np.nan)
    neg = _among(mid, cc.chart_of, COUNT_CHARTS) & (v < 0)
    if neg.any():
        cc.add(
            "error",
            "negative",
            table,
            "negative counts for a count or proportion measure "
            f"(e.g. {v[neg][0]:g} for {mid[neg].iloc[0]!r})",
            "correct the values: cases and events are counted from zero",
            "value",
            neg,
        )


def _cases_above_one(cc: _CrossCheck, table: str, frame: pd.DataFrame) -> None:
    """A measured case of a proportion measure counting more than 1."""
    if not cc.chart_of or table != "measure_events" or "value" not in frame.columns:
        return
    mid = frame["measure_id"]
    v = frame["value"].to_numpy(dtype=float, na_value=np.nan)
    over = _among(mid, cc.chart_of, PROPORTION_CHARTS) & (v > 1)
    if over.any():
        cc.add(
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


def _numerators_above_denominators(cc: _CrossCheck, table: str, frame: pd.DataFrame) -> None:
    """An observed proportion whose numerator exceeds its (non-zero) denominator."""
    if not cc.chart_of or table != "observations":
        return
    if not {"numerator", "denominator"} <= set(frame.columns):
        return
    mid = frame["measure_id"]
    num = frame["numerator"].to_numpy(dtype=float, na_value=np.nan)
    den = frame["denominator"].to_numpy(dtype=float, na_value=np.nan)
    proportion = _among(mid, cc.chart_of, PROPORTION_CHARTS)
    over = proportion & (num > den) & (den > 0)  # zero: warned by the schema
    if over.any():
        cc.add(
            "error",
            "numerator_above_denominator",
            table,
            f"numerator above denominator for a proportion (e.g. {num[over][0]:g} of "
            f"{den[over][0]:g} for {mid[over].iloc[0]!r})",
            "check both counts: the numerator counts cases among the denominator's",
            "numerator",
            over,
        )


def _pdsa_measures(cc: _CrossCheck) -> None:
    """PDSA cycles listing measures that are not in the catalogue (a warning)."""
    pdsa = cc.tables.get("pdsa")
    if not cc.has_catalogue or pdsa is None or "measure_ids" not in pdsa.columns:
        return
    listed = pdsa["measure_ids"].astype("string").str.split(";")
    known = set(cc.period_of)
    bad = listed.map(
        lambda ids: isinstance(ids, list) and any(i.strip() not in known for i in ids if i),
    ).astype(bool)
    if bad.any():
        first = [i for i in listed[bad].iloc[0] if i.strip() not in known]
        cc.add(
            "warning",
            "unknown_measure",
            "pdsa",
            f"measure_ids lists measures not in the catalogue (e.g. {first[0]!r})",
            "separate measure ids with ';' and use ids from the measures table",
            "measure_ids",
            bad,
        )


def _driver_links(cc: _CrossCheck) -> None:
    """Driver diagrams: their measures in the catalogue, their change ideas in the PDSA log."""
    drivers = cc.tables.get("drivers")
    if drivers is None:
        return
    if cc.has_catalogue:
        known = set(cc.period_of)
        cc.problems += unknown_driver_measures(
            drivers, known, cc.source("drivers"), cc.source("measures")
        )
    pdsa = cc.tables.get("pdsa")
    if pdsa is not None:
        cc.problems += unknown_change_ideas(pdsa, drivers, cc.source("pdsa"), cc.source("drivers"))


# --------------------------------------------------------------------------------------- staff


def _unknown_staff(cc: _CrossCheck) -> None:
    """Staff in the activities who are not in the roster (a warning: they get no role)."""
    activities, staff = cc.tables.get("activities"), cc.tables.get("staff")
    if activities is None or staff is None:
        return
    if "staff_id" not in activities.columns or "staff_id" not in staff.columns:
        return
    sid = activities["staff_id"]
    missing = (sid.notna() & ~sid.isin(staff["staff_id"].dropna().unique())).to_numpy()
    if missing.any():
        n_staff = pd.unique(sid[missing]).size
        cc.add(
            "warning",
            "unknown_staff",
            "activities",
            f"{n_staff} staff member(s) in the activities are not in the staff roster "
            f"({cc.source('staff')}), e.g. {sid[missing].iloc[0]!r}; they get no "
            "role",
            "add them to the staff table (with their role)",
            "staff_id",
            missing,
        )


# -------------------------------------------------------------------------------------- series


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


def _series(cc: _CrossCheck, table: str, keys: list[str], time: str, label: str) -> None:
    """Few periods or gaps in each series of a table of measured values (keys, then time)."""
    frame = cc.tables.get(table)
    if frame is None or not {*keys, time} <= set(frame.columns):
        return
    known = frame[frame["measure_id"].isin(list(cc.period_of))]
    if not len(known):
        return
    periods = np.full(len(known), -1)
    for unit in ("week", "month"):
        sel = _among(known["measure_id"], cc.period_of, {unit})
        if sel.any():
            periods[sel] = _period_index(known[time][sel], unit)
    cc.problems += _series_problems(
        table,
        cc.source(table),
        known[keys].reset_index(drop=True),
        periods,
        cc.period_of,
        label,
    )


def _event_series(cc: _CrossCheck) -> None:
    if cc.has_catalogue:
        _series(cc, "measure_events", ["measure_id"], "timestamp", "measure(s)")


def _observation_series(cc: _CrossCheck) -> None:
    if cc.has_catalogue:
        keys = ["microsystem_id", "measure_id"]
        _series(cc, "observations", keys, "period", "microsystem / measure series")


#: Rules for each table of measured values, then rules across the whole set, in report order.
_MEASURED_RULES: tuple[Callable[[_CrossCheck, str, pd.DataFrame], None], ...] = (
    _unknown_measures,
    _negative_counts,
    _cases_above_one,
    _numerators_above_denominators,
)
_RULES: tuple[Callable[[_CrossCheck], None], ...] = (
    _pdsa_measures,
    _driver_links,
    _unknown_staff,
    _event_series,
    _observation_series,
)


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
        Tables returned by :func:`qi_helpers.data.validation.inspect` (typed), by contract name.
    sources : mapping of str to str, optional
        Where each table came from, for messages.
    default_period : {"week", "month"}
        The period of measures whose catalogue entry gives none.

    Returns
    -------
    list of Problem
        Errors: ``unknown_measure`` (events or observations of a measure not in the catalogue),
        ``numerator_above_denominator`` (proportions above 1), ``negative`` (negative counts).
        With a ``drivers`` table: ``unknown_measure`` (a diagram's measure not in the
        catalogue) and ``unknown_change`` (a PDSA cycle testing a change idea that is not in
        its microsystem's or the organisation's driver diagram).
        Warnings: ``unknown_staff`` (staff in activities but not in the roster),
        ``unknown_measure`` (in ``pdsa.measure_ids``), ``few_periods``, ``period_gap``.
    """
    cc = _CrossCheck(tables, dict(sources or {}), default_period)
    for table, frame in cc.measured():
        for measured_rule in _MEASURED_RULES:
            measured_rule(cc, table, frame)
    for rule in _RULES:
        rule(cc)
    return cc.problems
