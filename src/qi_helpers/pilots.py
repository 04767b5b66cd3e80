"""Select pilot microsystems in which to test a change (workbook 02).

A good pilot has room to improve, a stable baseline (so that a change can be seen against common
cause variation), enough volume to detect a change soon, and a team ready to test ideas (IHI,
"Selecting pilot sites"; AHRQ, "Practice facilitation handbook", module on choosing pilots). Each
criterion gets a score from 0 (worst) to 1 (best); the total is their weighted mean.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qi_helpers.errors import ConfigError

CRITERIA = ("room_to_improve", "stable_baseline", "volume", "readiness")


def catalogue_row(measures: pd.DataFrame, measure_id: str) -> pd.Series:
    """The catalogue row of one measure.

    Raises
    ------
    ConfigError
        When the measure is not in the catalogue, listing the ones that are.
    """
    found = measures[measures["measure_id"] == measure_id]
    if found.empty:
        known = ", ".join(sorted(measures["measure_id"].astype(str)))
        raise ConfigError(
            f"measure {measure_id!r} is not in the measure catalogue; known: {known}."
        )
    return found.iloc[0]


def criteria(
    registry: pd.DataFrame,
    series: pd.DataFrame,
    readiness: pd.DataFrame,
    measure: pd.Series,
    *,
    baseline_periods: int = 26,
) -> pd.DataFrame:
    """Score every microsystem with data on ``measure`` against the pilot criteria.

    Parameters
    ----------
    registry : DataFrame
        From workbook 01.
    series : DataFrame
        ``microsystem_id, measure_id, period, numerator, denominator, value, n_cases`` for all
        microsystems (see :func:`qi_helpers.changes.measure_series`).
    readiness : DataFrame
        From :func:`qi_helpers.readiness.readiness_by_microsystem`.
    measure : Series
        The catalogue row of the measure to improve.
    baseline_periods : int
        The first this many periods form the baseline.

    Returns
    -------
    DataFrame
        One row per candidate: ``microsystem_id, name, kind, site, baseline, target_or_best,
        room_to_improve, stable_baseline, volume_per_period, volume, readiness, respondents,
        explanation``; the four criteria columns are scores in [0, 1].
    """
    from qi_helpers.spc import qic

    measure_id = measure["measure_id"]
    own = series[series["measure_id"] == measure_id]
    if own.empty:
        raise ConfigError(
            f"pilots.measure_id: no data for measure {measure_id!r} in any microsystem."
        )
    up = str(measure["improvement"]).lower() == "up"
    rows = []
    for ms, group in own.groupby("microsystem_id", sort=True):
        base = group.sort_values("period").head(baseline_periods)
        chart_type = (
            "p"
            if measure["chart"] in ("p", "pp")
            else "u"
            if measure["chart"] in ("u", "up")
            else "i"
        )
        if chart_type == "i":
            res = qic(base, x="period", y="value", chart="i")
        else:
            res = qic(base, x="period", y="numerator", n="denominator", chart=chart_type)
        signal = bool(res["runs_signal"].any() or res["sigma_signal"].fillna(False).any())
        rows.append(
            {
                "microsystem_id": ms,
                "baseline": float(base["value"].median()),
                "stable": not signal,
                "volume_per_period": float(base["n_cases"].mean()),
                "n_periods": len(base),
            }
        )
    table = pd.DataFrame(rows)
    target = measure.get("target")
    if target is None or pd.isna(target):
        target = table["baseline"].quantile(0.9 if up else 0.1)
    else:  # the catalogue's target is on the charted scale (after `multiply`)
        target = float(target) / float(measure.get("multiply", 1) or 1)
    gap = (target - table["baseline"]) if up else (table["baseline"] - target)
    spread = float(np.nanmax(np.abs(gap))) or 1.0
    table["target_or_best"] = float(target)
    table["room_to_improve"] = (gap.clip(lower=0) / spread).round(3)
    table["stable_baseline"] = table["stable"].astype(float)
    table["volume"] = (table["volume_per_period"] / table["volume_per_period"].max()).round(3)
    table = table.merge(
        readiness[["microsystem_id", "readiness_score", "respondents"]],
        on="microsystem_id",
        how="left",
    )
    table["readiness"] = table["readiness_score"].fillna(0).round(3)
    table = registry[["microsystem_id", "name", "kind", "site"]].merge(table, on="microsystem_id")
    table["explanation"] = [
        f"baseline {r.baseline:.3g} vs {r.target_or_best:.3g}; "
        f"{'stable' if r.stable else 'special cause in baseline'}; "
        f"{r.volume_per_period:.0f} cases a period; readiness {r.readiness:.2f}"
        for r in table.itertuples()
    ]
    return table.drop(columns=["stable", "readiness_score"])


def rank(criteria_table: pd.DataFrame, weights: dict[str, float], *, k: int = 3) -> pd.DataFrame:
    """Rank candidates by the weighted mean of their criteria scores and select the top ``k``.

    Returns
    -------
    DataFrame
        The criteria table plus ``score`` (0-1), ``rank`` (1 = best) and ``selected`` (bool),
        sorted by rank. Ties are broken by microsystem id, so the ranking is deterministic.
    """
    unknown = set(weights) - set(CRITERIA)
    if unknown:
        raise ConfigError(f"pilots.weights: unknown criteria {sorted(unknown)}; use {CRITERIA}.")
    total = sum(weights.values())
    if total <= 0:
        raise ConfigError("pilots.weights: the weights must add up to more than 0.")
    table = criteria_table.copy()
    table["score"] = sum(table[c] * w for c, w in weights.items()) / total
    table = table.sort_values(["score", "microsystem_id"], ascending=[False, True])
    table["rank"] = np.arange(1, len(table) + 1)
    table["selected"] = table["rank"] <= k
    return table.reset_index(drop=True)
