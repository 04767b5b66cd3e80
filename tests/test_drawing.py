"""What figures draw: no identifier of the active screen, and ``$``/``\\`` shown as themselves.

Every public plotting function (and the explorers' figures) is fed names, ids and labels that
carry a patient id of the active screen inside other text (cycle ``C7-P000123``, ``MRN:000101``
with its punctuation) and mathtext that matplotlib cannot parse. Each figure is then drawn the
ways a workbook draws it (PNG, IPython's PNG display) and as SVG with text kept as text, and what
was drawn is searched: the Text artists after the draw (tick labels are set while drawing) and
the SVG's text. ``qi_helpers.drawing`` is imported inside the tests that exercise it directly,
so that the figure tests also run against code without it (and fail there for what they test).
"""

from __future__ import annotations

import dataclasses
import io
import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.table import Table  # noqa: E402
from matplotlib.text import Text  # noqa: E402

import qi_helpers  # noqa: E402
from qi_helpers import privacy  # noqa: E402
from qi_helpers.changes.figures import (  # noqa: E402
    plot_change,
    plot_measures,
    plot_pdsa_timeline,
    plot_subgroups,
)
from qi_helpers.identify.figures import plot_profile_card, plot_staff_network  # noqa: E402
from qi_helpers.pilots.figures import plot_criteria_heatmap, plot_pilot_baselines  # noqa: E402
from qi_helpers.spc.plots import plot_qic, plot_qic_facets  # noqa: E402
from qi_helpers.spc.qic import qic  # noqa: E402
from qi_helpers.spread.figures import plot_adoption_curve, plot_sustain, plot_waves  # noqa: E402

#: The package as imported (the tests may run against another checkout on PYTHONPATH).
SRC = Path(qi_helpers.__file__).resolve().parent

#: Patient ids of the screen: one plain, one with punctuation (as an organisation writes it).
PATIENT = "P000123"
MRN = "MRN:000101"
PATIENTS = [PATIENT, MRN, "P000124", "MRN:000102"]
#: What must not be found in anything drawn (the ids, and their digits without the prefix).
FORBIDDEN = (PATIENT, "000123", MRN, "MRN000101", "000101")
#: Mathtext that matplotlib cannot parse (an even number of ``$``, an unknown ``\temp``), and
#: a backslash outside it.
MATH = r"$x^2$ and $$ C:\temp"
MARKER = privacy.REDACTED


def named(text: str) -> str:
    """A name from data carrying a patient id inside other text and unparsable mathtext."""
    return f"{text} for {MRN} {MATH}"


@pytest.fixture(autouse=True)
def screen():
    """The screen a loaded project registers, built from a patients table."""
    active = privacy.IdentifierScreen.from_tables(
        {"patients": pd.DataFrame({"patient_id": PATIENTS})}
    )
    privacy.set_active_screen(active)
    yield active
    privacy.set_active_screen(None)


def _texts(fig: Figure) -> list[str]:
    """The text of every Text artist of a drawn figure, table cells included."""
    found = [t.get_text() for t in fig.findobj(Text)]
    for table in fig.findobj(Table):
        found += [cell.get_text().get_text() for cell in table.get_celld().values()]
    return found


