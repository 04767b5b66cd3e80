"""The workbooks' explorers (``qi_helpers.widgets``), driven from Python as a coach drives them.

Each test builds an explorer with ``interactive=True`` on the demo project's data, moves a
control and checks that what the explorer shows changed the way a coach expects. Outside a
kernel nothing routes ``display`` into an ``Output`` widget, so the :class:`FrontEnd` fixture
plays JupyterLab's part: what is displayed inside ``with output:`` becomes that widget's
``outputs`` (the same mime bundles a kernel sends), and the objects themselves are kept in
``output.shown`` for the assertions. The last test executes workbook 03 in batch, as ``qi run``
does, and checks the report is static.
"""

from __future__ import annotations

import base64
import re

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from support import WIDGET_MIME, prepare_lab_project, run_workbook

from qi_helpers.widgets import identify_explorer, pilot_explorer, spread_explorer

# Imported under another name: pytest would collect a function called test... as a test.
from qi_helpers.widgets import tests_of_change_explorer as change_explorer

# --- a stand-in for the front end -----------------------------------------------------------


class FrontEnd:
    """Route ``display`` inside ``with output:`` into the Output widget, as JupyterLab does."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import IPython.display
        import ipywidgets
        from IPython.core.formatters import DisplayFormatter
        from IPython.core.pylabtools import print_figure

        # The kernel's formatter, with figures as PNG as the inline backend shows them (a
        # private one: no global IPython shell is created in the test process).
        self.formatter = DisplayFormatter()
        self.formatter.formatters["image/png"].for_type(
            plt.Figure, lambda figure: print_figure(figure, "png")
        )
        self.active: list = []
        front = self

        def enter(output):
            front.active.append(output)
            return output

        def exit_(output, *exc):
            front.active.pop()
            return None  # an error in a render function fails the test

        def clear_output(output, *args, **kwargs):
            output.outputs = ()
            output.shown = []

        monkeypatch.setattr(ipywidgets.Output, "__enter__", enter)
        monkeypatch.setattr(ipywidgets.Output, "__exit__", exit_)
        monkeypatch.setattr(ipywidgets.Output, "clear_output", clear_output)
        monkeypatch.setattr(IPython.display, "display", self.display)

    def display(self, *objs, **kwargs) -> None:
        for obj in objs:
            if hasattr(obj, "_ipython_display_"):
                obj._ipython_display_()  # e.g. several items shown one after the other
            elif self.active:
                output = self.active[-1]
                data, metadata = self.formatter.format(obj)
                bundle = {"output_type": "display_data", "data": data, "metadata": metadata}
                output.outputs = (*output.outputs, bundle)
                output.shown = [*getattr(output, "shown", []), obj]


@pytest.fixture()
def front(monkeypatch):
    yield FrontEnd(monkeypatch)
    plt.close("all")


def shown(box, kind: type) -> list:
    """The objects of type ``kind`` the explorer's output area shows now."""
    return [obj for obj in getattr(box.output, "shown", []) if isinstance(obj, kind)]


#: A chart for people (qi_helpers.chart_display): its PNG inline in an HTML figure.
CHART_PNG = re.compile(r'<figure class="qi-chart"><img src="data:image/png;base64,([^"]+)"')


def pngs(box) -> list[bytes]:
    """The PNG images in the explorer's output area (what the browser draws): PNG outputs and
    the charts shown as HTML figures."""
    found = []
    for o in box.output.outputs:
        data = o.get("data", {})
        if "image/png" in data:
            found.append(base64.b64decode(data["image/png"]))
        found += [base64.b64decode(b) for b in CHART_PNG.findall(data.get("text/html", ""))]
    return found


def title(figure) -> str:
    """A chart's title, wherever it is placed (left, centre or right)."""
    axes = figure.axes[0]
    return " ".join(axes.get_title(loc=loc) for loc in ("left", "center", "right")).strip()


def markdown(box) -> str:
    return "\n".join(o["data"].get("text/markdown", "") for o in box.output.outputs)


