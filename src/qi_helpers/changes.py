"""Analyse tests of change in one microsystem (workbook 03).

A test of change is a PDSA cycle (Plan-Do-Study-Act; Langley et al., The Improvement Guide, 2009).
Its effect is judged on run and control charts: the periods before the change form the baseline
(frozen centre line and limits), and a special cause after it, in the direction of improvement,
is the evidence that the change made a difference (Provost & Murray, The Health Care Data Guide,
2011). The size of the effect comes with a confidence interval (:mod:`qi_helpers.effects`), and
the patients' subgroups are compared with the whole (:mod:`qi_helpers.equity`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qi_helpers.effects import (
    SERIAL_CORRELATION_NOTE,
    effect_direction,
    effect_kind,
    estimate_effect,
    periods_to_signal,
)
from qi_helpers.errors import ConfigError, DataError

#: Chart types whose points are subgroup means of case values (need the cases, not sums).
CASE_CHARTS = {"xbar", "s"}
#: Chart types plotted from a numerator over a denominator.
RATIO_CHARTS = {"p", "pp", "u", "up"}

#: Every verdict, in the order a coach reads them.
VERDICTS = (
    "improved",
    "worsened",
    "no change",
    "no signal yet",
    "too little data",
    "baseline only",
)

#: The columns of the verdict table (and of ``outputs/data/results/<id>.parquet``).
RESULT_COLUMNS = [
    "microsystem_id",
    "measure_id",
    "name",
    "family",
    "aim",
    "change",
    "start",
    "decision",
    "verdict",
    "baseline_mean",
    "after_mean",
    "n_baseline",
    "n_after",
    "last_period",
    "last_value",
    "effect",
    "effect_low",
    "effect_high",
    "effect_kind",
    "periods_needed",
    "balances",
    "balancing_flag",
    "baseline_stable",
    "variation_icon",
    "assurance_icon",
    "subgroups_flagged",
    "reason",
]

#: Point rules that flag a single point beyond the limits: they do not make a baseline unstable.
_NOT_SUSTAINED = {
    "facet1", "facet2", "part", "n_points", "signal",
    "sigma", "outside_limits", "astronomical", "beyond_3sigma",
}  # fmt: skip

AIM_ORDER = ["effective", "timely", "efficient", "patient-centred", "safe", "equitable"]
FAMILY_ORDER = ["outcome", "process", "balancing"]


# ---- the series ------------------------------------------------------------------------------


def assign_microsystems(
    events: pd.DataFrame,
    membership: dict[str, pd.DataFrame],
    *,
    period: str = "week",
    microsystem_id: str | None = None,
) -> pd.DataFrame:
    """Attach each measured case to its microsystem and period.

    A case belongs to the microsystem that owns its ``location`` (work area); without a location,
    to the main microsystem of its ``staff_id``; without either, to the patient's main panel.
    Cases that belong to no microsystem are dropped.

    Parameters
    ----------
    events : DataFrame
        The ``measure_events`` table.
    membership : dict of DataFrame
        ``locations``, ``staff`` and ``patients`` membership tables from workbook 01 (each with
        its key, ``microsystem_id`` and ``share``).
    period : {"week", "month"}
        Cases are dated to the Monday of their week or the first day of their month.
    microsystem_id : str, optional
        Keep only the cases of this microsystem.

    Returns
    -------
    DataFrame
        The events (all their columns) plus ``microsystem_id``, ``period`` and ``weight``
        (``denominator_weight`` when present, else 1).
    """
    owner = pd.Series(pd.NA, index=events.index, dtype="string")
    keys = [
        ("location", "locations", "location"),
        ("staff_id", "staff", "staff_id"),
        ("patient_id", "patients", "patient_id"),
    ]
    for column, table, key in keys:
        if column in events.columns and table in membership:
            main = (
                membership[table]
                .sort_values("share", ascending=False, kind="stable")
                .drop_duplicates(key)
                .set_index(key)["microsystem_id"]
            )
            owner = owner.fillna(events[column].map(main).astype("string"))
    keep = owner.notna() if microsystem_id is None else (owner == microsystem_id).fillna(False)
    cases = events.assign(microsystem_id=owner)[keep.to_numpy()].copy()
    cases["period"] = period_start(cases["timestamp"], period)
    if "denominator_weight" in cases.columns:
        cases["weight"] = pd.to_numeric(cases["denominator_weight"]).fillna(1.0)
    else:
        cases["weight"] = 1.0
    return cases.reset_index(drop=True)


def period_start(timestamps: pd.Series, period: str) -> pd.Series:
    """The start of each timestamp's week (Monday) or month, as dates."""
    ts = pd.to_datetime(timestamps)
    if period == "week":
        return (ts - pd.to_timedelta(ts.dt.day_of_week, unit="D")).dt.normalize()
    if period == "month":
        return ts.dt.to_period("M").dt.start_time
    raise ConfigError(f"analysis.period must be 'week' or 'month', found {period!r}.")