def _svg_text(fig: Figure) -> str:
    """The text the SVG of the figure shows (fonts not turned into paths: text stays text)."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    root = ET.fromstring(buffer.getvalue())
    return "\n".join("".join(el.itertext()) for el in root.iter("{http://www.w3.org/2000/svg}text"))


def drawn(fig: Figure) -> str:
    """Draw ``fig`` as a workbook does and return all the text it drew (one string).

    Checks that drawing raises nothing, and that no identifier is in the drawn Text artists or
    in the SVG's text.
    """
    from IPython.core.pylabtools import print_figure

    assert isinstance(fig, Figure)
    fig.savefig(io.BytesIO(), format="png")
    print_figure(fig, "png", bbox_inches="tight")  # what a notebook shows (notebook_display)
    texts = _texts(fig)
    svg = _svg_text(fig)
    everything = "\n".join(texts) + "\n" + svg
    for forbidden in FORBIDDEN:
        assert forbidden not in everything, (forbidden, [t for t in texts if forbidden in t])
    assert MARKER in svg
    assert getattr(fig, "redactions", 0) > 0
    return svg


def shows_math_as_text(svg: str) -> None:
    """The mathtext of :data:`MATH` is drawn as its own characters (with fonttype none,
    mathtext would be drawn glyph by glyph, so the string would not appear)."""
    assert "$x^2$ and $$" in svg
    assert r"C:\temp" in svg


# ---- the figures of figures.py ----------------------------------------------------------------


def _pdsa() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "microsystem_id": "X",
            "cycle_id": [f"C7-{PATIENT}", f"C8-{MRN}", "X-03"],
            "change": [named("Huddle"), named("Huddle"), named("Recall")],
            "start": pd.to_datetime(["2024-07-29", "2024-09-02", "2025-01-06"]),
            "end": pd.to_datetime(["2024-08-26", pd.NaT, pd.NaT]),
            "decision": ["adapt", "adopt", "abandon"],
            "measure_ids": "m",
        }
    )


def test_pdsa_timeline_draws_no_cycle_id_of_a_patient():
    fig = plot_pdsa_timeline(_pdsa(), end="2025-06-30", start="2024-01-01")
    svg = drawn(fig)
    shows_math_as_text(svg)


def _series(n_periods: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    periods = pd.date_range("2024-01-01", periods=n_periods, freq="W-MON")
    levels = np.r_[np.full(30, 0.5), np.full(n_periods - 30, 0.7)]
    num = rng.binomial(400, levels)
    return pd.DataFrame(
        {"microsystem_id": "X", "measure_id": "m", "period": periods, "numerator": num,
         "denominator": 400, "value": num / 400, "n_cases": 400}
    )  # fmt: skip


MEASURES = pd.DataFrame(
    [{"measure_id": "m", "name": named("Seen within"), "family": "outcome", "chart": "p",
      "improvement": "up", "multiply": 100, "target": 90.0, "aim": "effective", "balances": "",
      "unit": named("% of")}]
)  # fmt: skip


def _analysis():
    from qi_helpers.changes.analysis import analyse

    return analyse(_series(), MEASURES.iloc[0], _pdsa())


def test_plot_change_draws_no_identifier_and_plain_dollars():
    item = _analysis()
    assert len(item.annotations) and len(item.tested)  # the labels and the abandoned window
    svg = drawn(plot_change(item, show_95=True))
    shows_math_as_text(svg)


def test_plot_measures_draws_no_identifier():
    item = _analysis()
    charts = plot_measures(SimpleNamespace(analyses=[item, item]))
    assert len(charts) == 2  # one figure per measure
    for fig in charts:
        shows_math_as_text(drawn(fig))
    # the captions and alt text, as a notebook shows them (one HTML figure each), are screened
    bundle = charts._repr_mimebundle_()
    for forbidden in FORBIDDEN:
        assert forbidden not in bundle["text/html"] and forbidden not in bundle["text/plain"]
    assert bundle["text/html"].count("<figcaption>") == 2
    assert MARKER in bundle["text/plain"]


def test_plot_subgroups_draws_no_identifier():
    rows = []
    for dimension, subgroup, effect in (
        ("all", "all", 5.0),
        ("age_band", named("65+"), 4.0),
        ("deprivation", f"quintile {PATIENT}", -1.0),
    ):
        rows.append(
            {"measure_id": "m", "name": named("Seen within"), "change": named("Huddle"),
             "dimension": dimension, "subgroup": subgroup, "n_baseline": 50, "n_after": 60,
             "effect": effect, "effect_low": effect - 2, "effect_high": effect + 2,
             "effect_kind": "difference", "flag": effect < 0}
        )  # fmt: skip
    svg = drawn(plot_subgroups(pd.DataFrame(rows)))
    shows_math_as_text(svg)


def _ranked() -> pd.DataFrame:
    from qi_helpers.pilots import CRITERIA

    rng = np.random.default_rng(3)
    ids = [f"WARD-{PATIENT}", named("Clinic"), "HIL-PC1"]
    table = pd.DataFrame(rng.uniform(size=(3, len(CRITERIA))), columns=list(CRITERIA))
    return table.assign(
        microsystem_id=ids, site="S", kind="ward", score=[0.9, 0.8, 0.1], rank=[1, 2, 3],
        selected=[True, True, False],
    )  # fmt: skip


def test_plot_criteria_heatmap_draws_no_identifier():
    svg = drawn(plot_criteria_heatmap(_ranked()))
    shows_math_as_text(svg)


def _facetted() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    frames = [
        pd.DataFrame(
            {
                "microsystem_id": ms,
                "period": pd.date_range("2024-01-01", periods=20, freq="W-MON"),
                "value": rng.normal(10, 1, 20),
            }
        )  # fmt: skip
        for ms in (f"WARD-{PATIENT}", named("Clinic"))
    ]
    return qic(pd.concat(frames), "period", "value", chart="i", facets="microsystem_id")


def test_plot_pilot_baselines_draws_no_identifier():
    charts = _facetted()
    charts.attrs["pilots"] = {"name": named("Seen within"), "unit": MATH, "improvement": "up"}
    svg = drawn(plot_pilot_baselines(charts))
    shows_math_as_text(svg)


def _candidates() -> pd.DataFrame:
    return pd.DataFrame(
        {"change": [named("Huddle")] * 3 + ["Recall"] * 2,
         "microsystem_id": [f"WARD-{PATIENT}", "HIL-PC1", named("Clinic"), "A", "B"],
         "score": [0.9, 0.8, 0.7, 0.6, 0.5]}
    )  # fmt: skip


def test_plot_waves_draws_no_identifier():
    from qi_helpers.spread import plan

    svg = drawn(plot_waves(plan(_candidates(), waves=2, start="2025-01-06")))
    shows_math_as_text(svg)


def test_plot_adoption_curve_draws_no_identifier():
    dates = pd.to_datetime(["2025-01-06", "2025-03-31", "2025-06-23"])
    curve = pd.concat(
        [
            pd.DataFrame({"change": change, "date": dates, "kind": ["actual", "planned", "planned"],
                          "share": [0.2, 0.6, 1.0], "wave": [1, 2, 3], "targeted": 5})
            for change in (named("Huddle"), f"Recall {PATIENT}")
        ]
    )  # fmt: skip
    svg = drawn(plot_adoption_curve(curve))
    shows_math_as_text(svg)


def _adopter_chart(seed: int) -> pd.DataFrame:
    """An i chart of 30 weeks with a phase after week 15 (an adopter's sustain chart)."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {"period": pd.date_range("2024-01-01", periods=30, freq="W-MON"),
         "value": rng.normal(10, 1, 30)}
    )  # fmt: skip
    return qic(data, "period", "value", chart="i", part=[15])


