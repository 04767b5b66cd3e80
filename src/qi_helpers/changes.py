"""Analyse tests of change in one microsystem (workbook 03).

A test of change is a PDSA cycle (Plan-Do-Study-Act; Langley et al., The Improvement Guide, 2009).
Its effect is judged on run and control charts: the points before the change was adopted form the
baseline (frozen centre line and limits), and a special cause after it, in the direction of
improvement, is the evidence that the change made a difference (Provost & Murray, The Health Care
Data Guide, 2011).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from qi_helpers.errors import DataError

#: Chart types whose points are subgroup means of case values (need the cases, not sums).
CASE_CHARTS = {"xbar", "s"}

VERDICTS = ("improved", "worsened", "no signal yet", "too little data")


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
        ``locations``, ``staff`` and ``patients`` membership tables from workbook 01.
    period : {"week", "month"}
        Cases are dated to the Monday of their week or the first day of their month.
    microsystem_id : str, optional
        Keep only the cases of this microsystem.

    Returns
    -------
    DataFrame
        The events plus ``microsystem_id``, ``period`` and ``weight`` (``denominator_weight``
        when present, else 1).
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
    cases = events.assign(microsystem_id=owner)[keep].copy()
    cases["period"] = period_start(cases["timestamp"], period)
    if "denominator_weight" in cases.columns:
        cases["weight"] = cases["denominator_weight"].fillna(1.0)
    else:
        cases["weight"] = 1.0
    return cases.reset_index(drop=True)


def period_start(timestamps: pd.Series, period: str) -> pd.Series:
    """The start of each timestamp's week (Monday) or month, as dates."""
    ts = pd.to_datetime(timestamps)
    if period == "week":
        return (ts - pd.to_timedelta(ts.dt.dayofweek, unit="D")).dt.normalize()
    if period == "month":
        return ts.dt.to_period("M").dt.start_time
    raise DataError(f"period must be 'week' or 'month', found {period!r}.")


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
        Pre-aggregated points keyed by ``microsystem_id``; added as they are.
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


def adopted_changes(pdsa: pd.DataFrame, microsystem_id: str) -> pd.DataFrame:
    """The changes a microsystem adopted, each with the start of its adopting cycle.

    Returns
    -------
    DataFrame
        ``change, start, measure_ids`` sorted by start; empty when nothing was adopted.
    """
    mine = pdsa[pdsa["microsystem_id"] == microsystem_id]
    if "decision" in mine.columns:
        mine = mine[mine["decision"].astype("string").str.lower() == "adopt"]
    cols = ["change", "start", "measure_ids"]
    mine = mine.assign(measure_ids=mine.get("measure_ids", pd.Series("", index=mine.index)))
    return mine.sort_values("start").drop_duplicates("change")[cols].reset_index(drop=True)


@dataclass
class MeasureAnalysis:
    """The analysis of one measure: its chart data and verdict."""

    measure_id: str
    chart: pd.DataFrame
    verdict: dict


