"""Summary first: one card per measure at the top of workbook 03's report.

What a team asks first, for each measure: did the change work (the verdict, as a badge), what
do the NHS *Making Data Count* icons of the latest week say (variation, then assurance), where
does the measure stand now (the latest value with its unit), and how big was the effect, in
words: "HbA1c tested rose from 66% to 79%, +13.5 points, 95% CI 9.9 to 17.0".

:func:`measure_summary` computes the cards' content as a tidy table; :func:`summary_cards`
shows it as HTML cards (the card and badge markup every summary shares,
:func:`qi_helpers.readable_tables.summary_card`, in the styles of the site's index). The icons'
badges (:data:`VARIATION_BADGES`, :data:`ASSURANCE_BADGES`) and the verdicts' badge styles
(:data:`VERDICT_BADGES`) live here; workbook 04's and the index's summaries read them.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from qi_helpers.privacy.screen import active_screen
from qi_helpers.readable_tables import icon_badge, status_badge, summary_card, summary_region
from qi_helpers.table_formats import (
    column_format,
    effect_text,
    format_number,
    format_value,
    is_missing,
)

__all__ = [
    "ASSURANCE_BADGES",
    "VARIATION_BADGES",
    "VERDICT_BADGES",
    "SummaryCards",
    "effect_sentence",
    "measure_summary",
    "summary_cards",
]

#: Making Data Count variation icons: (css class, glyph, text for screen readers).
VARIATION_BADGES: dict[str, tuple[str, str, str]] = {
    "common_cause": ("mdc-common", "~", "Common cause variation: no significant change"),
    "improvement_high": ("mdc-improve", "H", "Special cause variation: improvement (higher)"),
    "improvement_low": ("mdc-improve", "L", "Special cause variation: improvement (lower)"),
    "concern_high": ("mdc-concern", "H", "Special cause variation: concern (higher)"),
    "concern_low": ("mdc-concern", "L", "Special cause variation: concern (lower)"),
    "neutral_high": ("mdc-neutral", "H", "Special cause variation: neither better nor worse "
                     "(higher)"),
    "neutral_low": ("mdc-neutral", "L", "Special cause variation: neither better nor worse "
                    "(lower)"),
}  # fmt: skip

#: Making Data Count assurance icons.
ASSURANCE_BADGES: dict[str, tuple[str, str, str]] = {
    "consistent_pass": ("mdc-pass", "P", "Assurance: the target will consistently be met"),
    "consistent_fail": ("mdc-fail", "F", "Assurance: the target will consistently be missed"),
    "inconsistent": ("mdc-hit-miss", "?", "Assurance: the target may or may not be met"),
}

#: How a date reads ("22 Dec 2025").
_DATE = column_format("start")

#: A verdict's badge: the status styles of the site's index (``qi-status-*``).
VERDICT_BADGES: dict[str, str] = {
    "improved": "qi-status-ok",
    "worsened": "qi-status-failed",
    "no signal yet": "qi-status-stale",
    "too little data": "qi-status-stale",
    "no change": "qi-status-none",
    "baseline only": "qi-status-none",
}


def _unit(row: Mapping[str, object], units: Mapping[str, str]) -> str:
    """A measure's unit: the catalogue's, else ``%`` for a proportion."""
    unit = units.get(str(row.get("measure_id", "")), "")
    if unit and not is_missing(unit):
        return str(unit)
    return "%" if str(row.get("effect_kind", "")) == "difference in proportions" else ""


def _level(value: float, unit: str) -> str:
    """A mean in a sentence: a percentage to the whole number, else three significant digits."""
    return f"{format_number(value, 0)}%" if unit == "%" else format_number(value)


def effect_sentence(row: Mapping[str, object], unit: str = "") -> str:
    """The effect of a change in words, from one row of workbook 03's verdicts.

    Parameters
    ----------
    row : mapping
        ``name``, ``change``, ``baseline_mean``, ``after_mean``, ``effect``, ``effect_low``,
        ``effect_high`` and ``effect_kind`` (:data:`~qi_helpers.changes.verdicts.RESULT_COLUMNS`).
    unit : str
        The measure's unit (the catalogue's ``unit``); ``%`` for percentages.

    Returns
    -------
    str
        E.g. "HbA1c tested rose from 66% to 79%, +13.5 points, 95% CI 10.2 to 16.8." or, with
        no effect to tell, what there is: "no change tested yet; the baseline mean is 10.8 days".
    """
    name = str(row.get("name") or row.get("measure_id") or "The measure")
    before, after, effect = row.get("baseline_mean"), row.get("after_mean"), row.get("effect")
    suffix = "" if unit in ("", "%") else f" {unit}"
    if is_missing(after) or is_missing(effect) or is_missing(before):
        if is_missing(row.get("change")):
            what = "no change tested yet"
        else:
            what = f"too little data after {row.get('change')} to tell its effect yet"
        base = "" if is_missing(before) else f"; the baseline mean is {_level(before, unit)}"
        return f"{name}: {what}{base}{suffix if base else ''}."
    b, a = float(before), float(after)
    verb = "rose" if a > b else "fell" if a < b else "stayed"
    levels = f"from {_level(b, unit)} to {_level(a, unit)}{suffix}"
    kind = str(row.get("effect_kind", "") or "")
    size = effect_text(float(effect), unit, kind)
    size = f"rate ratio {size}" if kind == "rate ratio" else size
    text = f"{name} {verb} {levels}, {size}"
    low, high = row.get("effect_low"), row.get("effect_high")
    if not is_missing(low) and not is_missing(high):
        bounds = [effect_text(float(v), unit, kind).split(" ")[0].lstrip("+") for v in (low, high)]
        text += f", 95% CI {bounds[0]} to {bounds[1]}"
    return text + "."


def measure_summary(verdicts: pd.DataFrame, measures: pd.DataFrame) -> pd.DataFrame:
    """One row per measure: what its summary card shows.

    Parameters
    ----------
    verdicts : pandas.DataFrame
        Workbook 03's verdicts (:data:`~qi_helpers.changes.verdicts.RESULT_COLUMNS`), one row
        per measure and change, in order.
    measures : pandas.DataFrame
        The measure catalogue (``measure_id``, ``unit``).

    Returns
    -------
    pandas.DataFrame
        ``measure_id``, ``name``, ``verdict`` (of the measure's latest change),
        ``variation_icon``, ``assurance_icon``, ``latest`` (the latest value with its unit),
        ``last_period`` (as "22 Dec 2025") and ``sentences`` (the effect of each change, in
        words, joined by a space).
    """
    units: dict[str, str] = {}
    if {"measure_id", "unit"} <= set(measures.columns):
        units = {
            str(m): ("" if is_missing(u) else str(u))
            for m, u in zip(measures["measure_id"], measures["unit"], strict=True)
        }
    rows = []
    for measure_id, group in verdicts.groupby("measure_id", sort=False):
        records = group.to_dict("records")
        last = records[-1]
        unit = _unit(last, units)
        value = last.get("last_value")
        latest = "" if is_missing(value) else _level_with_unit(float(value), unit)
        rows.append(
            {
                "measure_id": str(measure_id),
                "name": str(last.get("name") or measure_id),
                "verdict": str(last.get("verdict") or ""),
                "variation_icon": "" if is_missing(v := last.get("variation_icon")) else str(v),
                "assurance_icon": "" if is_missing(v := last.get("assurance_icon")) else str(v),
                "latest": latest,
                "last_period": format_value(last.get("last_period"), _DATE),
                "sentences": " ".join(effect_sentence(r, _unit(r, units)) for r in records),
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


#: The columns of :func:`measure_summary`.
SUMMARY_COLUMNS = [
    "measure_id",
    "name",
    "verdict",
    "variation_icon",
    "assurance_icon",
    "latest",
    "last_period",
    "sentences",
]


def _level_with_unit(value: float, unit: str) -> str:
    """The latest value: a percentage with one decimal, else three significant digits."""
    if unit == "%":
        return f"{format_number(value, 1)}%"
    return f"{format_number(value)} {unit}".strip()


def _badge(table: dict[str, tuple[str, str, str]], key: str, empty: str) -> str:
    """A Making Data Count icon as the index draws it."""
    return icon_badge(*table.get(key, ("mdc-none", "", empty)))


def _card(row: Mapping[str, str]) -> str:
    e = html.escape
    verdict = row["verdict"]
    latest = []
    if row["latest"]:
        when = f" ({e(row['last_period'])})" if row["last_period"] else ""
        latest = [
            f'<p class="qi-summary-latest">Latest: <strong>{e(row["latest"])}</strong>{when}</p>'
        ]
    badges = (
        status_badge(verdict, VERDICT_BADGES.get(verdict, "qi-status-none"))
        + " "
        + _badge(VARIATION_BADGES, row["variation_icon"], "No variation icon")
        + _badge(ASSURANCE_BADGES, row["assurance_icon"], "No assurance icon (no target)")
    )
    return summary_card(
        row["name"], badges, [*latest, f'<p class="qi-summary-effect">{e(row["sentences"])}</p>']
    )


@dataclass
class SummaryCards:
    """The summary cards of a microsystem: HTML in a notebook and on its report page.

    Attributes
    ----------
    table : pandas.DataFrame
        :func:`measure_summary`'s table.
    """

    table: pd.DataFrame

    def _repr_html_(self) -> str:
        return summary_region(
            [_card(r) for r in self.table.to_dict("records")],
            "Summary: one card per measure",
            "No measure to summarise yet.",
        )


def summary_cards(verdicts: pd.DataFrame, measures: pd.DataFrame) -> SummaryCards:
    """One card per measure: verdict badge, Making Data Count icons, latest value, effect.

    The verdicts are screened for identifiers first (the active screen, as every displayed
    table is), so the cards show no identifier in JupyterLab either.

    Parameters
    ----------
    verdicts : pandas.DataFrame
        ``MicrosystemAnalysis.verdicts``.
    measures : pandas.DataFrame
        ``MicrosystemAnalysis.measures`` (the catalogue rows, with ``unit``).

    Returns
    -------
    SummaryCards
        Shown as HTML cards when it is a cell's value; ``.table`` holds
        :func:`measure_summary`.
    """
    screen = active_screen()
    if screen is not None:
        verdicts, _ = screen.redact_frame(verdicts)
    return SummaryCards(measure_summary(verdicts, measures))
