"""Readiness of a microsystem's team, from the survey of the ten success characteristics.

The ten characteristics of high-performing clinical microsystems (Nelson et al. 2002, Jt Comm J
Qual Improv 28(9):472-493) are scored 1 (poor), 2 (mixed) or 3 (ideal); an empty score means the
respondent could not rate it.
"""

from __future__ import annotations

import pandas as pd

#: Fewer respondents than this make a microsystem's mean readiness fragile.
MIN_RESPONDENTS = 3


def readiness_by_microsystem(
    readiness: pd.DataFrame,
    membership_staff: pd.DataFrame | None = None,
    *,
    min_respondents: int = MIN_RESPONDENTS,
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
        One row per microsystem with answers:

        - ``microsystem_id``;
        - ``readiness``: the mean of the characteristics' mean scores (1 poor .. 3 ideal), so
          that every characteristic rated counts once, however many people rated it;
        - ``readiness_score``: the same on a 0-1 scale, ``(readiness - 1) / 2``;
        - ``respondents``: people (or microsystem-level answers) who rated at least one
          characteristic;
        - ``characteristics``: how many of the ten characteristics were rated;
        - ``too_few``: fewer than ``min_respondents`` respondents (the mean is fragile).

    Notes
    -----
    The ten characteristics and the 1-3 scale are those of the microsystem assessment tool
    (Nelson et al. 2002; Godfrey, Nelson & Batalden, *Clinical Microsystem Action Guide*, 2004).
    Answers of "can't rate" (empty score) are left out.
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
    if "staff_id" in answers.columns:  # a microsystem-level answer counts as one respondent
        who = answers["staff_id"].astype("string").fillna("ms:" + answers["microsystem_id"])
    else:
        who = "ms:" + answers["microsystem_id"].astype("string")
    answers = answers.assign(respondent=who)
    by_char = answers.groupby(["microsystem_id", "characteristic"])["score"].mean()
    out = (
        by_char.groupby(level="microsystem_id")
        .agg(["mean", "size"])
        .rename(columns={"mean": "readiness", "size": "characteristics"})
    )
    out["respondents"] = answers.groupby("microsystem_id")["respondent"].nunique()
    out = out.reset_index()
    out["readiness_score"] = (out["readiness"] - 1) / 2
    out["too_few"] = out["respondents"] < min_respondents
    cols = ["microsystem_id", "readiness", "readiness_score", "respondents", "characteristics"]
    return out[[*cols, "too_few"]]
