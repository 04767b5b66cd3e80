"""Track the spread of a change: the adoption curve and whether each adopter's gain holds.

Spread is not done when a team says it has adopted a change: the IHI Framework for Spread
(Massoud et al. 2006) asks for *measurement and feedback* in every adopting unit, and a change has
spread when its gain holds there. Two views answer that:

* the **adoption curve**: the share of the targeted microsystems that have adopted, by date,
  against the plan's waves (the S-shaped curve of Rogers, Diffusion of Innovations, 2003);
* the **sustain verdict** of each adopter: its measure charted with a phase at its adoption date,
  judged against its own frozen baseline (Provost & Murray, The Health Care Data Guide, 2011)
  by the special-cause rule and label workbook 03 applies to a pilot
  (:func:`qi_helpers.spc.after_baseline.judge_after_baseline`, with the analysis' rule set).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from qi_helpers.changes.analysis import CASE_CHARTS, RATIO_CHARTS
from qi_helpers.changes.verdicts import judge_after_baseline
from qi_helpers.data.columns import require_columns
from qi_helpers.errors import ConfigError
from qi_helpers.measures import Measure
from qi_helpers.spc.qic import qic
from qi_helpers.spc.rules import RULE_SETS
from qi_helpers.spc.runs import runs_limits
from qi_helpers.spread.ready import successful_changes

#: The sustain verdicts, best first.
SUSTAIN_VERDICTS = (
    "improved and holding",
    "lost",
    "no signal yet",
    "worsened",
    "too little data",
)

_CURVE_COLUMNS = ["change", "date", "kind", "adopted", "targeted", "share", "wave"]
_SUSTAIN_COLUMNS = [
    "microsystem_id",
    "change",
    "measure_id",
    "name",
    "improvement",
    "adopted",
    "n_baseline",
    "n_after",
    "baseline_mean",
    "after_mean",
    "recent_mean",
    "verdict",
    "reason",
]


def _log(adoption: pd.DataFrame | None) -> pd.DataFrame:
    """The adoption log with dates, first adoption per change and microsystem (empty if None)."""
    if adoption is None:
        adoption = pd.DataFrame(columns=["microsystem_id", "change", "adopted"])
    require_columns(adoption, ["microsystem_id", "change", "adopted"], "adoption")
    log = adoption.assign(adopted=pd.to_datetime(adoption["adopted"]))
    log = log.sort_values(["change", "adopted", "microsystem_id"], kind="stable")
    return log.drop_duplicates(["change", "microsystem_id"]).reset_index(drop=True)


def adoption_curve(adoption: pd.DataFrame | None, spread_plan: pd.DataFrame) -> pd.DataFrame:
    """The share of the targeted microsystems that adopted each change, by date, and the plan.

    The targeted microsystems of a change are those its spread plan lists plus those the adoption
    log says already adopted it (teams that adopted before the plan was made count as targeted
    and adopted). Pilots are not targets: they tested the change.

    Parameters
    ----------
    adoption : DataFrame or None
        The adoption log: ``microsystem_id, change, adopted`` (date). Only the first adoption of a
        change by a microsystem counts; None when nobody has adopted yet.
    spread_plan : DataFrame
        From :func:`qi_helpers.spread.waves.plan`: ``change, microsystem_id, wave, wave_start,
        wave_end``.

    Returns
    -------
    DataFrame
        ``change, date, kind, adopted, targeted, share, wave``, sorted by change, kind and date.
        ``kind == "actual"`` rows step up at each adoption date (``adopted`` is the cumulative
        count, ``share = adopted / targeted``, ``wave`` is NA); ``kind == "planned"`` rows give
        the share planned to have adopted by the end of each wave (``wave`` 1, 2, ...), counting
        the teams that had already adopted. Every change starts with an ``actual`` row of 0 at
        its first adoption or wave start.
    """
    require_columns(
        spread_plan, ["change", "microsystem_id", "wave", "wave_start", "wave_end"], "spread plan"
    )
    log = _log(adoption)
    rows: list[dict] = []
    changes = sorted(set(log["change"].dropna()) | set(spread_plan["change"].dropna()))
    for change in changes:
        done = log[log["change"] == change]
        planned = spread_plan[spread_plan["change"] == change]
        targets = set(done["microsystem_id"]) | set(planned["microsystem_id"])
        n = len(targets)
        starts = pd.to_datetime(planned["wave_start"])
        first = [d for d in (done["adopted"].min(), starts.min()) if pd.notna(d)]
        if first:
            rows.append(
                dict(
                    change=change,
                    date=min(first),
                    kind="actual",
                    adopted=0,
                    targeted=n,
                    share=0.0,
                    wave=pd.NA,
                )  # fmt: skip
            )
        for when, adopted in done.groupby("adopted", sort=True).size().cumsum().items():
            rows.append(
                dict(
                    change=change,
                    date=when,
                    kind="actual",
                    adopted=int(adopted),
                    targeted=n,
                    share=int(adopted) / n,
                    wave=pd.NA,
                )  # fmt: skip
            )
        already = set(done["microsystem_id"])
        for wave, members in planned.groupby("wave", sort=True):
            due = already | set(planned.loc[planned["wave"] <= wave, "microsystem_id"])
            rows.append(
                dict(
                    change=change,
                    date=pd.Timestamp(members["wave_end"].max()),
                    kind="planned",
                    adopted=len(due),
                    targeted=n,
                    share=len(due) / n,
                    wave=int(wave),
                )  # fmt: skip
            )
    table = pd.DataFrame(rows, columns=_CURVE_COLUMNS)
    table["date"] = pd.to_datetime(table["date"])
    table["wave"] = table["wave"].astype("Int64")
    table["adopted"] = table["adopted"].astype(int)
    table["targeted"] = table["targeted"].astype(int)
    return table.sort_values(["change", "kind", "date", "adopted"], kind="stable").reset_index(
        drop=True
    )


def spread_measures(results: pd.DataFrame) -> pd.DataFrame:
    """The measures to track for each change: those it improved where it was tested.

    Parameters
    ----------
    results : DataFrame
        Every workbook 03 verdict (``microsystem_id, measure_id, change, verdict``).

    Returns
    -------
    DataFrame
        ``change, measure_id``, one row per pair, sorted; only changes that improved somewhere and
        worsened nothing (:func:`qi_helpers.spread.ready.successful_changes`).
    """
    won = successful_changes(results)
    pairs = [(r.change, m) for r in won.itertuples() for m in str(r.measures).split(";") if m]
    return pd.DataFrame(pairs, columns=["change", "measure_id"]).sort_values(
        ["change", "measure_id"], ignore_index=True
    )


@dataclass
class SustainTracking:
    """Every adopter's sustain verdict and the chart data behind it.

    Attributes
    ----------
    verdicts : DataFrame
        One row per adopter and measure; see :func:`sustain`.
    charts : dict
        ``(microsystem_id, change, measure_id) -> qic result`` with a part (phase) starting at the
        adoption date, in the order of ``verdicts``.
    """

    verdicts: pd.DataFrame
    charts: dict[tuple[str, str, str], pd.DataFrame] = field(default_factory=dict)


def _lost(
    data: pd.DataFrame,
    y: str,
    n: str | None,
    chart_type: str,
    multiply: float,
    adopted: pd.Timestamp,
    improvement_up: bool,
    baseline: float,
) -> tuple[bool, str]:
    """Apply the "lost" rule to the points after adoption (see :func:`sustain`)."""
    after = data[pd.to_datetime(data["period"]) >= adopted]
    periods = np.sort(pd.to_datetime(after["period"]).unique())
    window = int(runs_limits(len(periods))[0]) + 1  # the shortest run that signals a shift
    n_gain = len(periods) - window
    if n_gain < window:
        return False, ""
    chart = qic(after, x="period", y=y, n=n, chart=chart_type, freeze=n_gain, multiply=multiply)
    recent = chart.iloc[n_gain:]
    recent = recent[recent["include"].astype(bool) & recent["y"].notna()]
    if recent.empty:
        return False, ""
    yv, cl = recent["y"].to_numpy(float), recent["cl"].to_numpy(float)
    halfway = (baseline + cl) / 2  # half the gain given back
    back = yv < cl if improvement_up else yv > cl
    far = yv < halfway if improvement_up else yv > halfway
    if back.all() and bool(
        (yv.mean() < halfway.mean()) if improvement_up else (yv.mean() > halfway.mean())
    ):
        return True, (
            f"its last {len(yv)} points all lie on the baseline side of the level it reached, "
            "more than half way back (a shift back toward baseline)"
        )
    toward = (recent["lcl"] if improvement_up else recent["ucl"]).to_numpy(float)
    with np.errstate(invalid="ignore"):
        beyond = (yv < toward) if improvement_up else (yv > toward)
    if bool((beyond & far).any()):
        return True, (
            "a recent point lies beyond the limits of the level it reached, more than half way "
            "back toward baseline"
        )
    return False, ""


def _chart_data(
    cases: pd.DataFrame, series: pd.DataFrame, chart: str, microsystem_id: str, measure_id: str
) -> tuple[pd.DataFrame, str, str | None]:
    """The rows and columns :func:`qi_helpers.spc.qic.qic` needs for one microsystem's measure."""
    if chart in CASE_CHARTS:
        own = cases[
            (cases["microsystem_id"] == microsystem_id) & (cases["measure_id"] == measure_id)
        ]
        return own[["period", "value"]], "value", None
    own = series[
        (series["microsystem_id"] == microsystem_id) & (series["measure_id"] == measure_id)
    ]
    if chart in RATIO_CHARTS and own["denominator"].notna().all():
        return own[["period", "numerator", "denominator"]], "numerator", "denominator"
    return own[["period", "value"]], "value", None


