"""Figures of the pilots step: the criteria heatmap, the candidates' baselines (workbook 02) and
a team's assessment profile by characteristic (workbook 03's "How the team rates itself").

Every function takes computed tables and returns a matplotlib ``Figure``; nothing here computes.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import qi_helpers.notebook_display  # noqa: F401 - shows returned figures in notebooks
from qi_helpers.chart_display import with_caption
from qi_helpers.drawing import OKABE_ITO, plain_text, subplots
from qi_helpers.pilots.assessment import strengths_and_gaps, team_characteristics
from qi_helpers.pilots.scoring import CRITERIA, CRITERIA_LABELS
from qi_helpers.spc.plots import plot_qic_facets


def plot_criteria_heatmap(
    ranked: pd.DataFrame, criteria: list[str] | None = None, *, top: int = 25
) -> Figure:
    """The pilot criteria scores (0 worst, 1 best) of the best-ranked candidates, as a heatmap.

    Parameters
    ----------
    ranked : DataFrame
        From :func:`qi_helpers.pilots.ranking.rank` (``microsystem_id``, the criteria, ``score``,
        and optionally ``rank`` and ``selected``).
    criteria : list of str, optional
        The criteria columns to show (default: those of
        :data:`qi_helpers.pilots.scoring.CRITERIA` present).
    top : int
        Show at most this many candidates, best first.

    Returns
    -------
    matplotlib.figure.Figure
        One row per candidate (labelled ``rank. id``, with ``(pilot)`` when selected), one column
        per criterion plus the total ``score``, each cell annotated with its value.
    """
    import seaborn as sns  # slow to import, and only this figure uses it

    if criteria is None:
        criteria = [c for c in CRITERIA if c in ranked.columns]
    head = ranked.head(top)
    shown = head[criteria + ["score"]].astype(float)
    labels = head["microsystem_id"].astype(str)
    if "rank" in head.columns:
        labels = head["rank"].astype(str) + ". " + labels
    if "selected" in head.columns:
        labels = labels + np.where(head["selected"].to_numpy(dtype=bool), " (pilot)", "")
    shown.index = labels.to_numpy()
    # Labels wrapped and the figure kept narrow: it is shown at the page's width with its text
    # raised to the page's body size (qi_helpers.chart_display.min_text_points).
    shown.columns = [textwrap.fill(CRITERIA_LABELS.get(c, c), 11) for c in shown.columns]
    fig, ax = subplots(figsize=(1.15 * len(shown.columns) + 2.6, 0.45 * len(shown) + 2.4))
    with plain_text():  # seaborn measures its tick labels before any draw
        sns.heatmap(
            shown,
            annot=True,
            fmt=".2f",
            vmin=0,
            vmax=1,
            cmap="viridis",
            ax=ax,
            cbar_kws={"label": "score (1 = best)"},
        )
    ax.set_ylabel("")
    ax.set_title("Pilot criteria, best candidates first")
    return fig


def plot_pilot_baselines(
    charts: pd.DataFrame, *, rules: str | None = None, ncols: int = 2
) -> Figure:
    """The baseline control chart of each top candidate, as small multiples.

    Parameters
    ----------
    charts : DataFrame
        From :func:`qi_helpers.pilots.baselines.baseline_charts` (a
        :func:`qi_helpers.spc.qic.qic` frame faceted by microsystem, in rank order).
    rules : str, optional
        Rule set that colours the special-cause points (default Anhøj's).
    ncols : int
        Panels per row (two: the figure is shown at the page's width, and its text must stay
        as large as the page's, :func:`qi_helpers.chart_display.min_text_points`).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per candidate, titled with its id; special causes in the direction of
        improvement and of concern coloured as in :func:`qi_helpers.spc.plots.plot_qic`.
    """
    info = charts.attrs.get("pilots", {})
    unit = info.get("unit", "")
    title = f"Baselines of the best-ranked candidates: {info.get('name', '')}"
    title += f" ({unit})" if unit else ""
    return plot_qic_facets(
        charts,
        ncols=ncols,
        title=title,
        improvement=info.get("improvement"),
        rules=rules,
        sharey=True,
    )


def _assessment_caption(team: pd.DataFrame, microsystem_id: str, assessment: pd.DataFrame) -> str:
    named = strengths_and_gaps(assessment[assessment["microsystem_id"] == microsystem_id])
    row = named.iloc[0] if len(named) else {"strengths": "", "gaps": ""}
    teams = int(team["compared"].max()) if team["compared"].notna().any() else 0
    text = (
        f"How {microsystem_id} rates itself on the ten success characteristics (1 poor, 2 mixed, "
        f"3 ideal; dots), against the middle half of the organisation's {teams} teams with "
        "enough answers (bands) and their median (ticks)"
    )
    if team["previous_score"].notna().any():
        text += "; open circles are the team's previous round"
    text += f". Strengths: {row['strengths'] or 'none'}. Gaps: {row['gaps'] or 'none'}."
    few = team.loc[team["standing"] == "too few answers", "label"].tolist()
    return text + (f" Too few answers: {', '.join(few)}." if few else "")


def _assessment_alt(team: pd.DataFrame, caption: str) -> str:
    parts = [
        f"{r.label} {r.score:.1f}"
        + ("" if pd.isna(r.org_median) else f" (organisation median {r.org_median:.1f})")
        for r in team.itertuples()
        if not pd.isna(r.score)
    ]
    return f"Dot chart. {caption} Scores: {'; '.join(parts)}."


def plot_assessment(assessment: pd.DataFrame, microsystem_id: str) -> Figure:
    """One team's profile across the ten characteristics, against the organisation's teams.

    Parameters
    ----------
    assessment : DataFrame
        :func:`qi_helpers.pilots.assessment.assess_characteristics`'s table.
    microsystem_id : str

    Returns
    -------
    matplotlib.figure.Figure
        One row per characteristic (named in words): a grey band over the organisation's
        interquartile range, a black tick at its median, the team's score as a black dot (an
        open circle for its previous round, when there is one) and its standing written at the
        right ("strength", "gap", "too few answers"): readable without colour. Its caption and
        alt text say the same in words.
    """
    team = team_characteristics(assessment, microsystem_id).iloc[
        ::-1
    ]  # the first characteristic on top
    y = np.arange(len(team))
    fig, ax = subplots(figsize=(8.0, 6.4))
    for i, r in zip(y, team.itertuples(), strict=True):
        if not pd.isna(r.org_q1):
            ax.barh(
                i,
                r.org_q3 - r.org_q1,
                left=r.org_q1,
                height=0.55,
                color="#d9d9d9",
                label="organisation: middle half of teams" if i == y[-1] else None,
            )
            ax.plot(
                [r.org_median] * 2,
                [i - 0.32, i + 0.32],
                color=OKABE_ITO["black"],
                lw=2,
                label="organisation median" if i == y[-1] else None,
            )
    previous = team["previous_score"].astype(float)
    if previous.notna().any():
        for i, before, now in zip(y, previous, team["score"].astype(float), strict=True):
            ax.plot([before, now], [i, i], color="#777777", lw=1.2)
        ax.plot(
            previous,
            y,
            "o",
            mfc="white",
            mec=OKABE_ITO["black"],
            ms=9,
            mew=1.5,
            label="this team, previous round",
            linestyle="none",
        )
    ax.plot(
        team["score"].astype(float),
        y,
        "o",
        color=OKABE_ITO["black"],
        ms=8,
        label="this team",
        linestyle="none",
    )
    for i, standing in zip(y, team["standing"].fillna("not rated"), strict=True):
        if standing != "middle":
            ax.text(3.12, i, standing, va="center", fontsize=12)
    ax.set_yticks(y, [textwrap.fill(str(label), 24) for label in team["label"]], fontsize=12)
    ax.set_xlim(0.9, 3.9)
    ax.set_xticks([1, 1.5, 2, 2.5, 3], ["1 poor", "1.5", "2 mixed", "2.5", "3 ideal"], fontsize=12)
    ax.set_xlabel("Mean score of the team's respondents", fontsize=12)
    ax.set_title(f"How {microsystem_id} rates itself", loc="left", fontsize=13)
    ax.legend(fontsize=10, frameon=False, loc="upper center", bbox_to_anchor=(0.45, -0.12), ncols=2)
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    caption = _assessment_caption(team, microsystem_id, assessment)
    return with_caption(fig, caption, _assessment_alt(team.iloc[::-1], caption))