# --- the data every explorer works on ---------------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory, demo_tables):
    """The demo project with workbook 01's outputs (registry and membership)."""
    from qi_helpers.project import load_project

    return load_project(prepare_lab_project(tmp_path_factory, demo_tables))


@pytest.fixture(scope="module")
def measured(project):
    """Tables, cases and weekly series as workbooks 02 and 03 compute them."""
    from qi_helpers.changes import assign_microsystems, measure_series

    tables = project.load_tables("measures", "measure_events", "pdsa", "readiness")
    observations = project.load_table("observations", required=False)
    membership = project.membership()
    cases = assign_microsystems(tables["measure_events"], membership, period="week")
    series = measure_series(cases, tables["measures"], observations, period="week")
    return {"tables": tables, "membership": membership, "cases": cases, "series": series}


# --- 01: identify -----------------------------------------------------------------------------


def test_identify_explorer_reclusters_when_a_slider_moves(front, demo_tables):
    box = identify_explorer(
        demo_tables["activities"],
        demo_tables["staff"],
        min_shared_patients=6,
        resolution=1.0,
        min_weekly_volume=20,
        seed=0,
        interactive=True,
    )
    assert set(box.controls) == {"min_shared_patients", "resolution", "min_weekly_volume"}
    first_registry = shown(box, pd.DataFrame)[0]
    first_network = pngs(box)
    assert "ties of at least 6 shared patients" in markdown(box)
    assert len(first_network) == 1 and len(first_registry) > 1

    # A higher minimum weekly volume: clusters too small to measure merge into neighbours.
    box.controls["min_weekly_volume"].value = 200.0
    merged = shown(box, pd.DataFrame)[0]
    assert "minimum of 200 activities a week" in markdown(box)
    assert re.search(r"[1-9]\d* merge\(s\)", markdown(box))
    assert len(merged) < len(first_registry)
    assert pngs(box) != first_network

    # No minimum: every cluster is measurable on its own.
    box.controls["min_weekly_volume"].value = 0.0
    assert shown(box, pd.DataFrame)[0]["measurable"].all()
    assert not first_registry["measurable"].all()

    box.controls["resolution"].value = 2.5
    assert "resolution 2.5" in markdown(box)


def test_profile_cards_show_one_picture_or_every_card_as_html(front, demo_tables):
    from qi_helpers.identify.microsystems import identify
    from qi_helpers.identify.profiles import profile
    from qi_helpers.widgets import profile_cards

    acts, staff = demo_tables["activities"], demo_tables["staff"]
    found = identify(acts, staff, min_shared_patients=6, min_weekly_volume=20)
    profiles = profile(found, acts, staff, demo_tables["patients"])
    ids = sorted(profiles.summary["microsystem_id"])
    box = profile_cards(profiles, interactive=True)
    assert box.controls["microsystem"].value == ids[0]
    first = pngs(box)
    assert len(first) == 1  # one card, drawn

    box.controls["microsystem"].value = ids[1]
    assert len(pngs(box)) == 1 and pngs(box) != first

    box.controls["microsystem"].value = "(all)"
    assert not pngs(box)
    html = "".join(o["data"].get("text/html", "") for o in box.output.outputs)
    assert html.count('<div class="qi-card"') == len(ids)
    assert all(f'<h4 class="qi-card-title">{ms}:' in html for ms in ids)


# --- 02: pilots -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def criteria_table(project, measured):
    from qi_helpers.pilots import candidate_profiles, criteria, readiness_by_microsystem

    settings = project.settings("pilots")
    tables, membership = measured["tables"], measured["membership"]
    return criteria(
        project.read_output("registry"),
        measured["series"],
        readiness_by_microsystem(tables["readiness"], membership["staff"]),
        measure_id=settings["measure_id"],
        target=settings.get("target"),
        effect=settings.get("effect", 0.2),
        rules=settings.get("rules", "anhoej"),
        seed=settings.get("seed", 0),
        measures=tables["measures"],
        profiles=candidate_profiles(project, membership),
        baseline_periods=settings["baseline_periods"],
        as_of=settings.get("as_of"),
    )


