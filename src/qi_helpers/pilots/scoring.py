"""Score every candidate pilot on the five criteria, for one measure (workbook 02).

A good pilot has room to improve, a stable baseline (so that a change can be told apart from
common-cause variation), enough volume to see a change soon, a team ready to test ideas, and a
profile like the teams the change will later spread to (IHI, *Going Lean in Health Care* and the
Breakthrough Series guidance on choosing a pilot; AHRQ, *Practice Facilitation Handbook*, module
13; Nelson, Batalden & Godfrey, *Quality by Design*, 2007). :func:`criteria` scores every
candidate on these criteria from 0 (worst) to 1 (best), with the raw value behind each score and
a one-line explanation; each criterion is one function of this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qi_helpers.errors import ConfigError, DataError
from qi_helpers.measures import Measure, detection_chart
from qi_helpers.pilots.baselines import baseline_window, catalogue_row
from qi_helpers.pilots.profiles import PROFILE_BLOCKS, representativeness
from qi_helpers.pilots.readiness import MIN_RESPONDENTS
from qi_helpers.spc.detect import periods_to_detect
from qi_helpers.spc.qic import qic
from qi_helpers.spc.rules import signals

#: The pilot criteria, in the order they are shown.
CRITERIA: tuple[str, ...] = (
    "room_to_improve",
    "stable_baseline",
    "time_to_detect",
    "readiness",
    "representativeness",
)

#: Plain names of the criteria for explanations and charts.
CRITERIA_LABELS: dict[str, str] = {
    "room_to_improve": "room to improve",
    "stable_baseline": "stable baseline",
    "time_to_detect": "time to detect a change",
    "readiness": "team readiness",
    "representativeness": "representativeness",
}

#: Point rules that flag a single point beyond the control limits, one name per rule set.
_LIMIT_RULES = ("sigma", "astronomical", "outside_limits", "beyond_3sigma")


@dataclass(frozen=True)
class _Detection:
    """How the time to detect a change is simulated for every candidate."""

    effect: float  # relative size of the change, in the direction of improvement
    up: bool
    rules: str
    power: float
    sims: int
    seed: int
    horizon: int


def criteria(
    registry: pd.DataFrame,
    measure_series: pd.DataFrame,
    readiness: pd.DataFrame,
    *,
    measure_id: str,
    target: float | str | None = None,
    effect: float = 0.2,
    rules: str = "anhoej",
    seed: int = 0,
    measures: pd.DataFrame,
    profiles: pd.DataFrame | None = None,
    baseline_periods: int = 26,
    as_of: str | pd.Timestamp | None = None,
    recent_periods: int = 12,
    min_periods: int = 10,
    power: float = 0.8,
    sims: int = 500,
    horizon: int = 52,
    exclude: dict[str, list] | None = None,
) -> pd.DataFrame:
    """Score every candidate microsystem against the five pilot criteria for one measure.

    Parameters
    ----------
    registry : DataFrame
        Workbook 01's registry: ``microsystem_id, name, kind, site``.
    measure_series : DataFrame
        Every microsystem's series (:func:`qi_helpers.changes.series.measure_series`). The
        candidates are the microsystems of the registry with data on the measure.
    readiness : DataFrame
        :func:`qi_helpers.pilots.readiness.readiness_by_microsystem`, optionally with the
        ``strengths`` and ``gaps`` of
        :func:`qi_helpers.pilots.assessment.with_strengths_and_gaps` (then named in
        ``readiness_why``: "...; strengths: leadership 2.8 of 3; gaps: ...").
    measure_id : str
        The measure the pilots should improve.
    target : float, "best" or None
        What "room to improve" is measured against, on the charted scale (after the catalogue's
        ``multiply``, e.g. percent). ``None``: the catalogue's target, or the best decile of the
        microsystems of the same kind when the catalogue has none; ``"best"``: always the best
        decile.
    effect : float
        Relative size of the change the pilots will test (0.2 = a 20% improvement), for the
        time to detect it.
    rules : {"anhoej", "ihi", "mdc", "western_electric"}
        Rule set for the stability of the baseline and the time to detect.
    seed : int
        Seed of the time-to-detect simulation (the same for every candidate, so that they are
        compared on the same random numbers).
    measures : DataFrame
        The measure catalogue (the project's ``measures`` table).
    profiles : DataFrame, optional
        Profiles for :func:`qi_helpers.pilots.profiles.representativeness`; without them every
        candidate scores 1.
    baseline_periods : int
        Periods of baseline up to ``as_of``.
    as_of : date, optional
        The date of the selection (see :func:`qi_helpers.pilots.baselines.baseline_window`);
        ``None``: the latest data.
    recent_periods : int
        The baseline level is the median of this many latest baseline periods.
    min_periods : int
        Candidates with fewer baseline periods than this cannot show a stable baseline.
    power, sims, horizon : float, int, int
        Passed to :func:`qi_helpers.spc.detect.periods_to_detect`.
    exclude : dict of str to list of dates, optional
        Baseline periods to leave out, per microsystem: special causes whose reason the team has
        found (e.g. ``{"RIV-PC1": ["2024-04-15"]}``, the start dates of the periods).

    Returns
    -------
    DataFrame
        One row per candidate, sorted by ``microsystem_id``:

        - ``microsystem_id, name, kind, site``;
        - ``n_periods``: baseline periods with data; ``cases_per_period``: mean cases (or
          exposure) per period;
        - ``baseline``: median of the last ``recent_periods`` baseline values (charted scale);
          ``target``: what it is compared with; ``target_source``: ``"target"``,
          ``"given"`` or ``"best decile"``;
        - for each criterion ``c`` of :data:`CRITERIA`: ``c`` (the 0-1 score), ``c_value``
          (the raw value) and ``c_why`` (one line of explanation). Raw values:
          ``room_to_improve_value`` the gap to the target in the direction of improvement
          (charted scale, 0 when at or past it); ``stable_baseline_value`` the number of
          baseline points flagged by a rule; ``time_to_detect_value`` the periods after
          the change until the chart signals it with probability ``power`` (``<NA>``: not within
          ``horizon``); ``readiness_value`` the mean of the ten characteristics (1-3);
          ``representativeness_value`` the cosine similarity to peers (0-1);
        - ``respondents``, ``too_few_respondents``: readiness survey respondents and the flag.

    Notes
    -----
    Scores: room to improve = gap / the largest gap among the candidates; stable baseline = 1
    when no rule of ``rules`` signals on the baseline chart, 0.5 when the only signal is a single
    point beyond the limits (a special cause to investigate and, once explained, leave out of
    the baseline), else 0 (Provost & Murray, *The Health Care Data Guide*, 2011, ch. 3: a change
    can only be judged against a stable baseline); time to detect = ``1 - (periods - 1) /
    horizon`` (0 when not within the horizon); readiness = ``(mean - 1) / 2`` (0 without
    answers); representativeness = the similarity (1 when the candidate has no peers or there
    are no profiles). The time to detect is simulated from each candidate's own baseline level
    and denominators (:func:`qi_helpers.spc.detect.periods_to_detect`).
    """
    measure = Measure.from_row(catalogue_row(measures, measure_id))
    chart = detection_chart(measure.chart)
    window = _candidate_window(
        registry, measure_series, measure_id, baseline_periods, as_of, exclude
    )
    fired = _stability(window, chart, rules, measure.improvement)
    detection = _Detection(effect, measure.up, rules, power, sims, seed, horizon)
    rows = []
    for ms, group in window.groupby("microsystem_id", sort=True):
        group = group.sort_values("period")
        row = {"microsystem_id": ms, **_level(group, chart, recent_periods, measure.multiply)}
        row.update(_stable_baseline(len(group), fired.get(ms, ([], 0, False)), min_periods))
        row.update(_time_to_detect(group, chart, row["cases_per_period"], detection))
        rows.append(row)
    table = pd.DataFrame(rows)
    table["time_to_detect_value"] = pd.array(table["time_to_detect_value"], dtype="Int64")
    table = registry[["microsystem_id", "name", "kind", "site"]].merge(table, on="microsystem_id")
    table = _with(table, _room_to_improve(table, measure, target))
    table = _with(table, _readiness(table["microsystem_id"], readiness))
    table = _with(table, _representativeness(table["microsystem_id"], profiles, registry))
    table = _ordered(table)
    table.attrs["pilots"] = {
        "measure_id": measure_id,
        "chart": chart,
        "improvement": measure.improvement,
        "rules": rules,
        "effect": effect,
        "baseline_periods": baseline_periods,
        "as_of": None if as_of is None else str(as_of),
        "horizon": horizon,
        "exclude": {k: [str(d) for d in v] for k, v in (exclude or {}).items()},
    }
    return table


def _candidate_window(
    registry: pd.DataFrame,
    measure_series: pd.DataFrame,
    measure_id: str,
    baseline_periods: int,
    as_of: str | pd.Timestamp | None,
    exclude: dict[str, list] | None,
) -> pd.DataFrame:
    """The baselines of the registry's microsystems, without the periods the team left out."""
    window = baseline_window(
        measure_series, measure_id=measure_id, baseline_periods=baseline_periods, as_of=as_of
    )
    window = window[window["microsystem_id"].isin(registry["microsystem_id"])]
    for ms, dates in (exclude or {}).items():
        drop = pd.to_datetime(pd.Series(list(dates), dtype=object))
        window = window[
            ~((window["microsystem_id"] == ms) & pd.to_datetime(window["period"]).isin(drop))
        ]
    if window.empty:
        raise DataError(
            f"pilots: none of the microsystems with data on {measure_id!r} is in the registry; "
            "run workbook 01 again on the same data."
        )
    return window


def _level(group: pd.DataFrame, chart: str, recent_periods: int, multiply: float) -> dict:
    """One candidate's baseline periods, volume a period and level (charted scale)."""
    values = group["value"].to_numpy(dtype=float)
    den = group["denominator"].to_numpy(dtype=float)
    level = float(np.nanmedian(values[-recent_periods:]))
    return {
        "n_periods": len(group),
        "cases_per_period": float(np.nanmean(den) if chart != "i" else group["n_cases"].mean()),
        "baseline": level * multiply,
    }


def _with(table: pd.DataFrame, columns: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the columns of one criterion added."""
    table = table.copy()
    for column in columns.columns:
        table[column] = columns[column]
    return table


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    """The criteria table's columns in their documented order, scores rounded, rows sorted."""
    cols = ["microsystem_id", "name", "kind", "site", "n_periods", "cases_per_period"]
    cols += ["baseline", "target", "target_source"]
    for c in CRITERIA:
        cols += [c, f"{c}_value", f"{c}_why"]
    cols += ["respondents", "too_few_respondents"]
    for c in CRITERIA:
        table[c] = table[c].astype(float).round(3)
    return table[cols].sort_values("microsystem_id").reset_index(drop=True)


# --- one function per criterion ---------------------------------------------------------------


def _room_to_improve(
    table: pd.DataFrame, measure: Measure, target: float | str | None
) -> pd.DataFrame:
    """The gap from each baseline to the target, in the direction of improvement.

    The target is ``target`` when given, else the catalogue's, else (or when ``target`` is
    ``"best"``) the best decile of the baselines of the same kind. Score: the gap over the
    largest gap among the candidates.
    """
    if isinstance(target, str) and target.strip().lower() != "best":
        raise ConfigError(f"pilots.target must be a number, 'best' or empty; got {target!r}.")
    best = isinstance(target, str)
    out = pd.DataFrame(index=table.index)
    if target is not None and not best:
        out["target"], out["target_source"] = float(target), "given"
    elif not best and not math.isnan(measure.target):
        out["target"], out["target_source"] = measure.target, "target"
    else:
        q = 0.9 if measure.up else 0.1
        out["target"] = table.groupby("kind")["baseline"].transform(lambda s: s.quantile(q))
        out["target_source"] = "best decile"
    baseline = table["baseline"]
    gap = (out["target"] - baseline) if measure.up else (baseline - out["target"])
    gap = gap.clip(lower=0)
    largest = float(gap.max())
    out["room_to_improve_value"] = gap
    out["room_to_improve"] = gap / largest if largest > 0 else 0.0
    out["room_to_improve_why"] = [
        f"baseline {_fmt(b, measure)} vs {src} {_fmt(t, measure)}: "
        + (f"{_fmt(g, measure, gap=True)} to gain" if g > 0 else "already there")
        for b, t, g, src in zip(baseline, out["target"], gap, out["target_source"], strict=True)
    ]
    return out


def _stable_baseline(
    n_periods: int, fired: tuple[list[str], int, bool], min_periods: int
) -> dict[str, object]:
    """Whether one candidate's baseline shows common-cause variation only.

    Score 1 when no rule signals, 0.5 when the only signal is one point beyond the limits (a
    special cause to find and, once explained, leave out), else 0; 0 with too few periods.
    """
    names, points, isolated = fired
    row: dict[str, object] = {"stable_baseline_value": points}
    if n_periods < min_periods:
        row["stable_baseline"] = 0.0
        row["stable_baseline_why"] = (
            f"only {n_periods} baseline periods with data (at least {min_periods} needed)"
        )
    elif isolated:
        row["stable_baseline"] = 0.5
        row["stable_baseline_why"] = (
            "one point beyond the limits: find its cause; if explained, leave it out of the "
            "baseline"
        )
    elif names:
        row["stable_baseline"] = 0.0
        row["stable_baseline_why"] = (
            f"special cause in the baseline ({', '.join(names)}; {points} points)"
        )
    else:
        row["stable_baseline"] = 1.0
        row["stable_baseline_why"] = f"common-cause variation only over {n_periods} periods"
    return row


def _time_to_detect(
    group: pd.DataFrame, chart: str, cases_per_period: float, detection: _Detection
) -> dict[str, object]:
    """Periods after the change until one candidate's chart signals it with the power asked.

    Simulated from the candidate's own baseline values and denominators; score
    ``1 - (periods - 1) / horizon``, 0 when not within the horizon.
    """
    values = group["value"].to_numpy(dtype=float)
    den = group["denominator"].to_numpy(dtype=float)
    effect, horizon = detection.effect, detection.horizon
    periods = pd.NA
    if len(group) >= 2 and (chart == "i" or np.nansum(den) > 0):
        try:
            periods = periods_to_detect(
                values,
                None if chart == "i" else den,
                effect if detection.up else -effect,
                chart,
                detection.rules,
                power=detection.power,
                sims=detection.sims,
                seed=detection.seed,
                horizon=horizon,
            ).iloc[0]["periods"]
        except DataError:
            periods = pd.NA
    if pd.isna(periods):
        return {
            "time_to_detect_value": periods,
            "time_to_detect": 0.0,
            "time_to_detect_why": (
                f"a {effect:.0%} change would not be seen within {horizon} periods "
                f"({cases_per_period:.3g} a period)"
            ),
        }
    return {
        "time_to_detect_value": periods,
        "time_to_detect": 1 - (int(periods) - 1) / horizon,
        "time_to_detect_why": (
            f"a {effect:.0%} change is seen within {int(periods)} periods "
            f"in {detection.power:.0%} of simulations ({cases_per_period:.3g} a period)"
        ),
    }


def _readiness(ids: pd.Series, readiness: pd.DataFrame) -> pd.DataFrame:
    """The team's mean readiness (1-3) scaled to 0-1; 0 without survey answers. The
    explanation names the team's strengths and gaps when ``readiness`` has them
    (:func:`qi_helpers.pilots.assessment.with_strengths_and_gaps`)."""
    ready = readiness.set_index("microsystem_id")
    out = pd.DataFrame(index=ids.index)
    out["readiness_value"] = ids.map(ready["readiness"]).astype(float)
    out["respondents"] = ids.map(ready["respondents"]).fillna(0).astype("int64")
    too_few = ids.map(ready["too_few"]) if "too_few" in ready else None
    out["too_few_respondents"] = (
        too_few.fillna(True).astype(bool)
        if too_few is not None
        else out["respondents"] < MIN_RESPONDENTS
    )
    out["readiness"] = ((out["readiness_value"] - 1) / 2).fillna(0.0)
    named = [
        ids.map(ready[c]).fillna("") if c in ready else pd.Series("", index=ids.index)
        for c in ("strengths", "gaps")
    ]
    out["readiness_why"] = [
        "no readiness survey answers"
        if pd.isna(v)
        else f"mean {v:.2f} of 3 over the ten characteristics from {n} respondents"
        + (" (too few to rely on)" if few else "")
        + (f"; strengths: {strong}" if strong else "")
        + (f"; gaps: {weak}" if weak else "")
        for v, n, few, strong, weak in zip(
            out["readiness_value"],
            out["respondents"],
            out["too_few_respondents"],
            *named,
            strict=True,
        )
    ]
    return out


def _representativeness(
    ids: pd.Series, profiles: pd.DataFrame | None, registry: pd.DataFrame
) -> pd.DataFrame:
    """The similarity of each candidate's profile to its peers'; 1 without peers or profiles."""
    out = pd.DataFrame(index=ids.index)
    if profiles is None:
        out["representativeness_value"] = np.nan
        out["representativeness"] = 1.0
        out["representativeness_why"] = "no profiles given: not scored"
        return out
    rep = representativeness(profiles, registry).set_index("microsystem_id")
    sim = ids.map(rep["similarity"]).astype(float)
    out["representativeness_value"] = sim
    out["representativeness"] = sim.fillna(1.0).clip(0, 1)
    least = ids.map(rep["least_alike"])
    peers = ids.map(rep["peers"]).fillna(0).astype(int)
    out["representativeness_why"] = [
        "no peers of its kind to compare with"
        if pd.isna(s)
        else f"similarity {s:.2f} to {p} others of its kind; least alike in "
        f"{PROFILE_BLOCKS.get(str(w), str(w))}"
        for s, p, w in zip(sim, peers, least, strict=True)
    ]
    return out


# --- the baseline chart and the wording ---------------------------------------------------------


def _stability(
    window: pd.DataFrame, chart: str, rules: str, improvement: str | None
) -> dict[str, tuple[list[str], int, bool]]:
    """Per candidate: rules that fired on the baseline chart, points flagged, and whether the
    only signal is one point beyond the limits (an isolated special cause)."""
    if chart == "i":
        res = qic(window, x="period", y="value", chart="i", facets="microsystem_id")
    else:
        res = qic(
            window, x="period", y="numerator", n="denominator", chart=chart, facets="microsystem_id"
        )
    res.attrs = {}
    sig = signals(res, rules=rules, improvement=improvement)
    flagged = sig.points.groupby("facet1")["signal"].sum()
    parts = sig.parts
    rule_cols = [c for c in parts.columns if c not in ("facet1", "facet2", "part", "n_points")]
    rule_cols = [c for c in rule_cols if c not in ("signal", "runs_signal")]
    out = {}
    for row in parts.to_dict("records"):
        fired = [c for c in rule_cols if bool(row[c])]
        points = int(flagged.get(row["facet1"], 0))
        isolated = len(fired) == 1 and fired[0] in _LIMIT_RULES and points == 1
        out[row["facet1"]] = ([c.replace("_", " ") for c in fired], points, isolated)
    return out


def _fmt(value: float, measure: Measure, *, gap: bool = False) -> str:
    text = f"{value:.3g}"
    if measure.unit == "%":
        return f"{text} percentage points" if gap else f"{text}%"
    return f"{text} {measure.unit}".strip()