def test_plot_sustain_draws_no_identifier():
    chart = _adopter_chart(9)
    verdicts = pd.DataFrame(
        {"microsystem_id": [f"WARD-{PATIENT}", named("Clinic")], "change": named("Huddle"),
         "measure_id": "m", "name": named("Seen within"), "improvement": "up",
         "adopted": pd.Timestamp("2024-04-15"), "verdict": "holding"}
    )  # fmt: skip
    charts = {(r.microsystem_id, r.change, r.measure_id): chart for r in verdicts.itertuples()}
    svg = drawn(plot_sustain(SimpleNamespace(verdicts=verdicts, charts=charts)))
    shows_math_as_text(svg)


def _identification() -> SimpleNamespace:
    ids = [f"WARD-{PATIENT}", named("Clinic"), "HIL-PC1"]
    staff = pd.DataFrame(
        {"staff_id": [f"S{i:05d}" for i in range(9)], "microsystem_id": np.repeat(ids, 3),
         "share": 1.0}
    )  # fmt: skip
    ties = pd.DataFrame(
        {"staff_a": ["S00000", "S00001", "S00003"], "staff_b": ["S00001", "S00004", "S00007"],
         "shared_patients": [10, 6, 8]}
    )  # fmt: skip
    return SimpleNamespace(staff=staff, registry=pd.DataFrame({"microsystem_id": ids}), ties=ties)