def measure_series(
    cases: pd.DataFrame,
    measures: pd.DataFrame,
    observations: pd.DataFrame | None = None,
    *,
    period: str = "week",
) -> pd.DataFrame:
    """The tidy series of every catalogue measure for every microsystem.

    Parameters
    ----------
    cases : DataFrame
        From :func:`assign_microsystems`.
    measures : DataFrame
        The measure catalogue.
    observations : DataFrame, optional
        Pre-aggregated points keyed by ``microsystem_id``; added as they are (dated to the start
        of their period).
    period : {"week", "month"}

    Returns
    -------
    DataFrame
        ``microsystem_id, measure_id, period, numerator, denominator, value, n_cases``: for
        proportions (p) the numerator counts the cases with value 1 and the denominator the cases;
        for rates (u) the numerator sums the values and the denominator the weights; for measured
        values (i, xbar) ``value`` is the mean. One row per microsystem, measure and period, sorted.
    """
    keys = ["microsystem_id", "measure_id", "period"]
    series = (
        cases.groupby(keys)
        .agg(numerator=("value", "sum"), denominator=("weight", "sum"), n_cases=("value", "size"))
        .reset_index()
    )
    series["value"] = series["numerator"] / series["denominator"]
    if observations is not None and not observations.empty:
        obs = observations.copy()
        obs["period"] = period_start(obs["period"], period)
        if "value" not in obs.columns:
            obs["value"] = obs["numerator"] / obs["denominator"]
        for column in ("numerator", "denominator"):
            if column not in obs.columns:
                obs[column] = np.nan
        obs["n_cases"] = 1
        series = pd.concat([series, obs[series.columns]], ignore_index=True)
    series = series[series["measure_id"].isin(measures["measure_id"])]
    return series.sort_values(keys).reset_index(drop=True)


def series_for_microsystem(
    events: pd.DataFrame | None,
    membership: dict[str, pd.DataFrame],
    measures: pd.DataFrame,
    observations: pd.DataFrame | None = None,
    *,
    microsystem_id: str,
    period: str = "week",
) -> pd.DataFrame:
    """:func:`assign_microsystems` then :func:`measure_series` for one microsystem, in one call.

    Parameters
    ----------
    events : DataFrame or None
        The ``measure_events`` table (None when every measure comes as observations).
    membership : dict of DataFrame
        Workbook 01's membership tables.
    measures : DataFrame
        The measure catalogue.
    observations : DataFrame, optional
        Pre-aggregated points; only this microsystem's are kept.
    microsystem_id : str
    period : {"week", "month"}

    Returns
    -------
    DataFrame
        As :func:`measure_series`, for ``microsystem_id`` only.
    """
    if events is None:
        cols = ["measure_id", "timestamp", "value", "patient_id"]
        events = pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
        events["timestamp"] = pd.to_datetime(events["timestamp"])
    cases = assign_microsystems(events, membership, period=period, microsystem_id=microsystem_id)
    obs = None
    if observations is not None:
        obs = observations[observations["microsystem_id"] == microsystem_id]
    series = measure_series(cases, measures, obs, period=period)
    return series[series["microsystem_id"] == microsystem_id].reset_index(drop=True)


# ---- the PDSA log ----------------------------------------------------------------------------