def _judge_adopter(
    cases: pd.DataFrame,
    series: pd.DataFrame,
    measure: Measure,
    entry: Any,
    min_points: int,
    rules: str,
) -> tuple[pd.DataFrame, str, str, int, int, float, float] | None:
    """Chart one adopter's measure with a phase at adoption and judge the change's effect."""
    chart_type, multiply, up = measure.chart, measure.multiply, measure.up
    data, y, n = _chart_data(cases, series, chart_type, entry.microsystem_id, measure.measure_id)
    if data.empty:
        return None
    periods = np.sort(pd.to_datetime(data["period"]).unique())
    n_base = int((periods < np.datetime64(entry.adopted)).sum())
    n_after = len(periods) - n_base
    part = [n_base] if 0 < n_base < len(periods) else None
    chart = qic(data, x="period", y=y, n=n, chart=chart_type, part=part, multiply=multiply)
    if n_base < min_points or n_after < 3:
        reason = f"{n_base} baseline and {n_after} later points (need {min_points} and 3)"
        return chart, "too little data", reason, n_base, n_after, np.nan, np.nan
    frozen = qic(data, x="period", y=y, n=n, chart=chart_type, freeze=n_base, multiply=multiply)
    before, after = frozen.iloc[:n_base], frozen.iloc[n_base:]
    if chart_type in CASE_CHARTS or n is not None:  # pooled means, as the centre line
        base_mean, after_mean = float(before["cl"].iloc[0]), _pooled(after, multiply)
    else:
        base_mean, after_mean = float(before["y"].mean()), float(after["y"].mean())
    # workbook 03's verdict rule and its label: the side with more signalling points
    label, why, signal = judge_after_baseline(frozen, n_base, rules, "up" if up else "down")
    if not signal:
        reason = f"no special cause after adoption yet; mean {base_mean:.3g} -> {after_mean:.3g}"
        return chart, "no signal yet", reason, n_base, n_after, base_mean, after_mean
    reason = f"{why} after adoption; mean {base_mean:.3g} -> {after_mean:.3g}"
    return chart, str(label), reason, n_base, n_after, base_mean, after_mean