@pytest.mark.parametrize("max_nodes", [1500, 2])  # every staff member, or only the teams' ties
def test_plot_staff_network_draws_no_identifier(max_nodes):
    svg = drawn(plot_staff_network(_identification(), max_nodes=max_nodes))
    shows_math_as_text(svg)


def _hostile_profiles(profiles):
    """The first microsystem's names, activities and categories carry an id and mathtext."""
    ms = profiles.summary["microsystem_id"].iloc[0]
    summary = profiles.summary.copy()
    mine = summary["microsystem_id"] == ms
    summary.loc[mine, ["name", "purpose", "role_mix"]] = named("Team")
    mix = profiles.mix.copy()
    hostile = (mix["microsystem_id"] == ms) & (mix["dimension"] != "day_of_week")
    mix.loc[hostile, "category"] = mix.loc[hostile, "category"] + f" {PATIENT} {MATH}"
    return dataclasses.replace(profiles, summary=summary, mix=mix), ms


def test_plot_profile_card_draws_no_identifier(profiles):
    hostile, ms = _hostile_profiles(profiles)
    svg = drawn(plot_profile_card(hostile, ms))
    shows_math_as_text(svg)


# ---- charts.py ---------------------------------------------------------------------------------


def _categorical() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    labels = [f"visit {i}" for i in range(12)]
    labels[3], labels[7] = f"C7-{PATIENT}", named("week")
    return pd.DataFrame(
        {"visit": labels, "value": rng.normal(10, 1, 12),
         "notes": [None] * 5 + [f"seen {MRN}", MATH] + [None] * 5}
    )  # fmt: skip


def test_plot_qic_on_categories_draws_no_identifier():
    data = _categorical()
    result = qic(data, "visit", "value", chart="i", notes="notes")
    notes = pd.DataFrame({"date": [f"C7-{PATIENT}"], "label": [named("Huddle")]})
    svg = drawn(plot_qic(result, title=named("Waits"), annotations=notes))
    shows_math_as_text(svg)


def test_plot_qic_facets_draws_no_identifier():
    svg = drawn(plot_qic_facets(_facetted(), title=named("Waits")))
    shows_math_as_text(svg)


# ---- the explorers' figures --------------------------------------------------------------------


def test_tests_of_change_explorer_chart_draws_no_identifier():
    from qi_helpers.widgets import tests_of_change_explorer

    cases = pd.DataFrame({"microsystem_id": pd.Series(dtype=str)})
    fig = tests_of_change_explorer(
        cases, _series(), MEASURES, _pdsa(), microsystem_id="X", interactive=False
    )
    shows_math_as_text(drawn(fig))


def test_spread_explorer_chart_draws_no_identifier():
    from qi_helpers.widgets import spread_explorer

    fig, _table = spread_explorer(_candidates(), start="2025-01-06", waves=2, interactive=False)
    shows_math_as_text(drawn(fig))


def test_pilot_explorer_heatmap_draws_no_identifier(monkeypatch):
    import IPython.display

    from qi_helpers.pilots import CRITERIA
    from qi_helpers.widgets import pilot_explorer

    shown: list = []
    monkeypatch.setattr(IPython.display, "display", lambda item: shown.append(item))
    pilot_explorer(_ranked().drop(columns=["score", "rank", "selected"]),
                   dict.fromkeys(CRITERIA, 1.0), k=2, interactive=True)  # fmt: skip
    (fig,) = [item for item in shown if isinstance(item, Figure)]
    shows_math_as_text(drawn(fig))


