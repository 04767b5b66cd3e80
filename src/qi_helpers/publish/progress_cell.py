"""The progress cell of the index: a microsystem's score now, a coach's score, and its history.

Workbook 04 writes every microsystem's progress score by month to
``outputs/data/progress.parquet`` (:func:`qi_helpers.changes.progress.progress_scores`); the
coaches' scores come from ``parameters/progress_scores.csv``, read when the index is made so that
a coach's edit shows at the next ``qi publish`` (or ``qi run``, which publishes again when the
file changed)
(:func:`qi_helpers.changes.progress_overrides.read_progress_overrides`). The history is a small
inline SVG step line (no script, drawn in the text colour) with its text equivalent beside it:
the months where the score moved, so that the chart is never the only way to read it. About 500
microsystems must fit an index under 1 MB: the chart draws only the steps (a few bytes each).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from qi_helpers.changes.progress import PROGRESS_SCALE, progress_steps
from qi_helpers.changes.progress_overrides import read_progress_overrides, with_overrides
from qi_helpers.errors import ConfigError
from qi_helpers.project import Project
from qi_helpers.publish.tables import read_output_table

__all__ = ["history_img", "history_svg", "history_text", "progress_cells"]

_WIDTH, _HEIGHT = 96, 24  # the chart's box, in CSS pixels


def history_svg(history: pd.DataFrame) -> str:
    """A microsystem's scores by month as a step line: 1 at the bottom, 5 at the top.

    Parameters
    ----------
    history : DataFrame
        ``month, score`` of one microsystem, in month order.

    Returns
    -------
    str
        A standalone SVG document (about 150 bytes and 10 more per move), the scores' step
        line styled inside it, ``#`` written ``%23`` for a ``data:`` URL; empty with no month.
    """
    if history.empty or history["month"].isna().all():
        return ""
    scores = history["score"].to_numpy(float)
    n = len(scores)

    def y(score: float) -> int:
        return round(_HEIGHT - 2 - (score - 1) / 4 * (_HEIGHT - 4))

    path = [f"M0 {y(scores[0])}"]
    for i in range(1, n):
        if scores[i] != scores[i - 1]:
            x = round(i * _WIDTH / n)
            path.append(f"H{x}V{y(scores[i])}")
    path.append(f"H{_WIDTH}")
    # Single quotes and ``%23`` for ``#``: it goes as it is into a ``data:`` URL in an attribute.
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {_WIDTH} {_HEIGHT}'>"
        f"<path d='{''.join(path)}' fill='none' stroke='%231f2933' stroke-width='2'/></svg>"
    )


def history_img(history: pd.DataFrame) -> str:
    """:func:`history_svg` as an inline image: ``<img src="data:image/svg+xml,<svg ...>">``.

    An image, not inline ``<svg>`` markup: a page of the site holds no element that could run
    or restyle it (the hostile-project test), and the page's policy allows ``data:`` images
    only. The SVG goes into the URL as text (about 60 bytes less than base64); its ``<`` and
    ``>`` are escaped as the attribute's HTML. Its ``alt`` says in words what it draws, from
    where to where ("Progress score by month, from 1.5 in May 2024 to 4.5 in Mar 2025"); each
    move is in the words beside it. Its size and the faint line at 3 come from the stylesheet
    (``img.qi-prog``).
    """
    svg = history_svg(history)
    if not svg:
        return ""
    url = "data:image/svg+xml," + svg.replace("<", "%3C").replace(">", "%3E")
    known = history.dropna(subset=["month"])
    first, last = known.iloc[0], known.iloc[-1]
    alt = (
        f"Progress score by month, from {float(first['score']):.1f} in "
        f"{pd.Timestamp(first['month']):%b %Y} to {float(last['score']):.1f} in "
        f"{pd.Timestamp(last['month']):%b %Y}"
    )
    return f'<img class="qi-prog" src="{url}" alt="{alt}">'


def history_text(history: pd.DataFrame) -> str:
    """The history in words: ``"1.5 Jun 2024, 2.0 Aug 2024, 3.5 Oct 2024"`` (each move)."""
    steps = progress_steps(history.assign(microsystem_id=""))
    steps = steps[steps["month"].notna()]
    return ", ".join(
        f"{s:.1f} {m:%b %Y}" for s, m in zip(steps["score"], steps["month"], strict=True)
    )


def _cell(history: pd.DataFrame) -> dict[str, Any]:
    """One microsystem's cell: its score now, the coach's, the chart and its words.

    A score that never moved gets no chart (a flat line says nothing its words do not) and the
    words "since <month>": most teams of a large organisation are there, and the index stays
    light (about 60 bytes for such a team instead of 140).
    """
    now = history.iloc[-1]
    score = float(now["score"])
    coach = now.get("coach_score")
    has_coach = coach is not None and pd.notna(coach)
    moves = progress_steps(history.assign(microsystem_id=""))
    moves = moves[moves["month"].notna()]
    if len(moves) <= 1 and not has_coach:
        since = f"since {moves['month'].iloc[0]:%b %Y}" if len(moves) else ""
        label = PROGRESS_SCALE.get(score, "")
        return {"score": f"{score:.1f}", "label": label, "coach": "", "coach_reason": "",
                "svg": "", "text": since}  # fmt: skip
    return {
        "score": f"{score:.1f}",
        "label": PROGRESS_SCALE.get(score, ""),
        "coach": f"{float(coach):.1f}" if has_coach else "",
        "coach_reason": str(now.get("coach_reason", "") or "") if has_coach else "",
        "svg": history_img(history),  # shown unescaped (``| safe``): made here from numbers only
        "text": history_text(history),
    }


def progress_cells(project: Project, ids: list[str]) -> tuple[dict[str, dict[str, Any]], str]:
    """Every microsystem's progress cell, and a note when the coaches' file has a problem.

    Returns
    -------
    cells : dict
        ``microsystem_id -> {score, label, coach, coach_reason, svg, text}``; a microsystem
        missing from ``progress.parquet`` (workbook 04 not run yet) has no cell.
    note : str
        Empty, or the coaches' file's problems (the computed scores are still shown).
    """
    scores = read_output_table(project.data_dir / "progress.parquet")
    if scores.empty or not {"microsystem_id", "month", "score"} <= set(scores.columns):
        return {}, ""
    note = ""
    try:
        overrides = read_progress_overrides(project.progress_scores_file, ids)
    except ConfigError as exc:
        overrides, note = read_progress_overrides(project.root / "-", ids), str(exc)
    scores = with_overrides(scores.astype({"microsystem_id": str}), overrides)
    scores = scores.sort_values(["microsystem_id", "month"], kind="stable")
    return {str(ms): _cell(h) for ms, h in scores.groupby("microsystem_id", sort=False)}, note
