"""Statistical process control: run and control charts, their rules, drawings and time to detect.

This subpackage owns the charts every step of the method reads a measure with: computing a run
chart or a Shewhart control chart for many series at once, number for number as the R package
qicharts2 does (:func:`qic`, :func:`summary`); the Anhøj runs analysis and the other rule sets
that find special causes and classify points (:func:`signals`, :func:`point_types`); drawing the
charts (:func:`plot_qic`, :func:`plot_qic_facets`); and simulating how many periods a chart needs
to see a change (:func:`periods_to_detect`, :func:`detection_curve`). Its modules:

- ``qic``: :func:`qic`, its output columns and :func:`summary`;
- ``inputs``: :class:`SPCError` and the reading and checking of :func:`qic`'s input;
- ``points``: observations aggregated into the points of a chart, and group-wise arithmetic;
- ``limits``: control-limit constants, sigma estimators and the limits of each chart type;
- ``runs``: the Anhøj runs analysis (critical values, best and cut box);
- ``rules``: the rule sets of :func:`signals` and point types;
- ``plots``: drawing run and control charts;
- ``detect``: time to detect a change, by Monte Carlo simulation;
- ``sequential``: the rules applied one period at a time to many simulated charts;
- ``funnel``: funnel plots comparing the microsystems of one kind (Spiegelhalter 2005), with
  the overdispersion adjustment and the small-denominator rule (:func:`funnel_table`);
- ``funnel_plots``: drawing a funnel (:func:`plot_funnel`), its caption, the outliers and the
  distance of each microsystem from the best of its kind.
"""

from qi_helpers.errors import SPCError
from qi_helpers.spc.detect import DETECTION_CHARTS, detection_curve, periods_to_detect
from qi_helpers.spc.funnel import FUNNEL_COLUMNS, dispersion, funnel, funnel_limits, funnel_table
from qi_helpers.spc.funnel_plots import (
    distance_from_best,
    funnel_caption,
    funnel_outliers,
    plot_funnel,
)
from qi_helpers.spc.plots import POINT_COLOURS, plot_qic, plot_qic_facets
from qi_helpers.spc.qic import COLUMNS, qic, summary
from qi_helpers.spc.rules import POINT_TYPES, RULE_SETS, Signals, point_types, signals
from qi_helpers.spc.runs import RUNS_METHODS, box_signal, runs_limits

__all__ = [
    "COLUMNS",
    "DETECTION_CHARTS",
    "FUNNEL_COLUMNS",
    "POINT_COLOURS",
    "POINT_TYPES",
    "RULE_SETS",
    "RUNS_METHODS",
    "SPCError",
    "Signals",
    "box_signal",
    "detection_curve",
    "dispersion",
    "distance_from_best",
    "funnel",
    "funnel_caption",
    "funnel_limits",
    "funnel_outliers",
    "funnel_table",
    "periods_to_detect",
    "plot_funnel",
    "plot_qic",
    "plot_qic_facets",
    "point_types",
    "qic",
    "runs_limits",
    "signals",
    "summary",
]