def test_pilot_explorer_reranks_when_a_weight_moves(front, project, criteria_table):
    from qi_helpers.pilots import CRITERIA

    weights = project.settings("pilots")["weights"]
    box = pilot_explorer(criteria_table, weights, k=3, interactive=True)
    names = [c for c in CRITERIA if c in criteria_table.columns]
    assert set(box.controls) == {*names, "k"}
    first = shown(box, pd.DataFrame)[0]
    assert int(first["selected"].sum()) == 3
    assert len(pngs(box)) == 1

    # All the weight on one criterion: the ranking follows that criterion alone.
    lead = next(c for c in names if criteria_table[c].nunique() > 2)
    for name in names:
        box.controls[name].value = 1.0 if name == lead else 0.0
    ranked = shown(box, pd.DataFrame)[0]
    scores = ranked[lead].fillna(-1).tolist()
    assert scores == sorted(scores, reverse=True)
    assert ranked["microsystem_id"].tolist() != first["microsystem_id"].tolist()

    box.controls["k"].value = 5
    assert int(shown(box, pd.DataFrame)[0]["selected"].sum()) == 5

    for name in names:
        box.controls[name].value = 0.0
    assert shown(box, pd.DataFrame) == []
    assert "at least one criterion" in str(box.output.outputs)


# --- 03: tests of change ----------------------------------------------------------------------


def test_tests_of_change_explorer_redraws_for_the_picked_measure(front, measured):
    tables, series = measured["tables"], measured["series"]
    microsystem = "NOR-PC1"
    box = change_explorer(
        measured["cases"],
        series,
        tables["measures"],
        tables["pdsa"],
        microsystem_id=microsystem,
        interactive=True,
    )
    assert set(box.controls) == {"microsystem_id", "measure_id", "rules", "chart", "show_95"}
    pick = box.controls["measure_id"]
    own = set(series.loc[series["microsystem_id"] == microsystem, "measure_id"])
    assert {value for _, value in pick.options} == own and len(own) >= 2
    first_chart = pngs(box)
    first_title = title(shown(box, plt.Figure)[0])
    assert len(first_chart) == 1

    other = next(value for _, value in pick.options if value != pick.value)
    other_name = tables["measures"].set_index("measure_id").loc[other, "name"]
    pick.value = other
    figure = shown(box, plt.Figure)[0]
    assert other_name in title(figure)
    assert title(figure) != first_title
    assert pngs(box) != first_chart
    verdicts = shown(box, pd.DataFrame)[0]
    assert "verdict" in verdicts.columns and len(verdicts) >= 1

    # The 95% (2-sigma) limits add lines to the chart.
    lines = len(figure.axes[0].lines)
    before = pngs(box)
    box.controls["show_95"].value = True
    assert len(shown(box, plt.Figure)[0].axes[0].lines) > lines
    assert pngs(box) != before

    # Another microsystem: the measures offered are that microsystem's.
    elsewhere = next(m for m in sorted(series["microsystem_id"].unique()) if m != microsystem)
    box.controls["microsystem_id"].value = elsewhere
    offered = {value for _, value in box.controls["measure_id"].options}
    assert offered == set(series.loc[series["microsystem_id"] == elsewhere, "measure_id"])
    assert pngs(box) != before


def test_tests_of_change_explorer_offers_the_chart_types_that_suit_the_measure(front, measured):
    from qi_helpers.changes import compatible_charts

    tables = measured["tables"]
    box = change_explorer(
        measured["cases"],
        measured["series"],
        tables["measures"],
        tables["pdsa"],
        microsystem_id="NOR-PC1",
        interactive=True,
    )
    measures = tables["measures"]
    measure = measures[measures["measure_id"] == box.controls["measure_id"].value].iloc[0]
    charts = [value for _, value in box.controls["chart"].options]
    assert charts == ["", *compatible_charts(measure)]
    before = pngs(box)
    box.controls["chart"].value = next(c for c in charts[1:] if c != measure["chart"])
    assert pngs(box) != before


