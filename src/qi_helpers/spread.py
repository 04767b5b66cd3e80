"""Plan the spread of changes that worked to other microsystems (workbook 04).

Spread follows the IHI Framework for Spread (Massoud et al., A Framework for Spread: From Local
Improvements to System-Wide Change, IHI Innovation Series white paper, 2006): a change that
improved results in its pilots, and harmed nothing, is offered to the other microsystems of the
same kind, most similar and readiest first (the *early adopters* of Rogers, Diffusion of
Innovations, 5th ed., 2003), in waves, with leadership, communication and measurement around it.

The steps, each a function: :func:`successful_changes` (what is ready to spread) and
:func:`held_back`; :func:`mix_profiles` and :func:`similarity` (how alike two teams are, from
their 5 Ps profile); :func:`measure_levels` (where each team stands now); :func:`candidates`
(every other team scored, with the reasons in words); :func:`plan` (waves with dates);
:func:`framework_checklist` (the seven components); :func:`export_plan` (a file for managers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qi_helpers.errors import ConfigError, DataError
from qi_helpers.schema import require_columns

#: What to do when a table lacks a column (the end of :func:`require_columns`' error).
_ADVICE = "Run the workbook that writes it again, or check the table's source."

#: Weights of the candidate score (similarity to the pilots, readiness, projected impact).
DEFAULT_WEIGHTS: dict[str, float] = {"similarity": 0.4, "readiness": 0.4, "impact": 0.2}

#: Readable names of the mixes of a profile (the prefix of a profile column before ``:``).
MIX_NAMES: dict[str, str] = {"role": "roles", "activity": "activities", "patient": "patients"}

#: The seven components of the IHI Framework for Spread (Massoud et al. 2006) and the question
#: each asks of the spread team.
FRAMEWORK_COMPONENTS: dict[str, tuple[str, str]] = {
    "leadership": (
        "Leadership",
        "Is the spread a named priority of a senior leader, with an executive sponsor and a "
        "day-to-day manager, and aligned with the organisation's goals?",
    ),
    "set_up": (
        "Set-up",
        "Are the target population, the adopting units (in waves), the messengers and the "
        "partners named, with a spread aim and a timeline?",
    ),
    "better_ideas": (
        "Better ideas",
        "Is the change described so that others can use it: the evidence from the pilots, what "
        "is essential, what may be adapted, the case for adopting it?",
    ),
    "communication": (
        "Communication",
        "Do adopters hear about the change through the channels they trust (peers, opinion "
        "leaders, site visits), and learn the details from the pilot teams?",
    ),
    "social_system": (
        "Social system",
        "Are the adopters' opinion leaders and networks known and involved, and are early "
        "adopters first in line?",
    ),
    "knowledge_management": (
        "Knowledge management",
        "Is there a way to capture and share what adopters learn and adapt (a change package, "
        "a learning community, a shared folder)?",
    ),
    "measurement_and_feedback": (
        "Measurement and feedback",
        "Does every adopter measure the pilots' measures, and does the spread team track the "
        "adoption curve and whether the gains hold?",
    ),
}
FRAMEWORK_STATUSES = ("done", "in progress", "not started")

#: Rogers' adopter categories for the waves after the pilots (the innovators).
ADOPTER_CATEGORIES = ("early adopters", "early majority", "late majority")

_CANDIDATE_COLUMNS = [
    "change",
    "microsystem_id",
    "name",
    "kind",
    "site",
    "similarity",
    "similarity_role",
    "similarity_activity",
    "similarity_patient",
    "readiness",
    "respondents",
    "measure_id",
    "level",
    "target",
    "projected_level",
    "projected_change",
    "weekly_volume",
    "projected_impact",
    "impact_unit",
    "score",
    "reason",
]


# --- what is ready to spread ------------------------------------------------------------------


def successful_changes(results: pd.DataFrame) -> pd.DataFrame:
    """The changes ready to spread: improved in at least one microsystem, worsened in none.

    A change that improved its outcome but worsened a balancing measure (or any other measure)
    where it was tested is held back: the team must first study that cost.

    Parameters
    ----------
    results : DataFrame
        Every workbook 03 verdict (``microsystem_id, measure_id, change, verdict``).

    Returns
    -------
    DataFrame
        ``change, pilots`` (``;``-joined ids of the microsystems where it improved: the pilots and
        any earlier adopters, the evidence for spreading it), ``measures`` (``;``-joined ids of the
        measures it improved), one row per change, sorted by change.
    """
    require_columns(
        results, ["microsystem_id", "measure_id", "change", "verdict"], "results", advice=_ADVICE
    )
    tested = results[results["change"].notna()]
    harmful = set(tested.loc[tested["verdict"] == "worsened", "change"])
    won = tested[(tested["verdict"] == "improved") & ~tested["change"].isin(harmful)]
    grouped = won.groupby("change").agg(
        pilots=("microsystem_id", lambda s: ";".join(sorted(set(s)))),
        measures=("measure_id", lambda s: ";".join(sorted(set(s)))),
    )
    return grouped.reset_index()


def held_back(results: pd.DataFrame) -> pd.DataFrame:
    """Changes that improved somewhere but worsened a measure where they were tested.

    Returns
    -------
    DataFrame
        ``change, microsystem_id, measure_id, name, reason`` for each worsened measure.
    """
    tested = results[results["change"].notna()]
    improved = set(tested.loc[tested["verdict"] == "improved", "change"])
    worse = tested[(tested["verdict"] == "worsened") & tested["change"].isin(improved)]
    return worse[["change", "microsystem_id", "measure_id", "name", "reason"]].reset_index(
        drop=True
    )


# --- similarity from the 5 Ps profile ---------------------------------------------------------


def mix_profiles(
    staff: pd.DataFrame,
    activities: pd.DataFrame,
    patients: pd.DataFrame,
    membership: Mapping[str, pd.DataFrame],
) -> pd.DataFrame:
    """The role, activity and patient mix of every microsystem (three of its 5 Ps).

    The 5 Ps of a clinical microsystem are its Purpose, Patients, Professionals, Processes and
    Patterns (Nelson, Batalden & Godfrey, Quality by Design, 2007). The purpose is the kind of
    microsystem; this table describes the professionals (the role mix of its staff, weighted by
    each person's share of work there and FTE), the processes (the mix of activities in its work
    areas) and the patients (age band and sex of its patients, weighted by their share).

    This is the one place that builds profiles for spread; when workbook 01 writes a shared
    profile table with the same column convention, :func:`spread_profiles` reads that instead.

    Parameters
    ----------
    staff : DataFrame
        ``staff_id, role`` (optional ``fte``).
    activities : DataFrame
        ``activity, location``.
    patients : DataFrame
        ``patient_id`` (optional ``age_band``, ``sex``).
    membership : mapping of DataFrame
        Workbook 01's ``staff`` (``staff_id, microsystem_id, share``), ``locations``
        (``location, microsystem_id, share``) and ``patients`` (``patient_id, microsystem_id,
        share``) tables.

    Returns
    -------
    DataFrame
        ``microsystem_id`` and one share column per category, named ``<mix>:<category>``:
        ``role:<role>``, ``activity:<activity>``, ``patient:age <band>`` and
        ``patient:sex <sex>``. Within each mix the shares of a microsystem sum to 1 (the patient
        mix's age and sex parts each sum to 1/2); 0 where absent. Contains no identifiers of
        people, only shares.
    """
    mixes: list[pd.DataFrame] = []
    member_staff = membership.get("staff")
    if member_staff is not None and not member_staff.empty:
        people = member_staff.merge(staff, on="staff_id", how="inner")
        fte = people["fte"].fillna(1.0) if "fte" in people else 1.0
        people = people.assign(weight=people["share"] * fte, category="role:" + people["role"])
        mixes.append(_shares(people, "category"))
    member_loc = membership.get("locations")
    if member_loc is not None and not member_loc.empty:
        owner = (
            member_loc.sort_values("share", ascending=False, kind="stable")
            .drop_duplicates("location")
            .set_index("location")["microsystem_id"]
        )
        counts = activities.groupby(["location", "activity"]).size().rename("weight").reset_index()
        counts["microsystem_id"] = counts["location"].map(owner)
        counts = counts.dropna(subset=["microsystem_id"])
        counts["category"] = "activity:" + counts["activity"].astype(str)
        mixes.append(_shares(counts, "category"))
    member_pat = membership.get("patients")
    if member_pat is not None and not member_pat.empty:
        people = member_pat.merge(patients, on="patient_id", how="inner")
        for column, label in (("age_band", "age"), ("sex", "sex")):
            if column in people:
                part = people.dropna(subset=[column])
                part = part.assign(
                    weight=part["share"], category=f"patient:{label} " + part[column].astype(str)
                )
                mixes.append(_shares(part, "category") / 2)
    if not mixes:
        raise DataError(
            "mix_profiles: no membership table to build profiles from; run workbook 01 first."
        )
    table = pd.concat(mixes, axis=1).fillna(0.0)
    table = table.reindex(sorted(table.columns), axis=1).sort_index()
    table.index.name = "microsystem_id"
    return table.reset_index()


def _shares(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Weights per microsystem and category, as shares summing to 1 per microsystem."""
    frame = frame.assign(weight=frame["weight"].astype(float))
    table = frame.pivot_table(
        index="microsystem_id", columns=column, values="weight", aggfunc="sum", fill_value=0.0
    )
    totals = table.sum(axis=1).replace(0, np.nan)
    return table.div(totals, axis=0).fillna(0.0)


def spread_profiles(project: Any) -> pd.DataFrame:
    """The profiles to judge similarity by: workbook 01's, else built by :func:`mix_profiles`.

    Reads ``outputs/data/profiles.parquet`` when it exists and has ``<mix>:<category>`` share
    columns; otherwise builds the mixes from the input tables (``staff``, ``activities``,
    ``patients``) and workbook 01's membership.

    Returns
    -------
    DataFrame
        ``microsystem_id`` and the ``<mix>:<category>`` share columns (see :func:`mix_profiles`).
    """
    path = project.data_dir / "profiles.parquet"
    if path.is_file():
        shared = pd.read_parquet(path)
        if {"microsystem_id", "dimension", "category", "share"} <= set(shared.columns):
            shared = wide_profiles(shared)
        mix_columns = [c for c in shared.columns if ":" in str(c)]
        if "microsystem_id" in shared.columns and mix_columns:
            return shared[["microsystem_id", *mix_columns]]
    tables = project.load_tables("staff", "activities", "patients")
    return mix_profiles(
        tables["staff"], tables["activities"], tables["patients"], project.membership()
    )


#: Workbook 01's long profile dimensions used for similarity, and the mix each belongs to.
LONG_DIMENSIONS: dict[str, tuple[str, str]] = {
    "role": ("role", ""),
    "activity": ("activity", ""),
    "age_band": ("patient", "age "),
    "sex": ("patient", "sex "),
}


def wide_profiles(mix: pd.DataFrame) -> pd.DataFrame:
    """Workbook 01's long mix table as the wide ``<mix>:<category>`` shares of :func:`similarity`.

    Parameters
    ----------
    mix : DataFrame
        ``microsystem_id, dimension, category, share`` (``outputs/data/profiles.parquet``).

    Returns
    -------
    DataFrame
        ``microsystem_id`` and ``role:<role>``, ``activity:<activity>``, ``patient:age <band>``,
        ``patient:sex <sex>`` share columns (0 where absent); other dimensions (conditions, FTE,
        days of the week) are left out, as :func:`mix_profiles` leaves them out.
    """
    keep = mix[mix["dimension"].isin(list(LONG_DIMENSIONS))]
    prefix = keep["dimension"].map(lambda d: f"{LONG_DIMENSIONS[d][0]}:{LONG_DIMENSIONS[d][1]}")
    keep = keep.assign(column=prefix + keep["category"].astype(str))
    table = keep.pivot_table(
        index="microsystem_id", columns="column", values="share", aggfunc="sum", fill_value=0.0
    )
    table.columns.name = None
    return table.reset_index()


def similarity(profiles: pd.DataFrame, reference: list[str]) -> pd.DataFrame:
    """How alike each microsystem's mixes are to the reference microsystems' (the pilots').

    Parameters
    ----------
    profiles : DataFrame
        ``microsystem_id`` plus share columns named ``<mix>:<category>`` (:func:`mix_profiles`);
        other columns are ignored.
    reference : list of str
        The microsystems to compare with; their mixes are averaged.

    Returns
    -------
    DataFrame
        ``microsystem_id``, one ``similarity_<mix>`` column per mix (e.g. ``similarity_role``,
        ``similarity_activity``, ``similarity_patient``) and ``similarity``, their mean; all
        between 0 (nothing in common) and 1 (the same mix). NaN when a reference is not in the
        profiles.

    Notes
    -----
    For one mix, with shares ``a`` (the microsystem) and ``b`` (the reference mean), each
    normalised to sum to 1, the similarity is ``1 - TV(a, b)``, where the total variation distance
    ``TV = sum(|a_i - b_i|) / 2`` is the share of one mix that would have to change to match the
    other (Levin, Peres & Wilmer, Markov Chains and Mixing Times, 2009, ch. 4). It equals
    ``sum(min(a_i, b_i))``, the overlap of the two mixes.
    """
    require_columns(profiles, ["microsystem_id"], "profiles", advice=_ADVICE)
    table = profiles.set_index("microsystem_id")
    mix_of = {c: str(c).split(":", 1)[0] for c in table.columns if ":" in str(c)}
    out = pd.DataFrame(index=table.index)
    refs = [r for r in reference if r in table.index]
    names = sorted(set(mix_of.values()), key=lambda m: (list(MIX_NAMES).index(m)
                                                        if m in MIX_NAMES else 99, m))  # fmt: skip
    for mix in names:
        cols = [c for c, m in mix_of.items() if m == mix]
        shares = table[cols].astype(float).clip(lower=0)
        shares = shares.div(shares.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)
        if refs:
            ref = shares.loc[refs].mean(axis=0)
            out[f"similarity_{mix}"] = 1 - 0.5 * (shares - ref).abs().sum(axis=1)
        else:
            out[f"similarity_{mix}"] = np.nan
    sims = [c for c in out.columns]
    out["similarity"] = out[sims].mean(axis=1) if sims else np.nan
    return out.round(4).reset_index()


# --- where each microsystem stands now --------------------------------------------------------


def measure_levels(
    series: pd.DataFrame, measures: pd.DataFrame, *, recent_periods: int = 26
) -> pd.DataFrame:
    """Each microsystem's current level and volume of every measure.

    Parameters
    ----------
    series : DataFrame
        From :func:`qi_helpers.measure_series.measure_series`.
    measures : DataFrame
        The measure catalogue (``measure_id``, optional ``multiply``).
    recent_periods : int
        How many of the latest periods make "now" (26 weeks: half a year, seasons averaged out).

    Returns
    -------
    DataFrame
        ``microsystem_id, measure_id, level`` (on the charted scale: the pooled ratio
        ``sum(numerator) / sum(denominator)`` times ``multiply`` for counted and case measures,
        the mean of the values for pre-aggregated points), ``weekly_volume`` (mean denominator
        per period: cases, or patient-days for rates; NaN for pre-aggregated points) and
        ``n_periods``.
    """
    require_columns(
        series, ["microsystem_id", "measure_id", "period", "value"], "series", advice=_ADVICE
    )
    if recent_periods < 1:
        raise ConfigError(f"recent_periods must be at least 1, found {recent_periods}.")
    multiply = measures.set_index("measure_id").get("multiply")
    rows = []
    for (ms, measure_id), own in series.groupby(["microsystem_id", "measure_id"], sort=True):
        last = own.sort_values("period").tail(recent_periods)
        factor = float(multiply.get(measure_id, 1) or 1) if multiply is not None else 1.0
        counted = last["numerator"].notna().all() and last["denominator"].notna().all()
        if counted and last["denominator"].sum() > 0:
            level = last["numerator"].sum() / last["denominator"].sum()
            volume = float(last["denominator"].mean())
        else:
            level, volume = float(last["value"].mean()), np.nan
        rows.append((ms, measure_id, level * factor, volume, len(last)))
    return pd.DataFrame(
        rows, columns=["microsystem_id", "measure_id", "level", "weekly_volume", "n_periods"]
    )


# --- candidates -------------------------------------------------------------------------------


def _pilot_gain(pilot_rows: pd.DataFrame, up: bool) -> pd.Series:
    """Each pilot's gain in the improving direction (charted scale): ``effect`` when present."""
    if "effect" in pilot_rows and pilot_rows["effect"].notna().any():
        change = pilot_rows["effect"].astype(float)
        change = change.fillna(pilot_rows["after_mean"] - pilot_rows["baseline_mean"])
    else:
        change = pilot_rows["after_mean"] - pilot_rows["baseline_mean"]
    return change if up else -change


def _projection(
    results: pd.DataFrame,
    measures: pd.DataFrame | None,
    levels: pd.DataFrame | None,
    change: str,
    pilots: list[str],
    measure_list: list[str],
) -> tuple[str | None, dict[str, Any]]:
    """The main measure of a change and the numbers needed to project its effect elsewhere."""
    won = results[
        (results["change"] == change)
        & (results["verdict"] == "improved")
        & results["microsystem_id"].isin(pilots)
    ]
    if measures is None or won.empty:
        return (measure_list[0] if measure_list else None), {}
    family = {"outcome": 0, "process": 1, "balancing": 2}
    counts = won.groupby("measure_id").size()
    info = measures.set_index("measure_id")
    ranked = sorted(
        counts.index,
        key=lambda m: (
            -counts[m],
            family.get(str(info["family"].get(m, "")) if "family" in info else "", 9),
            m,
        ),
    )
    measure_id = ranked[0]
    if measure_id not in info.index:
        return measure_id, {}
    row = info.loc[measure_id]
    up = str(row.get("improvement", "down")).lower() == "up"
    rows = won[won["measure_id"] == measure_id]
    gain = _pilot_gain(rows, up)
    target = float(row["target"]) if "target" in row and pd.notna(row.get("target")) else np.nan
    base = rows["baseline_mean"].astype(float)
    gap = (target - base) if up else (base - target)
    closes = (gain / gap.where(gap > 0)).clip(0, 1)
    return measure_id, dict(
        up=up,
        target=target,
        closes=float(closes.mean()) if closes.notna().any() else np.nan,
        relative=float((gain / base.abs().replace(0, np.nan)).mean()),
        multiply=float(row.get("multiply", 1) or 1),
        chart=str(row.get("chart", "")),
        unit=str(row.get("unit", "") or ""),
        name=str(row.get("name", measure_id)),
        levels=None
        if levels is None
        else levels[levels["measure_id"] == measure_id].set_index("microsystem_id"),
    )


def _impact_unit(chart: str, unit: str) -> str:
    if chart in ("p", "pp"):
        return "cases a week"
    if chart in ("u", "up", "c"):
        return "events a week"
    if chart in ("xbar",):
        return f"{unit} a week" if unit else "units a week"
    return ""


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def candidates(
    registry: pd.DataFrame,
    profiles: pd.DataFrame | None,
    results: pd.DataFrame,
    readiness: pd.DataFrame,
    *,
    change: str,
    levels: pd.DataFrame | None = None,
    measures: pd.DataFrame | None = None,
    weights: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Every other microsystem of the pilots' kind, scored as a candidate to adopt ``change``.

    Parameters
    ----------
    registry : DataFrame
        From workbook 01 (``microsystem_id, name, kind, site``).
    profiles : DataFrame or None
        ``microsystem_id`` and ``<mix>:<category>`` shares (:func:`spread_profiles`); None leaves
        similarity out of the score.
    results : DataFrame
        All workbook 03 verdicts (``microsystem_id, measure_id, change, verdict, baseline_mean,
        after_mean``; ``effect`` is used when present).
    readiness : DataFrame
        From :func:`qi_helpers.readiness.readiness_by_microsystem`.
    change : str
        The change to spread.
    levels : DataFrame, optional
        From :func:`measure_levels`: each candidate's current level of the change's measure.
    measures : DataFrame, optional
        The measure catalogue (``improvement``, ``target``, ``multiply``, ``chart``, ``unit``);
        needed, with ``levels``, for the projected impact.
    weights : mapping, optional
        ``similarity, readiness, impact`` weights of the score (default :data:`DEFAULT_WEIGHTS`).

    Returns
    -------
    DataFrame
        ``change, microsystem_id, name, kind, site, similarity`` (0-1, mean of the mixes),
        ``similarity_role, similarity_activity, similarity_patient`` (per mix; NaN without
        profiles), ``readiness`` (mean 1-3), ``respondents``, ``measure_id`` (the change's main
        measure), ``level`` (the candidate's level now), ``target``, ``projected_level``,
        ``projected_change`` (signed, charted scale), ``weekly_volume``, ``projected_impact``
        (the projected gain times the weekly volume: cases, events or units a week),
        ``impact_unit``, ``score`` (0-1) and ``reason`` (in words), best first. Empty (with
        these columns) when the change improved nowhere or was held back.

    Notes
    -----
    The candidates are every microsystem of a kind where the change improved results, except
    those that have tested or adopted it already (they appear in ``results`` with the change).
    Projected impact: when the measure has a target, the pilots' gain is read as the share of
    their gap to the target that they closed, and the candidate is projected to close the same
    share of its own gap (a team already at target has little to gain); without a target, the
    pilots' relative gain is applied to the candidate's level. The score is
    ``w_s * similarity + w_r * readiness_score + w_i * impact / max(impact)`` with missing parts
    counted as 0 (a team not surveyed is not known to be ready), so that the most similar, ready
    teams with the most to gain come first: the early adopters (Rogers 2003), who make the
    change visible to the rest.
    """
    won = successful_changes(results)
    row = won[won["change"] == change]
    if row.empty:
        return pd.DataFrame(columns=_CANDIDATE_COLUMNS)
    pilots = row.iloc[0]["pilots"].split(";")
    measure_list = row.iloc[0]["measures"].split(";")
    kinds = set(registry.loc[registry["microsystem_id"].isin(pilots), "kind"])
    tested = set(results.loc[results["change"] == change, "microsystem_id"])
    pool = registry[registry["kind"].isin(kinds) & ~registry["microsystem_id"].isin(tested)]
    table = pool[["microsystem_id", "name", "kind", "site"]].reset_index(drop=True)
    table.insert(0, "change", change)
    if profiles is not None:
        sims = similarity(profiles, pilots)
        table = table.merge(sims, on="microsystem_id", how="left")
    ready = readiness[["microsystem_id", "readiness", "readiness_score", "respondents"]]
    table = table.merge(ready, on="microsystem_id", how="left")
    for column in ("similarity", "similarity_role", "similarity_activity", "similarity_patient"):
        if column not in table:
            table[column] = np.nan

    measure_id, proj = _projection(results, measures, levels, change, pilots, measure_list)
    table["measure_id"] = measure_id
    for column in ("level", "target", "projected_level", "projected_change", "weekly_volume",
                   "projected_impact"):  # fmt: skip
        table[column] = np.nan
    table["impact_unit"] = ""
    if proj and proj["levels"] is not None:
        lv = proj["levels"]
        table["level"] = table["microsystem_id"].map(lv["level"]).astype(float)
        table["weekly_volume"] = table["microsystem_id"].map(lv["weekly_volume"]).astype(float)
        table["target"] = proj["target"]
        sign = 1.0 if proj["up"] else -1.0
        if not math.isnan(proj["closes"]) and not math.isnan(proj["target"]):
            gap = (sign * (proj["target"] - table["level"])).clip(lower=0)
            gain = proj["closes"] * gap
        else:
            gain = (proj["relative"] * table["level"].abs()).clip(lower=0)
        table["projected_change"] = sign * gain
        table["projected_level"] = table["level"] + table["projected_change"]
        table["projected_impact"] = gain / proj["multiply"] * table["weekly_volume"]
        table["impact_unit"] = np.where(
            table["weekly_volume"].notna(), _impact_unit(proj["chart"], proj["unit"]), ""
        )

    w = dict(DEFAULT_WEIGHTS)
    w.update(weights or {})
    size = table["projected_impact"].where(table["projected_impact"].notna(),
                                           table["projected_change"].abs())  # fmt: skip
    top = size.max()
    impact_part = (size / top).fillna(0.0) if top and top > 0 else pd.Series(0.0, table.index)
    total = sum(w.values()) or 1.0
    table["score"] = (
        (
            w["similarity"] * table["similarity"].fillna(0.0)
            + w["readiness"] * table["readiness_score"].fillna(0.0)
            + w["impact"] * impact_part
        )
        / total
    ).round(4)
    table = table.sort_values(["score", "microsystem_id"], ascending=[False, True], kind="stable")
    table["reason"] = [_reason(r, pilots, proj) for r in table.itertuples()]
    return table[_CANDIDATE_COLUMNS].reset_index(drop=True)


def _reason(r: Any, pilots: list[str], proj: Mapping[str, Any]) -> str:
    parts = [f"same kind as {', '.join(pilots)}"]
    if pd.notna(r.similarity):
        mixes = [
            f"{MIX_NAMES.get(m, m)} {getattr(r, f'similarity_{m}'):.0%}"
            for m in ("role", "activity", "patient")
            if pd.notna(getattr(r, f"similarity_{m}"))
        ]
        parts.append(f"{r.similarity:.0%} similar ({', '.join(mixes)})")
    if pd.isna(r.readiness):
        parts.append("readiness not surveyed")
    else:
        parts.append(f"readiness {r.readiness:.1f} of 3 ({int(r.respondents)} respondents)")
    if proj and pd.notna(r.level):
        unit = "%" if proj["unit"] == "%" else f" {proj['unit']}".rstrip()
        text = f"{proj['name']} {_fmt(r.level)}{unit} now"
        if pd.notna(r.projected_change) and abs(r.projected_change) > 0:
            text += f", projected {_fmt(r.projected_level)}{unit}"
            if pd.notna(r.projected_impact) and r.impact_unit:
                text += f" (about {r.projected_impact:.2g} {r.impact_unit})"
        else:
            text += ", already at target: little to gain"
        parts.append(text)
    return "; ".join(parts)


def all_candidates(
    registry: pd.DataFrame,
    profiles: pd.DataFrame | None,
    results: pd.DataFrame,
    readiness: pd.DataFrame,
    *,
    levels: pd.DataFrame | None = None,
    measures: pd.DataFrame | None = None,
    weights: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """:func:`candidates` for every change ready to spread, in one table (changes sorted).

    Returns
    -------
    DataFrame
        The columns of :func:`candidates`.
    """
    frames = [
        candidates(
            registry,
            profiles,
            results,
            readiness,
            change=c,
            levels=levels,
            measures=measures,
            weights=weights,
        )  # fmt: skip
        for c in successful_changes(results)["change"]
    ]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=_CANDIDATE_COLUMNS)
    return pd.concat(frames, ignore_index=True)


# --- waves ------------------------------------------------------------------------------------


def default_start(results: pd.DataFrame) -> str:
    """The Monday after the last period with data in any workbook 03 result (ISO date)."""
    last = pd.to_datetime(results["last_period"]).max()
    return str((last + pd.Timedelta(weeks=1)).date())


def plan(
    candidate_table: pd.DataFrame,
    *,
    waves: int | None = 3,
    wave_size: int | None = None,
    start: str,
    wave_length_weeks: int = 12,
) -> pd.DataFrame:
    """Put each change's candidates into waves, best first (the early adopters), with dates.

    Parameters
    ----------
    candidate_table : DataFrame
        From :func:`candidates` or :func:`all_candidates` (``change, microsystem_id``; ordered by
        ``score`` when present, else kept in its order).
    waves : int, optional
        Number of waves per change (the candidates split as evenly as possible, earlier waves
        the larger). Ignored when ``wave_size`` is given.
    wave_size : int, optional
        Adopters per wave; the number of waves follows from the number of candidates.
    start : str
        ISO date of the first wave's start.
    wave_length_weeks : int
        Weeks between the starts of two waves (each wave lasts this long).

    Returns
    -------
    DataFrame
        The candidates plus ``wave`` (1, 2, ...), ``adopter_category`` (Rogers' early adopters,
        early majority, late majority, by the wave's place in the plan), ``wave_start`` and
        ``wave_end`` (dates), one row per change and adopter, sorted by change, wave and rank.

    Notes
    -----
    Spreading in waves lets each wave learn from the last (Massoud et al. 2006, set-up); the
    first wave is the most similar and readiest teams, who show the change working in a setting
    like the others' (observability, Rogers 2003).
    """
    if wave_size is not None:
        if int(wave_size) != wave_size or wave_size < 1:
            raise ConfigError(
                f"spread.wave_size must be a whole number of 1 or more, found {wave_size!r}."
            )
    elif waves is None or int(waves) != waves or waves < 1:
        raise ConfigError(f"spread.waves must be a whole number of 1 or more, found {waves!r}.")
    if int(wave_length_weeks) != wave_length_weeks or wave_length_weeks < 1:
        raise ConfigError(
            f"spread.wave_length_weeks must be a whole number of 1 or more, found "
            f"{wave_length_weeks!r}."
        )
    try:
        begin = pd.Timestamp(start)
    except (ValueError, TypeError) as err:
        raise ConfigError(
            f"spread start must be an ISO date such as 2026-01-05, found {start!r}."
        ) from err
    table = candidate_table.reset_index(drop=True).copy()
    if table.empty:
        for column in ("wave", "adopter_category", "wave_start", "wave_end"):
            table[column] = pd.Series(
                dtype="datetime64[ns]" if "start" in column or "end" in column else object
            )
        return table
    if "score" in table:
        table = table.sort_values(
            ["change", "score", "microsystem_id"], ascending=[True, False, True], kind="stable"
        ).reset_index(drop=True)
    position = table.groupby("change", sort=False).cumcount()
    count = table.groupby("change", sort=False)["change"].transform("size")
    if wave_size is not None:
        n_waves = np.ceil(count / int(wave_size)).astype(int)
        wave = position // int(wave_size) + 1
    else:
        n_waves = np.minimum(count, int(waves))
        # Even split, earlier waves the larger: position * waves // count.
        wave = (position * n_waves) // count + 1
    table["wave"] = wave.astype(int)
    place = (table["wave"] - 1) / n_waves
    table["adopter_category"] = np.select(
        [place < 1 / 3, place < 2 / 3], list(ADOPTER_CATEGORIES[:2]), ADOPTER_CATEGORIES[2]
    )
    table["wave_start"] = begin + pd.to_timedelta((table["wave"] - 1) * wave_length_weeks * 7, "D")
    table["wave_end"] = table["wave_start"] + pd.Timedelta(weeks=int(wave_length_weeks))
    return table.sort_values(["change", "wave"], kind="stable").reset_index(drop=True)


# --- Framework for Spread checklist -----------------------------------------------------------


def framework_checklist(entries: Mapping[str, Any] | None) -> pd.DataFrame:
    """The Framework for Spread checklist, with what is missing.

    Parameters
    ----------
    entries : mapping
        ``spread.framework`` from ``parameters/project.yaml``: component id (one of
        :data:`FRAMEWORK_COMPONENTS`) -> ``{status, owner, note}``; ``status`` is one of
        ``done``, ``in progress``, ``not started``. Components left out count as not started.

    Returns
    -------
    DataFrame
        ``component`` (id), ``label``, ``question``, ``status``, ``owner``, ``note``, ``missing``
        (what is missing, in words; empty when the component is done and has an owner), one row
        per component in the framework's order.

    Raises
    ------
    ConfigError
        For an unknown component or status, naming the valid ones.

    Notes
    -----
    The seven components are those of the IHI Framework for Spread (Massoud et al. 2006):
    leadership; set-up (target population, adopters, partners); better ideas; communication;
    social system; knowledge management; measurement and feedback.
    """
    entries = dict(entries or {})
    unknown = sorted(set(entries) - set(FRAMEWORK_COMPONENTS))
    if unknown:
        raise ConfigError(
            f"parameters/project.yaml spread.framework: unknown component(s) {', '.join(unknown)}; "
            f"use {', '.join(FRAMEWORK_COMPONENTS)}."
        )
    rows = []
    for key, (label, question) in FRAMEWORK_COMPONENTS.items():
        entry = entries.get(key) or {}
        if not isinstance(entry, Mapping):
            raise ConfigError(
                f"parameters/project.yaml spread.framework.{key}: expected a mapping with status, "
                f"owner and note, found {entry!r}."
            )
        status = str(entry.get("status") or "not started").strip().lower()
        if status not in FRAMEWORK_STATUSES:
            raise ConfigError(
                f"parameters/project.yaml spread.framework.{key}.status: {status!r} is not one of "
                f"{', '.join(FRAMEWORK_STATUSES)}."
            )
        owner = str(entry.get("owner") or "").strip()
        note = str(entry.get("note") or "").strip()
        missing = []
        if status != "done":
            missing.append(status)
        if not owner:
            missing.append("no owner")
        rows.append(
            dict(
                component=key,
                label=label,
                question=question,
                status=status,
                owner=owner,
                note=note,
                missing="; ".join(missing),
            )  # fmt: skip
        )
    return pd.DataFrame(rows)


# --- export for managers ----------------------------------------------------------------------

#: Columns of the exported plan, in order (no patient data: teams, dates, scores, reasons).
EXPORT_COLUMNS = [
    "change",
    "wave",
    "adopter_category",
    "wave_start",
    "wave_end",
    "microsystem_id",
    "name",
    "site",
    "similarity",
    "readiness",
    "measure_id",
    "level",
    "projected_level",
    "projected_impact",
    "impact_unit",
    "reason",
]


def _neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells a spreadsheet would run as a formula (= + - @, tab, CR) with ``'``.

    OWASP, CSV Injection: https://owasp.org/www-community/attacks/CSV_Injection (read offline).
    """
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(
                lambda v: (
                    "'" + v
                    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r")
                    else v
                )  # fmt: skip
            )
    return out


def export_plan(spread_plan: pd.DataFrame, path: str | Path) -> Path:
    """Write the plan for managers as CSV (``.csv``) or Excel (``.xlsx``), formula-injection safe.

    Parameters
    ----------
    spread_plan : DataFrame
        From :func:`plan`.
    path : str or Path
        Where to write; the suffix picks the format.

    Returns
    -------
    Path
        The file written. Its columns are :data:`EXPORT_COLUMNS` (those present), dates as ISO
        dates, numbers rounded; text cells that start with ``= + - @`` are prefixed with ``'`` so
        that a spreadsheet shows them instead of running them.
    """
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".xlsx"):
        raise ConfigError(
            f"{path}: the plan can be exported as .csv or .xlsx, not {path.suffix!r}."
        )
    table = spread_plan[[c for c in EXPORT_COLUMNS if c in spread_plan.columns]].copy()
    for column in ("wave_start", "wave_end"):
        if column in table:
            table[column] = pd.to_datetime(table[column]).dt.strftime("%Y-%m-%d")
    for column in ("similarity", "readiness", "level", "projected_level", "projected_impact"):
        if column in table:
            table[column] = table[column].astype(float).round(2)
    from qi_helpers import sources

    shared = getattr(sources, "neutralise_formulas", None)
    table = shared(table) if callable(shared) else _neutralise(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        table.to_csv(path, index=False, lineterminator="\n")
    else:
        table.to_excel(path, index=False, sheet_name="spread plan")
    return path