def adopted_changes(pdsa: pd.DataFrame, microsystem_id: str) -> pd.DataFrame:
    """The changes a microsystem adopted, each with the start of its adopting cycle.

    Returns
    -------
    DataFrame
        ``change, start, measure_ids`` sorted by start; empty when nothing was adopted.
    """
    tests = changes_tested(pdsa, microsystem_id)
    adopted = tests[tests["status"] == "adopted"]
    return adopted[["change", "start", "measure_ids"]].reset_index(drop=True)


def changes_tested(pdsa: pd.DataFrame, microsystem_id: str | None = None) -> pd.DataFrame:
    """One row per change tested in a microsystem: what was decided and when.

    Parameters
    ----------
    pdsa : DataFrame
        The PDSA log (``microsystem_id, cycle_id, change, start`` and optionally ``end,
        decision, measure_ids``).
    microsystem_id : str, optional
        Keep this microsystem's changes only.

    Returns
    -------
    DataFrame
        ``microsystem_id, change, status, decision, first_start, start, end, cycles,
        measure_ids``, sorted by ``start``. ``status`` is ``adopted`` (a cycle closed with adopt;
        ``start`` is that cycle's start: the new phase begins there), ``abandoned`` (the last
        decisive cycle closed with abandon; ``start`` and ``end`` bound the abandoned cycle, the
        window in which the change was tried at full scale) or ``testing`` (no cycle adopted or
        abandoned it yet; ``start`` is the first cycle's start and the baseline is frozen
        before it). ``decision`` is the decision of the change's last cycle (``ongoing`` when
        missing); ``measure_ids`` is ``;``-joined (empty: every measure).
    """
    columns = [
        "microsystem_id",
        "change",
        "status",
        "decision",
        "first_start",
        "start",
        "end",
        "cycles",
        "measure_ids",
    ]
    mine = pdsa if microsystem_id is None else pdsa[pdsa["microsystem_id"] == microsystem_id]
    rows = []
    for (ms, change), cycles in mine.groupby(["microsystem_id", "change"], sort=True):
        cycles = cycles.sort_values("start", kind="stable")
        decision = (
            cycles["decision"].astype("string").str.strip().str.lower().fillna("ongoing")
            if "decision" in cycles.columns
            else pd.Series("ongoing", index=cycles.index, dtype="string")
        )
        starts = pd.to_datetime(cycles["start"])
        ends = (
            pd.to_datetime(cycles["end"])
            if "end" in cycles.columns
            else pd.Series(pd.NaT, index=cycles.index)
        )
        decisive = decision[decision.isin(["adopt", "abandon"])]
        end = pd.NaT
        if not decisive.empty and decisive.iloc[-1] == "abandon":
            status = "abandoned"
            adopt = decision[decision == "adopt"]
            first = adopt.index[0] if len(adopt) else decisive.index[-1]
            start, end = starts[first], ends[decisive.index[-1]]
        elif (decision == "adopt").any():
            status, start = "adopted", starts[decision[decision == "adopt"].index[0]]
        else:
            status, start = "testing", starts.iloc[0]
        ids = cycles.get("measure_ids", pd.Series("", index=cycles.index)).fillna("").astype(str)
        joined = sorted({i.strip() for v in ids for i in v.replace(",", ";").split(";")} - {""})
        rows.append(
            {
                "microsystem_id": ms,
                "change": change,
                "status": status,
                "decision": str(decision.iloc[-1]),
                "first_start": starts.iloc[0],
                "start": start,
                "end": end,
                "cycles": len(cycles),
                "measure_ids": ";".join(joined),
            }
        )
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["start", "change"], kind="stable").reset_index(drop=True)


def _applies(measure_ids: Any, measure_id: str) -> bool:
    """A change concerns a measure when it lists it, or lists no measure at all."""
    if measure_ids is None or (isinstance(measure_ids, float) and math.isnan(measure_ids)):
        return True
    ids = {i.strip() for i in str(measure_ids).replace(",", ";").split(";")} - {""}
    return not ids or measure_id in ids


# ---- one measure -----------------------------------------------------------------------------


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
        :data:`RESULT_COLUMNS` but ``microsystem_id, name, family, aim, balances,
        balancing_flag, subgroups_flagged`` (added by :class:`MicrosystemAnalysis`).
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