# --- 04: spread -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def candidate_table(project, measured):
    """Candidates for spread from the verdicts of the microsystems that ran PDSA cycles."""
    from qi_helpers.changes import analyse_microsystem
    from qi_helpers.pilots.readiness import readiness_by_microsystem
    from qi_helpers.spread import all_candidates, spread_profiles

    tables, series = measured["tables"], measured["series"]
    tested = sorted(set(tables["pdsa"]["microsystem_id"]) & set(series["microsystem_id"]))
    results = pd.concat(
        [
            analyse_microsystem(
                measured["cases"], series, tables["measures"], tables["pdsa"], microsystem_id=m
            ).verdicts
            for m in tested
        ],
        ignore_index=True,
    )
    return all_candidates(
        project.read_output("registry"),
        spread_profiles(project),
        results,
        readiness_by_microsystem(tables["readiness"], measured["membership"]["staff"]),
        measures=tables["measures"],
        weights=project.settings("spread").get("weights"),
    )


def test_spread_explorer_replans_the_waves(front, candidate_table):
    largest = int(candidate_table.groupby("change").size().max())
    assert largest >= 4, "the demo should have a change with several candidate adopters"
    box = spread_explorer(candidate_table, start="2026-01-05", waves=3, interactive=True)
    assert set(box.controls) == {"waves", "wave_size", "wave_length_weeks"}
    plan = shown(box, pd.DataFrame)[0]
    assert plan["wave"].max() == 3
    first_chart = pngs(box)
    assert len(first_chart) == 1

    box.controls["waves"].value = 2
    plan = shown(box, pd.DataFrame)[0]
    assert plan["wave"].max() == 2
    assert pngs(box) != first_chart

    box.controls["wave_size"].value = 1  # a wave size wins over the number of waves
    plan = shown(box, pd.DataFrame)[0]
    assert plan.groupby(["change", "wave"]).size().max() == 1
    assert plan["wave"].max() == largest

    starts = pd.to_datetime(plan.loc[plan["wave"] == 2, "wave_start"]).unique()
    box.controls["wave_length_weeks"].value = 4
    plan = shown(box, pd.DataFrame)[0]
    later = pd.to_datetime(plan.loc[plan["wave"] == 2, "wave_start"]).unique()
    assert later.min() < starts.min()


# --- batch: the same cells show static results ------------------------------------------------


@pytest.mark.slow
def test_workbook_03_in_batch_shows_static_charts_and_no_widgets(tmp_path_factory, demo_tables):
    """``qi run`` passes interactive=False: the report needs no kernel to show the explorer."""
    root = prepare_lab_project(tmp_path_factory, demo_tables)
    out = tmp_path_factory.mktemp("batch") / "03_NOR-PC1.ipynb"
    notebook = run_workbook(
        root,
        "03_analyse_tests.ipynb",
        out,
        interactive=False,
        microsystem_id="NOR-PC1",
    )
    outputs = [o for c in notebook["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    mimes = [m for o in outputs for m in o.get("data", {})]
    assert WIDGET_MIME not in mimes
    assert [o for o in outputs if o["output_type"] == "error"] == []
    explorer_cells = [
        c
        for c in notebook["cells"]
        if c["cell_type"] == "code" and "tests_of_change_explorer(" in "".join(c["source"])
    ]
    assert len(explorer_cells) == 1, "workbook 03 calls the explorer in one cell"

    # Charts show as HTML figures, the PNG inline with its alt text and caption
    # (qi_helpers.chart_display), in the notebook as on the page.
    def charts(cell_outputs) -> int:
        html = ["".join(o.get("data", {}).get("text/html", "")) for o in cell_outputs]
        return sum(
            h.count('<figure class="qi-chart"><img src="data:image/png;base64,') for h in html
        )

    assert charts(explorer_cells[0]["outputs"]) == 1, "the explorer's cell shows the static chart"
    assert charts(outputs) >= 3


def test_an_empty_table_is_shown_as_a_sentence():
    from IPython.display import Markdown

    from qi_helpers.notebook_display import table_or_note

    full = pd.DataFrame({"a": [1]})
    assert table_or_note(full, "none") is full
    shown = table_or_note(full.iloc[:0], "No group was split or merged.")
    assert isinstance(shown, Markdown) and shown.data == "No group was split or merged."
