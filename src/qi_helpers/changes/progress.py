"""Progress scores from evidence: where each microsystem stands on the IHI progress scale, by month.

The scale is the progress scale of the IHI Breakthrough Series Collaboratives (Institute for
Healthcare Improvement, *The Breakthrough Series: IHI's Collaborative Model for Achieving
Breakthrough Improvement*, IHI Innovation Series white paper, 2003, Appendix: assessment scale),
as Life QI offers it for projects: 1 forming, 1.5 planning, 2 activity, 2.5 changes tested,
3 modest improvement, 3.5 improvement, 4 significant improvement, 4.5 sustainable improvement,
5 outstanding sustainable results (:data:`PROGRESS_SCALE`). In a collaborative a team scores
itself each month; here the score is computed from what the data show, with the evidence in
words, and a coach may record a different score with a reason
(:mod:`qi_helpers.changes.progress_overrides`): both are shown.

:func:`progress_scores` gives one row per microsystem and month; the score of a month uses only
evidence dated up to that month's end (no look-ahead), and the score is the highest step whose
evidence holds (see its Notes for each step). :func:`progress_steps` keeps the months where the
score moved, the history a team reads (:func:`progress_history`: one microsystem's, as a table
for people); :func:`progress_now` counts the microsystems at each step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from qi_helpers.data.driver_checks import diagram_of

__all__ = [
    "BALANCING_CAP",
    "PROGRESS_COLUMNS",
    "PROGRESS_SCALE",
    "SIGNIFICANT_MONTHS",
    "SUSTAINED_MONTHS",
    "progress_history",
    "progress_now",
    "progress_scores",
    "progress_steps",
]

#: The progress scale, score -> its name (IHI Breakthrough Series; Life QI's wording).
PROGRESS_SCALE: dict[float, str] = {
    1.0: "forming",
    1.5: "planning",
    2.0: "activity",
    2.5: "changes tested",
    3.0: "modest improvement",
    3.5: "improvement",
    4.0: "significant improvement",
    4.5: "sustainable improvement",
    5.0: "outstanding sustainable results",
}

#: Months an improvement on the aim's measures must have stood for 4 (significant improvement).
SIGNIFICANT_MONTHS = 3
#: Months an improvement must have stood, with no loss, for 4.5 (sustainable improvement).
SUSTAINED_MONTHS = 6
#: The highest score while a balancing measure is worse after the change (3, modest improvement).
BALANCING_CAP = 3.0

#: The columns of :func:`progress_scores`.
PROGRESS_COLUMNS = ["microsystem_id", "month", "score", "label", "evidence"]

#: The decisions that close a cycle: its Study and Act are done.
_CLOSED = {"adopt", "adapt", "abandon"}


@dataclass
class _Signal:
    """A verdict with a special cause, dated from when the data showed it."""

    measure: str
    name: str
    family: str
    change: str
    verdict: str
    since: pd.Timestamp
    balancing: bool
    aim: bool  # one of the aim's measures
    target_met: pd.Timestamp | None  # when the after-change level was seen to meet the target
    targeted: bool = False  # the measure has a target in the catalogue


@dataclass
class _Evidence:
    """One microsystem's dated evidence."""

    aim: str = ""
    cycles: list[tuple[pd.Timestamp, pd.Timestamp, str, str]] = field(default_factory=list)
    signals: list[_Signal] = field(default_factory=list)
    lost: list[tuple[pd.Timestamp, str]] = field(default_factory=list)
    spread: list[tuple[pd.Timestamp, str, str]] = field(default_factory=list)  # holding adopters


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series("", index=frame.index, dtype="object")
    return frame[column].astype("string").str.strip().fillna("").astype(object)


def _month(when: pd.Timestamp) -> str:
    return pd.Timestamp(when).strftime("%b %Y")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _quoted(names: Iterable[str]) -> str:
    found = list(dict.fromkeys(n for n in names if n))
    return ", ".join(f"'{n}'" for n in found) if found else "a change"


