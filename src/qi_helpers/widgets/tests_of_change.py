"""Workbook 03's explorer: one measure's chart and verdict, with pickers."""

from __future__ import annotations

from typing import Any

import pandas as pd

from qi_helpers.changes.analysis import analyse, compatible_charts
from qi_helpers.changes.figures import plot_change
from qi_helpers.changes.microsystem import order_measures
from qi_helpers.errors import ConfigError
from qi_helpers.widgets._base import explorer

#: Rule sets offered by the picker (see :func:`qi_helpers.spc.rules.signals`).
RULE_CHOICES = (
    ("Anhøj (runs analysis)", "anhoej"),
    ("IHI run chart rules", "ihi"),
    ("NHS Making Data Count", "mdc"),
    ("Western Electric", "western_electric"),
)
VERDICT_COLUMNS = [
    "change",
    "decision",
    "verdict",
    "baseline_mean",
    "after_mean",
    "effect",
    "effect_low",
    "effect_high",
    "effect_kind",
    "periods_needed",
    "reason",
]


def _measure_options(series: pd.DataFrame, measures: pd.DataFrame, microsystem_id: str) -> list:
    """``(label, measure_id)`` of the measures with data in a microsystem, in catalogue order."""
    own = series.loc[series["microsystem_id"] == microsystem_id, "measure_id"].unique()
    table = order_measures(measures[measures["measure_id"].isin(own)])
    return [(f"{r.name} ({r.family})", r.measure_id) for r in table.itertuples()]


def _chart_options(measures: pd.DataFrame, measure_id: str | None) -> list:
    """``(label, chart)`` of the charts offered for a measure (``""``: the catalogue's)."""
    if measure_id is None:
        return [("as in the catalogue", "")]
    measure = measures[measures["measure_id"] == measure_id].iloc[0]
    return [("as in the catalogue", "")] + [(c, c) for c in compatible_charts(measure)]


def tests_of_change_explorer(
    cases: pd.DataFrame,
    series: pd.DataFrame,
    measures: pd.DataFrame,
    pdsa: pd.DataFrame,
    *,
    microsystem_id: str,
    measure_id: str | None = None,
    rules: str = "anhoej",
    chart: str | None = None,
    show_95: bool = False,
    baseline_periods: int | None = None,
    min_points: int = 10,
    interactive: bool = True,
    registry: pd.DataFrame | None = None,
) -> Any:
    """Pick a microsystem, a measure, a rule set and a chart type; see the chart and verdict.

    Parameters
    ----------
    cases : DataFrame
        From :func:`qi_helpers.changes.series.assign_microsystems` (all the microsystems that can
        be picked; needed for xbar charts).
    series : DataFrame
        From :func:`qi_helpers.changes.series.measure_series`.
    measures : DataFrame
        The measure catalogue.
    pdsa : DataFrame
        The PDSA log.
    microsystem_id : str
        The microsystem shown first.
    measure_id : str, optional
        The measure shown first (default: the first of the microsystem in catalogue order).
    rules : {"anhoej", "ihi", "mdc", "western_electric"}
        The rule set shown first.
    chart : str, optional
        A chart type instead of the catalogue's (see
        :func:`qi_helpers.changes.analysis.compatible_charts`).
    show_95 : bool
        Whether the 2-sigma limits are drawn at first.
    baseline_periods, min_points
        As :func:`qi_helpers.changes.analysis.analyse`.
    interactive : bool
        False in batch runs (``qi run``): return the static chart.
    registry : DataFrame, optional
        Workbook 01's registry: a microsystem it lists without measured data yet (a service team
        just found) gets a one-row ``message`` table saying so instead of an error.

    Returns
    -------
    object
        In batch, the static chart (:func:`qi_helpers.changes.figures.plot_change`, its title
        giving the verdict and effect). Interactively, the explorer box, showing the chart and the
        verdict rows of the measure (``change, decision, verdict, baseline_mean, after_mean,
        effect, effect_low, effect_high, effect_kind, periods_needed, reason``), redrawn when
        any picker changes (see :func:`qi_helpers.widgets.explorer`); picking a microsystem
        refreshes the measures offered, and picking a measure the chart types that suit it.

    Raises
    ------
    ConfigError
        Unknown microsystem (not in ``registry`` either) or measure, naming those available.
    """
    available = sorted(series["microsystem_id"].dropna().astype(str).unique())
    listed = registry is not None and microsystem_id in set(registry["microsystem_id"].astype(str))
    if microsystem_id not in available and listed:
        return pd.DataFrame({"message": [f"No measured data for {microsystem_id} yet."]})
    if microsystem_id not in available:
        raise ConfigError(
            f"microsystem_id {microsystem_id!r} has no measured data; choose one of "
            f"{', '.join(available[:30])}."
        )
    options = _measure_options(series, measures, microsystem_id)
    ids = [v for _, v in options]
    if measure_id is None:
        measure_id = ids[0] if ids else None
    elif measure_id not in ids:
        raise ConfigError(
            f"measure_id {measure_id!r} has no data in {microsystem_id}; choose one of "
            f"{', '.join(ids)}."
        )

    def render(microsystem_id: str, measure_id: str | None, rules: str, chart: str,
               show_95: bool):  # fmt: skip
        own = [v for _, v in _measure_options(series, measures, microsystem_id)]
        if measure_id not in own:
            measure_id = own[0] if own else None
        if measure_id is None:
            return pd.DataFrame({"message": [f"No measured data for {microsystem_id}."]})
        measure = measures[measures["measure_id"] == measure_id].iloc[0]
        result = analyse(
            series[series["microsystem_id"] == microsystem_id],
            measure,
            pdsa,
            rules=rules,
            baseline_periods=baseline_periods,
            cases=cases[cases["microsystem_id"] == microsystem_id],
            chart=chart or None,
            min_points=min_points,
            microsystem_id=microsystem_id,
        )
        table = result.verdicts.reindex(columns=VERDICT_COLUMNS)
        return plot_change(result, show_95=show_95), table

    if not interactive:
        shown = render(microsystem_id, measure_id, rules, chart or "", show_95)
        return shown[0] if isinstance(shown, tuple) else shown

    import ipywidgets as widgets  # only the interactive explorer needs the Jupyter widgets

    pick_ms = widgets.Dropdown(options=available, value=microsystem_id, description="Microsystem")
    pick_measure = widgets.Dropdown(options=options, value=measure_id, description="Measure")
    pick_rules = widgets.Dropdown(options=list(RULE_CHOICES), value=rules, description="Rules")
    charts = _chart_options(measures, measure_id)
    pick_chart = widgets.Dropdown(
        options=charts, value=chart if chart in [v for _, v in charts] else "", description="Chart"
    )
    toggle = widgets.Checkbox(value=show_95, description="show 95% limits")

    def new_microsystem(change: dict) -> None:
        pick_measure.options = _measure_options(series, measures, change["new"])

    def new_measure(change: dict) -> None:
        pick_chart.options = _chart_options(measures, change["new"])
        pick_chart.value = ""

    pick_ms.observe(new_microsystem, names="value")
    pick_measure.observe(new_measure, names="value")
    return explorer(
        {
            "microsystem_id": pick_ms,
            "measure_id": pick_measure,
            "rules": pick_rules,
            "chart": pick_chart,
            "show_95": toggle,
        },
        render,
        interactive=True,
        title="Explore one measure: pick the microsystem, measure, rule set and chart type",
    )
