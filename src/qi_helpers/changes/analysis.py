"""Analyse the tests of change of one measure in one microsystem (workbook 03).

A test of change is a PDSA cycle (Plan-Do-Study-Act; Langley et al., The Improvement Guide, 2009).
Its effect is judged on run and control charts: the periods before the change form the baseline
(frozen centre line and limits), and a special cause after it, in the direction of improvement,
is the evidence that the change made a difference (Provost & Murray, The Health Care Data Guide,
2011). :func:`analyse` splits a measure's series into phases at the changes of the PDSA log
(:mod:`qi_helpers.changes.pdsa`), charts it and judges each change with the verdict rule of
:mod:`qi_helpers.changes.verdicts`; the size of the effect comes with a confidence interval
(:mod:`qi_helpers.changes.effects`). :class:`ChangeAnalysis` holds the result;
:func:`compatible_charts` lists the charts that suit a measure's data.

The steps of :func:`analyse`, in order: the measure's row and charted data
(:class:`qi_helpers.changes.judging.MeasureData`), the PDSA cycles that concern it
(:func:`_cycles_of_measure`), its phases (:func:`_phases`), the judgement of the changes that open
them (:func:`_judge_phases`) and of the abandoned ones (:func:`_judge_abandoned`), each by
:func:`qi_helpers.changes.judging.judge_change`; then the chart drawn (:func:`_chart_drawn`) and
the verdict, window and phase tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from qi_helpers.changes.judging import MeasureData, baseline_stable, judge_change
from qi_helpers.changes.pdsa import applies_to_measure, changes_tested
from qi_helpers.errors import ConfigError, DataError
from qi_helpers.measures import Measure
from qi_helpers.spc.rules import RULE_SETS, signals

__all__ = ["CASE_CHARTS", "RATIO_CHARTS", "ChangeAnalysis", "analyse", "compatible_charts"]

#: Chart types whose points are subgroup means of case values (need the cases, not sums).
CASE_CHARTS = {"xbar", "s"}
#: Chart types plotted from a numerator over a denominator.
RATIO_CHARTS = {"p", "pp", "u", "up"}

_WINDOW_COLUMNS = ["change", "baseline_from", "baseline_to", "after_from", "after_to"]


@dataclass
class ChangeAnalysis:
    """The analysis of one measure of one microsystem: phases, chart, verdicts, effects.

    Attributes
    ----------
    measure : Series
        The catalogue row.
    chart_type : str
        The chart drawn (the catalogue's, unless overridden).
    rules : str
        The rule set that judged the changes.
    chart : DataFrame
        The :func:`qi_helpers.spc.qic.qic` result drawn: one part per phase; a phase keeps the
        limits of the phase before it until it shows a special cause (Provost & Murray 2011,
        ch. 6). Empty when there are no data.
    phases : DataFrame
        ``phase, label, status, start, first_period, last_period, n_periods, limits`` (``own``
        or ``extended``).
    verdicts : DataFrame
        One row per change judged (or one ``baseline only`` row); the columns of
        :data:`qi_helpers.changes.verdicts.RESULT_COLUMNS` but ``microsystem_id, name, family, aim,
        balances, balancing_flag, subgroups_flagged`` (added by
        :class:`qi_helpers.changes.microsystem.MicrosystemAnalysis`).
    windows : DataFrame
        ``change, baseline_from, baseline_to, after_from, after_to``: the periods compared for
        each change (used for the subgroup analysis).
    annotations : DataFrame
        ``date, label, decision``: the PDSA cycles concerning this measure (``label`` is the
        cycle's number, the last part of its ``cycle_id``).
    tested : DataFrame
        ``change, status, start, end``: the abandoned test windows (shaded on the chart).
    """

    measure: pd.Series
    chart_type: str
    rules: str
    chart: pd.DataFrame
    phases: pd.DataFrame
    verdicts: pd.DataFrame
    windows: pd.DataFrame
    annotations: pd.DataFrame
    tested: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def measure_id(self) -> str:
        return str(self.measure["measure_id"])


def compatible_charts(measure: pd.Series) -> list[str]:
    """The chart types that suit a measure's data, the catalogue's first."""
    own = str(measure["chart"])
    if own in ("p", "pp"):
        options = ["p", "pp", "run", "i"]
    elif own in ("u", "up"):
        options = ["u", "up", "run", "i"]
    elif own in CASE_CHARTS:
        options = [own, "i", "run"]
    elif own == "c":
        options = ["c", "run", "i"]
    else:
        options = [own, "i", "run"]
    return list(dict.fromkeys([own, *options]))


def _chart_input(
    own: pd.DataFrame, cases: pd.DataFrame | None, measure_id: str, chart: str
) -> tuple[pd.DataFrame, str, str | None, pd.DataFrame | None]:
    """The rows qic() charts, its y and n columns, and the case-level values (xbar)."""
    if chart in CASE_CHARTS:
        mine = cases[cases["measure_id"] == measure_id] if cases is not None else None
        if mine is None or mine.empty:
            raise DataError(
                f"measure {measure_id!r}: an {chart} chart needs the measured cases "
                "(pass cases=... from assign_microsystems), or choose an i chart."
            )
        return mine[["period", "value"]].reset_index(drop=True), "value", None, mine
    if chart in RATIO_CHARTS:
        return own[["period", "numerator", "denominator"]], "numerator", "denominator", None
    if chart == "c":
        return own[["period", "numerator"]], "numerator", None, None
    return own[["period", "value"]], "value", None, None


def _chart_type(measure: pd.Series, chart: str | None) -> str:
    """The chart asked for (default the catalogue's), refused when it does not suit the data."""
    chart_type = chart or str(measure["chart"])
    if chart_type not in compatible_charts(measure):
        raise ConfigError(
            f"measure {str(measure['measure_id'])!r}: a {chart_type} chart does not suit its "
            f"data; choose one of {', '.join(compatible_charts(measure))}."
        )
    return chart_type


def _one_microsystem(
    series: pd.DataFrame, cases: pd.DataFrame | None, microsystem_id: str | None
) -> tuple[pd.DataFrame, pd.DataFrame | None, str | None]:
    """The series and cases of one microsystem (by default the only one in ``series``)."""
    if microsystem_id is None:
        found = series["microsystem_id"].dropna().unique() if "microsystem_id" in series else []
        if len(found) > 1:
            raise ConfigError(
                f"the series holds {len(found)} microsystems; pass microsystem_id=... to choose."
            )
        microsystem_id = str(found[0]) if len(found) else None
    if microsystem_id is not None and "microsystem_id" in series:
        series = series[series["microsystem_id"] == microsystem_id]
        if cases is not None and "microsystem_id" in cases:
            cases = cases[cases["microsystem_id"] == microsystem_id]
    return series, cases, microsystem_id


def _measured(
    series: pd.DataFrame,
    measure: pd.Series,
    cases: pd.DataFrame | None,
    chart_type: str,
    **settings: Any,
) -> MeasureData:
    """Read the measure's row and select its data; ``settings`` are the remaining fields."""
    row = Measure.from_row(measure)
    own = series[series["measure_id"] == row.measure_id].sort_values("period")
    own = own.reset_index(drop=True)
    data, y, n, case_rows = _chart_input(own, cases, row.measure_id, chart_type)
    periods = np.sort(pd.to_datetime(data["period"]).unique()) if len(data) else np.array([])
    return MeasureData(
        row, str(measure["chart"]), chart_type, own=own, data=data, y=y, n=n,
        case_rows=case_rows, periods=periods,
        data_periods=pd.to_datetime(data["period"]).to_numpy(), **settings,
    )  # fmt: skip


def _cycles_of_measure(
    pdsa: pd.DataFrame, microsystem_id: str | None, measure_id: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The changes that concern a measure, its cycles as chart annotations, its abandoned tests.

    Returns
    -------
    tests, annotations, tested : DataFrame
        As :func:`qi_helpers.changes.pdsa.changes_tested`, and as
        :attr:`ChangeAnalysis.annotations` and :attr:`ChangeAnalysis.tested`.
    """
    log = pdsa if microsystem_id is None else pdsa[pdsa["microsystem_id"] == microsystem_id]
    tests = changes_tested(log)
    concerns = np.array(
        [applies_to_measure(v, measure_id) for v in tests["measure_ids"]], dtype=bool
    )
    tests = tests[concerns].reset_index(drop=True)
    ids = log["measure_ids"] if "measure_ids" in log.columns else [None] * len(log)
    cycles = log[np.array([applies_to_measure(v, measure_id) for v in ids], dtype=bool)]
    annotations = pd.DataFrame(
        {
            "date": pd.to_datetime(cycles["start"]).to_numpy(),
            "label": cycles["cycle_id"].astype(str).str.rsplit("-", n=1).str[-1].to_numpy(),
            "decision": cycles.get("decision", pd.Series("ongoing", index=cycles.index))
            .astype("string")
            .fillna("ongoing")
            .to_numpy(),
        }
    )
    tested = tests.loc[tests["status"] == "abandoned", ["change", "status", "start", "end"]]
    return tests, annotations, tested


def _verdict_row(ctx: MeasureData, **values: Any) -> dict[str, Any]:
    """A row of the verdict table: ``values`` over the defaults (``too little data``)."""
    base = {
        "measure_id": ctx.measure.measure_id,
        "change": None,
        "start": pd.NaT,
        "decision": None,
        "verdict": "too little data",
        "baseline_mean": math.nan,
        "after_mean": math.nan,
        "n_baseline": 0,
        "n_after": 0,
        "last_period": pd.Timestamp(ctx.periods[-1]) if len(ctx.periods) else pd.NaT,
        "last_value": math.nan,
        "effect": math.nan,
        "effect_low": math.nan,
        "effect_high": math.nan,
        "effect_kind": ctx.kind,
        "periods_needed": math.nan,
        "verdict_since": pd.NaT,
        "baseline_stable": pd.NA,
        "variation_icon": None,
        "assurance_icon": None,
        "reason": "",
    }
    base.update(values)
    return base


# ---- phases --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Phases:
    """The phases of a measure's chart, as period indices.

    ``splits`` maps a period to the adopted or still tested changes whose phase starts there;
    phase ``k`` covers periods ``[starts[k], ends[k])``, phase 0 being the first baseline.
    """

    splits: dict[int, list[pd.Series]]
    starts: list[int]
    ends: list[int]


def _phases(ctx: MeasureData, tests: pd.DataFrame) -> _Phases:
    """Split the periods at the start of each adopted change and each change still tested."""
    splits: dict[int, list[pd.Series]] = {}
    for _, t in tests[tests["status"].isin(["adopted", "testing"])].iterrows():
        splits.setdefault(ctx.index_of(t["start"]), []).append(t)
    bounds = sorted(i for i in splits if i < len(ctx.periods))
    starts = [0, *[b for b in bounds if b > 0]]
    ends = [*starts[1:], len(ctx.periods)]
    return _Phases(splits, starts, ends)


# ---- judging every change ------------------------------------------------------------------------


def _judge_phases(ctx: MeasureData, phases: _Phases) -> tuple[list[dict], list[str], list[int]]:
    """Judge the changes that open each phase, in order.

    A phase that shows a signal becomes the baseline of the next ones (its own limits);
    otherwise the limits of the process before it are extended over it.

    Returns
    -------
    judged : list of dict
        :func:`qi_helpers.changes.judging.judge_change` rows; a change that started before the
        first period last.
    limits : list of str
        ``own`` or ``extended``, per phase.
    process_of : list of int
        Per phase, the first period of the process it is judged against.
    """
    splits, starts, ends = phases.splits, phases.starts, phases.ends
    judged: list[dict] = []
    limits = ["own"]
    process = 0
    process_of = [0]
    for k in range(1, len(starts)):
        i0, i1 = starts[k], ends[k]
        for t in splits[i0]:
            judged.append(judge_change(ctx, process, i0, i1, t, abandoned=False))
        signalled = any(r["_signal"] for r in judged[-len(splits[i0]) :])
        if signalled:
            process = i0
        limits.append("own" if signalled else "extended")
        process_of.append(process)
    if 0 in splits:  # a change that started before the first period: no baseline
        for t in splits[0]:
            judged.append(
                judge_change(ctx, 0, 0, len(ctx.periods), t, abandoned=False)
                | {"reason": "the change started before the first measured period: no baseline"}
            )
    return judged, limits, process_of


def _judge_abandoned(
    ctx: MeasureData, tests: pd.DataFrame, phases: _Phases, process_of: list[int]
) -> list[dict]:
    """Judge each abandoned change over its abandoning cycle, against the process before it."""
    starts, ends = phases.starts, phases.ends
    judged: list[dict] = []
    for _, t in tests[tests["status"] == "abandoned"].iterrows():
        i0 = ctx.index_of(t["start"])
        k = max(j for j, s in enumerate(starts) if s <= i0) if i0 < len(ctx.periods) else None
        if k is None:
            judged.append(
                {"change": str(t["change"]), "start": pd.Timestamp(t["start"]),
                 "decision": t["decision"], "verdict": "too little data",
                 "reason": "abandoned before the first measured period", "_signal": False}
            )  # fmt: skip
            continue
        last = ctx.index_of(t["end"]) + 1 if pd.notna(t["end"]) else ends[k]
        i1 = min(max(last, i0 + 1), ends[k])
        judged.append(judge_change(ctx, process_of[k], i0, i1, t, abandoned=True))
    return judged


def _baseline_only(ctx: MeasureData) -> dict[str, Any]:
    """The one row of a measure concerned by no change: is its baseline stable?"""
    n_periods = len(ctx.periods)
    b1 = min(int(ctx.baseline_periods), n_periods) if ctx.baseline_periods else n_periods
    ok = baseline_stable(ctx, 0, b1)
    if b1 < ctx.min_points:
        reason = f"only {b1} periods: too few to judge the baseline (need {ctx.min_points})"
    else:
        reason = "no change tested yet; the baseline is " + (
            "stable: a good time to test a change"
            if ok is True
            else "unstable (special cause without a change): find out why first"
        )
    return {
        "verdict": "too little data" if b1 < ctx.min_points else "baseline only",
        "n_baseline": b1,
        "n_after": n_periods - b1,
        "baseline_mean": ctx.level(0, b1),
        "after_mean": ctx.level(b1, n_periods),
        "baseline_stable": ok,
        "reason": reason,
    }


# ---- the chart and the tables --------------------------------------------------------------------


def _chart_drawn(ctx: MeasureData, phases: _Phases, limits: list[str]) -> pd.DataFrame:
    """The chart drawn: one qic() part per run of phases that share limits.

    A phase with ``extended`` limits is drawn with the frozen limits of the phase before it.
    """
    starts, ends = phases.starts, phases.ends
    frames = []
    k = 0
    while k < len(starts):
        j = k + 1
        while j < len(starts) and limits[j] == "extended":
            j += 1
        seg = ctx.rows_of(starts[k], ends[j - 1])
        first = ends[k] - starts[k]
        if k == 0 and ctx.baseline_periods and j == 1:
            first = min(int(ctx.baseline_periods), first)
        freeze = first if first < ends[j - 1] - starts[k] and first > 0 else None
        res = ctx.chart_of(seg, target=ctx.target, freeze=freeze)
        res["part"] = np.searchsorted(starts, np.arange(starts[k], ends[j - 1]), side="right")
        frames.append(res)
        k = j
    chart_result = pd.concat(frames, ignore_index=True)
    chart_result.attrs = frames[0].attrs
    return chart_result


def _last_point(ctx: MeasureData, chart_result: pd.DataFrame) -> dict[str, Any]:
    """The Making Data Count icons of the last point, and its value (on every verdict row)."""
    icons = signals(
        chart_result, rules="mdc", improvement=ctx.improvement, target=ctx.target
    ).series.iloc[0]
    last_value = (
        float(chart_result["y"].dropna().iloc[-1]) if chart_result["y"].notna().any() else math.nan
    )
    return {
        "variation_icon": icons["variation"],
        "assurance_icon": icons["assurance"],
        "last_value": last_value,
    }


def _windows_table(ctx: MeasureData, judged: list[dict]) -> pd.DataFrame:
    """The periods compared for each change judged (:attr:`ChangeAnalysis.windows`)."""
    periods = ctx.periods
    windows = [
        {
            "change": r["change"],
            "baseline_from": periods[r["_window"][0]],
            "baseline_to": periods[r["_window"][1] - 1],
            "after_from": periods[r["_window"][1]],
            "after_to": periods[r["_window"][2] - 1],
        }
        for r in judged
        if "_window" in r
    ]
    return pd.DataFrame(windows, columns=_WINDOW_COLUMNS)


def _phases_table(ctx: MeasureData, phases: _Phases, limits: list[str]) -> pd.DataFrame:
    """The phases of the chart (:attr:`ChangeAnalysis.phases`)."""
    splits, starts, ends, periods = phases.splits, phases.starts, phases.ends, ctx.periods
    return pd.DataFrame(
        {
            "phase": np.arange(len(starts)),
            "label": ["baseline"]
            + [" + ".join(str(t["change"]) for t in splits[s]) for s in starts[1:]],
            "status": ["baseline"]
            + [" + ".join(str(t["status"]) for t in splits[s]) for s in starts[1:]],
            "start": [pd.NaT] + [pd.Timestamp(splits[s][0]["start"]) for s in starts[1:]],
            "first_period": [pd.Timestamp(periods[s]) for s in starts],
            "last_period": [pd.Timestamp(periods[e - 1]) for e in ends],
            "n_periods": [e - s for s, e in zip(starts, ends, strict=True)],
            "limits": limits,
        }
    )


def analyse(
    series: pd.DataFrame,
    measure: pd.Series,
    pdsa: pd.DataFrame,
    *,
    rules: str = "anhoej",
    baseline_periods: int | None = None,
    cases: pd.DataFrame | None = None,
    chart: str | None = None,
    min_points: int = 10,
    min_after: int = 3,
    microsystem_id: str | None = None,
) -> ChangeAnalysis:
    """Split one measure's series into phases at the changes tested, chart it and judge each change.

    Parameters
    ----------
    series : DataFrame
        From :func:`qi_helpers.changes.series.measure_series`, for one microsystem (or pass
        ``microsystem_id``).
    measure : Series
        The measure's catalogue row (``measure_id, chart, improvement, multiply, target``...),
        read by :meth:`qi_helpers.measures.Measure.from_row`.
    pdsa : DataFrame
        The PDSA log (this microsystem's rows are used).
    rules : {"anhoej", "ihi", "mdc", "western_electric"}
        The rule set that detects special causes (see :func:`qi_helpers.spc.rules.signals`).
    baseline_periods : int, optional
        How many periods just before a change form its baseline (default: all since the last
        phase that showed a special cause). For a measure with no change tested, the first this
        many periods are the frozen baseline.
    cases : DataFrame, optional
        The measured cases (:func:`qi_helpers.changes.series.assign_microsystems`); needed for
        xbar and s charts.
    chart : str, optional
        Chart type to use instead of the catalogue's (see :func:`compatible_charts`).
    min_points : int
        Baseline periods needed before a change can be judged.
    min_after : int
        Periods after a change needed before it can be judged.
    microsystem_id : str, optional
        The microsystem; default the only one in ``series``.

    Returns
    -------
    ChangeAnalysis

    Notes
    -----
    Phases (Provost & Murray 2011, ch. 6): a new phase starts at the first adopting cycle of each
    adopted change and at the first cycle of each change still being tested (so the baseline is
    frozen before the first test when nothing is adopted yet). A period belongs to the phase
    whose change started in or before it. Each phase is judged against its baseline: the periods
    since the last phase that showed a special cause (or the last ``baseline_periods`` of them),
    whose centre line and limits are frozen and extended over the phase
    (:func:`qi_helpers.spc.qic.qic` with ``freeze``). The rule set is applied to the phase's
    points alone, its runs analysis recomputed over them against the frozen centre line (Anhøj &
    Olesen 2014), so that a run that began in the baseline does not count for the change.

    Verdicts: ``improved`` / ``worsened`` when the phase shows a special cause: the side with
    more signalling points wins (ties and runs-only signals go by the side of the phase's mean);
    ``no signal yet`` when it does not, whatever the effect's interval says (the note mentions
    an interval that excludes no change, as a hint), with ``periods_needed`` the periods still
    to come from the time to detect (:func:`qi_helpers.changes.verdicts.periods_needed`,
    simulated with this verdict rule) of the change seen so far, or of the change that would
    reach the target when what is seen so far is no improvement; when the chart has already had
    those periods, ``periods_needed`` is NaN and the note says that the change seen so far is
    too small to detect and what size the chart could show in the periods left; ``too little
    data`` with fewer than ``min_points`` baseline or ``min_after`` later periods. An
    **abandoned** change is judged over the window of its abandoning cycle (``start`` to
    ``end``) against the periods before it: ``no change`` when there is no special cause (the
    coach sees that it did not work), ``improved``/``worsened`` otherwise. A measure concerned
    by no change gets one ``baseline only`` row that says whether its baseline is stable.

    Effects (:func:`qi_helpers.changes.effects.estimate_effect`) compare the phase with its
    baseline, on the charted scale, with 95% intervals that ignore serial correlation
    (:data:`qi_helpers.changes.effects.SERIAL_CORRELATION_NOTE`). The effect kind follows the
    catalogue's chart (the data), whatever chart is drawn.
    """
    if rules not in RULE_SETS:
        raise ConfigError(f"analysis.rules: unknown rule set {rules!r}; choose one of {RULE_SETS}.")
    chart_type = _chart_type(measure, chart)
    series, cases, microsystem_id = _one_microsystem(series, cases, microsystem_id)
    if str(measure["chart"]) in CASE_CHARTS and (cases is None or cases.empty):
        chart_type = "i" if chart_type in CASE_CHARTS else chart_type
    ctx = _measured(
        series, measure, cases, chart_type, rules=rules, baseline_periods=baseline_periods,
        min_points=min_points, min_after=min_after,
    )  # fmt: skip
    tests, annotations, tested = _cycles_of_measure(pdsa, microsystem_id, ctx.measure.measure_id)
    if len(ctx.periods) == 0:
        verdicts = pd.DataFrame(
            [_verdict_row(ctx, reason="no data for this measure in this microsystem")]
        )
        return ChangeAnalysis(
            measure, chart_type, rules, pd.DataFrame(), pd.DataFrame(), verdicts,
            pd.DataFrame(columns=_WINDOW_COLUMNS), annotations, tested,
        )  # fmt: skip
    phases = _phases(ctx, tests)
    judged, limits, process_of = _judge_phases(ctx, phases)
    judged += _judge_abandoned(ctx, tests, phases, process_of)
    chart_result = _chart_drawn(ctx, phases, limits)
    last = _last_point(ctx, chart_result)
    if not judged:
        judged.append(_baseline_only(ctx))
    verdicts = pd.DataFrame([_verdict_row(ctx, **{**last, **r}) for r in judged])
    verdicts = verdicts.drop(columns=[c for c in ("_signal", "_window") if c in verdicts])
    return ChangeAnalysis(
        measure, chart_type, rules, chart_result, _phases_table(ctx, phases, limits), verdicts,
        _windows_table(ctx, judged), annotations, tested,
    )  # fmt: skip
