"""Summary first: one card per chosen pilot at the top of workbook 02's report.

Workbook 02 decides which microsystems pilot a change. Its summary answers that first, one card
per pilot in the order they were picked: who (name, kind, site), the score and its main parts
(which weighted criteria make most of it), why it was chosen in words (team readiness, room to
improve on the measure), and what to watch (a criterion on which it is weak). Badges say the
pick, whether the baseline is stable, and whether the readiness survey had enough answers.

:func:`pilot_summary` computes the cards' content as a tidy table; :func:`pilot_cards` shows it
as HTML cards, with the markup every summary shares
(:func:`qi_helpers.readable_tables.summary_card`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from qi_helpers.data.columns import require_columns
from qi_helpers.pilots.scoring import CRITERIA, CRITERIA_LABELS
from qi_helpers.privacy.screen import active_screen
from qi_helpers.readable_tables import status_badge, summary_card, summary_region
from qi_helpers.table_formats import is_missing

__all__ = ["PILOT_SUMMARY_COLUMNS", "PilotCards", "pilot_cards", "pilot_summary"]

#: The columns of :func:`pilot_summary`.
PILOT_SUMMARY_COLUMNS = [
    "pick",
    "microsystem_id",
    "name",
    "kind",
    "site",
    "score",
    "score_parts",
    "readiness",
    "room_to_improve",
    "watch",
    "baseline",
    "survey",
]

#: A baseline's badge from its ``stable_baseline`` score: (text, status style).
_BASELINE = {
    1.0: ("stable baseline", "qi-status-ok"),
    0.5: ("one point to explain", "qi-status-stale"),
    0.0: ("unstable baseline", "qi-status-failed"),
}

#: Main parts of a score named on a card.
_PARTS = 3


def _text(value: object) -> str:
    return "" if is_missing(value) else str(value)


def _few(value: object) -> bool:
    """Whether the readiness survey had too few answers (missing: no flag to show)."""
    return False if is_missing(value) else bool(value)


def _score_parts(row: Mapping[str, object], weights: Mapping[str, float]) -> str:
    """The weighted criteria that make most of a score, largest first, e.g.
    "team readiness 0.21, room to improve 0.20, time to detect a change 0.15"."""
    total = sum(weights.values())
    parts = []
    for c in CRITERIA:
        if weights.get(c, 0) > 0 and c in row and not is_missing(row[c]):
            parts.append((weights[c] * float(row[c]) / total, c))
    parts.sort(key=lambda p: (-p[0], CRITERIA.index(p[1])))
    return ", ".join(f"{CRITERIA_LABELS[c]} {v:.2f}" for v, c in parts[:_PARTS] if v > 0)


def _watch(row: Mapping[str, object], weights: Mapping[str, float]) -> str:
    """The weighted criteria on which a pilot scores under 0.5, with the reason of the weakest."""
    weak = [
        c
        for c in CRITERIA
        if weights.get(c, 0) > 0 and c in row and not is_missing(row[c]) and float(row[c]) < 0.5
    ]
    if not weak:
        return ""
    named = ", ".join(f"{CRITERIA_LABELS[c]} ({float(row[c]):.2f})" for c in weak)
    worst = min(weak, key=lambda c: float(row[c]))
    why = _text(row.get(f"{worst}_why"))
    return f"{named}: {why}" if why else named


def pilot_summary(ranked: pd.DataFrame, weights: Mapping[str, float]) -> pd.DataFrame:
    """One row per selected pilot, in the order picked: what its summary card shows.

    Parameters
    ----------
    ranked : pandas.DataFrame
        :func:`qi_helpers.pilots.ranking.rank`'s table (``microsystem_id, name, kind, site,
        score, selected, pick``, the criteria scores and their ``*_why`` explanations).
    weights : mapping of str to float
        The weights the ranking used (``pilots.weights``): the main parts of a score are the
        weighted criteria scores over the weights' sum.

    Returns
    -------
    pandas.DataFrame
        ``pick`` (1 = first), ``microsystem_id``, ``name``, ``kind`` (words, not
        ``snake_case``), ``site``, ``score`` (0-1), ``score_parts`` (the three weighted
        criteria that make most of the score, e.g. "team readiness 0.21, room to improve
        0.20, ...": each weight times the criterion's score, over the weights' sum),
        ``readiness`` and ``room_to_improve`` (the criteria's explanations in words),
        ``watch`` (criteria scored under 0.5 and why, ``""`` when none), ``baseline``
        ("stable baseline", "one point to explain" or "unstable baseline") and ``survey``
        (``"few survey answers"`` when too few staff answered the readiness survey, else
        ``""``).

    Raises
    ------
    qi_helpers.errors.DataError
        When ``ranked`` lacks a column the cards need (it names them).
    """
    require_columns(
        ranked,
        ["microsystem_id", "kind", "site", "score", "selected", "pick"],
        "pilots: the ranked table",
        advice="Build it with qi_helpers.pilots.rank().",
    )
    chosen = ranked[ranked["selected"].fillna(False).astype(bool)]
    chosen = chosen.sort_values("pick", kind="stable")
    rows = []
    for row in chosen.to_dict("records"):
        stable = row.get("stable_baseline")
        key = 0.0 if is_missing(stable) else min(_BASELINE, key=lambda k: abs(k - float(stable)))
        rows.append(
            {
                "pick": int(row["pick"]),
                "microsystem_id": str(row["microsystem_id"]),
                "name": _text(row.get("name")),
                "kind": _text(row.get("kind")).replace("_", " "),
                "site": _text(row.get("site")),
                "score": float(row["score"]),
                "score_parts": _score_parts(row, weights),
                "readiness": _text(row.get("readiness_why")),
                "room_to_improve": _text(row.get("room_to_improve_why")),
                "watch": _watch(row, weights),
                "baseline": _BASELINE[key][0],
                "survey": "few survey answers" if _few(row.get("too_few_respondents")) else "",
            }
        )
    return pd.DataFrame(rows, columns=PILOT_SUMMARY_COLUMNS)


def _card(row: Mapping[str, object], total: int) -> str:
    e = html.escape
    title = f"{row['name']} ({row['microsystem_id']})" if row["name"] else row["microsystem_id"]
    badges = status_badge(f"Pick {row['pick']} of {total}", "qi-status-ok")
    baseline = str(row["baseline"])
    css = next(c for text, c in _BASELINE.values() if text == baseline)
    badges += " " + status_badge(baseline, css)
    if row["survey"]:
        badges += " " + status_badge(str(row["survey"]), "qi-status-stale")
    where = ", ".join(str(x) for x in (row["kind"], row["site"]) if x)
    body = [f'<p class="qi-summary-latest">{e(where)}</p>'] if where else []
    body.append(
        f'<p class="qi-summary-effect">Score <strong>{float(row["score"]):.2f}</strong> of 1'
        + (f"; its main parts: {e(str(row['score_parts']))}" if row["score_parts"] else "")
        + ".</p>"
    )
    for label, key in (("Readiness", "readiness"), ("Room to improve", "room_to_improve")):
        if row[key]:
            body.append(f'<p class="qi-summary-effect">{label}: {e(str(row[key]))}.</p>')
    if row["watch"]:
        body.append(f'<p class="qi-summary-effect">Watch: {e(str(row["watch"]))}.</p>')
    return summary_card(str(title), badges, body)


@dataclass
class PilotCards:
    """The summary cards of workbook 02: HTML in a notebook and on its report page.

    Attributes
    ----------
    table : pandas.DataFrame
        :func:`pilot_summary`'s table.
    """

    table: pd.DataFrame

    def _repr_html_(self) -> str:
        records = self.table.to_dict("records")
        return summary_region(
            [_card(r, len(records)) for r in records],
            "Summary: one card per chosen pilot",
            "No pilot selected: no candidate had data on the measure.",
        )


def pilot_cards(ranked: pd.DataFrame, weights: Mapping[str, float]) -> PilotCards:
    """One card per chosen pilot: who, the score and its main parts, why, what to watch.

    The ranked table is screened for identifiers first (the active screen, as every displayed
    table is), so the cards show no identifier in JupyterLab either.

    Parameters
    ----------
    ranked : pandas.DataFrame
        :func:`qi_helpers.pilots.ranking.rank`'s table.
    weights : mapping of str to float
        The weights the ranking used.

    Returns
    -------
    PilotCards
        Shown as HTML cards when it is a cell's value; ``.table`` holds
        :func:`pilot_summary`.
    """
    screen = active_screen()
    if screen is not None:
        ranked, _ = screen.redact_frame(ranked)
    return PilotCards(pilot_summary(ranked, weights))
