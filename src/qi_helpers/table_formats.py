"""How a value of a published table reads: a column's header, its kind, and its cells as text.

Tables for people (issue 20): a known column of the workbooks' tables has a readable header
with its unit, a kind (``count``, ``number``, ``share``, ``percent``, ``measure``, ``effect``,
``date``, ``label``, ``text``, ``bool``) and, where it matters, a number of decimals
(:data:`KNOWN_COLUMNS`); any other column gets a humanised header and is read by the type of
its values. Missing values (``None``, ``NaN``, ``NaT``, ``<NA>``) are empty cells, booleans
are Yes / No, dates read "12 Aug 2024", counts are whole numbers with thousands separators,
other numbers keep three significant digits, shares (0 to 1) are percentages.

:mod:`qi_helpers.readable_tables` lays the cells out as HTML; this module only turns values
into text (no markup, no escaping).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "KNOWN_COLUMNS",
    "ColumnFormat",
    "column_format",
    "effect_text",
    "format_number",
    "format_value",
    "humanise",
    "is_missing",
    "row_unit",
]

#: Kinds of column whose cells are numbers (right-aligned in a table).
NUMERIC_KINDS = frozenset({"count", "number", "share", "percent", "measure", "effect"})

#: Text that stands for a missing value once a value went through ``str()`` upstream.
MISSING_TEXT = frozenset({"nan", "NaN", "None", "<NA>", "NaT", "NA"})

#: The longest text a cell shows (longer text ends with an ellipsis; the screen ran before).
MAX_TEXT = 400

#: What an effect is, by ``effect_kind``: the unit of its value (``points`` of a percentage).
_EFFECT_UNITS = {"difference in proportions": "points", "rate ratio": ""}


@dataclass(frozen=True)
class ColumnFormat:
    """How one column of a table reads.

    Attributes
    ----------
    header : str
        The column's header, with its unit where the column has one.
    kind : str
        ``count``, ``number``, ``share`` (0 to 1, shown as a percentage), ``percent`` (0 to
        100), ``measure`` (a value in the row's measure unit), ``effect`` (a signed change in
        that unit), ``date``, ``label`` (a code word: underscores read as spaces), ``text``,
        ``bool`` or ``auto`` (read by the type of each value).
    decimals : int or None
        Decimals of a number; None: whole numbers for counts, three significant digits else.
    detail : bool
        A column for the curious (an identifier, a kind of effect): shown after the others,
        behind the "More columns" disclosure when a table is wide.
    """

    header: str
    kind: str = "auto"
    decimals: int | None = None
    detail: bool = False

    @property
    def numeric(self) -> bool:
        """Whether the cells are numbers (right-aligned)."""
        return self.kind in NUMERIC_KINDS


def _f(header: str, kind: str = "auto", decimals: int | None = None, detail: bool = False):
    return ColumnFormat(header, kind, decimals, detail)


#: The columns of the workbooks' tables, by name (registry, profiles, pilots, verdicts,
#: subgroups, PDSA log, spread plan, sustain tracking).
KNOWN_COLUMNS: dict[str, ColumnFormat] = {
    # who
    "microsystem_id": _f("Microsystem", "text"),
    "measure_id": _f("Measure id", "text", detail=True),
    "measure_ids": _f("Measures", "text", detail=True),
    "name": _f("Name", "text"),
    "kind": _f("Kind", "label"),
    "site": _f("Site", "text"),
    "locations": _f("Locations", "text"),
    "linked_microsystems": _f("Linked microsystems (shared patients)", "text"),
    "declared_unit": _f("Declared unit", "text"),
    "roles": _f("Roles", "text"),
    "n_staff": _f("Staff", "count"),
    "n_patients": _f("Patients", "count"),
    "n_declared": _f("Staff declared", "count"),
    "n_differ": _f("Staff placed differently", "count"),
    "n_core_staff": _f("Core staff", "count"),
    "n_floating_staff": _f("Floating staff", "count"),
    "panel_size": _f("Panel size (patients)", "count"),
    "patients_seen": _f("Patients seen", "count"),
    "weekly_volume": _f("Activities a week", "number", 0),
    "weekly_median": _f("Activities a week (median)", "number", 0),
    "weekly_min": _f("Activities a week (fewest)", "number", 0),
    "weekly_max": _f("Activities a week (most)", "number", 0),
    "median_minutes": _f("Median duration (minutes)", "number", 0),
    "fte": _f("Staff (full-time equivalents)", "number", 1),
    "share_female": _f("Female", "share"),
    "share_65_plus": _f("Aged 65 or over", "share"),
    "weekend_share": _f("At weekends", "share"),
    "measurable": _f("Measurable", "bool"),
    "runs_signal": _f("Non-random pattern", "bool"),
    "adjusted_rand_index": _f("Adjusted Rand index", "number", 2),
    "normalised_mutual_information": _f("Normalised mutual information", "number", 2),
    "purity": _f("Purity", "number", 2),
    "agreement": _f("Agreement", "label"),
    # pilots
    "n_periods": _f("Periods", "count"),
    "cases_per_period": _f("Cases a period", "number"),
    "baseline": _f("Baseline", "measure"),
    "target": _f("Target", "measure"),
    "target_source": _f("Target from", "label"),
    "room_to_improve": _f("Room to improve (0-1)", "number", 2),
    "stable_baseline": _f("Stable baseline (0-1)", "number", 2),
    "time_to_detect": _f("Time to detect (0-1)", "number", 2),
    "representativeness": _f("Representativeness (0-1)", "number", 2),
    "readiness": _f("Readiness", "number", 2),
    "team_score": _f("Team (1-3)", "number", 1),
    "progress_score": _f("Score (1-5)", "number", 1),
    "respondents": _f("Respondents", "count"),
    "too_few_respondents": _f("Too few respondents", "bool"),
    "score": _f("Score", "number", 2),
    "rank": _f("Rank", "count"),
    "pick": _f("Pick", "count"),
    "selected": _f("Selected", "bool"),
    "share_selected": _f("Selected in (share of draws)", "share"),
    "rank_best": _f("Best rank", "count"),
    "rank_median": _f("Median rank", "count"),
    "rank_worst": _f("Worst rank", "count"),
    # tests of change
    "family": _f("Family", "label"),
    "aim": _f("Aim", "label"),
    "balances": _f("Balances", "text"),
    "chart": _f("Chart", "text"),
    "improvement": _f("Better when", "label"),
    "unit": _f("Unit", "text"),
    "change": _f("Change", "text"),
    "cycle_id": _f("Cycle", "text"),
    "start": _f("Started", "date"),
    "end": _f("Ended", "date"),
    "prediction": _f("Prediction", "text"),
    "result": _f("Result", "text"),
    "decision": _f("Decision", "label"),
    "verdict": _f("Verdict", "text"),
    "whole_verdict": _f("Verdict for all patients", "text"),
    "baseline_mean": _f("Baseline mean", "measure"),
    "after_mean": _f("Mean after the change", "measure"),
    "recent_mean": _f("Recent mean", "measure"),
    "n_baseline": _f("Baseline (n)", "count"),
    "n_after": _f("After (n)", "count"),
    "last_period": _f("Latest period", "date"),
    "last_value": _f("Latest value", "measure"),
    "effect": _f("Effect", "effect"),
    "effect_ci": _f("Effect (95% CI)", "text"),
    "effect_low": _f("Effect, 95% CI from", "effect", detail=True),
    "effect_high": _f("Effect, 95% CI to", "effect", detail=True),
    "effect_kind": _f("Effect measured as", "text", detail=True),
    "periods_needed": _f("Periods still needed", "count"),
    "balancing_flag": _f("Balancing measure worsened", "bool"),
    "baseline_stable": _f("Stable baseline", "bool"),
    "variation_icon": _f("Variation (Making Data Count)", "label"),
    "assurance_icon": _f("Assurance (Making Data Count)", "label"),
    "subgroups_flagged": _f("Groups flagged", "text"),
    "dimension": _f("Patients by", "label"),
    "subgroup": _f("Group", "text"),
    "flag": _f("Flagged", "bool"),
    "reason": _f("Why", "text"),
    "why": _f("Why", "text"),
    "rationale": _f("Why", "text"),
    # spread
    "similarity": _f("Similarity", "share"),
    "similarity_role": _f("Similarity of roles", "share", detail=True),
    "similarity_activity": _f("Similarity of activities", "share", detail=True),
    "similarity_patient": _f("Similarity of patients", "share", detail=True),
    "level": _f("Current level", "measure"),
    "projected_level": _f("Projected level", "measure"),
    "projected_change": _f("Projected change", "effect"),
    "projected_impact": _f("Projected impact", "number"),
    "impact_unit": _f("Impact unit", "text", detail=True),
    "wave": _f("Wave", "count"),
    "adopter_category": _f("Adopter category", "text"),
    "support": _f("Support before the wave", "text"),
    "wave_start": _f("Wave starts", "date"),
    "wave_end": _f("Wave ends", "date"),
    "adopted": _f("Adopted", "date"),
    "pilots": _f("Pilots", "text"),
    "measures": _f("Measures", "text"),
}


def humanise(name: object) -> str:
    """A readable header from a column name: ``n_after`` -> ``N after``, ``weekly_max`` ->
    ``Weekly max``; a name that is not a code word (``NOR-PC1``, ``% of activities``) as it is.
    """
    text = " ".join(str(part) for part in name) if isinstance(name, tuple) else str(name)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", text) or "_" not in text:
        return text[:1].upper() + text[1:] if text.islower() else text
    words = text.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def column_format(name: object) -> ColumnFormat:
    """The format of a column: its entry in :data:`KNOWN_COLUMNS`, or a humanised header."""
    if isinstance(name, str) and name in KNOWN_COLUMNS:
        return KNOWN_COLUMNS[name]
    if isinstance(name, str) and name.endswith("_why"):
        return ColumnFormat(humanise(name[: -len("_why")]) + ": why", "text", detail=True)
    if isinstance(name, str) and name.endswith("_value") and name[: -len("_value")]:
        return ColumnFormat(humanise(name[: -len("_value")]) + ": value", "auto", detail=True)
    return ColumnFormat(humanise(name))


def is_missing(value: object) -> bool:
    """Whether a cell is empty: None, NaN, NaT, ``pd.NA``, or text that stands for them."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, str):
        return value.strip() in MISSING_TEXT or not value.strip()
    if not pd.api.types.is_scalar(value):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def format_number(value: float, decimals: int | None = None) -> str:
    """A number with ``decimals`` decimals, or to three significant digits (whole numbers
    from 100 on), with thousands separators: ``65.7``, ``9.94``, ``133``, ``2,766``."""
    if decimals is None:
        if value == 0 or abs(value) >= 100 or float(value).is_integer():
            decimals = 0
        else:
            decimals = max(0, 2 - math.floor(math.log10(abs(value))))
    text = f"{value:,.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text


