"""Driver diagrams of workbook 03: each change idea marked by what the data say about it.

A driver diagram is a team's theory of change (IHI QI Essentials Toolkit: Driver Diagram;
Bennett & Provost, "What's your theory?", *Quality Progress*, 2015): the **aim**, the **primary
drivers** that must change to reach it, the **secondary drivers** under each, and the **change
ideas** the team tests in PDSA cycles. The ``drivers`` table holds the diagrams (one row per
change idea and measure that shows it; :mod:`qi_helpers.data.driver_checks` checks them).

Here each change idea of a microsystem's diagram gets its status from the PDSA log and the
verdicts of workbook 03 (:data:`IDEA_STATUSES`):

* ``not tested yet``: no PDSA cycle of the microsystem tests it;
* ``abandoned``: its last decisive cycle was closed with *abandon*;
* ``tested, a measure worsened``: one of its measures shows a special cause on the side of
  concern after the change (a cost to study before going on);
* ``tested and improved``: one of its measures shows a special cause on the side of improvement;
* ``tested, no signal yet``: cycles were run, and no measure shows a special cause yet.

:func:`change_idea_status` computes the statuses as a table; :func:`driver_diagram` gathers a
microsystem's diagram, its statuses, its measures (linked to their charts) and its cycles into a
:class:`DriverDiagram`, shown as accessible HTML (:mod:`qi_helpers.changes.driver_html`);
:func:`diagrams_present` says which microsystems (and whether the organisation) have a diagram.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from qi_helpers.changes.driver_html import diagram_html
from qi_helpers.changes.figures import charted_measures
from qi_helpers.changes.microsystem import MicrosystemAnalysis
from qi_helpers.changes.pdsa import changes_tested
from qi_helpers.data.driver_checks import diagram_of
from qi_helpers.privacy.screen import active_screen

__all__ = [
    "IDEA_STATUSES",
    "DriverDiagram",
    "change_idea_status",
    "change_ideas",
    "diagram_rows",
    "diagrams_present",
    "driver_diagram",
]

#: The status of a change idea in a microsystem's diagram, in the order a team reads them.
IDEA_STATUSES = (
    "tested and improved",
    "tested, a measure worsened",
    "tested, no signal yet",
    "not tested yet",
    "abandoned",
)

_IDEA_COLUMNS = [
    "primary_driver",
    "secondary_driver",
    "change",
    "measure_ids",
    "status",
    "detail",
]
_LINK_COLUMNS = ["change", "measure_id", "name", "verdict", "chart"]
_CYCLE_COLUMNS = ["cycle_id", "change", "start", "end", "decision", "prediction", "result"]


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series("", index=frame.index, dtype="string")
    return frame[column].astype("string").str.strip().fillna("")


def diagram_rows(drivers: pd.DataFrame | None, microsystem_id: str = "") -> pd.DataFrame:
    """The rows of one diagram: a microsystem's, or (``""``) the organisation's.

    Returns
    -------
    DataFrame
        ``aim, primary_driver, secondary_driver, change, measure_id`` (text, trimmed; an empty
        ``measure_id`` for a change idea without a measure), in the table's order.
    """
    columns = ["aim", "primary_driver", "secondary_driver", "change", "measure_id"]
    if drivers is None or drivers.empty:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in columns})
    mine = drivers[(diagram_of(drivers) == str(microsystem_id or "")).to_numpy(dtype=bool)]
    return pd.DataFrame({c: _text(mine, c) for c in columns}).reset_index(drop=True)


def diagrams_present(drivers: pd.DataFrame | None) -> pd.DataFrame:
    """Which microsystems have a driver diagram, and whether the organisation has one.

    The evidence "a driver diagram is present" for progress scores.

    Parameters
    ----------
    drivers : DataFrame or None
        The ``drivers`` table (None when the project has none).

    Returns
    -------
    DataFrame
        ``microsystem_id`` (``""`` for the organisation's diagram), ``aim``, ``change_ideas``
        (how many), ``measures`` (how many distinct measures), one row per diagram, sorted by
        ``microsystem_id``; empty without the table.
    """
    columns = ["microsystem_id", "aim", "change_ideas", "measures"]
    if drivers is None or drivers.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    table = pd.DataFrame(
        {
            "microsystem_id": diagram_of(drivers),
            "aim": _text(drivers, "aim"),
            "change": _text(drivers, "change"),
            "measure_id": _text(drivers, "measure_id").replace("", pd.NA),
        }
    )
    out = table.groupby("microsystem_id", sort=True).agg(
        aim=("aim", "first"),
        change_ideas=("change", lambda s: s[s != ""].nunique()),
        measures=("measure_id", "nunique"),
    )
    return out.reset_index()[columns]


def change_ideas(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per change idea of a diagram, in first-seen order.

    Parameters
    ----------
    rows : DataFrame
        A diagram's rows (:func:`diagram_rows`).

    Returns
    -------
    DataFrame
        ``change, primary_driver, secondary_driver, measure_ids`` (the idea's measures joined
        by ``;``, first-seen order, without repeats).
    """
    ideas = rows[rows["change"] != ""]
    return (
        ideas.groupby("change", sort=False)
        .agg(
            primary_driver=("primary_driver", "first"),
            secondary_driver=("secondary_driver", "first"),
            measure_ids=("measure_id", lambda s: ";".join(dict.fromkeys(s[s != ""]))),
        )
        .reset_index()
    )


def _status(test: pd.Series | None, verdicts: pd.Series) -> tuple[str, str]:
    """A change idea's status and the words behind it, from its test and its measures' verdicts."""
    if test is None:
        return "not tested yet", "no PDSA cycle yet"
    n = int(test["cycles"])
    cycles = f"{n} PDSA cycle{'s' if n != 1 else ''}"
    if test["status"] == "abandoned":
        return "abandoned", f"{cycles}, then abandoned"
    state = "adopted" if test["status"] == "adopted" else "still testing"
    found = set(verdicts.dropna())
    if "worsened" in found:
        return "tested, a measure worsened", f"{cycles}, {state}; a measure worsened"
    if "improved" in found:
        return "tested and improved", f"{cycles}, {state}"
    return "tested, no signal yet", f"{cycles}, {state}"


def change_idea_status(
    rows: pd.DataFrame, pdsa: pd.DataFrame, verdicts: pd.DataFrame
) -> pd.DataFrame:
    """The status of each change idea of one microsystem's diagram (:data:`IDEA_STATUSES`).

    Parameters
    ----------
    rows : DataFrame
        The diagram (:func:`diagram_rows`).
    pdsa : DataFrame
        The microsystem's PDSA log (``change`` names the change idea a cycle tests).
    verdicts : DataFrame
        Its verdict table (``measure_id, change, verdict``; workbook 03's
        ``MicrosystemAnalysis.verdicts``).

    Returns
    -------
    DataFrame
        ``primary_driver, secondary_driver, change, measure_ids`` (``;``-joined),
        ``status`` and ``detail`` (the cycles and the decision in words), one row per change
        idea in the diagram's order. The verdicts that count are those of the change idea's
        own measures (all its verdicts when it lists none).
    """
    ideas = change_ideas(rows)
    tests = changes_tested(pdsa) if len(pdsa) else pd.DataFrame(columns=["change"])
    tests = tests.assign(change=tests["change"].astype("string").str.strip())
    by_change = {c: r for c, r in tests.set_index("change").iterrows()}
    judged = verdicts[verdicts["change"].notna()] if "change" in verdicts.columns else verdicts
    statuses, details = [], []
    for idea in ideas.itertuples():
        own = judged[judged["change"].astype("string").str.strip() == idea.change]
        listed = [m for m in idea.measure_ids.split(";") if m]
        if listed:
            own = own[own["measure_id"].isin(listed)]
        status, detail = _status(by_change.get(idea.change), own["verdict"])
        statuses.append(status)
        details.append(detail)
    ideas = ideas.assign(status=statuses, detail=details)
    return ideas.reindex(columns=_IDEA_COLUMNS).reset_index(drop=True)


def _chart_numbers(analysis: MicrosystemAnalysis) -> dict[str, int]:
    """Each charted measure's place among the charts of ``plot_measures`` (1, 2, ...)."""
    charted = charted_measures(analysis)
    return {str(a.measure["measure_id"]): i for i, a in enumerate(charted, start=1)}


def _links(rows: pd.DataFrame, analysis: MicrosystemAnalysis, ideas: pd.DataFrame) -> pd.DataFrame:
    """One row per change idea and measure: the measure's name, its verdict, its chart."""
    names = dict(zip(analysis.measures["measure_id"], analysis.measures["name"], strict=True))
    charts = _chart_numbers(analysis)
    verdicts = analysis.verdicts
    judged = verdicts["change"].astype("string").str.strip().fillna("")
    tested = set(ideas.loc[ideas["status"] != "not tested yet", "change"])
    out = []
    for idea in ideas.itertuples():
        for mid in [m for m in idea.measure_ids.split(";") if m]:
            mine = (verdicts["measure_id"] == mid) & (judged == idea.change)
            found = verdicts[mine.to_numpy(dtype=bool)]
            if len(found):
                verdict = str(found["verdict"].iloc[-1])
            elif mid not in charts:
                verdict = "no data here"
            else:
                verdict = "not judged" if idea.change in tested else ""
            out.append(
                {
                    "change": idea.change,
                    "measure_id": mid,
                    "name": str(names.get(mid, mid)),
                    "verdict": verdict,
                    "chart": charts.get(mid, 0),
                }
            )
    return pd.DataFrame(out, columns=_LINK_COLUMNS)


def _cycles(pdsa: pd.DataFrame, ideas: pd.DataFrame) -> pd.DataFrame:
    """The PDSA cycles of the diagram's change ideas, by change idea then start."""
    if pdsa.empty:
        return pd.DataFrame(columns=_CYCLE_COLUMNS)
    cycles = pdsa.reindex(columns=_CYCLE_COLUMNS).copy()
    cycles["change"] = cycles["change"].astype("string").str.strip()
    order = {c: i for i, c in enumerate(ideas["change"])}
    cycles = cycles[cycles["change"].isin(list(order))]
    cycles = cycles.assign(_o=cycles["change"].map(order)).sort_values(
        ["_o", "start"], kind="stable"
    )
    return cycles.drop(columns="_o").reset_index(drop=True)


@dataclass(repr=False)
class DriverDiagram:
    """One driver diagram with what the data say about each change idea.

    Shown as HTML (a tree read left to right: aim, primary drivers, secondary drivers, change
    ideas) when it is a cell's value; the tables hold the same content.

    Attributes
    ----------
    microsystem_id : str
        Whose diagram (``""``: the organisation's).
    aim : str
    ideas : DataFrame
        :func:`change_idea_status` (or, for the organisation, the spread status of each idea).
    links : DataFrame
        ``change, measure_id, name, verdict, chart``: the measures of each change idea, their
        verdict for it and the number of their chart on the page (0: none).
    cycles : DataFrame
        ``cycle_id, change, start, end, decision, prediction, result``: the PDSA cycles of the
        change ideas (linked from the diagram).
    statuses : tuple of str
        The statuses ``ideas`` uses, in the order of the legend.
    """

    microsystem_id: str
    aim: str
    ideas: pd.DataFrame
    links: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_LINK_COLUMNS))
    cycles: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_CYCLE_COLUMNS))
    statuses: tuple[str, ...] = IDEA_STATUSES

    def __repr__(self) -> str:
        whose = self.microsystem_id or "the organisation"
        counts = self.ideas["status"].value_counts()
        said = ", ".join(f"{n} {s}" for s, n in counts.items())
        return f"Driver diagram of {whose}: {len(self.ideas)} change idea(s) ({said})"

    def _repr_html_(self) -> str:
        # Text from data is screened for identifiers, as every displayed table is.
        aim = _screened(pd.DataFrame({"aim": [self.aim]}))["aim"].iloc[0]
        ideas, links, cycles = (_screened(f) for f in (self.ideas, self.links, self.cycles))
        return diagram_html(self.microsystem_id, str(aim), ideas, links, cycles, self.statuses)


def _screened(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the active identifier screen applied (as every displayed table is)."""
    screen = active_screen()
    if screen is None or frame.empty:
        return frame
    return screen.redact_frame(frame)[0]


def driver_diagram(analysis: MicrosystemAnalysis, drivers: pd.DataFrame | None) -> DriverDiagram:
    """A microsystem's driver diagram, each change idea marked by its PDSA cycles and verdicts.

    Parameters
    ----------
    analysis : MicrosystemAnalysis
        Workbook 03's analysis of the microsystem (its PDSA log, verdicts and charts).
    drivers : DataFrame or None
        Its driver diagram (the slice's ``drivers``) or the whole ``drivers`` table; None when
        the project has none.

    Returns
    -------
    DriverDiagram
        With no change idea (and an aim of ``""``) when the microsystem has no diagram: its HTML
        then says how to add one.
    """
    rows = diagram_rows(drivers, analysis.microsystem_id)
    aim = str(rows["aim"].iloc[0]) if len(rows) else ""
    ideas = change_idea_status(rows, analysis.pdsa, analysis.verdicts)
    links = _links(rows, analysis, ideas)
    cycles = _cycles(analysis.pdsa, ideas)
    return DriverDiagram(analysis.microsystem_id, aim, ideas, links, cycles)
