"""The 5 Ps profile of each microsystem: Purpose, Patients, Professionals, Processes, Patterns.

Method
------
The "5 Ps" are how the Dartmouth microsystem curriculum has a team assess itself before it
improves anything (Nelson, Batalden & Godfrey, *Quality by Design*, 2007, and the Dartmouth
Clinical Microsystem Action Guide by Godfrey, Nelson & Batalden):

- **Purpose**: why the microsystem exists: its main activities and the subpopulation it serves;
- **Patients**: who they are: panel size, age band and sex mix, leading conditions;
- **Professionals**: who does the work: role mix (headcount and full-time equivalents);
- **Processes**: how the work flows: the most frequent steps from one activity to the next in a
  patient's encounter (or day) and the median time between them;
- **Patterns**: how the work varies: weekly volume on a run chart (Anhoej run rules, through
  :func:`qi_helpers.spc.qic.qic`) and the day-of-week pattern.

Every activity belongs to the microsystem that owns its work area (``identification.locations``),
as the staff shares of workbook 01 do; a patient belongs to the panel of the microsystem that
delivers most of their activities (``identification.patients``). Profiles hold counts, shares and
mixes only, never a patient identifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from qi_helpers.data.columns import activity_timestamps, blank_mask, require_dataframe
from qi_helpers.errors import DataError
from qi_helpers.identify.microsystems import Identification
from qi_helpers.identify.network import ACTIVITY_COLUMNS
from qi_helpers.identify.registry import main_microsystem
from qi_helpers.io import write_parquet
from qi_helpers.spc.qic import qic

__all__ = [
    "DAYS",
    "MIX_DIMENSIONS",
    "OLDER_BANDS",
    "Profiles",
    "mix_matrix",
    "profile",
    "write_profiles",
]

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
OLDER_BANDS = ("65-79", "80+")

#: The dimensions of :attr:`Profiles.mix`, the P each belongs to.
MIX_DIMENSIONS = {
    "activity": "purpose",
    "age_band": "patients",
    "sex": "patients",
    "condition": "patients",
    "role": "professionals",
    "role_fte": "professionals",
    "day_of_week": "patterns",
}


@dataclass
class Profiles:
    """The 5 Ps of every microsystem (:func:`profile`); every frame is keyed by ``microsystem_id``.

    Attributes
    ----------
    summary : DataFrame
        One row per microsystem:

        - ``microsystem_id``, ``name``, ``kind`` (as in the registry);
        - Purpose: ``purpose`` (a sentence), ``main_activities`` (top three with shares);
        - Patients: ``panel_size`` (patients for whom it is the main microsystem),
          ``patients_seen``, ``share_female``, ``share_65_plus`` (of the panel with a known
          band), ``leading_conditions`` (top three with prevalence in the panel);
        - Professionals: ``n_core_staff`` (main microsystem), ``n_floating_staff`` (main
          elsewhere, at least 10% of their work here), ``fte`` (full-time equivalents, each
          person's FTE times their share of work here), ``role_mix`` (text);
        - Processes: ``top_transition`` (text) and ``median_minutes`` (between consecutive
          activities of an encounter);
        - Patterns: ``weekly_median``, ``weekly_min``, ``weekly_max`` (activities a week),
          ``runs_signal`` (the weekly run chart shows non-random variation), ``busiest_day``,
          ``weekend_share``.
    mix : DataFrame
        Long table of mixes: ``microsystem_id``, ``p`` (purpose, patients, professionals,
        patterns), ``dimension`` (``activity``, ``age_band``, ``sex``, ``condition``, ``role``,
        ``role_fte``, ``day_of_week``), ``category``, ``n`` (activities, panel patients, staff
        or FTE) and ``share`` (of the microsystem's total for that dimension; for
        ``condition``, the prevalence in the panel). Workbook 04 compares microsystems on these
        (:func:`mix_matrix`).
    processes : DataFrame
        ``microsystem_id, from_activity, to_activity, n, share`` (of the microsystem's
        transitions) and ``median_minutes``, most frequent first.
    weekly : DataFrame
        The run chart of weekly activities: the :func:`qi_helpers.spc.qic.qic` result
        (``chart="run"``, facetted by microsystem: ``facet1`` is the ``microsystem_id``, ``x`` the
        week's Monday).
    """

    summary: pd.DataFrame
    mix: pd.DataFrame
    processes: pd.DataFrame
    weekly: pd.DataFrame


def _share(frame: pd.DataFrame, by: str = "microsystem_id", column: str = "n") -> pd.Series:
    total = frame.groupby(by)[column].transform("sum")
    return frame[column] / total.where(total > 0)


def _text(column: pd.Series) -> pd.Series:
    """``column`` as a string column: itself when it already is one (no copy)."""
    return column if isinstance(column.dtype, pd.StringDtype) else column.astype("string")


def _prepare(identification: Identification, activities: pd.DataFrame) -> pd.DataFrame:
    require_dataframe(activities, ACTIVITY_COLUMNS, "activities")
    settings = identification.settings or {}
    ts = activity_timestamps(activities)
    keep = ~(blank_mask(activities["staff_id"]) | blank_mask(activities["patient_id"]))
    if settings.get("start"):
        keep &= (ts >= pd.Timestamp(settings["start"])).to_numpy()
    if settings.get("end"):
        keep &= (ts < pd.Timestamp(settings["end"])).to_numpy()
    cols = [c for c in ("patient_id", "activity", "location", "encounter_id") if c in activities]
    acts = activities.loc[keep, cols] if not keep.all() else activities[cols]
    owner = identification.locations.set_index("location")["microsystem_id"]
    # Codes are factorised from the text columns as they are: a cast to another string dtype
    # would copy 6 million strings for nothing (workbook 01 must stay under 2 GB on the large
    # demo), and 32-bit codes halve the frame's integer columns.
    loc_code, loc_names = pd.factorize(_text(acts["location"]))
    ms_of_location = pd.Series(np.asarray(loc_names, dtype=object)).map(owner)
    ms_code, ms_names = pd.factorize(ms_of_location, sort=True)
    ms = np.where(loc_code >= 0, ms_code[np.maximum(loc_code, 0)], -1).astype(np.int32)
    activity = _text(acts["activity"])
    if activity.isna().any():
        activity = activity.fillna("")
    act_code, act_names = pd.factorize(activity, sort=True)
    frame = pd.DataFrame(
        {
            "ms": ms,
            "activity": act_code.astype(np.int32),
            "timestamp": ts[keep].to_numpy() if not keep.all() else ts.to_numpy(),
        }
    )
    if "encounter_id" in acts.columns:
        enc = _text(acts["encounter_id"])
        missing = enc.isna().to_numpy()
        group = pd.factorize(enc)[0]
        if missing.any():  # no encounter: the patient's day
            day = pd.factorize(
                acts["patient_id"].astype("string") + "|" + frame["timestamp"].dt.strftime("%F")
            )[0]
            group = np.where(missing, group.max() + 1 + day, group)
    else:
        day = frame["timestamp"].dt.floor("D").to_numpy().astype("datetime64[D]").astype(np.int64)
        group = pd.factorize(acts["patient_id"].astype("string"))[0].astype(np.int64) * 100_000
        group = group + (day - day.min())
    frame["group"] = group
    frame = frame[frame["ms"] >= 0]
    if frame.empty:
        raise DataError(
            "activities: no activity in the window happens in a work area of the identification; "
            "profile the same activities (and window) that identify() was given."
        )
    frame.attrs["ms_names"] = np.asarray(ms_names, dtype=object)
    frame.attrs["act_names"] = np.asarray(act_names, dtype=object)
    return frame


def _purpose(frame: pd.DataFrame, ms_names, act_names) -> pd.DataFrame:
    counts = frame.groupby(["ms", "activity"]).size().rename("n").reset_index()
    counts["microsystem_id"] = ms_names[counts["ms"]]
    counts["category"] = act_names[counts["activity"]]
    counts["share"] = _share(counts)
    counts["dimension"] = "activity"
    return counts[["microsystem_id", "dimension", "category", "n", "share"]]


def _patients(identification: Identification, patients: pd.DataFrame | None) -> pd.DataFrame:
    panel = identification.patients.drop_duplicates("patient_id")[["patient_id", "microsystem_id"]]
    panel_size = panel.groupby("microsystem_id").size()
    rows = [
        pd.DataFrame(
            {
                "microsystem_id": panel_size.index,
                "dimension": "panel",
                "category": "all",
                "n": panel_size.to_numpy(),
            }
        )
    ]
    if patients is None:
        return pd.concat(rows, ignore_index=True)
    require_dataframe(patients, ("patient_id",), "patients")
    info = patients.drop_duplicates("patient_id").assign(
        patient_id=patients["patient_id"].astype("string")
    )
    merged = panel.assign(patient_id=panel["patient_id"].astype("string")).merge(
        info, on="patient_id", how="left"
    )
    for column in ("age_band", "sex"):
        if column in merged.columns:
            values = merged[column].astype("string").fillna("unknown")
            values = values.mask(values.str.strip() == "", "unknown")
            n = merged.assign(category=values).groupby(["microsystem_id", "category"]).size()
            rows.append(n.rename("n").reset_index().assign(dimension=column))
    if "conditions" in merged.columns:
        combo, combos = pd.factorize(merged["conditions"].astype("string").fillna(""))
        per = pd.DataFrame({"microsystem_id": merged["microsystem_id"], "combo": combo})
        per = per.groupby(["microsystem_id", "combo"]).size().rename("n").reset_index()
        split = pd.Series(np.asarray(combos, dtype=object)).str.split(";")
        each = split.explode().str.strip()
        each = each[each.notna() & (each != "")]
        link = pd.DataFrame({"combo": each.index, "category": each.to_numpy()})
        per = per.merge(link, on="combo")
        n = per.groupby(["microsystem_id", "category"])["n"].sum()
        rows.append(n.reset_index().assign(dimension="condition"))
    out = pd.concat(rows, ignore_index=True)
    size = out["microsystem_id"].map(panel_size)
    out["share"] = out["n"] / size
    return out[["microsystem_id", "dimension", "category", "n", "share"]]


def _professionals(identification: Identification, staff: pd.DataFrame | None) -> pd.DataFrame:
    membership = identification.staff.assign(staff_id=identification.staff["staff_id"].astype(str))
    main = main_microsystem(membership)
    role = pd.Series("unknown", index=main.index, dtype="string")
    fte = pd.Series(1.0, index=main.index)
    if staff is not None:
        roster = staff.assign(staff_id=staff["staff_id"].astype(str)).drop_duplicates("staff_id")
        roster = roster.set_index("staff_id")
        if "role" in roster.columns:
            role = main.index.to_series().map(roster["role"]).astype("string").fillna("unknown")
        if "fte" in roster.columns:
            fte = main.index.to_series().map(pd.to_numeric(roster["fte"], errors="coerce"))
            fte = fte.fillna(1.0)
    membership["role"] = membership["staff_id"].map(role)
    membership["fte"] = membership["staff_id"].map(fte) * membership["share"]
    membership["core"] = membership["staff_id"].map(main) == membership["microsystem_id"]
    core = membership[membership["core"]].groupby(["microsystem_id", "role"]).size()
    core = core.rename("n").reset_index().assign(dimension="role")
    ftes = membership.groupby(["microsystem_id", "role"])["fte"].sum().rename("n").reset_index()
    ftes = ftes.assign(dimension="role_fte")
    floating = membership[~membership["core"] & (membership["share"] >= 0.1)]
    floating = floating.groupby("microsystem_id").size().rename("n").reset_index()
    floating = floating.assign(dimension="floating", role="all")
    out = pd.concat([core, ftes, floating], ignore_index=True).rename(columns={"role": "category"})
    out["share"] = out["n"] / out.groupby(["microsystem_id", "dimension"])["n"].transform("sum")
    return out[["microsystem_id", "dimension", "category", "n", "share"]]


def _processes(frame: pd.DataFrame, ms_names, act_names) -> pd.DataFrame:
    # Steps of one encounter in time order. Each intermediate array is dropped as soon as it is
    # used and a step is one integer key (microsystem, from, to), so that the 6 million
    # activities of a large organisation stay within workbook 01's memory (under 2 GB).
    ts = frame["timestamp"].to_numpy()
    group = frame["group"].to_numpy()
    order = np.lexsort((ts, group))
    group = group[order]
    ms = frame["ms"].to_numpy()[order]
    same = (group[1:] == group[:-1]) & (ms[1:] == ms[:-1])
    del group
    n_act = max(len(act_names), 1)
    act = frame["activity"].to_numpy()[order].astype(np.int64)
    key = (ms[1:][same].astype(np.int64) * n_act + act[:-1][same]) * n_act + act[1:][same]
    del ms, act
    ts = ts[order]
    del order
    minutes = (ts[1:][same] - ts[:-1][same]) / np.timedelta64(1, "m")
    del ts, same
    columns = ["microsystem_id", "from_activity", "to_activity", "n", "share", "median_minutes"]
    if not len(key):
        return pd.DataFrame(columns=columns)
    steps = pd.DataFrame({"key": key, "minutes": minutes})
    out = steps.groupby("key")["minutes"].agg(["size", "median"]).reset_index()
    out = out.rename(columns={"size": "n", "median": "median_minutes"})
    ms_code, pair = np.divmod(out["key"].to_numpy(), n_act * n_act)
    from_code, to_code = np.divmod(pair, n_act)
    out["ms"] = ms_code
    out["microsystem_id"] = ms_names[ms_code]
    out["from_activity"] = act_names[from_code]
    out["to_activity"] = act_names[to_code]
    out["share"] = _share(out, by="ms")
    out["median_minutes"] = out["median_minutes"].round(1)
    out = out.sort_values(["microsystem_id", "n", "from_activity"], ascending=[True, False, True])
    return out[columns].reset_index(drop=True)


def _patterns(frame: pd.DataFrame, ms_names) -> tuple[pd.DataFrame, pd.DataFrame]:
    ts = frame["timestamp"]
    first, last = ts.min(), ts.max()
    day = ts.to_numpy().astype("datetime64[D]")
    # 1970-01-01 was a Thursday: days since a Monday, then weeks since the first Monday
    day_of_week = (day.astype(np.int64) + 3) % 7
    monday = day - day_of_week.astype("timedelta64[D]")
    week_code = ((monday - monday.min()).astype(np.int64) // 7).astype(np.int64)
    weeks = pd.date_range(pd.Timestamp(monday.min()), periods=int(week_code.max()) + 1, freq="7D")
    full = (weeks >= first.floor("D")) & (weeks + pd.Timedelta(days=7) <= last.ceil("D"))
    if not full.any():
        full[:] = True
    n_ms, n_weeks = len(ms_names), len(weeks)
    ms = frame["ms"].to_numpy()
    counts = np.bincount(ms * n_weeks + week_code, minlength=n_ms * n_weeks)
    counts = counts.reshape(n_ms, n_weeks)[:, full]
    present = np.unique(ms)
    weekly = pd.DataFrame(
        {
            "microsystem_id": np.repeat(ms_names[present], int(full.sum())),
            "week": np.tile(weeks[full], len(present)),
            "activities": counts[present].ravel(),
        }
    )
    chart = qic(weekly, x="week", y="activities", chart="run", facets="microsystem_id")
    per_day = np.bincount(ms * 7 + day_of_week, minlength=n_ms * 7)
    dow = pd.DataFrame(
        {"ms": np.repeat(np.arange(n_ms), 7), "day": np.tile(np.arange(7), n_ms), "n": per_day}
    )
    dow = dow[dow["ms"].isin(present)]
    dow["microsystem_id"] = ms_names[dow["ms"]]
    dow["category"] = np.asarray(DAYS, dtype=object)[dow["day"]]
    dow["share"] = _share(dow)
    dow["dimension"] = "day_of_week"
    return chart, dow[["microsystem_id", "dimension", "category", "n", "share"]]


def _top(
    mix: pd.DataFrame,
    dimension: str,
    k: int = 3,
    percent: bool = True,
    hidden: pd.Series | None = None,
) -> pd.Series:
    """The ``k`` largest categories of a dimension per microsystem, as text with their share.

    ``hidden`` (indexed like ``mix``) holds the small-cell label a category shows instead of its
    share (``<11`` or ``*``, :func:`qi_helpers.identify.published.patient_cells`), empty where
    it may be shown.
    """
    part = mix[mix["dimension"] == dimension].sort_values(
        ["microsystem_id", "n", "category"], ascending=[True, False, True]
    )
    part = part.groupby("microsystem_id").head(k)
    amount = (
        (100 * part["share"]).round().astype(int).astype(str) + "%"
        if percent
        else part["n"].round(1).astype(str)
    )
    if hidden is not None:
        label = hidden.reindex(part.index).fillna("")
        amount = amount.where(label == "", label)
    text = part["category"].astype(str) + " (" + amount + ")"
    return text.groupby(part["microsystem_id"]).agg(", ".join)


def _known_share(mix: pd.DataFrame, ids: pd.Index, dimension: str, categories) -> pd.Series:
    """Share of a microsystem's panel in ``categories``, among those whose category is known."""
    part = mix[(mix["dimension"] == dimension) & (mix["category"] != "unknown")]
    if part.empty:
        return pd.Series(np.nan, index=ids)
    total = part.groupby("microsystem_id")["n"].sum()
    chosen = part[part["category"].isin(categories)].groupby("microsystem_id")["n"].sum()
    return (chosen.reindex(total.index).fillna(0) / total).reindex(ids).round(3)


def profile(
    identification: Identification,
    activities: pd.DataFrame,
    staff: pd.DataFrame | None = None,
    patients: pd.DataFrame | None = None,
) -> Profiles:
    """Profile every microsystem found by :func:`qi_helpers.identify.microsystems.identify` (5 Ps).

    Parameters
    ----------
    identification : Identification
        The result of ``identify`` (its window is used again).
    activities : DataFrame
        The activities ``identify`` was given.
    staff : DataFrame, optional
        The roster (``role``, ``fte``) for the Professionals.
    patients : DataFrame, optional
        ``patient_id, age_band, sex, conditions`` for the Patients; without it only the panel
        size is known.

    Returns
    -------
    Profiles
        ``summary``, ``mix``, ``processes`` and ``weekly``; see :class:`Profiles` for every
        column. No frame holds a patient identifier.

    Raises
    ------
    DataError
        A required column is missing, or no activity falls in the identification's work areas.

    Notes
    -----
    The 5 Ps: Nelson, Batalden & Godfrey (2007), *Quality by Design: A Clinical Microsystems
    Approach*, and the Dartmouth Clinical Microsystem Action Guide. Run chart and rules: Anhoej &
    Olesen (2014), PLoS ONE 9(11):e113825, through :func:`qi_helpers.spc.qic.qic`.
    """
    frame = _prepare(identification, activities)
    ms_names, act_names = frame.attrs["ms_names"], frame.attrs["act_names"]
    purpose = _purpose(frame, ms_names, act_names)
    people = _patients(identification, patients)
    professionals = _professionals(identification, staff)
    processes = _processes(frame, ms_names, act_names)
    weekly, dow = _patterns(frame, ms_names)
    mix = pd.concat(
        [purpose, people[people["dimension"] != "panel"], professionals, dow], ignore_index=True
    )
    mix = mix[mix["dimension"].isin(MIX_DIMENSIONS)].astype(
        {"microsystem_id": str, "dimension": str, "category": str, "n": float}
    )
    mix.insert(1, "p", mix["dimension"].map(MIX_DIMENSIONS))
    mix = mix.sort_values(["microsystem_id", "p", "dimension", "category"]).reset_index(drop=True)

    registry = identification.registry.set_index("microsystem_id")
    ids = registry.index
    summary = pd.DataFrame(index=ids)
    summary["name"] = registry["name"]
    summary["kind"] = registry["kind"]
    summary["main_activities"] = _top(mix, "activity")
    panel = people[people["dimension"] == "panel"].set_index("microsystem_id")["n"]
    summary["panel_size"] = panel.reindex(ids).fillna(0).astype(np.int64)
    summary["patients_seen"] = registry["n_patients"]
    summary["share_female"] = _known_share(mix, ids, "sex", ("F", "female", "Female"))
    summary["share_65_plus"] = _known_share(mix, ids, "age_band", OLDER_BANDS)
    summary["leading_conditions"] = _top(mix, "condition").reindex(ids).fillna("")
    is_role = professionals["dimension"] == "role"
    summary["n_core_staff"] = (
        professionals[is_role].groupby("microsystem_id")["n"].sum().reindex(ids).fillna(0)
    ).astype(np.int64)
    floating = professionals[professionals["dimension"] == "floating"]
    summary["n_floating_staff"] = (
        floating.set_index("microsystem_id")["n"].reindex(ids).fillna(0).astype(np.int64)
    )
    fte = professionals[professionals["dimension"] == "role_fte"]
    summary["fte"] = fte.groupby("microsystem_id")["n"].sum().reindex(ids).fillna(0).round(1)
    summary["role_mix"] = _top(mix, "role", k=6, percent=False).reindex(ids).fillna("")
    summary["role_mix"] = summary["role_mix"].str.replace(r" \((\d+)\.0\)", r" (\1)", regex=True)
    first = processes.drop_duplicates("microsystem_id").set_index("microsystem_id")
    summary["top_transition"] = (
        (
            first["from_activity"]
            + " -> "
            + first["to_activity"]
            + " ("
            + first["n"].astype(str)
            + ")"
        )
        .reindex(ids)
        .fillna("")
    )
    summary["median_minutes"] = first["median_minutes"].reindex(ids)
    stats = weekly.groupby("facet1")["y"].agg(["median", "min", "max"]).reindex(ids)
    summary["weekly_median"] = stats["median"]
    summary["weekly_min"] = stats["min"]
    summary["weekly_max"] = stats["max"]
    summary["runs_signal"] = weekly.groupby("facet1")["runs_signal"].any().reindex(ids)
    days = mix[mix["dimension"] == "day_of_week"]
    busiest = days.sort_values(["microsystem_id", "n"], ascending=[True, False])
    summary["busiest_day"] = busiest.drop_duplicates("microsystem_id").set_index("microsystem_id")[
        "category"
    ]
    weekend = days[days["category"].isin(["Sat", "Sun"])].groupby("microsystem_id")["share"].sum()
    summary["weekend_share"] = weekend.reindex(ids).fillna(0.0).round(3)
    summary["purpose"] = [_purpose_sentence(ms, row) for ms, row in summary.iterrows()]
    summary = summary.reset_index().rename(columns={"index": "microsystem_id"})
    order = ["microsystem_id", "name", "kind", "purpose", "main_activities", "panel_size",
             "patients_seen", "share_female", "share_65_plus", "leading_conditions",
             "n_core_staff", "n_floating_staff", "fte", "role_mix", "top_transition",
             "median_minutes", "weekly_median", "weekly_min", "weekly_max", "runs_signal",
             "busiest_day", "weekend_share"]  # fmt: skip
    return Profiles(
        summary=summary[order],
        mix=mix,
        processes=processes,
        weekly=weekly,
    )


def _purpose_sentence(microsystem_id: str, row: pd.Series) -> str:
    kind = str(row["kind"]).replace("_", " ")
    panel = row["panel_size"]
    who = f"a panel of {panel:,} patients" if not isinstance(panel, str) else f"a panel of {panel}"
    older = row["share_65_plus"]
    if pd.notna(older) and older >= 0.5:
        who += f", mostly older ({100 * older:.0f}% aged 65 or over)"
    elif pd.notna(older) and panel:
        who += f" of all ages ({100 * older:.0f}% aged 65 or over)"
    if row["leading_conditions"]:
        who += f"; leading conditions {row['leading_conditions']}"
    return f"{microsystem_id} ({kind}) does mainly {row['main_activities']} for {who}."


def mix_matrix(mix: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """One dimension of the mixes as a wide table: microsystems by categories, shares, 0 if absent.

    Parameters
    ----------
    mix : DataFrame
        :attr:`Profiles.mix`, or ``outputs/data/profiles.parquet``.
    dimension : str
        One of :data:`MIX_DIMENSIONS` (``activity``, ``role``, ``age_band`` ...).

    Returns
    -------
    DataFrame
        Index ``microsystem_id``, one column per category, values ``share``.
    """
    if dimension not in MIX_DIMENSIONS:
        raise DataError(
            f"mix_matrix: unknown dimension {dimension!r}; expected one of "
            f"{', '.join(MIX_DIMENSIONS)}."
        )
    part = mix[mix["dimension"] == dimension]
    return part.pivot_table(
        index="microsystem_id", columns="category", values="share", fill_value=0.0, aggfunc="sum"
    ).rename_axis(columns=None)


def write_profiles(profiles: Profiles, folder) -> list[Path]:
    """Write ``profiles.parquet`` (:attr:`Profiles.mix`) and ``profile_summary.parquet``.

    ``profiles.parquet`` has the columns ``microsystem_id, p, dimension, category, n, share``
    (see :class:`Profiles`); workbook 04 scores the similarity of microsystems on its role,
    activity and patient (age band, sex, condition) mixes.
    """
    folder = Path(folder)
    return [
        write_parquet(folder / "profiles.parquet", profiles.mix),
        write_parquet(folder / "profile_summary.parquet", profiles.summary),
    ]
