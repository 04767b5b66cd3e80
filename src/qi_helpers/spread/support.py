"""What each adopter needs support with before its wave: its gaps in the assessment (workbook 04).

A team late in the plan is often late because it is less ready (Rogers' late majority). The
microsystem assessment by characteristic (:mod:`qi_helpers.pilots.assessment`) says on which of
the ten success characteristics it lags behind the organisation's other teams: its **gaps**
(bottom quarter and at least 0.3 below the median). Those are what the spread team, the
coaches and the leaders work on with the team before its wave starts, so that the change lands
on a team able to test it ("leadership 1.4 of 3: needs support before wave 2").
"""

from __future__ import annotations

import pandas as pd

from qi_helpers.data.columns import require_columns

__all__ = ["support_needed"]

#: Gaps named per adopter, worst first (the others are counted).
MOST = 3


def _gaps(assessment: pd.DataFrame) -> pd.Series:
    """Each microsystem's gaps in words, worst first: ``"leadership 1.4 of 3, ..."``."""
    gaps = assessment[assessment["standing"] == "gap"].sort_values(
        ["microsystem_id", "score"], kind="stable"
    )
    out = {}
    for ms, rows in gaps.groupby("microsystem_id", sort=False):
        named = [f"{r.label} {r.score:.1f} of 3" for r in rows.itertuples()]
        more = f" and {len(named) - MOST} more" if len(named) > MOST else ""
        out[ms] = ", ".join(named[:MOST]) + more
    return pd.Series(out, dtype=object)


def support_needed(spread_plan: pd.DataFrame, assessment: pd.DataFrame | None) -> pd.DataFrame:
    """The plan with a ``support`` column: the adopter's gaps to work on before its wave.

    Parameters
    ----------
    spread_plan : DataFrame
        :func:`qi_helpers.spread.waves.plan`'s table (``microsystem_id``, ``wave``).
    assessment : DataFrame or None
        :func:`qi_helpers.pilots.assessment.assess_characteristics`'s table (``None``: no
        survey, every ``support`` empty).

    Returns
    -------
    DataFrame
        A copy of the plan plus ``support``: e.g. ``"leadership 1.4 of 3, organisational
        support 1.5 of 3: needs support before wave 2"`` (at most three gaps named, worst
        first, then "and 2 more"); ``""`` for an adopter without gaps (or with too few answers
        to tell).
    """
    out = spread_plan.copy()
    if out.empty or assessment is None or assessment.empty:
        out["support"] = ""
        return out
    require_columns(out, ["microsystem_id", "wave"], "spread plan")
    gaps = out["microsystem_id"].astype(str).map(_gaps(assessment)).fillna("")
    waves = out["wave"].astype(int).astype(str)
    out["support"] = [
        f"{g}: needs support before wave {w}" if g else "" for g, w in zip(gaps, waves, strict=True)
    ]
    return out
