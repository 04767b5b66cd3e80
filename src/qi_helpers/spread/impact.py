"""Where each team stands now, and what a change may gain there (workbook 04).

:func:`measure_levels` gives every microsystem's current level and volume of every measure;
:func:`projection` reads what the pilots gained on a change's main measure, and
:func:`projected_impact` projects that gain onto every candidate from its own level: the share of
the gap to the target the pilots closed when the measure has a target, else their relative gain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qi_helpers.data.columns import require_columns
from qi_helpers.errors import ConfigError
from qi_helpers.measures import PROPORTION_CHARTS, RATE_CHARTS, Measure, multiply_factor
from qi_helpers.spread.ready import RERUN_ADVICE

#: The order in which the families of measures make a change's main measure, on a tie.
_FAMILY_ORDER = {"outcome": 0, "process": 1, "balancing": 2}

#: The columns :func:`projected_impact` gives, in order.
IMPACT_COLUMNS = [
    "measure_id",
    "level",
    "target",
    "projected_level",
    "projected_change",
    "weekly_volume",
    "projected_impact",
    "impact_unit",
]


@dataclass(frozen=True)
class Projection:
    """What the pilots gained on a change's main measure, to project onto other teams.

    Attributes
    ----------
    measure : Measure
        The main measure (its direction of improvement, target, ``multiply``, chart and unit).
    closes : float
        The mean share of their gap to the target the pilots closed (0-1; NaN without target).
    relative : float
        The pilots' mean gain relative to their baseline.
    levels : DataFrame or None
        Every microsystem's current level and weekly volume of the measure, by
        ``microsystem_id`` (from :func:`measure_levels`).
    """

    measure: Measure
    closes: float
    relative: float
    levels: pd.DataFrame | None


def measure_levels(
    series: pd.DataFrame, measures: pd.DataFrame, *, recent_periods: int = 26
) -> pd.DataFrame:
    """Each microsystem's current level and volume of every measure.

    Parameters
    ----------
    series : DataFrame
        From :func:`qi_helpers.changes.series.measure_series`.
    measures : DataFrame
        The measure catalogue (``measure_id``, optional ``multiply``).
    recent_periods : int
        How many of the latest periods make "now" (26 weeks: half a year, seasons averaged out).

    Returns
    -------
    DataFrame
        ``microsystem_id, measure_id, level`` (on the charted scale: the pooled ratio
        ``sum(numerator) / sum(denominator)`` times ``multiply`` for counted and case measures,
        the mean of the values for pre-aggregated points), ``weekly_volume`` (mean denominator
        per period: cases, or patient-days for rates; NaN for pre-aggregated points) and
        ``n_periods``.
    """
    require_columns(
        series, ["microsystem_id", "measure_id", "period", "value"], "series", advice=RERUN_ADVICE
    )
    if recent_periods < 1:
        raise ConfigError(f"recent_periods must be at least 1, found {recent_periods}.")
    multiply = measures.set_index("measure_id").get("multiply")
    rows = []
    for (ms, measure_id), own in series.groupby(["microsystem_id", "measure_id"], sort=True):
        last = own.sort_values("period").tail(recent_periods)
        factor = multiply_factor(multiply.get(measure_id)) if multiply is not None else 1.0
        counted = last["numerator"].notna().all() and last["denominator"].notna().all()
        if counted and last["denominator"].sum() > 0:
            level = last["numerator"].sum() / last["denominator"].sum()
            volume = float(last["denominator"].mean())
        else:
            level, volume = float(last["value"].mean()), np.nan
        rows.append((ms, measure_id, level * factor, volume, len(last)))
    return pd.DataFrame(
        rows, columns=["microsystem_id", "measure_id", "level", "weekly_volume", "n_periods"]
    )


def projection(
    results: pd.DataFrame,
    measures: pd.DataFrame | None,
    levels: pd.DataFrame | None,
    change: str,
    pilots: list[str],
    measure_list: list[str],
) -> tuple[str | None, Projection | None]:
    """The main measure of a change and what its pilots gained on it.

    The main measure is the one the change improved in most pilots (outcome before process
    before balancing measures on a tie, then by id); ``measure_list[0]`` when there is no
    catalogue or no pilot improved. The projection is None when the measure is not in the
    catalogue.
    """
    won = results[
        (results["change"] == change)
        & (results["verdict"] == "improved")
        & results["microsystem_id"].isin(pilots)
    ]
    if measures is None or won.empty:
        return (measure_list[0] if measure_list else None), None
    counts = won.groupby("measure_id").size()
    family = measures.set_index("measure_id")["family"] if "family" in measures else None
    ranked = sorted(
        counts.index,
        key=lambda m: (
            -counts[m],
            _FAMILY_ORDER.get(str(family.get(m, "")) if family is not None else "", 9),
            m,
        ),
    )
    measure_id = ranked[0]
    rows = measures[measures["measure_id"] == measure_id]
    if rows.empty:
        return measure_id, None
    measure = Measure.from_row(rows.iloc[0])
    pilot_rows = won[won["measure_id"] == measure_id]
    gain = _pilot_gain(pilot_rows, measure.up)
    base = pilot_rows["baseline_mean"].astype(float)
    gap = (measure.target - base) if measure.up else (base - measure.target)
    closes = (gain / gap.where(gap > 0)).clip(0, 1)
    return measure_id, Projection(
        measure=measure,
        closes=float(closes.mean()) if closes.notna().any() else np.nan,
        relative=float((gain / base.abs().replace(0, np.nan)).mean()),
        levels=None
        if levels is None
        else levels[levels["measure_id"] == measure_id].set_index("microsystem_id"),
    )


def projected_impact(
    ids: pd.Series, measure_id: str | None, proj: Projection | None
) -> pd.DataFrame:
    """Each candidate's level now and its projected level, change and impact a week.

    Parameters
    ----------
    ids : Series
        The candidates' ``microsystem_id``.
    measure_id : str or None
        The change's main measure.
    proj : Projection or None
        From :func:`projection`; without it (or without levels) the numbers are NaN.

    Returns
    -------
    DataFrame
        :data:`IMPACT_COLUMNS`, indexed as ``ids``. When the measure has a target, the candidate
        is projected to close the share of its own gap that the pilots closed (a team already
        at target has little to gain); otherwise the pilots' relative gain is applied to its
        level. ``projected_impact`` is the projected gain times the weekly volume.
    """
    out = pd.DataFrame(index=ids.index)
    out["measure_id"] = measure_id
    for column in IMPACT_COLUMNS[1:-1]:
        out[column] = np.nan
    out["impact_unit"] = ""
    if proj is None or proj.levels is None:
        return out
    measure = proj.measure
    out["level"] = ids.map(proj.levels["level"]).astype(float)
    out["weekly_volume"] = ids.map(proj.levels["weekly_volume"]).astype(float)
    out["target"] = measure.target
    sign = 1.0 if measure.up else -1.0
    if not math.isnan(proj.closes) and not math.isnan(measure.target):
        gap = (sign * (measure.target - out["level"])).clip(lower=0)
        gain = proj.closes * gap
    else:
        gain = (proj.relative * out["level"].abs()).clip(lower=0)
    out["projected_change"] = sign * gain
    out["projected_level"] = out["level"] + out["projected_change"]
    out["projected_impact"] = gain / measure.multiply * out["weekly_volume"]
    out["impact_unit"] = np.where(
        out["weekly_volume"].notna(), _impact_unit(measure.chart, measure.unit), ""
    )
    return out


def _pilot_gain(pilot_rows: pd.DataFrame, up: bool) -> pd.Series:
    """Each pilot's gain in the improving direction (charted scale): ``effect`` when present."""
    if "effect" in pilot_rows and pilot_rows["effect"].notna().any():
        change = pilot_rows["effect"].astype(float)
        change = change.fillna(pilot_rows["after_mean"] - pilot_rows["baseline_mean"])
    else:
        change = pilot_rows["after_mean"] - pilot_rows["baseline_mean"]
    return change if up else -change


def _impact_unit(chart: str, unit: str) -> str:
    if chart in PROPORTION_CHARTS:
        return "cases a week"
    if chart in RATE_CHARTS | {"c"}:
        return "events a week"
    if chart == "xbar":
        return f"{unit} a week" if unit else "units a week"
    return ""
