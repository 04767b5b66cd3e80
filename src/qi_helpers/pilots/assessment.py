"""The microsystem assessment by characteristic: each team's profile against the organisation.

The readiness survey scores the ten success characteristics of a clinical microsystem (Nelson
et al. 2002) from 1 (poor) to 3 (ideal). :mod:`qi_helpers.pilots.readiness` averages them into
one readiness score; this module keeps them apart, as the *Clinical Microsystem Action Guide*'s
assessment tool does (Godfrey, Nelson & Batalden 2004), so that a coach sees **which**
characteristics a team is strong in and which it needs help with, against the other teams of
the organisation, and how each moved since the team's previous survey round.

The rules (:func:`assess_characteristics`):

- a team's **score** on a characteristic is the mean of its respondents' answers (1-3, "can't
  rate" left out), from the team's latest round; fewer than ``min_respondents`` respondents on
  that characteristic is **too few answers**: the score is shown but neither ranked nor
  compared;
- the **organisation's distribution** of a characteristic is that of the scores of the teams
  with enough answers: its lower quartile, median and upper quartile (linear interpolation, as
  :meth:`pandas.Series.quantile`), and each such team's **rank** (1 = highest, ties share the
  better rank) among them. With fewer than ``min_teams`` teams to compare, there are **too few
  teams to compare**;
- a **strength** is a score in the organisation's top quarter (at or above the upper quartile)
  **and** at least ``min_distance`` (0.3 of the 1-3 scale) above the median; a **gap** is a
  score in the bottom quarter (at or below the lower quartile) **and** at least
  ``min_distance`` below the median. The distance keeps a team out of "gaps" when every team
  scores about the same (a narrow distribution has quartiles close to its median);
- with several rounds, the **change** is the team's score in its latest round minus its score
  in the round before: "about the same" within ``min_change`` (0.2), else "up" or "down"
  ("up 0.4 (1.8 to 2.2)"); "too few answers to compare" when either round had too few
  respondents on it. Small teams move by chance: with five respondents, one person's answer
  moving one step moves the mean by 0.2.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qi_helpers.data.contracts import READINESS_CHARACTERISTICS
from qi_helpers.data.rounds import round_label
from qi_helpers.pilots.readiness import MIN_RESPONDENTS, answers_by_microsystem, latest_round

__all__ = [
    "ASSESSMENT_COLUMNS",
    "MIN_CHANGE",
    "MIN_DISTANCE",
    "MIN_TEAMS",
    "assess_characteristics",
    "characteristic_label",
    "profile_table",
    "profile_words",
    "strengths_and_gaps",
    "team_characteristics",
    "with_strengths_and_gaps",
]

#: Fewer teams with enough answers than this: no quartiles, no strengths or gaps.
MIN_TEAMS = 4
#: How far from the organisation's median (1-3 scale) a strength or a gap must be.
MIN_DISTANCE = 0.3
#: A change between two rounds smaller than this (1-3 scale) is "about the same".
MIN_CHANGE = 0.2

#: The columns of :func:`assess_characteristics`.
ASSESSMENT_COLUMNS = [
    "microsystem_id",
    "characteristic",
    "label",
    "score",
    "respondents",
    "too_few",
    "round",
    "org_q1",
    "org_median",
    "org_q3",
    "compared",
    "rank",
    "standing",
    "previous_score",
    "previous_round",
    "change",
    "change_words",
]


def characteristic_label(name: str) -> str:
    """A characteristic in words: ``"organisational support"`` for ``organisational_support``."""
    return str(name).replace("_", " ")


def _scores(answers: pd.DataFrame, min_respondents: int) -> pd.DataFrame:
    """Mean score, respondents and round per microsystem and characteristic."""
    grouped = answers.groupby(["microsystem_id", "characteristic"])
    out = grouped.agg(
        score=("score", "mean"), respondents=("respondent", "nunique"), round=("round", "max")
    ).reset_index()
    out["score"] = out["score"].astype(float)
    out["too_few"] = out["respondents"] < min_respondents
    return out


def _distribution(scores: pd.DataFrame, min_teams: int) -> pd.DataFrame:
    """Quartiles, teams compared and ranks of the teams with enough answers."""
    enough = scores[~scores["too_few"]]
    by_char = enough.groupby("characteristic")["score"]
    org = pd.DataFrame(
        {
            "org_q1": by_char.quantile(0.25),
            "org_median": by_char.median(),
            "org_q3": by_char.quantile(0.75),
            "compared": by_char.size(),
        }
    )
    org.loc[org["compared"] < min_teams, ["org_q1", "org_median", "org_q3"]] = np.nan
    out = scores.merge(org, left_on="characteristic", right_index=True, how="left")
    out["compared"] = out["compared"].fillna(0).astype("int64")
    rank = enough.groupby("characteristic")["score"].rank(method="min", ascending=False)
    out["rank"] = rank.reindex(out.index).astype("Int64")
    return out


def _standing(row: pd.Series, min_teams: int, min_distance: float) -> str:
    if row["too_few"]:
        return "too few answers"
    if row["compared"] < min_teams:
        return "too few teams to compare"
    score, median = row["score"], row["org_median"]
    if score >= row["org_q3"] and score - median >= min_distance - 1e-9:
        return "strength"
    if score <= row["org_q1"] and median - score >= min_distance - 1e-9:
        return "gap"
    return "middle"


def _change_words(row: pd.Series, min_change: float) -> str:
    if pd.isna(row["previous_score"]):
        return ""
    if row["too_few"] or row["previous_too_few"]:
        return "too few answers to compare"
    before, now = row["previous_score"], row["score"]
    if abs(now - before) < min_change - 1e-9:
        return f"about the same ({before:.1f} then {now:.1f})"
    way = "up" if now > before else "down"
    shown = abs(round(now, 1) - round(before, 1))  # as the two scores read, one decimal each
    return f"{way} {shown:.1f} ({before:.1f} to {now:.1f})"


def assess_characteristics(
    readiness: pd.DataFrame,
    membership_staff: pd.DataFrame | None = None,
    *,
    min_respondents: int = MIN_RESPONDENTS,
    min_teams: int = MIN_TEAMS,
    min_distance: float = MIN_DISTANCE,
    min_change: float = MIN_CHANGE,
    round: object = None,  # noqa: A002 - the column's name
    as_of: object = None,
) -> pd.DataFrame:
    """Each microsystem's score on each characteristic, against the organisation's teams.

    Parameters
    ----------
    readiness : DataFrame
        The readiness survey (``staff_id`` or ``microsystem_id``, ``characteristic``,
        ``score``, optional ``round``).
    membership_staff : DataFrame, optional
        ``staff_id, microsystem_id, share`` (workbook 01): a person's answers count for the
        microsystem they mainly work in.
    min_respondents : int
        Fewer respondents on a characteristic than this: "too few answers".
    min_teams : int
        Fewer teams with enough answers than this: "too few teams to compare".
    min_distance : float
        How far from the organisation's median a strength or a gap must be (1-3 scale).
    min_change : float
        A change between rounds smaller than this is "about the same".
    round, as_of : optional
        The last round, and for dated rounds the last date, to use
        (:func:`qi_helpers.pilots.readiness.answers_by_microsystem`).

    Returns
    -------
    DataFrame
        One row per microsystem and characteristic rated (:data:`ASSESSMENT_COLUMNS`):
        ``label`` (the characteristic in words), ``score`` (mean, 1-3), ``respondents``,
        ``too_few``, ``round`` (the team's latest round; missing without rounds), ``org_q1``,
        ``org_median``, ``org_q3`` and ``compared`` (the organisation's distribution over
        ``compared`` teams with enough answers), ``rank`` (1 = highest among them; missing
        when too few answers), ``standing`` (``strength``, ``gap``, ``middle``, ``too few
        answers`` or ``too few teams to compare``; the rules in the module's docstring),
        ``previous_score``, ``previous_round`` and ``change`` (the team's previous round,
        missing without one) and ``change_words`` (the change in words, ``""`` without a
        previous round).

    Raises
    ------
    qi_helpers.errors.DataError
        When a survey round is bad, empty or mixes numbers and dates.
    """
    answers = answers_by_microsystem(readiness, membership_staff, round=round, as_of=as_of)
    now = _distribution(_scores(latest_round(answers), min_respondents), min_teams)
    before = _scores(latest_round(answers, before=True), min_respondents)
    before = before.rename(
        columns={
            "score": "previous_score",
            "round": "previous_round",
            "too_few": "previous_too_few",
        }
    ).drop(columns="respondents")
    out = now.merge(before, on=["microsystem_id", "characteristic"], how="left")
    out["previous_too_few"] = out["previous_too_few"].astype("boolean").fillna(False)
    out["label"] = out["characteristic"].map(characteristic_label)
    out["change"] = out["score"] - out["previous_score"].astype(float)
    out["standing"] = [_standing(r, min_teams, min_distance) for _, r in out.iterrows()]
    out["change_words"] = [_change_words(r, min_change) for _, r in out.iterrows()]
    order = {c: i for i, c in enumerate(READINESS_CHARACTERISTICS)}
    out["_order"] = out["characteristic"].map(order)
    out = out.sort_values(["microsystem_id", "_order"], kind="stable")
    return out[ASSESSMENT_COLUMNS].reset_index(drop=True)


def _named(rows: pd.DataFrame, most: int | None) -> str:
    """``"leadership 2.8 of 3, staff focus 2.7 of 3 and 2 more"``."""
    named = [f"{r.label} {r.score:.1f} of 3" for r in rows.itertuples()]
    if most is not None and len(named) > most:
        return ", ".join(named[:most]) + f" and {len(named) - most} more"
    return ", ".join(named)


def strengths_and_gaps(assessment: pd.DataFrame, *, most: int | None = None) -> pd.DataFrame:
    """Each microsystem's strengths and gaps in words, best strength and worst gap first.

    Parameters
    ----------
    assessment : DataFrame
        :func:`assess_characteristics`'s table.
    most : int, optional
        Name at most this many of each, then "and 2 more" (cards stay short).

    Returns
    -------
    DataFrame
        ``microsystem_id``, ``strengths`` and ``gaps`` (e.g. ``"leadership 2.8 of 3"``; ``""``
        when none), one row per microsystem of the assessment.
    """
    rows = []
    for ms, team in assessment.groupby("microsystem_id", sort=True):
        strong = team[team["standing"] == "strength"].sort_values("score", ascending=False)
        weak = team[team["standing"] == "gap"].sort_values("score")
        rows.append(
            {"microsystem_id": ms, "strengths": _named(strong, most), "gaps": _named(weak, most)}
        )
    return pd.DataFrame(rows, columns=["microsystem_id", "strengths", "gaps"])


def with_strengths_and_gaps(readiness: pd.DataFrame, assessment: pd.DataFrame) -> pd.DataFrame:
    """:func:`qi_helpers.pilots.readiness.readiness_by_microsystem`'s table plus ``strengths``
    and ``gaps`` in words (:func:`strengths_and_gaps`, three of each at most; ``""`` for a team
    not assessed), which
    :func:`qi_helpers.pilots.scoring.criteria` adds to its readiness explanation."""
    named = strengths_and_gaps(assessment, most=3)
    out = readiness.drop(columns=["strengths", "gaps"], errors="ignore")
    out = out.merge(named, on="microsystem_id", how="left")
    return out.fillna({"strengths": "", "gaps": ""})


def team_characteristics(assessment: pd.DataFrame, microsystem_id: str) -> pd.DataFrame:
    """One team's rows of the assessment, indexed by characteristic, one per characteristic of
    the ten in the survey's order (those the team did not rate: no score, no standing)."""
    team = assessment[assessment["microsystem_id"].astype(str) == str(microsystem_id)]
    team = team.set_index("characteristic").reindex(list(READINESS_CHARACTERISTICS))
    team["label"] = [characteristic_label(c) for c in team.index]
    return team


def profile_table(assessment: pd.DataFrame, microsystem_id: str) -> pd.DataFrame:
    """One team's profile as a small table for people, one row per characteristic.

    Parameters
    ----------
    assessment : DataFrame
        :func:`assess_characteristics`'s table.
    microsystem_id : str

    Returns
    -------
    DataFrame
        ``Characteristic`` (in words), ``team_score`` (its mean, 1-3, one decimal; headed
        "Team (1-3)" by :data:`qi_helpers.table_formats.KNOWN_COLUMNS`), ``Respondents``,
        ``Organisation (quartiles)`` ("1.9 / 2.1 / 2.4": lower quartile / median / upper
        quartile),
        ``Rank`` ("3 of 12"), ``Standing`` and, with a previous round, ``Since last round``.
    """
    team = team_characteristics(assessment, microsystem_id)
    org = [
        "" if pd.isna(m) else f"{q1:.1f} / {m:.1f} / {q3:.1f}"
        for q1, m, q3 in zip(team["org_q1"], team["org_median"], team["org_q3"], strict=True)
    ]
    rank = [
        "" if pd.isna(r) else f"{int(r)} of {int(n)}"
        for r, n in zip(team["rank"], team["compared"], strict=True)
    ]
    standing = team["standing"].fillna("not rated").replace("middle", "")
    table = pd.DataFrame(
        {
            "Characteristic": team["label"].to_numpy(),
            "team_score": team["score"].round(1).to_numpy(),
            "Respondents": team["respondents"].astype("Int64").to_numpy(),
            "Organisation (quartiles)": org,
            "Rank": rank,
            "Standing": standing.to_numpy(),
        }
    )
    if team["change_words"].fillna("").ne("").any():
        table["Since last round"] = team["change_words"].fillna("").to_numpy()
    return table


def profile_words(assessment: pd.DataFrame, microsystem_id: str) -> str:
    """One team's strengths, gaps and changes since its last round, in Markdown sentences.

    Parameters
    ----------
    assessment : DataFrame
        :func:`assess_characteristics`'s table.
    microsystem_id : str

    Returns
    -------
    str
        E.g. "**Strengths:** leadership 2.8 of 3. **Gaps:** information and information
        technology 1.4 of 3. **Since round 1:** up: leadership 1.8 to 2.2; about the same:
        ..."; a
        sentence saying so when the team has no survey answers.
    """
    team = assessment[assessment["microsystem_id"].astype(str) == str(microsystem_id)]
    if team.empty:
        return "No readiness survey answers from this team yet."
    named = strengths_and_gaps(team).iloc[0]
    parts = [
        f"**Strengths:** {named['strengths'] or 'none stands out from the other teams'}.",
        f"**Gaps:** {named['gaps'] or 'none stands out from the other teams'}.",
    ]
    few = team.loc[team["standing"] == "too few answers", "label"].tolist()
    if few:
        parts.append(f"**Too few answers** to compare: {', '.join(few)}.")
    parts += _changes(team)
    return " ".join(parts)


def _changes(team: pd.DataFrame) -> list[str]:
    """ "Since round 1: up: ...; down: ...; about the same: ..." for one team."""
    compared = team[team["change_words"].fillna("").ne("")]
    if compared.empty:
        return []
    since = round_label(compared["previous_round"].iloc[0])
    groups = []
    for way in ("up", "down"):
        rows = compared[compared["change_words"].str.startswith(way + " ")]
        if len(rows):
            named = (
                f"{r.label} {r.previous_score:.1f} to {r.score:.1f}" for r in rows.itertuples()
            )
            groups.append(f"{way}: " + ", ".join(named))
    same = compared[compared["change_words"].str.startswith("about the same")]
    if len(same):
        groups.append("about the same: " + ", ".join(same["label"]))
    few = compared[compared["change_words"].str.startswith("too few")]
    if len(few):
        groups.append("too few answers to compare: " + ", ".join(few["label"]))
    return [f"**Since {since}:** " + "; ".join(groups) + "."]
