"""Readiness of a microsystem's team, from the survey of the ten success characteristics.

The ten characteristics of high-performing clinical microsystems (Nelson et al. 2002, Jt Comm J
Qual Improv 28(9):472-493) are scored 1 (poor), 2 (mixed) or 3 (ideal); an empty score means the
respondent could not rate it.
"""

from __future__ import annotations

import pandas as pd


def readiness_by_microsystem(
    readiness: pd.DataFrame,
    membership_staff: pd.DataFrame | None = None,
    *,
    min_respondents: int = 3,
) -> pd.DataFrame:
    """Mean readiness score of each microsystem.

    Answers given by staff count for the microsystem the person mainly works in (from workbook
    01's membership); answers given for a ``microsystem_id`` count as they are.

    Parameters
    ----------
    readiness : DataFrame
        ``staff_id`` or ``microsystem_id``, ``characteristic``, ``score``.
    membership_staff : DataFrame, optional
        ``staff_id, microsystem_id, share``.
    min_respondents : int
        Fewer respondents than this sets ``too_few``.

    Returns
    -------
    DataFrame
        ``microsystem_id, readiness`` (mean score 1-3), ``readiness_score`` (0-1),
        ``respondents``, ``too_few``.
    """
    answers = readiness.dropna(subset=["score"]).copy()
    if "microsystem_id" not in answers.columns:
        answers["microsystem_id"] = pd.NA
    if membership_staff is not None and "staff_id" in answers.columns:
        main = (
            membership_staff.sort_values("share", ascending=False, kind="stable")
            .drop_duplicates("staff_id")
            .set_index("staff_id")["microsystem_id"]
        )
        answers["microsystem_id"] = answers["microsystem_id"].fillna(answers["staff_id"].map(main))
    answers = answers.dropna(subset=["microsystem_id"])
    who = "staff_id" if "staff_id" in answers.columns else "microsystem_id"
    out = (
        answers.groupby("microsystem_id")
        .agg(readiness=("score", "mean"), respondents=(who, "nunique"))
        .reset_index()
    )
    out["readiness_score"] = (out["readiness"] - 1) / 2
    out["too_few"] = out["respondents"] < min_respondents
    return out[["microsystem_id", "readiness", "readiness_score", "respondents", "too_few"]]