def _pooled(points: pd.DataFrame, multiply: float) -> float:
    """The pooled mean of a phase: sum of y_sum over sum of n (or of y_length), times multiply."""
    denominator = points["n"] if points["n"].notna().all() else points["y_length"]
    total = float(denominator.sum())
    return float(points["y_sum"].sum()) / total * multiply if total else np.nan


def sustain(
    cases: pd.DataFrame,
    series: pd.DataFrame,
    measures: pd.DataFrame,
    adoption: pd.DataFrame | None,
    measure_ids: pd.DataFrame,
    *,
    min_points: int = 10,
    rules: str = "anhoej",
) -> SustainTracking:
    """Judge, for each adopter in the adoption log, whether the change's gain arrived and holds.

    Parameters
    ----------
    cases : DataFrame
        From :func:`qi_helpers.changes.series.assign_microsystems` (case values for xbar/s charts).
    series : DataFrame
        From :func:`qi_helpers.changes.series.measure_series`.
    measures : DataFrame
        The measure catalogue (``measure_id, name, chart, improvement``, optional ``multiply``).
    adoption : DataFrame or None
        The adoption log: ``microsystem_id, change, adopted`` (None: nobody adopted yet).
    measure_ids : DataFrame
        ``change, measure_id``: the measures to track per change (:func:`spread_measures`).
    min_points : int
        Baseline points needed before the adoption date.
    rules : {"anhoej", "ihi", "mdc", "western_electric"}
        The rule set, as workbook 03's ``analysis.rules``
        (:func:`qi_helpers.spc.rules.signals`).

    Returns
    -------
    SustainTracking
        ``verdicts`` has the columns ``microsystem_id, change, measure_id, name, improvement,
        adopted, n_baseline, n_after, baseline_mean, after_mean, recent_mean, verdict, reason``
        (one row per adopter and tracked measure with data, sorted by change, adoption date and
        microsystem); ``recent_mean`` is the mean of the last 6 points. ``charts`` holds each
        chart (a :func:`qi_helpers.spc.qic.qic` result with part 2 starting at adoption).

    Notes
    -----
    The verdicts, for the periods before the adoption date as the baseline:

    - ``improved``: with the baseline's centre line and 3-sigma limits frozen and extended,
      the after-adoption points, judged alone with the rule set (their runs analysis
      recomputed around the baseline centre line; Anhøj & Olesen 2014), show a special cause,
      and more of the signalling points signal improvement than concern (a tie, or a runs-only
      signal, goes by the side of the after-adoption mean): the rule and the label workbook 03
      gives a pilot (:func:`qi_helpers.spc.after_baseline.judge_after_baseline`), so a change
      and its spread are judged alike.
    - ``lost``: improved, but the gain has gone back. Of the ``N`` points after adoption, the
      latest ``W = round(log2(N) + 3) + 1`` (the shortest run that Anhøj's rule reads as a shift;
      Anhøj & Olesen 2014) are compared with the level the adopter reached, the centre line and
      3-sigma limits of the earlier ``N - W`` after-adoption points, frozen. The gain is lost
      when all ``W`` lie on the baseline side of that centre line with their mean more than half
      way back to the baseline centre line (a shift back), or when one lies beyond that level's
      limit on the baseline side and more than half way back (a special cause back toward
      baseline); Provost & Murray 2011, ch. 3 and 6 on holding the gains. The "half way" part
      keeps a small drift of an autocorrelated or seasonal measure from counting as a loss. It
      needs ``N >= 2 W`` (about 20 weekly points); before that an improved adopter is reported
      as holding. With 30 weekly points, a gain back at the old level for 9 weeks is lost.
    - ``improved and holding``: improved and not lost.
    - ``worsened``: the same signal, with more points signalling concern.
    - ``no signal yet``: no special cause after adoption (with few points after adoption this is
      honest: a modest gain needs weeks of data to show on a chart).
    - ``too little data``: fewer than ``min_points`` baseline points or 3 points after adoption.
    """
    if rules not in RULE_SETS:
        raise ConfigError(f"sustain: unknown rule set {rules!r}; choose one of {RULE_SETS}.")
    require_columns(measure_ids, ["change", "measure_id"], "measure_ids")
    require_columns(measures, ["measure_id", "name", "chart", "improvement"], "measures")
    log = _log(adoption)
    catalogue = measures.set_index("measure_id", drop=False)
    rows: list[dict] = []
    charts: dict[tuple[str, str, str], pd.DataFrame] = {}
    for entry in log.itertuples(index=False):
        tracked = measure_ids.loc[measure_ids["change"] == entry.change, "measure_id"]
        for measure_id in tracked:
            if measure_id not in catalogue.index:
                continue
            measure = Measure.from_row(catalogue.loc[measure_id])
            judged = _sustain_row(cases, series, measure, entry, min_points, rules)
            if judged is None:
                continue
            row, chart = judged
            rows.append({**row, "measure_id": measure_id})
            charts[(entry.microsystem_id, entry.change, measure_id)] = chart
    table = pd.DataFrame(rows, columns=_SUSTAIN_COLUMNS)
    table["adopted"] = pd.to_datetime(table["adopted"])
    order = table.sort_values(["change", "adopted", "microsystem_id", "measure_id"], kind="stable")
    charts = {
        (r.microsystem_id, r.change, r.measure_id): charts[
            (r.microsystem_id, r.change, r.measure_id)
        ]
        for r in order.itertuples()
    }
    return SustainTracking(order.reset_index(drop=True), charts)