def _targets(measures: pd.DataFrame | None) -> dict[str, tuple[float, bool]]:
    """``measure_id -> (target, higher is better)`` for measures with a target."""
    if measures is None or not {"measure_id", "target", "improvement"} <= set(measures.columns):
        return {}
    target = pd.to_numeric(measures["target"], errors="coerce")
    up = measures["improvement"].astype("string").str.strip().str.lower() == "up"
    return {
        str(m): (float(t), bool(u))
        for m, t, u in zip(measures["measure_id"], target, up, strict=True)
        if np.isfinite(t)
    }


def _signals(
    results: pd.DataFrame, aim_measures: set[str], targets: dict[str, tuple[float, bool]]
) -> list[_Signal]:
    """The signalled verdicts of one microsystem's results, each dated."""
    out = []
    changes = _text(results, "change")
    families = _text(results, "family")
    for i, (_, r) in enumerate(results.iterrows()):
        verdict = str(r.get("verdict", "") or "")
        flag = bool(r.get("balancing_flag", False) is True or r.get("balancing_flag") == 1)
        if verdict not in ("improved", "worsened") and not flag:
            continue
        last = pd.Timestamp(r["last_period"]) if pd.notna(r.get("last_period")) else pd.NaT
        since = r.get("verdict_since")
        since = pd.Timestamp(since) if since is not None and pd.notna(since) else last
        if pd.isna(since):
            continue
        mid, family = str(r["measure_id"]), families.iloc[i]
        aim = mid in aim_measures if aim_measures else family == "outcome"
        met = None
        if verdict == "improved" and mid in targets and pd.notna(r.get("after_mean")):
            goal, up = targets[mid]
            value = float(r["after_mean"])
            if (value >= goal) if up else (value <= goal):
                met = last
        harm = flag or (family == "balancing" and verdict == "worsened")
        name = str(r.get("name", "") or mid)
        out.append(
            _Signal(mid, name, family, changes.iloc[i], verdict, since, harm, aim, met,
                    targeted=mid in targets)
        )  # fmt: skip
    return out


def _evidence(
    ms: str,
    drivers: pd.DataFrame | None,
    pdsa: pd.DataFrame | None,
    results: pd.DataFrame | None,
    tracking: pd.DataFrame | None,
    targets: dict[str, tuple[float, bool]],
    as_of: pd.Timestamp,
) -> _Evidence:
    """Gather one microsystem's evidence from the (already per-microsystem) tables."""
    ev = _Evidence()
    aim_measures: set[str] = set()
    if drivers is not None and not drivers.empty:
        ev.aim = str(_text(drivers, "aim").iloc[0]) or "(no aim written)"
        aim_measures = set(_text(drivers, "measure_id")) - {""}
    if pdsa is not None and not pdsa.empty:
        starts = pd.to_datetime(pdsa["start"])
        ends = pd.to_datetime(pdsa["end"]) if "end" in pdsa else pd.Series(pd.NaT, pdsa.index)
        decisions = _text(pdsa, "decision").str.lower()
        ev.cycles = sorted(
            zip(starts, ends, _text(pdsa, "change"), decisions, strict=True),
            key=lambda c: c[0],
        )
    if results is not None and not results.empty:
        ev.signals = _signals(results, aim_measures, targets)
    if tracking is not None and not tracking.empty:
        dates = (
            pd.to_datetime(tracking["as_of"])
            if "as_of" in tracking.columns
            else pd.Series(as_of, index=tracking.index)
        )
        # a change this team adopted from others is not its own to spread
        adopted = set(tracking.loc[tracking["microsystem_id"] == ms, "change"])
        for (_, r), when in zip(tracking.iterrows(), dates, strict=True):
            when = as_of if pd.isna(when) else pd.Timestamp(when)
            if r["microsystem_id"] == ms and r["verdict"] in ("lost", "worsened"):
                ev.lost.append((when, f"'{r['change']}' {r['verdict']} in tracking"))
            elif r["verdict"] == "improved and holding" and r["change"] not in adopted:
                ev.spread.append((when, str(r["change"]), str(r["microsystem_id"])))
    return ev