def _runs_columns(part: pd.DataFrame) -> pd.DataFrame:
    """Recompute the runs analysis (Anhøj) over the rows of ``part`` alone."""
    from qi_helpers.spc import runs_limits

    out = part.copy()
    y, cl = out["y"].to_numpy(float), out["cl"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        side = np.sign(y - cl)
    useful = side[out["include"].to_numpy(bool) & ~np.isnan(side) & (side != 0)]
    n = useful.size
    if n:
        runs = 1 + int((useful[1:] != useful[:-1]).sum())
        longest = int(max(len(r) for r in np.split(useful, np.flatnonzero(np.diff(useful)) + 1)))
        lr_max, cr_min = (float(v) for v in runs_limits(n))
        signal = longest > lr_max or (runs - 1) < cr_min
        vals = (n, longest, lr_max, runs - 1, cr_min)
    else:
        signal, vals = False, (0, np.nan, np.nan, np.nan, np.nan)
    out["n_useful"] = vals[0]
    for name, v in zip(
        ["longest_run", "longest_run_max", "n_crossings", "n_crossings_min"], vals[1:], strict=True
    ):
        out[name] = pd.array([v] * len(out), dtype="Float64").round().astype("Int64")
    out["runs_signal"] = signal
    out["part"] = 1
    return out


def _judge(
    frozen: pd.DataFrame, n_ref: int, rules: str, improvement: str
) -> tuple[str | None, str, bool]:
    """Signals in the rows after ``n_ref`` of a frozen chart: (label, why, any signal)."""
    from qi_helpers.spc_rules import signals

    tail = _runs_columns(frozen.iloc[n_ref:])
    sig = signals(tail, rules=rules, improvement=improvement)
    good = int((sig.points["point_type"] == "special_cause_improvement").sum())
    bad = int((sig.points["point_type"] == "special_cause_concern").sum())
    part_rules = [c for c in sig.parts.columns if sig.parts[c].dtype == bool and c != "signal"]
    part_hit = [c for c in part_rules if bool(sig.parts[c].iloc[0])]
    if not (good or bad or part_hit):
        return None, "no special cause", False
    side = float(np.nanmean(tail["y"]) - np.nanmean(tail["cl"]))
    better_side = side > 0 if improvement == "up" else side < 0
    if good != bad:
        label = "improved" if good > bad else "worsened"
    else:
        label = "improved" if better_side else "worsened"
    bits = []
    if good:
        bits.append(f"{good} point{'s' * (good > 1)} signalling improvement")
    if bad:
        bits.append(f"{bad} point{'s' * (bad > 1)} signalling concern")
    if part_hit:
        bits.append("a shift in the runs analysis (" + ", ".join(part_hit) + ")")
    return label, " and ".join(bits), True


def _level(data: pd.DataFrame, y: str, n: str | None, chart: str, multiply: float) -> float:
    """The level of some rows on the charted scale (pooled for ratios, mean otherwise)."""
    if data.empty:
        return math.nan
    if n is not None:
        den = data[n].sum()
        return float(data[y].sum() / den * multiply) if den > 0 else math.nan
    return float(data[y].mean() * multiply)


def _sigma(frozen: pd.DataFrame, n_ref: int) -> float:
    """Sigma per point of the baseline, on the charted scale."""
    base = frozen.iloc[:n_ref]
    s = ((base["ucl"] - base["cl"]) / 3).to_numpy(float)
    s = s[np.isfinite(s)]
    if s.size:
        return float(s.mean())
    y = base["y"].to_numpy(float)
    y = y[np.isfinite(y)]
    return float(np.abs(np.diff(y)).mean() / 1.128) if y.size > 2 else math.nan


def _detect(
    before: pd.DataFrame,
    chart: str,
    multiply: float,
    sigma: float,
    baseline: float,
    effect_now: float,
    target: float,
    up: bool,
    rules: str,
) -> tuple[float, str]:
    """Periods after the change a chart needs to show it, and what size of change that is.

    The size is the change seen so far when it is an improvement, else the change that would
    reach the target. The Monte Carlo estimate of :func:`qi_helpers.detection.periods_to_detect`
    (simulated from the baseline periods ``before``) is used; when it cannot simulate the data,
    the closed-form :func:`qi_helpers.effects.periods_to_signal`.
    """
    from qi_helpers.errors import QIError

    gain = effect_now if up else -effect_now
    if np.isfinite(gain) and gain > 0:
        size, what = effect_now, "the change seen so far"
    elif np.isfinite(target) and ((target > baseline) if up else (target < baseline)):
        size, what = target - baseline, "a change that would reach the target"
    else:
        return math.nan, ""
    sim = {"p": "p", "pp": "p", "u": "u", "up": "u"}.get(chart, "i")
    try:
        from qi_helpers.detection import periods_to_detect

        den = before["denominator"].to_numpy(float) if sim != "i" else None
        found = periods_to_detect(
            before["value"].to_numpy(float), den, size / multiply, chart=sim, rules=rules,
            sims=400, seed=0, horizon=156, relative=False,
        )  # fmt: skip
        n = found["periods"].iloc[0]
        return (math.nan if pd.isna(n) else float(n)), what
    except (ImportError, QIError, ValueError):
        pass
    if not np.isfinite(sigma) or sigma <= 0:
        return math.nan, ""
    return periods_to_signal(size / sigma, rules=rules), what


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
        From :func:`measure_series`, for one microsystem (or pass ``microsystem_id``).
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
        The measured cases (:func:`assign_microsystems`); needed for xbar and s charts.
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
    concerns = np.array([_applies(v, measure_id) for v in tests["measure_ids"]], dtype=bool)
    tests = tests[concerns].reset_index(drop=True)
    ids = log["measure_ids"] if "measure_ids" in log.columns else [None] * len(log)
    cycles = log[np.array([_applies(v, measure_id) for v in ids], dtype=bool)]
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
        start = period_start(pd.Series([pd.Timestamp(when)]), _period_kind(periods)).iloc[0]
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
            c for c in parts.columns if c not in _NOT_SUSTAINED and parts[c].dtype != object
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
        label, why, spc = _judge(frozen, n_ref, rules, improvement)
        base_mean = _level(before, y, n, chart_type, multiply)
        after_mean = _level(after, y, n, chart_type, multiply)
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
            need, what = _detect(
                series_of(ref0, i0), chart_type, multiply, _sigma(frozen, n_ref), base_mean,
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
                "baseline_mean": _level(rows_of(0, b1), y, n, chart_type, multiply),
                "after_mean": _level(rows_of(b1, len(periods)), y, n, chart_type, multiply),
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


def _period_kind(periods: np.ndarray) -> str:
    """``month`` when every period starts on the first of a month (and they are not weekly)."""
    p = pd.DatetimeIndex(periods)
    if len(p) > 1 and (p.day == 1).all() and np.diff(p.asi8).min() > 7 * 86_400 * 10**9:
        return "month"
    return "week"


# ---- one microsystem -------------------------------------------------------------------------


def order_measures(measures: pd.DataFrame) -> pd.DataFrame:
    """The catalogue grouped by aim then family (outcome, process, balancing), each balancing
    measure placed right after the outcome it balances (the catalogue's ``balances``)."""
    aim = measures.get("aim", pd.Series("", index=measures.index)).astype("string")
    table = measures.assign(
        _aim=aim.map({a: i for i, a in enumerate(AIM_ORDER)}).astype("Float64").fillna(99),
        _family=measures["family"].map({f: i for i, f in enumerate(FAMILY_ORDER)}).fillna(99),
    ).sort_values(["_aim", "_family", "measure_id"], kind="stable")
    table = table.drop(columns=["_aim", "_family"]).reset_index(drop=True)
    if "balances" not in table.columns:
        return table
    ids = list(table["measure_id"])
    balances = table["balances"].fillna("").astype(str).str.strip()
    for i in table.index[(table["family"] == "balancing") & (balances != "")]:
        mid, outcome = table.at[i, "measure_id"], balances[i]
        if outcome in ids and mid in ids:
            ids.remove(mid)
            ids.insert(ids.index(outcome) + 1, mid)
    return table.set_index("measure_id").loc[ids].reset_index()


@dataclass
class MicrosystemAnalysis:
    """Every measure of one microsystem, analysed.

    Attributes
    ----------
    microsystem_id : str
    measures : DataFrame
        The catalogue rows of the measures with data here, in :func:`order_measures` order.
    analyses : list of ChangeAnalysis
        In the order of ``measures``.
    pdsa : DataFrame
        This microsystem's PDSA cycles.
    subgroups : DataFrame or None
        From :func:`qi_helpers.equity.subgroup_effects` (empty without the patients table).
    """

    microsystem_id: str
    measures: pd.DataFrame
    analyses: list[ChangeAnalysis]
    pdsa: pd.DataFrame
    subgroups: pd.DataFrame | None = None

    @property
    def tests(self) -> pd.DataFrame:
        """This microsystem's changes (:func:`changes_tested`)."""
        return changes_tested(self.pdsa)

    @property
    def verdicts(self) -> pd.DataFrame:
        """The verdict table: one row per measure and change judged.

        Columns (:data:`RESULT_COLUMNS`):

        - ``microsystem_id, measure_id, name, family, aim``: the measure (catalogue);
        - ``change, start, decision``: the change judged, the start of its adopting (or
          abandoning, or first) cycle and the decision of its last cycle; empty for a
          ``baseline only`` row;
        - ``verdict``: one of :data:`VERDICTS` (see :func:`analyse`);
        - ``baseline_mean, after_mean``: the level before and after, on the charted scale;
        - ``n_baseline, n_after``: the periods compared;
        - ``last_period, last_value``: the last period with data and its charted value;
        - ``effect, effect_low, effect_high, effect_kind``: the effect and its 95% interval
          (``difference in proportions`` and ``difference in means`` on the charted scale,
          ``rate ratio`` without a scale; intervals ignore serial correlation);
        - ``periods_needed``: for ``no signal yet``, about how many more periods a chart needs
          to show the change (NaN otherwise or when it would not show);
        - ``balances``: for a balancing measure, the outcome it balances;
        - ``balancing_flag``: a balancing measure that worsened (verdict ``worsened`` or an
          effect interval wholly on the worse side);
        - ``baseline_stable``: the baseline, charted by itself, shows no sustained special
          cause (a shift, trend or runs signal; an isolated point beyond the limits does not
          count); NA when it is shorter than ``min_points``;
        - ``variation_icon, assurance_icon``: NHS Making Data Count icons of the measure's last
          point (:func:`qi_helpers.spc_rules.signals` with ``rules="mdc"``);
        - ``subgroups_flagged``: ``;``-joined patient subgroups that did not improve when the
          whole did (:mod:`qi_helpers.equity`);
        - ``reason``: the verdict in words.
        """
        frames = [a.verdicts for a in self.analyses]
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype="object") for c in RESULT_COLUMNS})
        table = pd.concat(frames, ignore_index=True)
        cols = ["measure_id", "name", "family", "aim", "improvement", "balances"]
        info = self.measures.reindex(columns=cols)
        table = info.merge(table, on="measure_id", how="right")
        table.insert(0, "microsystem_id", self.microsystem_id)
        table["balances"] = table["balances"].where(
            (table["family"] == "balancing") & table["balances"].fillna("").astype(str).ne(""),
            None,
        )
        worse_ci = [
            effect_direction(e, lo, hi, k) == (-1 if imp == "up" else 1)
            for e, lo, hi, k, imp in zip(
                table["effect"], table["effect_low"], table["effect_high"],
                table["effect_kind"], table["improvement"], strict=True,
            )
        ]  # fmt: skip
        table["balancing_flag"] = (table["family"] == "balancing") & (
            (table["verdict"] == "worsened") | pd.Series(worse_ci, index=table.index)
        )
        flagged = pd.Series("", index=table.index, dtype="object")
        if self.subgroups is not None and not self.subgroups.empty:
            hits = self.subgroups[self.subgroups["flag"]]
            for i, r in table.iterrows():
                mine = hits[
                    (hits["measure_id"] == r["measure_id"]) & (hits["change"] == r["change"])
                ]
                flagged[i] = ";".join(mine["dimension"] + " " + mine["subgroup"].astype(str))
        table["subgroups_flagged"] = flagged
        table["change"] = table["change"].astype("string")
        table["decision"] = table["decision"].astype("string")
        table["start"] = pd.to_datetime(table["start"])
        table["last_period"] = pd.to_datetime(table["last_period"])
        table["baseline_stable"] = table["baseline_stable"].astype("boolean")
        for c in ("n_baseline", "n_after"):
            table[c] = table[c].astype("int64")
        for c in ("variation_icon", "assurance_icon", "balances", "effect_kind"):
            table[c] = table[c].astype("string")
        return table[RESULT_COLUMNS]


