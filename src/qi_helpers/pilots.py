"""Select pilot microsystems in which to test a change (workbook 02).

A good pilot has room to improve, a stable baseline (so that a change can be told apart from
common-cause variation), enough volume to see a change soon, a team ready to test ideas, and a
profile like the teams the change will later spread to, so that what works there is likely to work
elsewhere (IHI, *Going Lean in Health Care* and the Breakthrough Series guidance on choosing a
pilot; AHRQ, *Practice Facilitation Handbook*, module 13; Nelson, Batalden & Godfrey, *Quality by
Design*, 2007). :func:`criteria` scores every candidate on these five criteria from 0 (worst) to
1 (best), with the raw value behind each score and a one-line explanation; :func:`rank` weights
them and selects the pilots; :func:`sensitivity` shows how much the choice depends on the weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from qi_helpers.errors import ConfigError, DataError
from qi_helpers.schema import require_columns

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

_PROFILE_BLOCKS = {"role": "role mix", "activity": "activity mix", "age": "patients' ages"}
_PROFILE_BLOCKS.update(
    {"sex": "patients' sex", "age_band": "patients' ages", "condition": "patients' conditions"}
)
#: Dimensions of a long 5 Ps profile table (``qi_helpers.profiles``) used for representativeness.
_MIX_DIMENSIONS = ("role", "activity", "age_band", "sex", "condition")


# --------------------------------------------------------------------------------------------
# The measure and its baseline
# --------------------------------------------------------------------------------------------


def catalogue_row(measures: pd.DataFrame, measure_id: str) -> pd.Series:
    """The catalogue row of one measure.

    Raises
    ------
    ConfigError
        When the measure is not in the catalogue, listing the ones that are.
    """
    found = measures[measures["measure_id"] == measure_id]
    if found.empty:
        known = ", ".join(sorted(measures["measure_id"].astype(str)))
        raise ConfigError(
            f"pilots.measure_id: measure {measure_id!r} is not in the measure catalogue; "
            f"known: {known}."
        )
    return found.iloc[0]


def _lookup_measures() -> pd.DataFrame:
    from qi_helpers.project import load_project

    try:
        return load_project().load_table("measures")
    except Exception as exc:  # noqa: BLE001 - re-raised with the fix
        raise ConfigError(
            "pilots: pass the measure catalogue as measures=..., or run from inside a project "
            f"folder whose parameters name a `measures` table ({exc})."
        ) from exc


def _chart_of(measure: pd.Series) -> str:
    """The chart a candidate's baseline is judged on: p, u, or i for everything else.

    Laney's p' and u' charts are judged as p and u charts; charts of means (xbar) as an I chart
    of the period means, which is how a weekly series of means is usually watched.
    """
    chart = str(measure["chart"]).lower()
    return "p" if chart in ("p", "pp") else "u" if chart in ("u", "up") else "i"


def _multiply(measure: pd.Series) -> float:
    m = measure.get("multiply", 1)
    return 1.0 if m is None or pd.isna(m) or float(m) == 0 else float(m)


def baseline_window(
    measure_series: pd.DataFrame,
    *,
    measure_id: str,
    baseline_periods: int = 26,
    as_of: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The baseline of every candidate: its last ``baseline_periods`` periods up to ``as_of``.

    Parameters
    ----------
    measure_series : DataFrame
        ``microsystem_id, measure_id, period, numerator, denominator, value, n_cases`` (from
        :func:`qi_helpers.measure_series.measure_series`).
    measure_id : str
        The measure.
    baseline_periods : int
        Length of the baseline, in periods of the series.
    as_of : date, optional
        The date of the selection: periods starting after it are not used (they are the future
        as far as the selection is concerned). ``None``: the latest data.

    Returns
    -------
    DataFrame
        The rows of ``measure_series`` for ``measure_id`` in the window, sorted by microsystem and
        period. The window is the same calendar span for every candidate.

    Raises
    ------
    ConfigError
        No data for the measure, or none before ``as_of``.
    """
    if not isinstance(baseline_periods, int | np.integer) or baseline_periods < 2:
        raise ConfigError(
            "pilots.baseline_periods must be a whole number of 2 or more; got "
            f"{baseline_periods!r}."
        )
    own = measure_series[measure_series["measure_id"] == measure_id]
    if own.empty:
        known = ", ".join(sorted(measure_series["measure_id"].astype(str).unique()))
        raise ConfigError(
            f"pilots.measure_id: no microsystem has data on measure {measure_id!r}; measures with "
            f"data: {known}."
        )
    periods = pd.to_datetime(own["period"])
    if as_of is not None and not (isinstance(as_of, str) and not as_of.strip()):
        cut = pd.Timestamp(as_of)
        own, periods = own[periods <= cut], periods[periods <= cut]
        if own.empty:
            raise ConfigError(
                f"pilots.as_of: no data on {measure_id!r} on or before {cut.date()}; the series "
                f"starts {pd.to_datetime(measure_series['period']).min().date()}."
            )
    window = np.sort(periods.unique())[-baseline_periods:]
    keep = periods.isin(window)
    return own[keep.to_numpy()].sort_values(["microsystem_id", "period"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Profiles and representativeness
# --------------------------------------------------------------------------------------------


def _shares(frame: pd.DataFrame, column: str, weight: str | None, prefix: str) -> pd.DataFrame:
    w = frame[weight] if weight else pd.Series(1.0, index=frame.index)
    table = (
        w.groupby([frame["microsystem_id"], frame[column].astype(str)]).sum().unstack(fill_value=0)
    )
    table = table.div(table.sum(axis=1), axis=0)
    table.columns = [f"{prefix}: {c}" for c in table.columns]
    return table


def mix_profiles(
    staff: pd.DataFrame,
    membership: dict[str, pd.DataFrame],
    activities: pd.DataFrame | None = None,
    patients: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """A simple profile of every microsystem: its role, activity and patient mix, as shares.

    A stand-in for the 5 Ps profiles of workbook 01 (purpose, patients, professionals, processes,
    patterns) until those are written to ``outputs/data/profiles.parquet``; any table of numeric
    profile columns works with :func:`representativeness`.

    Parameters
    ----------
    staff : DataFrame
        ``staff_id, role`` (``fte`` weights a person when present).
    membership : dict of DataFrame
        Workbook 01's membership tables: ``staff`` (``staff_id, microsystem_id, share``) and,
        for the other blocks, ``locations`` (``location, microsystem_id, share``) and
        ``patients`` (``patient_id, microsystem_id, share``).
    activities : DataFrame, optional
        ``activity, location``: each activity counts for the microsystem that owns its location.
    patients : DataFrame, optional
        ``patient_id`` with ``age_band`` and/or ``sex``.

    Returns
    -------
    DataFrame
        One row per microsystem: ``microsystem_id`` and one column per category,
        ``"role: <role>"`` (professionals), ``"activity: <activity>"`` (processes),
        ``"age: <band>"`` and ``"sex: <sex>"`` (patients); each block's shares add up to 1.
        No patient or staff identifier is kept.
    """
    blocks = []
    people = membership["staff"].merge(staff, on="staff_id", how="inner")
    people["weight"] = people["share"] * (
        people["fte"].fillna(1.0).astype(float) if "fte" in people.columns else 1.0
    )
    blocks.append(_shares(people, "role", "weight", "role"))
    if activities is not None and "locations" in membership:
        owner = (
            membership["locations"]
            .sort_values("share", ascending=False, kind="stable")
            .drop_duplicates("location")
            .set_index("location")["microsystem_id"]
        )
        acts = pd.DataFrame(
            {
                "microsystem_id": activities["location"].map(owner),
                "activity": activities["activity"],
            }
        ).dropna()
        blocks.append(_shares(acts, "activity", None, "activity"))
    if patients is not None and "patients" in membership:
        panel = membership["patients"].merge(patients, on="patient_id", how="inner")
        for column, prefix in (("age_band", "age"), ("sex", "sex")):
            if column in panel.columns:
                known = panel[panel[column].notna()]
                blocks.append(_shares(known, column, "share", prefix))
    out = pd.concat(blocks, axis=1).fillna(0.0)
    out.index.name = "microsystem_id"
    return out.sort_index().reset_index()


def representativeness(profiles: pd.DataFrame, registry: pd.DataFrame) -> pd.DataFrame:
    """How much each microsystem looks like the other microsystems of its kind.

    Parameters
    ----------
    profiles : DataFrame
        ``microsystem_id`` and numeric profile columns (e.g. from :func:`mix_profiles`, or the
        5 Ps profiles of workbook 01). Columns named ``"<block>: <category>"`` are grouped into
        blocks (role mix, activity mix, ...); other numeric columns form one block. A long table
        ``microsystem_id, dimension, category, share`` (``outputs/data/profiles.parquet``) is
        pivoted first, using its role, activity, age band, sex and condition mixes.
    registry : DataFrame
        ``microsystem_id, kind``.

    Returns
    -------
    DataFrame
        One row per microsystem of the registry with a profile: ``microsystem_id, kind,
        peers`` (others of its kind with a profile), ``similarity`` (0-1; NaN without peers),
        one ``similarity_<block>`` column per block, and ``least_alike`` (the block where it
        differs most from its peers).

    Notes
    -----
    Within each block the profile is scaled to shares; the similarity of a block is the cosine
    similarity between the microsystem's shares and the mean shares of its peers (1 = the same
    mix); ``similarity`` is the mean over blocks. A pilot that resembles its peers makes it
    likelier that what works there works where the change spreads (Rogers, *Diffusion of
    Innovations*, 2003, on trialability and compatibility; IHI, *A Framework for Spread*, 2006).
    """
    if "microsystem_id" not in profiles.columns:
        raise DataError("representativeness: the profile table needs a microsystem_id column.")
    if {"dimension", "category", "share"} <= set(profiles.columns):  # long 5 Ps mixes
        long = profiles[profiles["dimension"].isin(_MIX_DIMENSIONS)]
        profiles = long.pivot_table(
            index="microsystem_id",
            columns=long["dimension"].astype(str) + ": " + long["category"].astype(str),
            values="share",
            aggfunc="sum",
            fill_value=0.0,
        ).reset_index()
    table = profiles.drop_duplicates("microsystem_id").set_index("microsystem_id")
    numeric = table.select_dtypes("number").astype(float).fillna(0.0).clip(lower=0)
    if numeric.shape[1] == 0:
        raise DataError("representativeness: the profile table has no numeric columns.")
    blocks: dict[str, list[str]] = {}
    for column in numeric.columns:
        block = str(column).split(":", 1)[0].strip() if ":" in str(column) else "profile"
        blocks.setdefault(block, []).append(column)
    kinds = registry.drop_duplicates("microsystem_id").set_index("microsystem_id")["kind"]
    ids = [m for m in kinds.index if m in numeric.index]
    rows = []
    for ms in sorted(ids):
        peers = [p for p in ids if p != ms and kinds[p] == kinds[ms]]
        row = {"microsystem_id": ms, "kind": kinds[ms], "peers": len(peers)}
        for block, cols in blocks.items():
            own = numeric.loc[ms, cols].to_numpy()
            sim = np.nan
            if peers and own.sum() > 0:
                ref = numeric.loc[peers, cols].to_numpy()
                totals = ref.sum(axis=1, keepdims=True)
                ref = np.where(totals > 0, ref / np.where(totals > 0, totals, 1), 0).mean(axis=0)
                own = own / own.sum()
                denom = np.linalg.norm(own) * np.linalg.norm(ref)
                sim = float(own @ ref / denom) if denom > 0 else np.nan
            row[f"similarity_{block}"] = sim
        rows.append(row)
    out = pd.DataFrame(rows)
    sim_cols = [f"similarity_{b}" for b in blocks]
    if out.empty:
        return pd.DataFrame(
            columns=["microsystem_id", "kind", "peers", "similarity", *sim_cols, "least_alike"]
        )
    out["similarity"] = out[sim_cols].mean(axis=1, skipna=True)
    least = out[sim_cols].fillna(np.inf).idxmin(axis=1).str.removeprefix("similarity_")
    out["least_alike"] = least.where(out["similarity"].notna())
    return out[["microsystem_id", "kind", "peers", "similarity", *sim_cols, "least_alike"]]


# --------------------------------------------------------------------------------------------
# Criteria
# --------------------------------------------------------------------------------------------


def _fmt(value: float, measure: pd.Series, *, gap: bool = False) -> str:
    unit = measure.get("unit")
    unit = "" if unit is None or pd.isna(unit) else str(unit)
    text = f"{value:.3g}"
    if unit == "%":
        return f"{text} percentage points" if gap else f"{text}%"
    return f"{text} {unit}".strip()


#: Point rules that flag a single point beyond the control limits, one name per rule set.
_LIMIT_RULES = ("sigma", "astronomical", "outside_limits", "beyond_3sigma")


def _stability(
    window: pd.DataFrame, chart: str, rules: str, improvement: str | None
) -> dict[str, tuple[list[str], int, bool]]:
    """Per candidate: rules that fired on the baseline chart, points flagged, and whether the
    only signal is one point beyond the limits (an isolated special cause)."""
    from qi_helpers.spc import qic, signals

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
    measures: pd.DataFrame | None = None,
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
        Every microsystem's series (:func:`qi_helpers.measure_series.measure_series`). The
        candidates are the microsystems of the registry with data on the measure.
    readiness : DataFrame
        :func:`qi_helpers.readiness.readiness_by_microsystem`.
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
    measures : DataFrame, optional
        The measure catalogue; looked up in the current project when not given.
    profiles : DataFrame, optional
        Profiles for :func:`representativeness`; without them every candidate scores 1.
    baseline_periods : int
        Periods of baseline up to ``as_of``.
    as_of : date, optional
        The date of the selection (see :func:`baseline_window`); ``None``: the latest data.
    recent_periods : int
        The baseline level is the median of this many latest baseline periods.
    min_periods : int
        Candidates with fewer baseline periods than this cannot show a stable baseline.
    power, sims, horizon : float, int, int
        Passed to :func:`qi_helpers.detection.periods_to_detect`.
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
    can only be judged against a stable baseline); time to
    detect = ``1 - (periods - 1) / horizon`` (0 when not within the horizon); readiness =
    ``(mean - 1) / 2`` (0 without answers); representativeness = the similarity (1 when the
    candidate has no peers or there are no profiles). The time to detect is simulated from each
    candidate's own baseline level and denominators
    (:func:`qi_helpers.detection.periods_to_detect`).
    """
    from qi_helpers.detection import periods_to_detect

    if measures is None:
        measures = _lookup_measures()
    measure = catalogue_row(measures, measure_id)
    chart = _chart_of(measure)
    mult = _multiply(measure)
    up = str(measure.get("improvement", "up")).lower() != "down"
    improvement = "up" if up else "down"
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
    fired = _stability(window, chart, rules, improvement)

    rows = []
    for ms, group in window.groupby("microsystem_id", sort=True):
        group = group.sort_values("period")
        values = group["value"].to_numpy(dtype=float)
        den = group["denominator"].to_numpy(dtype=float)
        level = float(np.nanmedian(values[-recent_periods:]))
        row = {
            "microsystem_id": ms,
            "n_periods": len(group),
            "cases_per_period": float(np.nanmean(den) if chart != "i" else group["n_cases"].mean()),
            "baseline": level * mult,
        }
        names, points, isolated = fired.get(ms, ([], 0, False))
        row["stable_baseline_value"] = points
        if len(group) < min_periods:
            row["stable_baseline"] = 0.0
            row["stable_baseline_why"] = (
                f"only {len(group)} baseline periods with data (at least {min_periods} needed)"
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
            row["stable_baseline_why"] = f"common-cause variation only over {len(group)} periods"
        signed = effect if up else -effect
        if len(group) >= 2 and (chart == "i" or np.nansum(den) > 0):
            try:
                det = periods_to_detect(
                    values if chart == "i" else values,
                    None if chart == "i" else den,
                    signed,
                    chart,
                    rules,
                    power=power,
                    sims=sims,
                    seed=seed,
                    horizon=horizon,
                ).iloc[0]
                periods = det["periods"]
            except DataError:
                periods = pd.NA
        else:
            periods = pd.NA
        row["time_to_detect_value"] = periods
        if pd.isna(periods):
            row["time_to_detect"] = 0.0
            row["time_to_detect_why"] = (
                f"a {effect:.0%} change would not be seen within {horizon} periods "
                f"({row['cases_per_period']:.3g} a period)"
            )
        else:
            row["time_to_detect"] = 1 - (int(periods) - 1) / horizon
            row["time_to_detect_why"] = (
                f"a {effect:.0%} change is seen within {int(periods)} periods "
                f"in {power:.0%} of simulations ({row['cases_per_period']:.3g} a period)"
            )
        rows.append(row)
    table = pd.DataFrame(rows)
    table["time_to_detect_value"] = pd.array(table["time_to_detect_value"], dtype="Int64")
    table = registry[["microsystem_id", "name", "kind", "site"]].merge(table, on="microsystem_id")

    # room to improve, against the target or the best decile of the same kind
    if isinstance(target, str) and target.strip().lower() != "best":
        raise ConfigError(f"pilots.target must be a number, 'best' or empty; got {target!r}.")
    best = isinstance(target, str)
    catalogue_target = measure.get("target")
    if target is not None and not best:
        table["target"], table["target_source"] = float(target), "given"
    elif not best and catalogue_target is not None and not pd.isna(catalogue_target):
        table["target"], table["target_source"] = float(catalogue_target), "target"
    else:
        q = 0.9 if up else 0.1
        table["target"] = table.groupby("kind")["baseline"].transform(lambda s: s.quantile(q))
        table["target_source"] = "best decile"
    gap = (table["target"] - table["baseline"]) if up else (table["baseline"] - table["target"])
    gap = gap.clip(lower=0)
    largest = float(gap.max())
    table["room_to_improve_value"] = gap
    table["room_to_improve"] = gap / largest if largest > 0 else 0.0
    table["room_to_improve_why"] = [
        f"baseline {_fmt(b, measure)} vs {src} {_fmt(t, measure)}: "
        + (f"{_fmt(g, measure, gap=True)} to gain" if g > 0 else "already there")
        for b, t, g, src in zip(
            table["baseline"], table["target"], gap, table["target_source"], strict=True
        )
    ]

    # readiness
    ready = readiness.set_index("microsystem_id")
    table["readiness_value"] = table["microsystem_id"].map(ready["readiness"]).astype(float)
    table["respondents"] = (
        table["microsystem_id"].map(ready["respondents"]).fillna(0).astype("int64")
    )
    too_few = table["microsystem_id"].map(ready["too_few"]) if "too_few" in ready else None
    table["too_few_respondents"] = (
        too_few.fillna(True).astype(bool) if too_few is not None else table["respondents"] < 3
    )
    table["readiness"] = ((table["readiness_value"] - 1) / 2).fillna(0.0)
    table["readiness_why"] = [
        "no readiness survey answers"
        if pd.isna(v)
        else f"mean {v:.2f} of 3 over the ten characteristics from {n} respondents"
        + (" (too few to rely on)" if few else "")
        for v, n, few in zip(
            table["readiness_value"],
            table["respondents"],
            table["too_few_respondents"],
            strict=True,
        )
    ]

    # representativeness
    if profiles is None:
        table["representativeness_value"] = np.nan
        table["representativeness"] = 1.0
        table["representativeness_why"] = "no profiles given: not scored"
    else:
        rep = representativeness(profiles, registry).set_index("microsystem_id")
        sim = table["microsystem_id"].map(rep["similarity"]).astype(float)
        table["representativeness_value"] = sim
        table["representativeness"] = sim.fillna(1.0).clip(0, 1)
        least = table["microsystem_id"].map(rep["least_alike"])
        peers = table["microsystem_id"].map(rep["peers"]).fillna(0).astype(int)
        table["representativeness_why"] = [
            "no peers of its kind to compare with"
            if pd.isna(s)
            else f"similarity {s:.2f} to {p} others of its kind; least alike in "
            f"{_PROFILE_BLOCKS.get(str(w), str(w))}"
            for s, p, w in zip(sim, peers, least, strict=True)
        ]

    cols = ["microsystem_id", "name", "kind", "site", "n_periods", "cases_per_period"]
    cols += ["baseline", "target", "target_source"]
    for c in CRITERIA:
        cols += [c, f"{c}_value", f"{c}_why"]
    cols += ["respondents", "too_few_respondents"]
    for c in CRITERIA:
        table[c] = table[c].astype(float).round(3)
    table = table[cols].sort_values("microsystem_id").reset_index(drop=True)
    table.attrs["pilots"] = {
        "measure_id": measure_id,
        "chart": chart,
        "improvement": improvement,
        "rules": rules,
        "effect": effect,
        "baseline_periods": baseline_periods,
        "as_of": None if as_of is None else str(as_of),
        "horizon": horizon,
        "exclude": {k: [str(d) for d in v] for k, v in (exclude or {}).items()},
    }
    return table


# --------------------------------------------------------------------------------------------
# Ranking and sensitivity
# --------------------------------------------------------------------------------------------


def _check_weights(weights: dict[str, float]) -> dict[str, float]:
    if not isinstance(weights, dict) or not weights:
        raise ConfigError(
            f"pilots.weights must map criteria to weights, e.g. {{'readiness': 0.3}}; got "
            f"{weights!r}."
        )
    unknown = sorted(set(weights) - set(CRITERIA))
    if unknown:
        hint = " (`volume` is now `time_to_detect`)" if "volume" in unknown else ""
        raise ConfigError(
            f"pilots.weights: unknown criteria {unknown}{hint}; use {list(CRITERIA)}."
        )
    clean = {}
    for name, w in weights.items():
        if not isinstance(w, int | float) or not np.isfinite(w) or w < 0:
            raise ConfigError(f"pilots.weights.{name} must be a number of 0 or more; got {w!r}.")
        clean[name] = float(w)
    if sum(clean.values()) <= 0:
        raise ConfigError("pilots.weights: the weights must add up to more than 0.")
    return clean


def _check_criteria(table: pd.DataFrame, weights: dict[str, float]) -> None:
    require_columns(
        table,
        [*weights, "microsystem_id", "site", "kind"],
        "pilots: the criteria table",
        advice="Build it with qi_helpers.pilots.criteria().",
    )


def _select(
    order: np.ndarray,
    sites: np.ndarray,
    kinds: np.ndarray,
    k: int,
    max_per_site: int | None,
    max_per_kind: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy selection down the ranking under the caps; selected flags and skip reasons."""
    selected = np.zeros(order.size, dtype=bool)
    reason = np.full(order.size, "", dtype=object)
    per_site: dict = {}
    per_kind: dict = {}
    for i in order:
        if selected.sum() >= k:
            reason[i] = "ranked below the last pick"
            continue
        if max_per_site is not None and per_site.get(sites[i], 0) >= max_per_site:
            reason[i] = f"site {sites[i]} already has {max_per_site} pilot(s)"
            continue
        if max_per_kind is not None and per_kind.get(kinds[i], 0) >= max_per_kind:
            reason[i] = f"already {max_per_kind} pilot(s) of kind {kinds[i]}"
            continue
        selected[i] = True
        per_site[sites[i]] = per_site.get(sites[i], 0) + 1
        per_kind[kinds[i]] = per_kind.get(kinds[i], 0) + 1
    return selected, reason


def _order(scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Best first; ties broken by microsystem id, so the ranking is deterministic."""
    return np.lexsort((ids, -np.round(scores, 12)))


def _ranking(
    scores: np.ndarray,
    ids: np.ndarray,
    sites: np.ndarray,
    kinds: np.ndarray,
    k: int,
    max_per_site: int | None,
    max_per_kind: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rank candidates by score and select ``k`` under the caps (what :func:`rank` and each
    perturbed weighting of :func:`sensitivity` do).

    Returns the order (positions, best first), each candidate's rank (1 = best), the selected
    flags and the reason each candidate was passed over, all by position.
    """
    order = _order(scores, ids)
    ranks = np.empty(order.size, dtype=np.int64)
    ranks[order] = np.arange(1, order.size + 1)
    selected, reason = _select(order, sites, kinds, int(k), max_per_site, max_per_kind)
    return order, ranks, selected, reason


def rank(
    criteria: pd.DataFrame,
    weights: dict[str, float],
    *,
    k: int = 3,
    max_per_site: int | None = None,
    max_per_kind: int | None = None,
) -> pd.DataFrame:
    """Rank candidates by the weighted mean of their criteria scores and select ``k`` pilots.

    Parameters
    ----------
    criteria : DataFrame
        From :func:`criteria` (any table with ``microsystem_id, site, kind`` and the weighted
        score columns).
    weights : dict of str to float
        Weight of each criterion of :data:`CRITERIA` (missing ones weigh 0); only their ratios
        matter.
    k : int
        How many pilots to select.
    max_per_site, max_per_kind : int, optional
        At most this many pilots from one site / of one kind (to spread the learning).

    Returns
    -------
    DataFrame
        The criteria table sorted by rank, plus ``score`` (the weighted mean, 0-1), ``rank``
        (1 = best; ties broken by microsystem id), ``selected`` (bool), ``pick`` (1..k among the
        selected, ``<NA>`` otherwise) and ``rationale`` (a plain-language reason for the pick or
        for passing over the candidate).

    Notes
    -----
    Selection goes down the ranking and skips a candidate whose site or kind has reached its
    cap, so a capped selection can pass over a higher-ranked candidate (the rationale says so).
    """
    weights = _check_weights(weights)
    _check_criteria(criteria, weights)
    if not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"pilots.k must be a whole number of 1 or more; got {k!r}.")
    total = sum(weights.values())
    table = criteria.copy()
    scores = sum(table[c].astype(float).fillna(0.0) * w for c, w in weights.items()) / total
    table["score"] = scores.round(4)
    order, ranks, selected, skip = _ranking(
        table["score"].to_numpy(),
        table["microsystem_id"].astype(str).to_numpy(),
        table["site"].to_numpy(),
        table["kind"].to_numpy(),
        k,
        max_per_site,
        max_per_kind,
    )
    table["rank"] = ranks
    table["selected"] = selected
    picks = pd.Series(pd.NA, index=table.index, dtype="Int64")
    picks.iloc[order[selected[order]]] = np.arange(1, selected.sum() + 1)
    table["pick"] = picks
    used = [c for c in CRITERIA if weights.get(c, 0) > 0 and c in table.columns]
    # criteria that tell the candidates apart (a range of 0.05 or more), and where each stands
    telling = [c for c in used if float(table[c].max() - table[c].min()) >= 0.05]
    standing = {c: table[c].rank(pct=True, method="average") for c in telling}
    last_pick = table.loc[selected, "score"].min() if selected.any() else np.nan
    rationale = []
    for i, row in table.iterrows():
        ordered = sorted(telling, key=lambda c: (-standing[c][i], -weights[c]))
        strong = [c for c in ordered if standing[c][i] > 0.5][:2]
        weak = [c for c in used if float(row[c]) < 0.5]
        weak += [
            c for c in telling if standing[c][i] <= 1 / 3 and float(row[c]) < 0.75 and c not in weak
        ]
        named = [f"{CRITERIA_LABELS[c]} ({float(row[c]):.2f})" for c in strong]
        flagged = [f"{CRITERIA_LABELS[c]} ({float(row[c]):.2f})" for c in weak]
        if row["selected"]:
            text = f"Pick {row['pick']} of {int(selected.sum())} (score {row['score']:.2f})"
            text += f": stands out on {' and '.join(named)}" if named else ""
            text += f"; watch {', '.join(flagged)}" if flagged else ""
        else:
            text = f"Not selected (rank {row['rank']}, score {row['score']:.2f}): {skip[i]}"
            if skip[i] == "ranked below the last pick" and pd.notna(last_pick):
                text += f" ({last_pick:.2f})"
            text += f"; weaker on {', '.join(flagged)}" if flagged else ""
        if weak:
            worst = min(weak, key=lambda c: float(row[c]))
            why = row.get(f"{worst}_why", "")
            text += f" [{why}]" if isinstance(why, str) and why else ""
        rationale.append(text + ".")
    table["rationale"] = rationale
    return table.iloc[order].reset_index(drop=True)


def sensitivity(
    criteria: pd.DataFrame,
    weights: dict[str, float],
    *,
    spread: float = 0.2,
    draws: int = 1000,
    seed: int = 0,
    k: int = 3,
    max_per_site: int | None = None,
    max_per_kind: int | None = None,
) -> pd.DataFrame:
    """How often each candidate stays selected when the weights are perturbed at random.

    Parameters
    ----------
    criteria : DataFrame
        From :func:`criteria`.
    weights : dict of str to float
        The weights agreed, as for :func:`rank`.
    spread : float
        Each weight is multiplied by an independent uniform factor in ``[1 - spread,
        1 + spread]`` (0.2 = up to 20% up or down).
    draws : int
        Number of perturbed weightings.
    seed : int
        Seed of the random generator.
    k, max_per_site, max_per_kind
        As :func:`rank`.

    Returns
    -------
    DataFrame
        One row per candidate, in the order of :func:`rank` at the agreed weights:
        ``microsystem_id, name, site, kind``, ``rank`` and ``selected`` at the agreed weights,
        ``share_selected`` (share of perturbed weightings in which it is selected),
        ``rank_best``, ``rank_median``, ``rank_worst`` (over the perturbed weightings) and
        ``verdict`` (``"robust pick"`` when selected in at least 90% of them, ``"robust pass"``
        when in at most 10%, else ``"depends on the weights"``).

    Notes
    -----
    A one-at-a-time check of weights misses interactions; random joint perturbation is the
    usual Monte Carlo sensitivity analysis of a weighted-sum decision (Butler, Jia & Dyer 1997,
    Eur J Oper Res 103:531-546).
    """
    weights = _check_weights(weights)
    _check_criteria(criteria, weights)
    if not 0 <= spread < 1:
        raise ConfigError(f"pilots sensitivity: spread must be in [0, 1); got {spread!r}.")
    if not isinstance(draws, int | np.integer) or draws < 1:
        raise ConfigError(f"pilots sensitivity: draws must be a positive integer; got {draws!r}.")
    base = rank(criteria, weights, k=k, max_per_site=max_per_site, max_per_kind=max_per_kind)
    names = list(weights)
    w = np.array([weights[c] for c in names])
    scores = base[names].astype(float).fillna(0.0).to_numpy()
    ids = base["microsystem_id"].astype(str).to_numpy()
    sites, kinds = base["site"].to_numpy(), base["kind"].to_numpy()
    rng = np.random.default_rng(seed)
    factors = rng.uniform(1 - spread, 1 + spread, size=(draws, len(names)))
    weighted = factors * w
    totals = (scores @ weighted.T) / weighted.sum(axis=1)  # candidates x draws
    chosen = np.zeros(len(base))
    ranks = np.empty((draws, len(base)), dtype=np.int64)
    for d in range(draws):
        _, ranks[d], sel, _ = _ranking(
            totals[:, d], ids, sites, kinds, k, max_per_site, max_per_kind
        )
        chosen += sel
    share = chosen / draws
    out = base[["microsystem_id", "name", "site", "kind", "rank", "selected"]].copy()
    out["share_selected"] = share.round(3)
    out["rank_best"] = ranks.min(axis=0)
    out["rank_median"] = np.median(ranks, axis=0)
    out["rank_worst"] = ranks.max(axis=0)
    out["verdict"] = np.where(
        share >= 0.9, "robust pick", np.where(share <= 0.1, "robust pass", "depends on the weights")
    )
    return out


def shortlist(ranked: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """The ranked table as a coach reads it: rank, candidate, scores, selection and rationale.

    Returns
    -------
    DataFrame
        ``rank, microsystem_id, site, kind, score``, the criteria scores present,
        ``selected, rationale``; the first ``top`` rows (all when None).
    """
    cols = ["rank", "microsystem_id", "site", "kind", "score"]
    cols += [c for c in CRITERIA if c in ranked.columns] + ["selected", "rationale"]
    shown = ranked[[c for c in cols if c in ranked.columns]]
    return (shown if top is None else shown.head(top)).reset_index(drop=True)


def baseline_charts(
    measure_series: pd.DataFrame,
    ranked: pd.DataFrame,
    *,
    measure_id: str,
    measures: pd.DataFrame | None = None,
    top: int = 6,
    baseline_periods: int = 26,
    as_of: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The baseline control charts of the best-ranked candidates, one facet each.

    Returns
    -------
    DataFrame
        :func:`qi_helpers.spc.qic`'s frame faceted by ``microsystem_id`` (``facet1``), in rank
        order, on the charted scale (the catalogue's ``multiply``); ``attrs["pilots"]`` holds the
        measure's name, unit and direction of improvement for drawing.
    """
    from qi_helpers.spc import qic

    if measures is None:
        measures = _lookup_measures()
    measure = catalogue_row(measures, measure_id)
    chart = _chart_of(measure)
    window = baseline_window(
        measure_series, measure_id=measure_id, baseline_periods=baseline_periods, as_of=as_of
    )
    order = [m for m in ranked["microsystem_id"].head(top) if m in set(window["microsystem_id"])]
    if not order:
        raise DataError("pilots.baseline_charts: none of the ranked candidates has baseline data.")
    shown = window[window["microsystem_id"].isin(order)].copy()
    shown["microsystem_id"] = pd.Categorical(shown["microsystem_id"], categories=order)
    shown = shown.sort_values(["microsystem_id", "period"])
    if chart == "i":
        res = qic(shown, x="period", y="value", chart="i", facets="microsystem_id",
                  multiply=_multiply(measure))  # fmt: skip
    else:
        res = qic(shown, x="period", y="numerator", n="denominator", chart=chart,
                  facets="microsystem_id", multiply=_multiply(measure))  # fmt: skip
    res["facet1"] = res["facet1"].astype(str)
    unit = measure.get("unit")
    res.attrs["pilots"] = {
        "measure_id": measure_id,
        "name": str(measure.get("name", measure_id)),
        "unit": "" if unit is None or pd.isna(unit) else str(unit),
        "improvement": "down" if str(measure.get("improvement")).lower() == "down" else "up",
        "chart": chart,
    }
    return res


def candidate_profiles(project: Any, membership: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The profiles used for representativeness: workbook 01's, else the mix profiles.

    Parameters
    ----------
    project : qi_helpers.project.Project
        The project (its ``outputs/data`` and its input tables).
    membership : dict of DataFrame
        Workbook 01's membership tables.

    Returns
    -------
    DataFrame
        ``outputs/data/profiles.parquet`` when workbook 01 wrote one (its numeric columns are
        the profile), otherwise :func:`mix_profiles` of the ``staff``, ``activities`` and
        ``patients`` tables.
    """
    path = project.data_dir / "profiles.parquet"
    if path.is_file():
        return pd.read_parquet(path)
    tables = project.load_tables("staff", "activities", "patients", required=False)
    if tables["staff"] is None:
        raise DataError("pilots: representativeness needs the `staff` table or profiles.parquet.")
    return mix_profiles(tables["staff"], membership, tables["activities"], tables["patients"])