def _score(ev: _Evidence, end: pd.Timestamp) -> tuple[float, str]:
    """The score of one month (evidence dated up to ``end``) and its evidence in words."""
    by = _month(end)
    score, words = 1.0, "the microsystem is known; no driver diagram and no PDSA cycle yet"
    if ev.aim:
        score, words = 1.5, f"a driver diagram sets the aim '{ev.aim}'; no PDSA cycle yet"
    cycles = [c for c in ev.cycles if c[0] <= end]
    if cycles:
        score = 2.0
        words = f"{_plural(len(cycles), 'PDSA cycle')} of {_quoted(c[2] for c in cycles)} "
        words += f"begun by {by}; none completed yet"
    done = [c for c in cycles if pd.notna(c[1]) and c[1] <= end and c[3] in _CLOSED]
    if done:
        score = 2.5
        words = f"{_plural(len(done), 'PDSA cycle')} of {_quoted(c[2] for c in done)} "
        words += f"completed by {by}"
    seen = [s for s in ev.signals if s.since <= end]
    better = [s for s in seen if s.verdict == "improved" and s.family != "balancing"]
    if done and not better:
        words += "; no measure shows a signal yet"
    if better:
        score = 3.0
        words = "; ".join(
            f"'{s.name}' improved after {_quoted([s.change])} (since {_month(s.since)})"
            for s in better
        )
    strong = [s for s in better if s.family == "outcome" or s.aim]
    if len({s.measure for s in better}) >= 2:
        strong = better
    score = 3.5 if strong else score
    score, words = _lasting(ev, end, strong, score, words)
    harmed = [s for s in seen if s.balancing]
    if harmed and score > BALANCING_CAP:
        score = BALANCING_CAP
        words += "; capped at 3.0 because the balancing measure " + ", ".join(
            f"'{s.name}' is worse after {_quoted([s.change])} (since {_month(s.since)})"
            for s in harmed
        )
    elif harmed:
        words += "; the balancing measure " + ", ".join(f"'{s.name}'" for s in harmed)
        words += " is worse after the change"
    return score, f"{score:.1f} {PROGRESS_SCALE[score]}: {words}"


def _lasting(
    ev: _Evidence, end: pd.Timestamp, strong: list[_Signal], score: float, words: str
) -> tuple[float, str]:
    """Steps 4, 4.5 and 5: the aim's measures improved, and for how long, with no loss."""
    aimed = [s for s in strong if s.aim]
    worse = [s for s in ev.signals if s.since <= end and s.aim and s.verdict == "worsened"]
    held = [s for s in aimed if s.since <= end - pd.DateOffset(months=SIGNIFICANT_MONTHS)]
    if held and worse:
        names = ", ".join(f"'{s.name}'" for s in worse)
        return score, f"{words}; not 4: the aim's measure {names} is worse"
    if not held:
        return score, words
    score, words = (
        4.0,
        "the aim's measure "
        + "; ".join(
            f"'{s.name}' improved after {_quoted([s.change])} since {_month(s.since)}" for s in held
        )
        + f", {SIGNIFICANT_MONTHS} months or more",
    )
    lasting = [s for s in held if s.since <= end - pd.DateOffset(months=SUSTAINED_MONTHS)]
    lost = [why for when, why in ev.lost if when <= end]
    if lost:
        return score, words + "; but " + "; ".join(lost)
    if not lasting:
        return score, words
    score = 4.5
    words += f"; held {SUSTAINED_MONTHS} months or more with no loss"
    return _outstanding(ev, end, lasting, score, words)


def _outstanding(
    ev: _Evidence, end: pd.Timestamp, lasting: list[_Signal], score: float, words: str
) -> tuple[float, str]:
    """Step 5: the aim reached (where its measures have a target) and the change spread and
    holding in another team; otherwise the evidence says which is missing."""
    targeted = [s for s in lasting if s.targeted]
    reached = [s for s in targeted if s.target_met is not None and s.target_met <= end]
    changes = {s.change for s in lasting}
    spread = sorted({m for when, c, m in ev.spread if when <= end and c in changes})
    if reached:
        words += "; the target of " + ", ".join(f"'{s.name}'" for s in reached) + " is met"
    if spread:
        words += "; spread and holding in " + ", ".join(spread)
    missing = []
    if targeted and not reached:
        missing.append("the target of " + ", ".join(f"'{s.name}'" for s in targeted) + " not met")
    if not spread:
        missing.append("not spread to another team yet")
    if missing:
        return score, words + "; not 5: " + " and ".join(missing)
    return 5.0, words


