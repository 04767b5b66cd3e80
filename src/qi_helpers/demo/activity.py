"""Baselines, planted-effect grids and the activity log of the demo (internal).

Activities are generated encounter by encounter, fully vectorised: weekly counts per
microsystem, then day, time, patient, activity template and staff member for every row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from qi_helpers.demo import catalogue as cat
from qi_helpers.demo.structure import ROLE_CODE, Org

SECONDS_PER_DAY = 86_400
START = np.datetime64(cat.START_DATE, "s")
WARMUP_WEEKS = 3
CLOSING = {
    "primary_care": 18.5,
    "laboratory": 22.0,
    "call_centre": 18.5,
}  # hour of day  # ward stays start before the period so occupancy is steady from day one


def season(weeks: np.ndarray) -> np.ndarray:
    """Winter-busier seasonal factor (mean ~1) for week indices from 2024-01-01."""
    return 1.0 + 0.12 * np.cos(2 * np.pi * (np.asarray(weeks) + 0.5) / 52.18)


def pc_scale(org: Org) -> np.ndarray:
    """Workload of a primary care team relative to a typical one (by its panel size)."""
    return org.ms["panel_size"].to_numpy() / 2900


def add_baselines(org: Org, rng: np.random.Generator) -> None:
    """Draw each microsystem's baseline level of its measures (columns ``b_<measure_id>``)."""
    ms = org.ms
    n = len(ms)
    u = rng.uniform
    vals = {
        "pc_hba1c_tested": u(0.60, 0.74, n),
        "pc_ttna": u(8.0, 15.0, n),
        "pc_recommend": u(0.82, 0.92, n),
        "ward_falls": u(8.0, 13.0, n),
        "ward_los": u(4.5, 7.0, n),
        "ward_readmit30": u(0.08, 0.12, n),
        "lab_tat": u(50.0, 80.0, n),
        "lab_rejected": u(0.02, 0.04, n),
        "cc_abandon": u(0.06, 0.11, n),
        "cc_answer_sec": u(30.0, 70.0, n),
    }
    pilot_levels = {
        "Diabetes recall register with text reminders": {"pc_hba1c_tested": 0.65},
        "Carve-out scheduling": {"pc_ttna": 14.0},
        "Intentional rounding": {"ward_falls": 18.0},
        "Lean specimen reception": {"lab_tat": 76.0},
        "Criteria-led discharge": {"ward_los": 6.5, "ward_readmit30": 0.12},
        "Call-back scripting": {"cc_abandon": 0.09},
    }
    for mid, v in vals.items():
        ms["b_" + mid] = np.round(v, 3)
    for m in np.flatnonzero(ms["planted_role"].to_numpy() == "pilot"):
        for key, v in pilot_levels[ms.loc[m, "pilot_of"]].items():
            ms.loc[m, "b_" + key] = v
    # Case volumes per week (before seasonality).
    scale = pc_scale(org)
    ms["v_hba1c"] = np.round(21.0 * scale, 2)
    ms["v_recommend"] = np.round(26.0 * scale, 2)
    ms["v_tat"] = np.round(u(38.0, 52.0, n), 2)
    ms["v_rejected"] = np.round(u(150.0, 230.0, n), 2)
    ms["v_calls"] = np.round(u(150.0, 240.0, n), 2)


def effect_grid(org: Org, measure_id: str, n_weeks: int = cat.N_WEEKS) -> np.ndarray:
    """Level of ``measure_id`` per microsystem and week (rows: microsystems), effects applied.

    Column ``j`` is week ``j - WARMUP_WEEKS`` so that ward stays admitted before the period
    have a level too.
    """
    base = org.ms["b_" + measure_id].to_numpy(dtype=float)
    grid = np.repeat(base[:, None], n_weeks + WARMUP_WEEKS, axis=1)
    weeks = np.arange(n_weeks + WARMUP_WEEKS) - WARMUP_WEEKS
    for e in org.plan:
        if e["measure_id"] != measure_id:
            continue
        on = weeks >= e["week"]
        if e["effect_type"] == "absolute":
            grid[e["ms"], on] += e["effect"]
        else:
            grid[e["ms"], on] *= 1 + e["effect"]
    return grid


