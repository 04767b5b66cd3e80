"""The organisation's driver diagram with how far each change idea has spread (workbook 04).

The organisation's diagram (the rows of the ``drivers`` table whose ``microsystem_id`` is
empty) names the change ideas the organisation counts on to reach its aim. Each gets its
**spread status** (:data:`SPREAD_STATUSES`) from workbook 03's verdicts in every microsystem,
the spread plan and the adoption and sustain tracking:

* ``spreading``: ready to spread (below) and adopted by at least one other team; the detail
  says how many adopters there are and where the gain holds;
* ``ready to spread``: improved a measure where it was tested and worsened none
  (:func:`qi_helpers.spread.ready.successful_changes`); the detail gives the plan's teams and
  waves;
* ``held back``: improved a measure but worsened another where it was tested
  (:func:`qi_helpers.spread.ready.held_back`): study the cost first;
* ``abandoned``: every team that tested it abandoned it;
* ``tested, no signal yet``: tested, no special cause yet;
* ``not tested yet``: no team has tested it.
"""

from __future__ import annotations

import pandas as pd

from qi_helpers.changes.drivers import DriverDiagram, change_ideas, diagram_rows
from qi_helpers.spread.ready import held_back, successful_changes

__all__ = ["SPREAD_STATUSES", "organisation_diagram", "spread_status"]

#: The spread status of a change idea in the organisation's diagram, in the legend's order.
SPREAD_STATUSES = (
    "spreading",
    "ready to spread",
    "held back",
    "tested, no signal yet",
    "not tested yet",
    "abandoned",
)

_COLUMNS = ["primary_driver", "secondary_driver", "change", "measure_ids", "status", "detail"]


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _changes(frame: pd.DataFrame | None) -> pd.Series:
    if frame is None or frame.empty or "change" not in frame.columns:
        return pd.Series([], dtype="string")
    return frame["change"].astype("string").str.strip()


def _holding(change: str, sustained: pd.DataFrame | None) -> str:
    """How the adopters' gains stand, in words (from the sustain verdicts)."""
    if sustained is None or sustained.empty:
        return ""
    mine = sustained[(_changes(sustained) == change).fillna(False).to_numpy(dtype=bool)]
    counts = mine.drop_duplicates("microsystem_id")["verdict"].value_counts()
    parts = [f"{n} {verdict}" for verdict, n in counts.items()]
    return f" ({', '.join(parts)})" if parts else ""


def _spread_detail(change, ready, plan, adoption, sustained) -> tuple[str, str]:
    pilots = ready.loc[_changes(ready) == change, "pilots"].iloc[0].replace(";", ", ")
    adopters = adoption[(_changes(adoption) == change).fillna(False).to_numpy(dtype=bool)]
    planned = plan[(_changes(plan) == change).fillna(False).to_numpy(dtype=bool)]
    n_adopted = adopters["microsystem_id"].nunique() if len(adopters) else 0
    if n_adopted:
        holding = _holding(change, sustained)
        return "spreading", (
            f"improved in {pilots}; adopted by {_count(n_adopted, 'team')}{holding}"
        )
    if len(planned):
        waves = planned["wave"].nunique() if "wave" in planned.columns else 1
        return "ready to spread", (
            f"improved in {pilots}; {_count(planned['microsystem_id'].nunique(), 'team')} "
            f"planned in {_count(waves, 'wave')}"
        )
    return "ready to spread", f"improved in {pilots}; no other team of its kind to plan yet"


def spread_status(
    rows: pd.DataFrame,
    results: pd.DataFrame,
    spread_plan: pd.DataFrame | None = None,
    adoption: pd.DataFrame | None = None,
    sustained: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The spread status of each change idea of the organisation's diagram.

    Parameters
    ----------
    rows : DataFrame
        The organisation's diagram (:func:`qi_helpers.changes.drivers.diagram_rows` with
        ``""``).
    results : DataFrame
        Every workbook 03 verdict (``microsystem_id, measure_id, change, decision, verdict``).
    spread_plan : DataFrame, optional
        :func:`qi_helpers.spread.waves.plan` (``change, microsystem_id, wave``).
    adoption : DataFrame, optional
        The adoption log (``microsystem_id, change, adopted``).
    sustained : DataFrame, optional
        :func:`qi_helpers.spread.tracking.sustain`'s verdicts (``microsystem_id, change,
        verdict``).

    Returns
    -------
    DataFrame
        ``primary_driver, secondary_driver, change, measure_ids, status, detail``: one row per
        change idea in the diagram's order; ``status`` one of :data:`SPREAD_STATUSES`.
    """
    ideas = change_ideas(rows)
    if ideas.empty:
        return ideas.assign(status=pd.Series(dtype=object), detail=pd.Series(dtype=object))[
            _COLUMNS
        ]
    tested = results[results["change"].notna()]
    ready = successful_changes(results)
    held = set(held_back(results)["change"])
    plan = spread_plan if spread_plan is not None else pd.DataFrame(columns=["change"])
    adopted = adoption if adoption is not None else pd.DataFrame(columns=["change"])
    statuses, details = [], []
    for change in ideas["change"]:
        mine = tested[(_changes(tested) == change).fillna(False).to_numpy(dtype=bool)]
        teams = ", ".join(sorted(mine["microsystem_id"].astype(str).unique()))
        if mine.empty:
            status, detail = "not tested yet", "no team has tested it"
        elif change in set(_changes(ready)):
            status, detail = _spread_detail(change, ready, plan, adopted, sustained)
        elif change in held:
            status, detail = "held back", f"tested in {teams}: a measure worsened; study it first"
        elif (mine["decision"].astype("string").str.lower() == "abandon").all():
            status, detail = "abandoned", f"abandoned in {teams}"
        else:
            status, detail = "tested, no signal yet", f"tested in {teams}"
        statuses.append(status)
        details.append(detail)
    ideas = ideas.assign(status=statuses, detail=details)
    return ideas.reindex(columns=_COLUMNS).reset_index(drop=True)


def organisation_diagram(
    drivers: pd.DataFrame | None,
    results: pd.DataFrame,
    spread_plan: pd.DataFrame | None = None,
    adoption: pd.DataFrame | None = None,
    sustained: pd.DataFrame | None = None,
    measures: pd.DataFrame | None = None,
) -> DriverDiagram:
    """The organisation's driver diagram, each change idea marked by its spread status.

    Parameters
    ----------
    drivers : DataFrame or None
        The ``drivers`` table (None when the project has none: the diagram then says how to
        add one).
    results, spread_plan, adoption, sustained
        See :func:`spread_status`.
    measures : DataFrame, optional
        The measure catalogue, for the measures' names.

    Returns
    -------
    DriverDiagram
        Shown as HTML; ``ideas`` holds :func:`spread_status`, ``links`` each change idea's
        measures (not linked: their charts are on the microsystems' pages).
    """
    rows = diagram_rows(drivers, "")
    ideas = spread_status(rows, results, spread_plan, adoption, sustained)
    names = {}
    if measures is not None and not measures.empty:
        names = dict(zip(measures["measure_id"], measures["name"], strict=True))
    links = pd.DataFrame(
        [
            {"change": r.change, "measure_id": m, "name": str(names.get(m, m)), "verdict": "",
             "chart": 0}
            for r in ideas.itertuples()
            for m in r.measure_ids.split(";")
            if m
        ],
        columns=["change", "measure_id", "name", "verdict", "chart"],
    )  # fmt: skip
    aim = str(rows["aim"].iloc[0]) if len(rows) else ""
    return DriverDiagram("", aim, ideas, links, statuses=SPREAD_STATUSES)