def _date(value: pd.Timestamp | dt.date) -> str:
    """``12 Aug 2024``; with the time of day when it is not midnight."""
    stamp = pd.Timestamp(value)
    day = f"{stamp.day} {stamp:%b %Y}"
    return day if stamp == stamp.normalize() else f"{day} {stamp:%H:%M}"


def _with_unit(text: str, unit: str) -> str:
    if not unit:
        return text
    return f"{text}%" if unit == "%" else f"{text} {unit}"


def _measure(value: float, fmt: ColumnFormat, unit: str) -> str:
    """A measure's value in its unit (percentages with one decimal)."""
    decimals = fmt.decimals if fmt.decimals is not None else (1 if unit == "%" else None)
    return _with_unit(format_number(value, decimals), unit)


def effect_text(value: float, unit: str, effect_kind: str = "", decimals: int | None = None) -> str:
    """A change in a measure's unit: ``+13.5 points``, ``-2.1 days``; a rate ratio as ``0.82``."""
    kind = str(effect_kind or "")
    if kind == "rate ratio":
        return format_number(value, decimals if decimals is not None else 2)
    unit = _EFFECT_UNITS.get(kind, "points" if unit == "%" else unit)
    if decimals is None and unit == "points":
        decimals = 1
    text = format_number(value, decimals)
    sign = "+" if value > 0 and text.strip("0.,") else ""
    return _with_unit(sign + text, unit)