def test_profile_card_explorer_and_shown_draw_no_identifier(profiles, monkeypatch):
    import IPython.display

    from qi_helpers.widgets import profile_cards
    from qi_helpers.widgets.identify import Shown

    shown: list = []
    monkeypatch.setattr(IPython.display, "display", lambda item: shown.append(item))
    hostile, ms = _hostile_profiles(profiles)
    box = profile_cards(hostile, [ms], interactive=True)
    (fig,) = box.rendered.items
    box.rendered._ipython_display_()  # drawn to PNG as the explorer shows it
    shows_math_as_text(drawn(fig))
    # the staff network of identify_explorer is shown the same way
    Shown(plot_staff_network(_identification()))._ipython_display_()


# ---- names from data never break drawing -------------------------------------------------------

names = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("$\\{}^_%#&~<>\"'`*[]()\n\t\r\x00\x07 ")),
        st.characters(),  # lone surrogates included
    ),
    min_size=0,
    max_size=24,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(changes=st.lists(names, min_size=1, max_size=3), cycle=names)
def test_any_name_from_data_draws(changes, cycle):
    pdsa = pd.DataFrame(
        {"cycle_id": [f"{cycle}-{i}" for i in range(len(changes))] + [cycle],
         "change": changes + [changes[0]],
         "start": pd.date_range("2024-01-01", periods=len(changes) + 1, freq="MS"),
         "decision": "adopt"}
    )  # fmt: skip
    categories = pd.DataFrame(
        {"x": [f"{i}{c}" for i, c in enumerate(changes * 4)], "y": np.arange(len(changes) * 4.0)}
    )
    plan = pd.DataFrame(
        {"change": changes, "microsystem_id": [cycle] * len(changes), "wave": 1,
         "wave_start": pd.Timestamp("2025-01-06"), "wave_end": pd.Timestamp("2025-03-31")}
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # glyphs missing from the font are only a warning
        for fig in (
            plot_pdsa_timeline(pdsa),
            plot_qic(qic(categories, "x", "y"), title=cycle),
            plot_waves(plan),
        ):
            fig.savefig(io.BytesIO(), format="png")
            _svg_text(fig)


# ---- the drawing helper itself -----------------------------------------------------------------


def test_without_a_screen_only_the_mathtext_protection_applies():
    from qi_helpers.drawing import subplots

    privacy.set_active_screen(None)
    fig, ax = subplots()
    ax.set_title(f"{PATIENT} {MATH}")
    ax.bar([f"{PATIENT} a", "b"], [1, 2])
    svg = _svg_text(fig)
    assert f"{PATIENT} {MATH}" in svg and f"{PATIENT} a" in svg
    assert fig.redactions == 0


def test_every_kind_of_text_is_screened_and_counted_once_per_draw():
    from matplotlib.offsetbox import AnchoredText
    from matplotlib.ticker import FuncFormatter

    from qi_helpers.drawing import ScreenedFigure, ScreeningFormatter, figure

    fig = figure(layout="constrained")
    assert isinstance(fig, ScreenedFigure)
    ax = fig.add_subplot()
    ax.bar([f"A {PATIENT}", "B"], [1, 2], label=f"bars {MRN}")  # categorical: labels at draw
    ax.legend(title=MATH)
    ax.table([[f"cell {PATIENT}"]], colLabels=[MATH], loc="bottom", bbox=[0, -0.4, 1, 0.2])
    ax.add_artist(AnchoredText(f"box {MRN}", loc="upper left"))
    image = ax.imshow([[0, 1]], extent=(0, 1, 0, 1))
    colorbar = fig.colorbar(image)
    colorbar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.1f} {PATIENT}"))
    fig.suptitle(named("Figure"))
    svg = _svg_text(fig)
    assert not any(f in svg for f in FORBIDDEN)
    first = fig.redactions
    # category 1, legend 1, cell 1, box 1, suptitle 1, and one per colorbar tick
    assert first >= 6
    fig.savefig(io.BytesIO(), format="png")
    assert fig.redactions == first  # a second draw counts what it shows, not again
    for axes in fig.axes:
        for axis in (axes.xaxis, axes.yaxis):
            for formatter in (axis.get_major_formatter(), axis.get_minor_formatter()):
                assert isinstance(formatter, ScreeningFormatter)
                assert not isinstance(formatter.inner, ScreeningFormatter)  # wrapped once
    assert all(not t.get_parse_math() for t in fig.findobj(Text))