def draw_times(kind: str, week: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Seconds since START for events in ``week`` following the kind's day and hour pattern."""
    n = len(week)
    dow_w = np.asarray(cat.DOW_WEIGHTS[kind], dtype=float)
    hour_w = np.asarray(cat.HOUR_WEIGHTS[kind], dtype=float)
    dow = np.searchsorted(np.cumsum(dow_w) / dow_w.sum(), rng.random(n), side="right")
    hour = np.searchsorted(np.cumsum(hour_w) / hour_w.sum(), rng.random(n), side="right")
    dow = np.minimum(dow, 6)
    hour = np.minimum(hour, 23)
    sec = rng.integers(0, 3600, n)
    return (week.astype(np.int64) * 7 + dow) * SECONDS_PER_DAY + hour * 3600 + sec


def _staff_for(org: Org, ms_idx: np.ndarray, role: np.ndarray, rng: np.random.Generator):
    group = org.staff_group[ms_idx, role]
    return org.staff_pool.sample(group, rng)


def _encounter_activities(org: Org, kind: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    ms = org.ms
    sel = np.flatnonzero(ms["kind"].to_numpy() == kind)
    types = cat.ENCOUNTERS[kind]
    tw = np.asarray([t[0] for t in types])
    tw = tw / tw.sum()
    steps = [t[1] for t in types]
    n_steps = np.asarray([len(s) for s in steps])
    mean_steps = float((tw * n_steps).sum())
    rate = np.full(len(sel), cat.ACTIVITY_RATE[kind])
    if kind == "primary_care":
        rate = rate * pc_scale(org)[sel]
    weeks = np.arange(cat.N_WEEKS)
    lam = rate[:, None] / mean_steps * season(weeks)[None, :]
    counts = rng.poisson(lam).ravel()
    enc_ms = np.repeat(np.repeat(sel, cat.N_WEEKS), counts)
    enc_week = np.repeat(np.tile(weeks, len(sel)), counts)
    n_enc = len(enc_ms)
    etype = np.searchsorted(np.cumsum(tw), rng.random(n_enc) * 0.999999, side="right")
    t0 = draw_times(kind, enc_week, rng)
    patient = org.patient_pool.sample(enc_ms, rng)
    # Flatten the step table and expand encounters into activity rows.
    offs = np.concatenate([[0], np.cumsum(n_steps)])
    flat_act = [a for s in steps for a, _, _ in s]
    flat_role = np.asarray([ROLE_CODE[r] for s in steps for _, r, _ in s])
    flat_min = np.asarray([mm for s in steps for _, _, mm in s], dtype=float)
    k = n_steps[etype]
    row_enc = np.repeat(np.arange(n_enc), k)
    pos = np.arange(len(row_enc)) - np.repeat(np.cumsum(k) - k, k)
    step = offs[etype][row_enc] + pos
    dur = np.maximum(1, np.round(flat_min[step] * rng.lognormal(0, 0.35, len(step)))).astype(int)
    gap = dur * 60 + rng.integers(60, 1800, len(step))  # time to the next step
    if kind == "laboratory":
        gap = gap + rng.integers(0, 5400, len(step))
    csum = np.cumsum(gap)
    first = np.cumsum(k) - k
    before = csum - gap  # cumulative gap before this row
    offset = before - np.repeat(before[first], k)
    # Encounters that would run past closing time start earlier instead.
    last = first + k - 1
    finish = t0 % SECONDS_PER_DAY + offset[last] + dur[last] * 60
    t0 = t0 - np.maximum(0, finish - CLOSING[kind] * 3600)
    return dict(
        t=t0[row_enc] + offset,
        ms=enc_ms[row_enc],
        patient=patient[row_enc],
        staff=_staff_for(org, enc_ms[row_enc], flat_role[step], rng),
        activity_code=step,
        activity_names=np.asarray(flat_act, dtype=object),
        encounter=row_enc,
        duration=dur,
    )


def ward_stays(org: Org, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Admissions to every ward (from before the period), with planted length-of-stay effects."""
    ms = org.ms
    sel = np.flatnonzero(ms["kind"].to_numpy() == "inpatient_ward")
    n_w = cat.N_WEEKS + WARMUP_WEEKS
    weeks = np.arange(n_w) - WARMUP_WEEKS
    los_grid = effect_grid(org, "ward_los")[sel]
    base_los = ms["b_ward_los"].to_numpy()[sel]
    adm_rate = ms["beds"].to_numpy()[sel] * 0.9 * 7 / base_los
    counts = rng.poisson(adm_rate[:, None] * season(weeks)[None, :]).ravel()
    s_ms = np.repeat(np.repeat(sel, n_w), counts)
    s_col = np.repeat(np.tile(np.arange(n_w), len(sel)), counts)
    s_wardpos = np.repeat(np.repeat(np.arange(len(sel)), n_w), counts)
    n = len(s_ms)
    admit = draw_times("inpatient_ward", weeks[s_col], rng)
    mean = los_grid[s_wardpos, s_col]
    cv = 0.5
    sigma = np.sqrt(np.log(1 + cv**2))
    los = mean * rng.lognormal(-(sigma**2) / 2, sigma, n)
    los = np.maximum(np.round(los, 2), 0.2)
    discharge = admit + np.round(los * SECONDS_PER_DAY).astype(np.int64)
    return dict(
        ms=s_ms,
        admit=admit,
        discharge=discharge,
        los=los,
        patient=org.patient_pool.sample(s_ms, rng),
    )


def _ward_activities(org: Org, stays: dict[str, np.ndarray], rng: np.random.Generator):
    n = len(stays["ms"])
    los = stays["los"]
    n_mid = 1 + rng.poisson(0.3 * los)
    k = 2 + n_mid
    row = np.repeat(np.arange(n), k)
    pos = np.arange(len(row)) - np.repeat(np.cumsum(k) - k, k)
    last = pos == np.repeat(k - 1, k)
    mid_w = np.asarray([w for w, _ in cat.WARD_MIDDLE])
    mid_t = np.searchsorted(
        np.cumsum(mid_w) / mid_w.sum(), rng.random(len(row)) * 0.999999, side="right"
    )
    names = [cat.WARD_FIRST[0], cat.WARD_LAST[0]] + [t[0] for _, t in cat.WARD_MIDDLE]
    roles = [cat.WARD_FIRST[1], cat.WARD_LAST[1]] + [t[1] for _, t in cat.WARD_MIDDLE]
    mins = [cat.WARD_FIRST[2], cat.WARD_LAST[2]] + [t[2] for _, t in cat.WARD_MIDDLE]
    code = np.where(pos == 0, 0, np.where(last, 1, 2 + mid_t))
    admit, discharge = stays["admit"][row], stays["discharge"][row]
    frac = np.where(pos == 0, 0.0, np.where(last, 1.0, rng.random(len(row))))
    t = admit + np.round(frac * (discharge - admit)).astype(np.int64)
    # Ward rounds happen in the morning (of the same day, when the patient is still there).
    rounds = code == names.index("ward round")
    morning = t - t % SECONDS_PER_DAY + rng.integers(9 * 3600, 12 * 3600, len(t))
    rounds &= (morning > admit) & (morning < discharge)
    t = np.where(rounds, morning, t)
    ms_idx = stays["ms"][row]
    role = np.asarray([ROLE_CODE[r] for r in roles])[code]
    dur = np.asarray(mins)[code] * rng.lognormal(0, 0.35, len(row))
    # The discharging doctor is recorded on the stay (for the measure events).
    staff = _staff_for(org, ms_idx, role, rng)
    stays["discharge_staff"] = staff[last]
    return dict(
        t=t,
        ms=ms_idx,
        patient=stays["patient"][row],
        staff=staff,
        activity_code=code,
        activity_names=np.asarray(names, dtype=object),
        encounter=row,
        duration=np.maximum(1, np.round(dur)).astype(int),
    )


FLOATER_LIST = 40  # patients on a floater's list in the second team


def assign_floaters(org: Org, arr: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    """Add each floater's work in its second team, so that its main-team share is as planted.

    A floater does ``1 - main_share`` of its activities in the second team: activities of its
    role there (copied in kind and time from that team's own), each a single-step encounter with
    one of a list of ``FLOATER_LIST`` of that team's patients who rarely see anyone else (a
    care-home round, a results line). The floater is thus in the second team's work area but
    shares few patients with its staff. Appends rows to every array of ``arr`` in place.
    """
    staff, pt = org.staff, org.patients
    role = staff["role"].map(ROLE_CODE).to_numpy()
    key = arr["ms"] * len(ROLE_CODE) + role[arr["staff"]]
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    n_main = np.bincount(arr["staff"], minlength=len(staff))
    kind = org.ms["kind"].to_numpy()
    new: dict[str, list[np.ndarray]] = {k: [] for k in arr}
    next_enc = int(arr["enc"].max()) + 1
    for f in np.flatnonzero(staff["second_ms"].to_numpy() >= 0):
        b = int(staff["second_ms"].iat[f])
        k = b * len(ROLE_CODE) + role[f]
        rows = order[np.searchsorted(sorted_key, k) : np.searchsorted(sorted_key, k, "right")]
        s = float(staff["main_share"].iat[f])
        need = round(n_main[f] * (1 - s) / s)
        template = np.sort(rng.choice(rows, size=need, replace=True))
        own = np.flatnonzero(pt["owner"] == b)
        weight = pt["caller"][own] if kind[b] == "call_centre" else pt["propensity"][own]
        quiet = own[weight <= np.quantile(weight, 0.33)]
        patients = rng.choice(quiet, size=min(FLOATER_LIST, len(quiet)), replace=False)
        for col in ("t", "ms", "act", "duration"):
            new[col].append(arr[col][template])
        new["patient"].append(rng.choice(patients, size=need))
        new["staff"].append(np.full(need, f, dtype=arr["staff"].dtype))
        new["enc"].append(next_enc + np.arange(need))
        next_enc += need
    for col in arr:
        arr[col] = np.concatenate([arr[col], *new[col]]).astype(arr[col].dtype)


def activities(org: Org, stays: dict[str, np.ndarray], rng_by_kind: dict[str, Any]) -> pd.DataFrame:
    """The activity log, sorted by timestamp then staff_id (internal column codes kept)."""
    parts = [_ward_activities(org, stays, rng_by_kind["inpatient_ward"])]
    for kind in ("primary_care", "laboratory", "call_centre"):
        parts.append(_encounter_activities(org, kind, rng_by_kind[kind]))
    names: list[str] = []
    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("t", "ms", "patient", "staff", "act", "enc", "duration")
    }
    enc_base = 0
    for p in parts:
        lookup = {nm: i for i, nm in enumerate(names)}
        local = []
        for nm in p["activity_names"]:
            if nm not in lookup:
                lookup[nm] = len(names)
                names.append(nm)
            local.append(lookup[nm])
        cols["act"].append(np.asarray(local)[p["activity_code"]])
        cols["t"].append(p["t"])
        cols["ms"].append(p["ms"])
        cols["patient"].append(p["patient"])
        cols["staff"].append(p["staff"])
        cols["enc"].append(p["encounter"] + enc_base)
        cols["duration"].append(p["duration"])
        enc_base += int(p["encounter"].max()) + 1 if len(p["encounter"]) else 0
    arr = {k: np.concatenate(v) for k, v in cols.items()}
    assign_floaters(org, arr, rng_by_kind["floaters"])
    keep = (arr["t"] >= 0) & (arr["t"] < cat.N_WEEKS * 7 * SECONDS_PER_DAY)
    arr = {k: v[keep] for k, v in arr.items()}
    order = np.lexsort((arr["staff"], arr["t"]))
    arr = {k: v[order] for k, v in arr.items()}
    # Encounter ids numbered by first appearance in the sorted log.
    _, first, inv = np.unique(arr["enc"], return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    arr["enc"] = rank[inv]
    out = pd.DataFrame(arr)
    out.attrs["activity_names"] = names
    return out