def analyse_measure(
    cases: pd.DataFrame,
    series: pd.DataFrame,
    measure: pd.Series,
    adopted: pd.DataFrame,
    *,
    min_points: int = 10,
) -> MeasureAnalysis:
    """Chart one measure with a frozen baseline before its first adopted change, and judge it.

    The baseline is every period before the start of the first adopted change that lists this
    measure (or, when nothing was adopted, the whole series). Verdict: ``improved`` or
    ``worsened`` when, after the change, a point lies beyond the baseline's 3-sigma limits or the
    runs analysis (Anhøj) signals a shift, with the phase mean on the improving or worsening side;
    ``no signal yet`` otherwise; ``too little data`` with fewer than ``min_points`` baseline
    points or fewer than 3 points after the change.

    Returns
    -------
    MeasureAnalysis
        ``chart`` is :func:`qi_helpers.spc.qic`'s frame; ``verdict`` a dict with ``measure_id,
        change, start, verdict, baseline_mean, after_mean, n_baseline, n_after, reason``.
    """
    from qi_helpers.spc import qic

    measure_id = str(measure["measure_id"])
    chart_type = str(measure["chart"])
    multiply = float(measure.get("multiply", 1) or 1)
    relevant = (
        adopted[
            adopted["measure_ids"]
            .fillna("")
            .str.split(";")
            .apply(lambda ids: measure_id in [i.strip() for i in ids])
        ]
        if not adopted.empty
        else adopted
    )
    change = relevant.iloc[0] if len(relevant) else None
    own = series[series["measure_id"] == measure_id]
    if chart_type in CASE_CHARTS:
        data = cases[cases["measure_id"] == measure_id][["period", "value"]]
        x, y, n = "period", "value", None
    elif chart_type in ("p", "u", "pp", "up"):
        data = own[["period", "numerator", "denominator"]]
        x, y, n = "period", "numerator", "denominator"
    else:
        data = own[["period", "value"]]
        x, y, n = "period", "value", None
    periods = np.sort(data["period"].unique())
    n_base = (
        int((periods < np.datetime64(change["start"])).sum())
        if change is not None
        else len(periods)
    )
    n_after = len(periods) - n_base
    verdict = {
        "measure_id": measure_id,
        "change": None if change is None else change["change"],
        "start": None if change is None else change["start"],
        "verdict": "no signal yet",
        "baseline_mean": np.nan,
        "after_mean": np.nan,
        "n_baseline": n_base,
        "n_after": n_after,
        "last_period": pd.Timestamp(periods.max()) if len(periods) else pd.NaT,
        "reason": "",
    }
    if len(periods) == 0:
        verdict.update(verdict="too little data", reason="no data for this microsystem")
        return MeasureAnalysis(measure_id, pd.DataFrame(), verdict)
    freeze = n_base if (change is not None and min_points <= n_base < len(periods)) else None
    result = qic(data, x=x, y=y, n=n, chart=chart_type, freeze=freeze, multiply=multiply)
    if change is None:
        verdict.update(verdict="no signal yet", reason="no change adopted yet: baseline only")
        return MeasureAnalysis(measure_id, result, verdict)
    if n_base < min_points or n_after < 3:
        verdict.update(
            verdict="too little data",
            reason=f"{n_base} baseline and {n_after} later points (need {min_points} and 3)",
        )
        return MeasureAnalysis(measure_id, result, verdict)
    before, after = result.iloc[:n_base], result.iloc[n_base:]
    base_mean, after_mean = float(before["y"].mean()), float(after["y"].mean())
    up = str(measure["improvement"]).lower() == "up"
    better = after_mean > base_mean if up else after_mean < base_mean
    sigma = bool(after["sigma_signal"].fillna(False).astype(bool).any())
    runs = bool(after["runs_signal"].fillna(False).astype(bool).any())
    if sigma or runs:
        label = "improved" if better else "worsened"
        why = " and ".join(
            w
            for w, on in [
                ("points beyond the baseline limits", sigma),
                ("a shift in the runs analysis", runs),
            ]
            if on
        )
        reason = f"{why} after the change; mean {base_mean:.3g} -> {after_mean:.3g}"
    else:
        label, reason = (
            "no signal yet",
            f"no special cause yet; mean {base_mean:.3g} -> {after_mean:.3g}",
        )
    verdict.update(verdict=label, baseline_mean=base_mean, after_mean=after_mean, reason=reason)
    return MeasureAnalysis(measure_id, result, verdict)


@dataclass
class MicrosystemAnalysis:
    """Every measure of one microsystem, analysed.

    Attributes
    ----------
    microsystem_id : str
    measures : DataFrame
        The catalogue rows of the measures with data here, grouped by aim then family.
    analyses : list of MeasureAnalysis
        In the order of ``measures``.
    pdsa : DataFrame
        This microsystem's PDSA cycles.
    """

    microsystem_id: str
    measures: pd.DataFrame
    analyses: list[MeasureAnalysis]
    pdsa: pd.DataFrame

    @property
    def verdicts(self) -> pd.DataFrame:
        """One row per measure: ``microsystem_id, measure_id, name, family, aim, change, start,
        verdict, baseline_mean, after_mean, n_baseline, n_after, last_period, reason``."""
        table = pd.DataFrame([a.verdict for a in self.analyses])
        if table.empty:
            return pd.DataFrame(
                columns=[
                    "microsystem_id",
                    "measure_id",
                    "name",
                    "family",
                    "aim",
                    "change",
                    "start",
                    "verdict",
                    "baseline_mean",
                    "after_mean",
                    "n_baseline",
                    "n_after",
                    "last_period",
                    "reason",
                ]
            )
        info = self.measures[["measure_id", "name", "family", "aim"]]
        table = info.merge(table, on="measure_id", how="right")
        table.insert(0, "microsystem_id", self.microsystem_id)
        table["change"] = table["change"].astype("string")
        table["start"] = pd.to_datetime(table["start"])
        return table


