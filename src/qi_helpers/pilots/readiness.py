"""Readiness of a microsystem's team, from the survey of the ten success characteristics.

The ten characteristics of high-performing clinical microsystems (Nelson et al. 2002, Jt Comm J
Qual Improv 28(9):472-493) are scored 1 (poor), 2 (mixed) or 3 (ideal); an empty score means the
respondent could not rate it.

When the survey is repeated, each answer names its **round** (the optional ``round`` column:
a whole number or an ISO date, :mod:`qi_helpers.data.rounds`). Old and new answers are never
averaged together: each microsystem counts the answers of its **latest round** (up to a round
or a date, when given), so a team surveyed again after its tests is judged on its new answers
and a team surveyed once keeps its only answers.
"""

from __future__ import annotations

import pandas as pd

from qi_helpers.data.rounds import survey_rounds
from qi_helpers.errors import ConfigError

#: Fewer respondents than this make a microsystem's mean readiness fragile.
MIN_RESPONDENTS = 3


def answers_by_microsystem(
    readiness: pd.DataFrame,
    membership_staff: pd.DataFrame | None = None,
    *,
    round: object = None,  # noqa: A002 - the column's name
    as_of: object = None,
) -> pd.DataFrame:
    """Every rated answer with the microsystem it counts for, its respondent and its round.

    Parameters
    ----------
    readiness : DataFrame
        ``staff_id`` or ``microsystem_id``, ``characteristic``, ``score``, optional ``round``.
    membership_staff : DataFrame, optional
        ``staff_id, microsystem_id, share``: a person's answers count for the microsystem they
        mainly work in.
    round : int or date, optional
        Leave out the rounds after this one.
    as_of : date, optional
        With dated rounds, leave out the rounds after this date (numbered rounds carry no date:
        ``as_of`` does not cut them).

    Returns
    -------
    DataFrame
        The rated answers (``score`` not empty) with a ``microsystem_id``, plus ``respondent``
        (the person, or ``ms:<id>`` for a microsystem-level answer) and ``round`` (missing when
        the table has no rounds).

    Raises
    ------
    qi_helpers.errors.DataError
        When a round is bad, empty or mixes numbers and dates.
    """
    rounds = survey_rounds(readiness)
    answers = readiness.assign(round=rounds if rounds is not None else pd.NA)
    answers = answers.dropna(subset=["score"]).copy()
    if rounds is not None:
        answers = answers[_kept_rounds(answers["round"], round, as_of)]
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
    return answers.assign(respondent=who)


def _kept_rounds(rounds: pd.Series, last: object, as_of: object) -> pd.Series:
    """Which answers' rounds are at or before ``last`` (and, for dates, ``as_of``)."""
    keep = pd.Series(True, index=rounds.index)
    dated = pd.api.types.is_datetime64_any_dtype(rounds)
    if last is not None and str(last).strip() != "":
        try:
            limit = pd.Timestamp(str(last)) if dated else int(str(last))
        except ValueError as err:
            kind = "an ISO date" if dated else "a whole number"
            raise ConfigError(
                f"readiness round {last!r}: the survey's rounds are {kind}s; give one of them."
            ) from err
        keep &= rounds <= limit
    if dated and as_of is not None and str(as_of).strip() != "":
        keep &= rounds <= pd.Timestamp(str(as_of))
    return keep.fillna(False).astype(bool)


def latest_round(answers: pd.DataFrame, *, before: bool = False) -> pd.DataFrame:
    """Each microsystem's answers of its latest round (or of the round before it).

    Parameters
    ----------
    answers : DataFrame
        :func:`answers_by_microsystem`'s table.
    before : bool
        Take each microsystem's round before its latest one instead (none: no rows).

    Returns
    -------
    DataFrame
        The rows of ``answers`` kept. Without rounds, every answer is the latest round and none
        is before it.
    """
    if answers["round"].isna().all():
        return answers.iloc[:0] if before else answers
    ranks = answers.groupby("microsystem_id")["round"].rank(method="dense", ascending=False)
    return answers[ranks == (2 if before else 1)]


def readiness_by_microsystem(
    readiness: pd.DataFrame,
    membership_staff: pd.DataFrame | None = None,
    *,
    min_respondents: int = MIN_RESPONDENTS,
    round: object = None,  # noqa: A002 - the column's name
    as_of: object = None,
) -> pd.DataFrame:
    """Mean readiness score of each microsystem.

    Answers given by staff count for the microsystem the person mainly works in (from workbook
    01's membership); answers given for a ``microsystem_id`` count as they are. With several
    survey rounds, each microsystem counts only its latest round (up to ``round`` and
    ``as_of``).

    Parameters
    ----------
    readiness : DataFrame
        ``staff_id`` or ``microsystem_id``, ``characteristic``, ``score``, optional ``round``.
    membership_staff : DataFrame, optional
        ``staff_id, microsystem_id, share``.
    min_respondents : int
        Fewer respondents than this sets ``too_few``.
    round : int or date, optional
        The last round to use (later rounds are left out); no effect when the survey has no
        rounds.
    as_of : date, optional
        With dated rounds, the rounds after this date are left out (workbook 02 passes the
        selection's date, so that pilots are chosen on what was known then).

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

    Raises
    ------
    qi_helpers.errors.DataError
        When a survey round is bad, empty or mixes numbers and dates.

    Notes
    -----
    The ten characteristics and the 1-3 scale are those of the microsystem assessment tool
    (Nelson et al. 2002; Godfrey, Nelson & Batalden, *Clinical Microsystem Action Guide*, 2004).
    Answers of "can't rate" (empty score) are left out.
    """
    answers = latest_round(
        answers_by_microsystem(readiness, membership_staff, round=round, as_of=as_of)
    )
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