def row_unit(row: dict[str, object]) -> str:
    """The unit of a row's measure values: its ``unit`` cell, else ``%`` for proportions."""
    unit = row.get("unit")
    if not is_missing(unit):
        return str(unit)
    if str(row.get("effect_kind", "")) == "difference in proportions":
        return "%"
    return ""


def _number(value: float, fmt: ColumnFormat, row: dict[str, object]) -> str:
    """A number by its column's kind."""
    kind = fmt.kind
    whole = float(value).is_integer()
    if (kind == "count" and whole) or (kind == "auto" and whole and abs(value) < 1e15):
        return format_number(value, 0)
    if kind == "share":
        pct = value * 100
        decimals = fmt.decimals if fmt.decimals is not None else (1 if 0 < abs(pct) < 1 else 0)
        return f"{format_number(pct, decimals)}%"
    if kind == "percent":
        return f"{format_number(value, fmt.decimals if fmt.decimals is not None else 1)}%"
    if kind == "measure":
        return _measure(value, fmt, row_unit(row))
    if kind == "effect":
        return effect_text(value, row_unit(row), str(row.get("effect_kind", "")), fmt.decimals)
    return format_number(value, fmt.decimals)


def format_value(value: object, fmt: ColumnFormat, row: dict[str, object] | None = None) -> str:
    """One cell as text, by its column's format (and its row's unit for measure values).

    Parameters
    ----------
    value : object
        The cell.
    fmt : ColumnFormat
        Its column's format (:func:`column_format`).
    row : dict, optional
        The row's cells by column name: ``unit`` and ``effect_kind`` give measure values
        their unit.

    Returns
    -------
    str
        Plain text (not escaped): empty for a missing value.
    """
    row = row or {}
    if is_missing(value):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "Yes" if value else "No"
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date, np.datetime64)):
        return _date(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        if isinstance(value, (float, np.floating)) and math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return _number(float(value), fmt, row)
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray, pd.Series)):
        items = [format_value(v, ColumnFormat(""), row) for v in list(value)]
        return ", ".join(item for item in items if item)
    text = " ".join(str(value).split())
    if fmt.numeric and re.fullmatch(r"-?\d+(\.\d+)?", text):  # a number kept as text
        return _number(float(text), fmt, row)
    if fmt.kind == "label" and re.fullmatch(r"[a-z0-9_]+", text):
        text = text.replace("_", " ")
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1].rstrip() + "…"