def analyse_microsystem(
    cases: pd.DataFrame,
    series: pd.DataFrame,
    measures: pd.DataFrame,
    pdsa: pd.DataFrame,
    *,
    microsystem_id: str,
    min_points: int = 10,
    rules: str = "anhoej",
    baseline_periods: int | None = None,
    patients: pd.DataFrame | None = None,
    min_cases: int = 20,
) -> MicrosystemAnalysis:
    """Analyse every measure with data in one microsystem (see :func:`analyse`).

    Parameters
    ----------
    cases : DataFrame
        From :func:`assign_microsystems` (any microsystems; this one's are used).
    series : DataFrame
        From :func:`measure_series`.
    measures : DataFrame
        The measure catalogue.
    pdsa : DataFrame
        The PDSA log.
    microsystem_id : str
    min_points, rules, baseline_periods
        As :func:`analyse`.
    patients : DataFrame, optional
        The ``patients`` table: when given, outcome and process measures whose cases carry a
        ``patient_id`` are also analysed per subgroup (:func:`qi_helpers.equity.subgroup_effects`).
    min_cases : int
        Cases needed in each period of a subgroup before it is judged.

    Returns
    -------
    MicrosystemAnalysis

    Raises
    ------
    ConfigError
        When ``microsystem_id`` is not in the series, naming those that are.
    """
    own_series = series[(series["microsystem_id"] == microsystem_id).to_numpy()]
    own_series = own_series.astype({"microsystem_id": object, "measure_id": object})
    if own_series.empty and microsystem_id not in set(pdsa["microsystem_id"]):
        known = ", ".join(sorted(series["microsystem_id"].dropna().astype(str).unique())[:20])
        raise ConfigError(
            f"microsystem_id {microsystem_id!r}: no measured data and no PDSA cycles. "
            f"Microsystems with data: {known}."
        )
    keep = [c for c in ("measure_id", "period", "value", "weight", "patient_id") if c in cases]
    own_cases = cases.loc[(cases["microsystem_id"] == microsystem_id).to_numpy(), keep]
    own_cases = own_cases.assign(microsystem_id=microsystem_id).reset_index(drop=True)
    own_cases["measure_id"] = own_cases["measure_id"].astype("category")
    with_data = order_measures(measures[measures["measure_id"].isin(own_series["measure_id"])])
    analyses = [
        analyse(
            own_series,
            row,
            pdsa,
            rules=rules,
            baseline_periods=baseline_periods,
            cases=own_cases,
            min_points=min_points,
            microsystem_id=microsystem_id,
        )
        for _, row in with_data.iterrows()
    ]
    mine = pdsa[pdsa["microsystem_id"] == microsystem_id].sort_values(["start", "cycle_id"])
    from qi_helpers.equity import SUBGROUP_COLUMNS, subgroup_effects

    result = MicrosystemAnalysis(
        microsystem_id,
        with_data,
        analyses,
        mine.reset_index(drop=True),
        pd.DataFrame(columns=SUBGROUP_COLUMNS),
    )
    if patients is not None and "patient_id" in own_cases.columns:
        result.subgroups = subgroup_effects(result, own_cases, patients, min_cases=min_cases)
    return result