def analyse_microsystem(
    cases: pd.DataFrame,
    series: pd.DataFrame,
    measures: pd.DataFrame,
    pdsa: pd.DataFrame,
    *,
    microsystem_id: str,
    min_points: int = 10,
) -> MicrosystemAnalysis:
    """Analyse every measure with data in one microsystem (see :func:`analyse_measure`).

    Raises
    ------
    DataError
        When ``microsystem_id`` has no measured data at all.
    """
    own_cases = cases[cases["microsystem_id"] == microsystem_id]
    own_series = series[series["microsystem_id"] == microsystem_id]
    with_data = measures[measures["measure_id"].isin(own_series["measure_id"])]
    aim_order = ["safe", "effective", "patient-centred", "timely", "efficient", "equitable"]
    family_order = ["outcome", "process", "balancing"]
    with_data = (
        with_data.assign(
            _aim=with_data.get("aim", pd.Series("", index=with_data.index))
            .map({a: i for i, a in enumerate(aim_order)})
            .fillna(99),
            _family=with_data["family"].map({f: i for i, f in enumerate(family_order)}).fillna(99),
        )
        .sort_values(["_aim", "_family", "measure_id"])
        .drop(columns=["_aim", "_family"])
    )
    adopted = adopted_changes(pdsa, microsystem_id)
    analyses = [
        analyse_measure(own_cases, own_series, row, adopted, min_points=min_points)
        for _, row in with_data.iterrows()
    ]
    mine = pdsa[pdsa["microsystem_id"] == microsystem_id].sort_values(["start", "cycle_id"])
    return MicrosystemAnalysis(
        microsystem_id, with_data.reset_index(drop=True), analyses, mine.reset_index(drop=True)
    )


def what_next(verdicts: pd.DataFrame) -> str:
    """A short "what next" paragraph (Markdown) for the team, from the verdicts.

    Follows the Act step of the PDSA cycle: adopt and standardise what improved, keep testing
    where there is no signal yet, and study any balancing measure that worsened before spreading.
    """
    if verdicts.empty:
        return "**What next:** no measured data yet; agree the measures and start collecting them."
    lines = []
    improved = verdicts[verdicts["verdict"] == "improved"]
    worsened = verdicts[verdicts["verdict"] == "worsened"]
    waiting = verdicts[(verdicts["verdict"] == "no signal yet") & verdicts["change"].notna()]
    little = verdicts[verdicts["verdict"] == "too little data"]
    for _, row in improved.iterrows():
        lines.append(
            f"- **{row['name']}** improved after *{row['change']}*: adopt it, "
            "standardise the new way of working and keep measuring to hold the gain."
        )
    for _, row in worsened.iterrows():
        what = "the balancing measure" if row.get("family") == "balancing" else "this measure"
        lines.append(
            f"- **{row['name']}** worsened after *{row['change']}*: investigate {what} "
            "with the team before adopting or spreading the change."
        )
    for _, row in waiting.iterrows():
        lines.append(
            f"- **{row['name']}**: no signal yet after *{row['change']}*; keep testing "
            "and collecting data, or adapt the change in the next cycle."
        )
    if not len(little) == 0:
        names = ", ".join(sorted(little["name"].astype(str)))
        lines.append(f"- Too little data to judge yet: {names}.")
    if not lines:
        lines.append(
            "- No change adopted yet: the charts show the baseline. Use them to choose "
            "what to test first."
        )
    return "**What next:**\n\n" + "\n".join(lines)


def write_results(analysis: MicrosystemAnalysis, folder: str | Path) -> Path:
    """Write the verdict table to ``<folder>/<microsystem_id>.parquet`` (safe file name, atomic)."""
    from qi_helpers.privacy import inside, safe_filename
    from qi_helpers.tables import write_parquet

    folder = Path(folder)
    path = inside(folder, folder / f"{safe_filename(analysis.microsystem_id)}.parquet")
    return write_parquet(analysis.verdicts, path)
