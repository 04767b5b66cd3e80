"""Analyse the tests of change of one measure in one microsystem (workbook 03).

A test of change is a PDSA cycle (Plan-Do-Study-Act; Langley et al., The Improvement Guide, 2009).
Its effect is judged on run and control charts: the periods before the change form the baseline
(frozen centre line and limits), and a special cause after it, in the direction of improvement,
is the evidence that the change made a difference (Provost & Murray, The Health Care Data Guide,
2011). :func:`analyse` splits a measure's series into phases at the changes of the PDSA log
(:mod:`qi_helpers.pdsa_log`), charts it and judges each change with the verdict rule of
:mod:`qi_helpers.verdicts`; the size of the effect comes with a confidence interval
(:mod:`qi_helpers.effects`). :class:`ChangeAnalysis` holds the result; :func:`compatible_charts`
lists the charts that suit a measure's data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from qi_helpers.effects import effect_direction, effect_kind, estimate_effect
from qi_helpers.errors import ConfigError, DataError
from qi_helpers.measure_series import period_kind, period_start
from qi_helpers.pdsa_log import applies_to_measure, changes_tested
from qi_helpers.verdicts import (
    NOT_SUSTAINED_RULES,
    baseline_sigma,
    judge_after_baseline,
    periods_needed,
    phase_level,
)

__all__ = ["CASE_CHARTS", "RATIO_CHARTS", "ChangeAnalysis", "analyse", "compatible_charts"]

#: Chart types whose points are subgroup means of case values (need the cases, not sums).
CASE_CHARTS = {"xbar", "s"}
#: Chart types plotted from a numerator over a denominator.
RATIO_CHARTS = {"p", "pp", "u", "up"}


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
        The :func:`qi_helpers.spc.qic` result drawn: one part per phase; a phase keeps the limits
        of the phase before it until it shows a special cause (Provost & Murray 2011, ch. 6).
        Empty when there are no data.
    phases : DataFrame
        ``phase, label, status, start, first_period, last_period, n_periods, limits`` (``own``
        or ``extended``).
    verdicts : DataFrame
        One row per change judged (or one ``baseline only`` row); the columns of
        :data:`qi_helpers.verdicts.RESULT_COLUMNS` but ``microsystem_id, name, family, aim,
        balances, balancing_flag, subgroups_flagged`` (added by
        :class:`qi_helpers.changes.MicrosystemAnalysis`).
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


def _qic(
    data: pd.DataFrame, y: str, n: str | None, chart: str, multiply: float, target, freeze=None
) -> pd.DataFrame:
    from qi_helpers.spc import qic

    return qic(data, x="period", y=y, n=n, chart=chart, freeze=freeze, multiply=multiply,
               target=target)  # fmt: skip


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
        From :func:`qi_helpers.measure_series.measure_series`, for one microsystem (or pass
        ``microsystem_id``).
    measure : Series
        The measure's catalogue row (``measure_id, chart, improvement, multiply, target``...).
    pdsa : DataFrame
        The PDSA log (this microsystem's rows are used).
    rules : {"anhoej", "ihi", "mdc", "western_electric"}
        The rule set that detects special causes (see :func:`qi_helpers.spc_rules.signals`).
    baseline_periods : int, optional
        How many periods just before a change form its baseline (default: all since the last
        phase that showed a special cause). For a measure with no change tested, the first this
        many periods are the frozen baseline.
    cases : DataFrame, optional
        The measured cases (:func:`qi_helpers.measure_series.assign_microsystems`); needed for
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
    (:func:`qi_helpers.spc.qic` with ``freeze``). The rule set is applied to the phase's points
    alone, its runs analysis recomputed over them against the frozen centre line (Anhøj &
    Olesen 2014), so that a run that began in the baseline does not count for the change.

    Verdicts: ``improved`` / ``worsened`` when the phase shows a special cause: the side with
    more signalling points wins (ties and runs-only signals go by the side of the phase's mean);
    ``no signal yet`` when it does not, with ``periods_needed`` from the time to detect
    (:func:`qi_helpers.effects.periods_to_signal`) of the change seen so far, or of the change
    that would reach the target when what is seen so far is no improvement; ``too little
    data`` with fewer than ``min_points`` baseline or ``min_after`` later periods. An
    **abandoned** change is judged over the window of its abandoning cycle (``start`` to
    ``end``) against the periods before it: ``no change`` when there is no special cause (the
    coach sees that it did not work), ``improved``/``worsened`` otherwise. A measure concerned
    by no change gets one ``baseline only`` row that says whether its baseline is stable.

    Effects (:func:`qi_helpers.effects.estimate_effect`) compare the phase with its baseline,
    on the charted scale, with 95% intervals that ignore serial correlation
    (:data:`qi_helpers.effects.SERIAL_CORRELATION_NOTE`). The effect kind follows the
    catalogue's chart (the data), whatever chart is drawn.
    """
    from qi_helpers.spc_rules import RULE_SETS

    if rules not in RULE_SETS:
        raise ConfigError(f"analysis.rules: unknown rule set {rules!r}; choose one of {RULE_SETS}.")
    measure_id = str(measure["measure_id"])
    own_chart = str(measure["chart"])
    chart_type = chart or own_chart
    if chart_type not in compatible_charts(measure):
        raise ConfigError(
            f"measure {measure_id!r}: a {chart_type} chart does not suit its data; choose one of "
            f"{', '.join(compatible_charts(measure))}."
        )
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
    if own_chart in CASE_CHARTS and (cases is None or cases.empty):
        chart_type = "i" if chart_type in CASE_CHARTS else chart_type
    multiply = float(measure.get("multiply", 1) or 1)
    if not np.isfinite(multiply):
        multiply = 1.0
    target = pd.to_numeric(measure.get("target"), errors="coerce")
    target = float(target) if pd.notna(target) else math.nan
    up = str(measure["improvement"]).lower() == "up"
    improvement = "up" if up else "down"
    kind = effect_kind(own_chart)

    own = series[series["measure_id"] == measure_id].sort_values("period").reset_index(drop=True)
    data, y, n, case_rows = _chart_input(own, cases, measure_id, chart_type)
    periods = np.sort(pd.to_datetime(data["period"]).unique()) if len(data) else np.array([])
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

    def row(**values: Any) -> dict[str, Any]:
        base = {
            "measure_id": measure_id,
            "change": None,
            "start": pd.NaT,
            "decision": None,
            "verdict": "too little data",
            "baseline_mean": math.nan,
            "after_mean": math.nan,
            "n_baseline": 0,
            "n_after": 0,
            "last_period": pd.Timestamp(periods[-1]) if len(periods) else pd.NaT,
            "last_value": math.nan,
            "effect": math.nan,
            "effect_low": math.nan,
            "effect_high": math.nan,
            "effect_kind": kind,
            "periods_needed": math.nan,
            "baseline_stable": pd.NA,
            "variation_icon": None,
            "assurance_icon": None,
            "reason": "",
        }
        base.update(values)
        return base

    empty_windows = pd.DataFrame(
        columns=["change", "baseline_from", "baseline_to", "after_from", "after_to"]
    )
    if len(periods) == 0:
        verdicts = pd.DataFrame([row(reason="no data for this measure in this microsystem")])
        return ChangeAnalysis(
            measure, chart_type, rules, pd.DataFrame(), pd.DataFrame(), verdicts,
            empty_windows, annotations, tested,
        )  # fmt: skip

    # ---- phases -----------------------------------------------------------------------------
    def index_of(when: Any) -> int:
        """First period in or after the period that contains ``when``."""
        start = period_start(pd.Series([pd.Timestamp(when)]), period_kind(periods)).iloc[0]
        return int(np.searchsorted(periods, np.datetime64(start), side="left"))

    splits: dict[int, list[pd.Series]] = {}
    for _, t in tests[tests["status"].isin(["adopted", "testing"])].iterrows():
        splits.setdefault(index_of(t["start"]), []).append(t)
    bounds = sorted(i for i in splits if i < len(periods))
    starts = [0, *[b for b in bounds if b > 0]]
    ends = [*starts[1:], len(periods)]
    pdata = pd.to_datetime(data["period"]).to_numpy()

    def rows_of(i0: int, i1: int) -> pd.DataFrame:
        if i1 <= i0:
            return data.iloc[0:0]
        lo, hi = periods[i0], periods[i1 - 1]
        return data[(pdata >= lo) & (pdata <= hi)]

    def series_of(i0: int, i1: int) -> pd.DataFrame:
        if i1 <= i0:
            return own.iloc[0:0]
        p = pd.to_datetime(own["period"]).to_numpy()
        return own[(p >= periods[i0]) & (p <= periods[i1 - 1])]

    def values_of(i0: int, i1: int) -> np.ndarray | None:
        if case_rows is None or i1 <= i0:
            return None
        p = pd.to_datetime(case_rows["period"]).to_numpy()
        sel = (p >= periods[i0]) & (p <= periods[i1 - 1])
        return case_rows.loc[sel, "value"].to_numpy(float)

    def stable(i0: int, i1: int) -> bool | Any:
        from qi_helpers.spc_rules import signals

        if i1 - i0 < min_points:
            return pd.NA
        res = _qic(rows_of(i0, i1), y, n, chart_type, multiply, None)
        parts = signals(res, rules=rules, improvement=improvement).parts
        sustained = [
            c for c in parts.columns if c not in NOT_SUSTAINED_RULES and parts[c].dtype != object
        ]
        return not bool(parts[sustained].to_numpy(dtype=float).any())

    def judge(ref0: int, i0: int, i1: int, change: str, t: pd.Series, abandoned: bool) -> dict:
        """Judge periods [i0, i1) against the baseline [ref0, i0)."""
        if baseline_periods:
            ref0 = max(ref0, i0 - int(baseline_periods))
        n_ref, n_new = i0 - ref0, i1 - i0
        common = {
            "change": change,
            "start": pd.Timestamp(t["start"]),
            "decision": t["decision"],
            "n_baseline": n_ref,
            "n_after": n_new,
        }
        if n_ref < min_points or n_new < min_after:
            why = f"{n_ref} baseline and {n_new} later periods (need {min_points} and {min_after})"
            return {**common, "verdict": "too little data", "reason": why, "_signal": False}
        before, after = rows_of(ref0, i0), rows_of(i0, i1)
        frozen = _qic(pd.concat([before, after]), y, n, chart_type, multiply, None, freeze=n_ref)
        label, why, spc = judge_after_baseline(frozen, n_ref, rules, improvement)
        base_mean = phase_level(before, y, n, chart_type, multiply)
        after_mean = phase_level(after, y, n, chart_type, multiply)
        eff = estimate_effect(
            series_of(ref0, i0),
            series_of(i0, i1),
            own_chart,
            multiply=multiply,
            before_values=values_of(ref0, i0),
            after_values=values_of(i0, i1),
        )
        side = effect_direction(eff["effect"], eff["effect_low"], eff["effect_high"], kind)
        unsure = np.isnan(eff["effect_low"]) or np.isnan(eff["effect_high"])
        wanted = (1 if up else -1) * (1 if label == "improved" else -1)
        signal = spc and (unsure or side == wanted)
        out = {
            **common,
            **eff,
            "baseline_mean": base_mean,
            "after_mean": after_mean,
            "baseline_stable": stable(ref0, i0),
            "_signal": signal,
            "_window": (ref0, i0, i1),
        }
        means = f"mean {base_mean:.3g} -> {after_mean:.3g}"
        doubt = (
            f"{why}, but the 95% interval of the effect includes no change, so the baseline "
            "may simply have been high or low by chance; "
            if spc and not signal
            else ""
        )
        interval = (
            f"the 95% interval of the effect ({eff['effect_low']:.3g} to "
            f"{eff['effect_high']:.3g}) lies wholly on the {{}} side"
        )
        by_interval = {1 if up else -1: "improved", -1 if up else 1: "worsened"}.get(side)
        if signal:
            out.update(verdict=label, reason=f"{why} after the change; {means}")
        elif abandoned:
            hint = (
                f"; yet {interval.format('better' if by_interval == 'improved' else 'worse')}: "
                "worth a second look"
                if by_interval
                else ""
            )
            out.update(
                verdict="no change",
                reason=f"{doubt}no special cause while it was tested; {means}; "
                f"the team abandoned it{hint}",
            )
        else:
            need, what = periods_needed(
                series_of(ref0, i0), chart_type, multiply, baseline_sigma(frozen, n_ref), base_mean,
                after_mean - base_mean, target, up, rules,
            )  # fmt: skip
            if by_interval and not n_new >= need:
                better = "better" if by_interval == "improved" else "worse"
                too_short = (
                    f"about {int(need)} periods" if np.isfinite(need) else "more than 156 periods"
                )
                out.update(
                    verdict=by_interval,
                    _signal=True,
                    reason=f"no special cause yet, but the chart is too short for its rules "
                    f"(a change of this size needs {too_short}) and "
                    f"{interval.format(better)}; {means}",
                )
                return out
            left = max(need - n_new, 1.0) if np.isfinite(need) else math.nan
            if np.isfinite(left):
                tail = f"about {int(left)} more periods to see {what}"
            elif what:
                tail = f"{what} is too small for this chart to show within 156 periods"
            else:
                tail = "nothing better so far and no target to aim for: adapt or rethink the change"
            out.update(
                verdict="no signal yet", periods_needed=left, reason=f"{doubt}{means}; {tail}"
            )
        if not signal and out.get("baseline_stable") is False:
            out["reason"] += "; the baseline itself is unstable"
        return out

    # ---- judge the phases in order ----------------------------------------------------------
    judged: list[dict] = []
    limits = ["own"]
    process = 0
    process_of = [0]
    for k in range(1, len(starts)):
        i0, i1 = starts[k], ends[k]
        for t in splits[i0]:
            r = judge(process, i0, i1, str(t["change"]), t, abandoned=False)
            judged.append(r)
        signalled = any(r["_signal"] for r in judged[-len(splits[i0]) :])
        if signalled:
            process = i0
        limits.append("own" if signalled else "extended")
        process_of.append(process)
    if 0 in splits:  # a change that started before the first period: no baseline
        for t in splits[0]:
            judged.append(
                judge(0, 0, len(periods), str(t["change"]), t, abandoned=False)
                | {"reason": "the change started before the first measured period: no baseline"}
            )
    for _, t in tests[tests["status"] == "abandoned"].iterrows():
        i0 = index_of(t["start"])
        k = max(j for j, s in enumerate(starts) if s <= i0) if i0 < len(periods) else None
        if k is None:
            judged.append(
                {"change": str(t["change"]), "start": pd.Timestamp(t["start"]),
                 "decision": t["decision"], "verdict": "too little data",
                 "reason": "abandoned before the first measured period", "_signal": False}
            )  # fmt: skip
            continue
        last = index_of(t["end"]) + 1 if pd.notna(t["end"]) else ends[k]
        i1 = min(max(last, i0 + 1), ends[k])
        judged.append(judge(process_of[k], i0, i1, str(t["change"]), t, abandoned=True))

    # ---- the chart drawn --------------------------------------------------------------------
    frames = []
    k = 0
    while k < len(starts):
        j = k + 1
        while j < len(starts) and limits[j] == "extended":
            j += 1
        seg = rows_of(starts[k], ends[j - 1])
        first = ends[k] - starts[k]
        if k == 0 and baseline_periods and j == 1:
            first = min(int(baseline_periods), first)
        freeze = first if first < ends[j - 1] - starts[k] and first > 0 else None
        res = _qic(seg, y, n, chart_type, multiply, target if np.isfinite(target) else None,
                   freeze=freeze)  # fmt: skip
        res["part"] = np.searchsorted(starts, np.arange(starts[k], ends[j - 1]), side="right")
        frames.append(res)
        k = j
    chart_result = pd.concat(frames, ignore_index=True)
    chart_result.attrs = frames[0].attrs

    from qi_helpers.spc_rules import signals

    icons = signals(
        chart_result,
        rules="mdc",
        improvement=improvement,
        target=target if np.isfinite(target) else None,
    ).series.iloc[0]
    last_value = (
        float(chart_result["y"].dropna().iloc[-1]) if chart_result["y"].notna().any() else math.nan
    )
    extra = {
        "variation_icon": icons["variation"],
        "assurance_icon": icons["assurance"],
        "last_value": last_value,
    }
    if not judged:
        b1 = min(int(baseline_periods), len(periods)) if baseline_periods else len(periods)
        ok = stable(0, b1)
        judged.append(
            {
                "verdict": "too little data" if b1 < min_points else "baseline only",
                "n_baseline": b1,
                "n_after": len(periods) - b1,
                "baseline_mean": phase_level(rows_of(0, b1), y, n, chart_type, multiply),
                "after_mean": phase_level(rows_of(b1, len(periods)), y, n, chart_type, multiply),
                "baseline_stable": ok,
                "reason": (
                    f"only {b1} periods: too few to judge the baseline (need {min_points})"
                    if b1 < min_points
                    else "no change tested yet; the baseline is "
                    + (
                        "stable: a good time to test a change"
                        if ok is True
                        else "unstable (special cause without a change): find out why first"
                    )
                ),
            }
        )
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
    verdicts = pd.DataFrame([row(**{**extra, **r}) for r in judged])
    verdicts = verdicts.drop(columns=[c for c in ("_signal", "_window") if c in verdicts])
    phases = pd.DataFrame(
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
    return ChangeAnalysis(
        measure, chart_type, rules, chart_result, phases, verdicts,
        pd.DataFrame(windows, columns=empty_windows.columns), annotations, tested,
    )  # fmt: skip