def _months(
    pdsa: pd.DataFrame | None, results: pd.DataFrame | None, first: object, last: object
) -> pd.PeriodIndex:
    """The months scored: ``first`` to ``last``, by default those of the dated evidence."""
    dates: list[pd.Timestamp] = []
    if pdsa is not None and not pdsa.empty:
        dates += list(pd.to_datetime(pdsa["start"]).dropna())
    if results is not None and not results.empty and "last_period" in results.columns:
        dates += list(pd.to_datetime(results["last_period"]).dropna())
    earliest = min(dates) - pd.DateOffset(months=1) if dates else None  # the month before
    lo = pd.Timestamp(first) if first is not None else earliest
    hi = pd.Timestamp(last) if last is not None else (max(dates) if dates else None)
    if lo is None or hi is None:
        return pd.PeriodIndex([], freq="M")
    return pd.period_range(lo.to_period("M"), max(lo, hi).to_period("M"), freq="M")


def _by_microsystem(frame: pd.DataFrame | None, ids: pd.Series | None = None) -> dict:
    if frame is None or frame.empty:
        return {}
    keys = ids if ids is not None else frame["microsystem_id"].astype("string").str.strip()
    return {str(k): g for k, g in frame.groupby(keys.to_numpy(), sort=False)}


def progress_scores(
    microsystems: Iterable[str],
    *,
    drivers: pd.DataFrame | None = None,
    pdsa: pd.DataFrame | None = None,
    results: pd.DataFrame | None = None,
    measures: pd.DataFrame | None = None,
    tracking: pd.DataFrame | None = None,
    first: object = None,
    last: object = None,
) -> pd.DataFrame:
    """Each microsystem's progress score by month, from the evidence, with the evidence in words.

    Parameters
    ----------
    microsystems : iterable of str
        The microsystems to score (workbook 01's registry); each gets a row per month.
    drivers : DataFrame, optional
        The ``drivers`` table: a microsystem's own driver diagram (rows with its
        ``microsystem_id``) is its plan; its ``measure_id`` values are the aim's measures.
    pdsa : DataFrame, optional
        The PDSA log (``microsystem_id, change, start``, optional ``end, decision``).
    results : DataFrame, optional
        Workbook 03's verdicts (:data:`qi_helpers.changes.verdicts.RESULT_COLUMNS`;
        ``verdict_since`` dates a verdict, else its ``last_period``).
    measures : DataFrame, optional
        The measure catalogue: ``target`` and ``improvement`` say when an aim is reached.
    tracking : DataFrame, optional
        Workbook 04's sustain verdicts (``microsystem_id, change, verdict``, optional ``as_of``;
        without it a verdict is dated at the last month): a loss stops 4.5; an adopter of one of
        a microsystem's changes that is ``improved and holding`` is spread that holds (5).
    first, last : date, optional
        The first and last months scored; by default the month before the earliest PDSA cycle
        and the month of the latest period with data.

    Returns
    -------
    DataFrame
        :data:`PROGRESS_COLUMNS`: ``month`` (its first day), ``score`` (1 to 5 by halves),
        ``label`` (the step's name) and ``evidence`` ("2.5 changes tested: 3 PDSA cycles of
        'Carve-out scheduling' completed by Mar 2024; no measure shows a signal yet"). Without
        any dated evidence, one row per microsystem with an empty ``month``.

    Notes
    -----
    The score of a month is the highest step whose evidence, dated up to the month's last day,
    holds (a period is dated by its first day, as on its chart):

    - **1 forming**: the microsystem is known (in the registry), nothing else.
    - **1.5 planning**: it has its own driver diagram (the ``drivers`` rows with its id; the
      table has no dates, so a diagram counts from the first month).
    - **2 activity**: a PDSA cycle has begun (``start`` on or before the month's end).
    - **2.5 changes tested**: a cycle is completed: it has an ``end`` by the month's end and a
      decision (adopt, adapt or abandon), so its Study and Act are done.
    - **3 modest improvement**: a measure other than a balancing one has the verdict
      ``improved`` after a change (a special cause against the frozen baseline), dated from
      ``verdict_since``.
    - **3.5 improvement**: that measure is an outcome measure or one of the aim's measures, or
      two measures or more improved.
    - **4 significant improvement**: an aim's measure (the diagram's measures; without a
      diagram, the outcome measures) has been improved for :data:`SIGNIFICANT_MONTHS` months
      or more, and no aim's measure is worse.
    - **4.5 sustainable improvement**: that improvement has stood :data:`SUSTAINED_MONTHS`
      months or more and tracking shows no loss (no ``lost`` or ``worsened`` sustain verdict).
    - **5 outstanding sustainable results**: 4.5, **and** the aim is reached where its
      measures have a ``target`` (the level after the change meets it, dated at the measure's
      last period), **and** the change has spread and holds (the sustain verdict of another
      team that adopted it, this team not being an adopter of it, is ``improved and
      holding``): IHI's 5 asks for results at the goal *and* spread under way, so a team whose
      target is still missed stays at 4.5, and the evidence says what 5 still needs.

    A balancing measure worse after the change (``balancing_flag``) caps the score at
    :data:`BALANCING_CAP`, and the evidence says so.
    """
    ids = list(dict.fromkeys(str(m) for m in microsystems))
    months = _months(pdsa, results, first, last)
    targets = _targets(measures)
    diagrams = _by_microsystem(drivers, diagram_of(drivers) if drivers is not None else None)
    cycles, verdicts = _by_microsystem(pdsa), _by_microsystem(results)
    as_of = months[-1].to_timestamp() if len(months) else pd.NaT
    rows = []
    for ms in ids:
        ev = _evidence(
            ms, diagrams.get(ms), cycles.get(ms), verdicts.get(ms), tracking, targets, as_of
        )
        if not len(months):
            score, words = _score(ev, pd.Timestamp.max)
            rows.append((ms, pd.NaT, score, words))
            continue
        for month in months:
            score, words = _score(ev, month.to_timestamp(how="end"))
            rows.append((ms, month.to_timestamp(), score, words))
    table = pd.DataFrame(rows, columns=["microsystem_id", "month", "score", "evidence"])
    table["month"] = pd.to_datetime(table["month"])
    table["label"] = table["score"].map(PROGRESS_SCALE)
    return table[PROGRESS_COLUMNS]