def _sustain_row(
    cases: pd.DataFrame,
    series: pd.DataFrame,
    measure: Measure,
    entry: Any,
    min_points: int,
    rules: str,
) -> tuple[dict[str, Any], pd.DataFrame] | None:
    """One adopter's sustain verdict on one measure (a row of :func:`sustain`) and its chart."""
    judged = _judge_adopter(cases, series, measure, entry, min_points, rules)
    if judged is None:
        return None
    chart, label, reason, n_base, n_after, base_mean, after_mean = judged
    after = chart.iloc[n_base:]
    recent = float(after["y"].tail(6).mean()) if n_after else np.nan
    if label == "improved":
        data, y, n = _chart_data(
            cases, series, measure.chart, entry.microsystem_id, measure.measure_id
        )
        lost, why = _lost(
            data, y, n, measure.chart, measure.multiply, entry.adopted, measure.up, base_mean
        )
        if lost:
            label, reason = "lost", f"improved after adoption, but {why}"
        else:
            label = "improved and holding"
            reason = f"{reason}; no sign of a return to baseline"
    row = dict(
        microsystem_id=entry.microsystem_id,
        change=entry.change,
        measure_id=measure.measure_id,
        name=measure.name,
        improvement=measure.improvement,
        adopted=entry.adopted,
        n_baseline=n_base,
        n_after=n_after,
        baseline_mean=base_mean,
        after_mean=after_mean,
        recent_mean=recent,
        verdict=label,
        reason=reason,
    )
    return row, chart


def sustain_summary(verdicts: pd.DataFrame) -> pd.DataFrame:
    """How many adopters of each change are in each sustain verdict.

    Returns
    -------
    DataFrame
        ``change`` then one count column per verdict of :data:`SUSTAIN_VERDICTS`, and
        ``adopters`` (the row total).
    """
    counts = pd.crosstab(verdicts["change"], verdicts["verdict"]).reindex(
        columns=list(SUSTAIN_VERDICTS), fill_value=0
    )
    counts["adopters"] = counts.sum(axis=1)
    counts.columns.name = None
    return counts.reset_index()