def what_next(verdicts: pd.DataFrame) -> str:
    """A short "what next" paragraph (Markdown) for the team, from the verdicts.

    Follows the Act step of the PDSA cycle (Langley et al. 2009): adopt and standardise what
    improved, keep testing where there is no signal yet, investigate a balancing measure that
    worsened before spreading, and look after the patients a change left behind.
    """
    if verdicts.empty:
        return "**What next:** no measured data yet; agree the measures and start collecting them."
    lines = []
    balance_hit = verdicts[verdicts["balancing_flag"].fillna(False).astype(bool)]
    harmed = set(balance_hit["change"].dropna())
    for _, r in verdicts[verdicts["verdict"] == "improved"].iterrows():
        if r["change"] in harmed:
            lines.append(
                f"- **{r['name']}** improved after *{r['change']}*, but a balancing measure "
                "worsened: investigate the balancing measure before you adopt or spread it."
            )
        elif r["decision"] == "abandon":
            lines.append(
                f"- **{r['name']}** improved while *{r['change']}* was tested, yet the team "
                "abandoned it: check whether something else explains the improvement."
            )
        else:
            lines.append(
                f"- **{r['name']}** improved after *{r['change']}*: adopt and standardise the "
                "new way of working, and keep measuring to hold the gain."
            )
        if isinstance(r.get("subgroups_flagged"), str) and r["subgroups_flagged"]:
            groups = r["subgroups_flagged"].replace(";", ", ")
            lines.append(
                f"  - Not every patient group shared it ({groups}): talk with those patients "
                "and adapt the change for them."
            )
    names = dict(zip(verdicts["measure_id"], verdicts["name"], strict=True))
    for _, r in balance_hit.iterrows():
        outcome = names.get(r["balances"], r["balances"]) if pd.notna(r["balances"]) else None
        lines.append(
            f"- **{r['name']}** (balancing measure for {outcome or 'the outcome'}) worsened "
            f"after *{r['change']}*: investigate the balancing measure with the team."
        )
    others = verdicts[(verdicts["verdict"] == "worsened") & ~verdicts["balancing_flag"]]
    for _, r in others.iterrows():
        about = f"after *{r['change']}*" if pd.notna(r["change"]) else "without a change"
        lines.append(
            f"- **{r['name']}** worsened {about}: study what happened before the next cycle."
        )
    for _, r in verdicts[verdicts["verdict"] == "no change"].iterrows():
        lines.append(
            f"- *{r['change']}* showed no change in **{r['name']}** and was abandoned: the "
            "data support that decision; try a different change idea."
        )
    for _, r in verdicts[verdicts["verdict"] == "no signal yet"].iterrows():
        more = (
            f" (about {int(r['periods_needed'])} more periods)"
            if pd.notna(r["periods_needed"])
            else ""
        )
        lines.append(
            f"- **{r['name']}**: no signal yet after *{r['change']}*; keep testing and "
            f"collecting data{more}, or adapt the change in the next cycle."
        )
    unstable = verdicts[
        (verdicts["verdict"] == "baseline only") & (verdicts["baseline_stable"] == False)  # noqa: E712
    ]
    if len(unstable):
        names = ", ".join(sorted(unstable["name"].astype(str)))
        lines.append(
            f"- The baseline of {names} is unstable without a change: find the special cause "
            "before testing a change there."
        )
    little = verdicts[verdicts["verdict"] == "too little data"]
    if len(little):
        names = ", ".join(sorted(set(little["name"].astype(str))))
        lines.append(f"- Too little data to judge yet: {names}.")
    if not lines:
        lines.append(
            "- No change tested yet: the charts show the baseline. Use them to choose "
            "what to test first."
        )
    return "**What next:**\n\n" + "\n".join(lines) + f"\n\n*{SERIAL_CORRELATION_NOTE}*"


def write_results(analysis: MicrosystemAnalysis, folder: str | Path) -> Path:
    """Write the verdict table to ``<folder>/<microsystem_id>.parquet`` (safe file name, atomic).

    The table is :attr:`MicrosystemAnalysis.verdicts` (every column of :data:`RESULT_COLUMNS`);
    it holds no patient-level data.
    """
    from qi_helpers.privacy import inside, safe_filename
    from qi_helpers.tables import write_parquet

    folder = Path(folder)
    path = inside(folder, folder / f"{safe_filename(analysis.microsystem_id)}.parquet")
    return write_parquet(analysis.verdicts, path)