def progress_steps(scores: pd.DataFrame) -> pd.DataFrame:
    """The months where each microsystem's score moved (its first month and every change).

    Parameters
    ----------
    scores : DataFrame
        From :func:`progress_scores`.

    Returns
    -------
    DataFrame
        The rows of ``scores`` whose score differs from the month before, in order.
    """
    ordered = scores.sort_values(["microsystem_id", "month"], kind="stable")
    before = ordered.groupby("microsystem_id", sort=False)["score"].shift()
    return ordered[before.isna() | (before != ordered["score"])].reset_index(drop=True)


def progress_now(scores: pd.DataFrame) -> pd.DataFrame:
    """How many microsystems stand at each step of the scale in the last month scored.

    Returns
    -------
    DataFrame
        ``score, label, microsystems``, one row per step of :data:`PROGRESS_SCALE` (0 where
        none stands), highest first.
    """
    last = (
        scores[scores["month"] == scores["month"].max()]
        if scores["month"].notna().any()
        else scores
    )
    counts = last["score"].value_counts()
    return pd.DataFrame(
        [
            {"score": s, "label": name, "microsystems": int(counts.get(s, 0))}
            for s, name in sorted(PROGRESS_SCALE.items(), reverse=True)
        ]
    )


def progress_history(scores: pd.DataFrame) -> pd.DataFrame:
    """One microsystem's history as a team reads it: each month its score moved, and why.

    Parameters
    ----------
    scores : DataFrame
        From :func:`progress_scores` (one microsystem).

    Returns
    -------
    DataFrame
        ``month`` ("Sep 2024"), ``progress_score`` (3.5, shown with one decimal and headed
        "Score (1-5)" by :data:`qi_helpers.table_formats.KNOWN_COLUMNS`) and ``evidence``, one
        row per move of
        :func:`progress_steps`, oldest first.
    """
    steps = progress_steps(scores)
    months = [_month(m) if pd.notna(m) else "" for m in steps["month"]]
    return pd.DataFrame(
        {
            "month": months,
            "progress_score": steps["score"].astype(float).to_numpy(),
            "evidence": steps["evidence"].to_numpy(),
        }
    )