def test_a_wrapped_formatter_still_answers_as_itself():
    from matplotlib.ticker import ScalarFormatter

    from qi_helpers.drawing import subplots

    fig, ax = subplots()
    ax.plot([1e6, 2e6], [1, 2])
    fig.savefig(io.BytesIO(), format="png")
    wrapped = ax.xaxis.get_major_formatter()
    assert isinstance(wrapped.inner, ScalarFormatter)
    wrapped.set_useOffset(False)  # a method of the wrapped formatter
    assert wrapped.get_useOffset() is False
    assert ax.xaxis.isDefault_majfmt  # still the default: a unit change may replace it


def test_a_pickled_figure_screens_again_when_drawn():
    import pickle

    fig = plot_pdsa_timeline(_pdsa())
    fig.savefig(io.BytesIO(), format="png")
    again = pickle.loads(pickle.dumps(fig))
    drawn(again)
    assert again.redactions == fig.redactions


def test_figures_are_not_registered_with_pyplot():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot_pdsa_timeline(_pdsa())
    plot_qic(qic(_categorical(), "visit", "value", chart="i"))
    assert plt.get_fignums() == before


def test_every_figure_of_the_package_is_made_by_the_drawing_helper():
    made = re.compile(
        r"(?<!Screened)\bFigure\(|\bplt\.(figure|subplots?)\(|\bpyplot\.(figure|subplots?)\("
    )
    offenders = [
        f"{path.relative_to(SRC)}:{number}"
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "drawing.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if made.search(line) or re.search(r"\bfig(ure)?\s*=\s*Figure\b", line)
    ]
    assert offenders == []


def test_plot_waves_of_many_adopters_draws_one_bar_per_wave():
    """Hundreds of adopters: one bar per change and wave, labelled with its size (issue 17)."""
    from qi_helpers.spread import plan

    many = pd.DataFrame(
        {"change": ["Huddle"] * 70 + ["Recall"] * 30,
         "microsystem_id": [f"MS-{i:03d}" for i in range(100)],
         "score": np.linspace(1, 0, 100)}
    )  # fmt: skip
    spread = plan(many, waves=3, start="2025-01-06")
    fig = plot_waves(spread)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    expected = spread.groupby(["change", "wave"], sort=False).size()
    assert labels == [f"{c}: wave {w}, {n} microsystems" for (c, w), n in expected.items()]
    assert sum(int(label.split(", ")[1].split()[0]) for label in labels) == 100
    # a short plan keeps one bar per adopter
    few = plot_waves(plan(many.head(10), waves=2, start="2025-01-06"))
    assert len(few.axes[0].get_yticklabels()) == 10


def test_plot_sustain_of_many_adopters_shows_those_needing_a_look_first():
    chart = _adopter_chart(3)
    verdicts = pd.DataFrame(
        {"microsystem_id": [f"MS-{i:02d}" for i in range(40)], "change": "Huddle",
         "measure_id": "m", "name": "Seen within", "improvement": "up",
         "adopted": pd.Timestamp("2024-04-15"),
         "verdict": ["improved and holding"] * 30 + ["lost"] * 3 + ["no signal yet"] * 7}
    )  # fmt: skip
    charts = {(r.microsystem_id, r.change, r.measure_id): chart for r in verdicts.itertuples()}
    fig = plot_sustain(SimpleNamespace(verdicts=verdicts, charts=charts), max_panels=12)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert len(titles) == 12
    assert [t.split(" - ")[1] for t in titles] == (
        ["lost"] * 3 + ["no signal yet"] * 7 + ["improved and holding"] * 2
    )
    assert "12 of 40" in fig._suptitle.get_text()
