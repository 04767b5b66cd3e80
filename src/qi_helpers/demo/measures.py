"""Measured cases, observations, PDSA log, readiness survey and adoption of the demo (internal).

Values are drawn from each microsystem's weekly level of the measure, which is its baseline
with the planted effects applied from their start week (see ``effect_grid``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from qi_helpers.demo import catalogue as cat
from qi_helpers.demo.activity import (
    SECONDS_PER_DAY,
    WARMUP_WEEKS,
    draw_times,
    effect_grid,
    season,
)
from qi_helpers.demo.structure import ROLE_CODE, Org, Pools

MEASURE_ORDER = {m[0]: i for i, m in enumerate(cat.MEASURES)}
PERIOD_SECONDS = cat.N_WEEKS * 7 * SECONDS_PER_DAY


def _cases(org: Org, kind: str, volume: str, rng: np.random.Generator):
    """Weekly Poisson case counts per microsystem of ``kind``; returns (ms, week, seconds)."""
    sel = np.flatnonzero(org.ms["kind"].to_numpy() == kind)
    weeks = np.arange(cat.N_WEEKS)
    lam = org.ms[volume].to_numpy(dtype=float)[sel, None] * season(weeks)[None, :]
    counts = rng.poisson(lam).ravel()
    ms_idx = np.repeat(np.repeat(sel, cat.N_WEEKS), counts)
    week = np.repeat(np.tile(weeks, len(sel)), counts)
    return ms_idx, week, draw_times(kind, week, rng)


def _level(org: Org, measure_id: str, ms_idx: np.ndarray, week: np.ndarray) -> np.ndarray:
    return effect_grid(org, measure_id)[ms_idx, week + WARMUP_WEEKS]


def _staff(org: Org, ms_idx: np.ndarray, role: str, rng: np.random.Generator) -> np.ndarray:
    return org.staff_pool.sample(org.staff_group[ms_idx, ROLE_CODE[role]], rng)


def _lognormal(mean: np.ndarray, cv: float, rng: np.random.Generator) -> np.ndarray:
    sigma = np.sqrt(np.log(1 + cv**2))
    return mean * rng.lognormal(-(sigma**2) / 2, sigma, len(mean))


def _block(measure_id, t, ms_idx, patient, staff, value, weight=None) -> dict[str, np.ndarray]:
    n = len(t)
    return dict(
        measure=np.full(n, MEASURE_ORDER[measure_id]),
        t=np.asarray(t, dtype=np.int64),
        ms=np.asarray(ms_idx, dtype=np.int64),
        patient=np.asarray(patient, dtype=np.int64),
        staff=np.asarray(staff, dtype=np.int64),
        value=np.asarray(value, dtype=float),
        weight=np.full(n, np.nan) if weight is None else np.asarray(weight, dtype=float),
    )


def _primary_care_events(org: Org, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """HbA1c tested in diabetic reviews (diabetic panel patients) and the recommend survey."""
    ms, pt = org.ms, org.patients
    pc = np.flatnonzero(ms["kind"].to_numpy() == "primary_care")
    owner = pt["owner"]
    diab_groups = []
    for m in pc:
        idx = np.flatnonzero((owner == m) & pt["diabetic"])
        diab_groups.append((idx, pt["propensity"][idx]))
    diab = Pools(diab_groups)
    slot = np.full(len(ms), -1)
    slot[pc] = np.arange(len(pc))
    m_i, wk, t = _cases(org, "primary_care", "v_hba1c", rng)
    val = rng.random(len(t)) < np.clip(_level(org, "pc_hba1c_tested", m_i, wk), 0, 1)
    hba1c = _block(
        "pc_hba1c_tested",
        t,
        m_i,
        diab.sample(slot[m_i], rng),
        _staff(org, m_i, "practice nurse", rng),
        val,
    )
    m_i, wk, t = _cases(org, "primary_care", "v_recommend", rng)
    val = rng.random(len(t)) < np.clip(_level(org, "pc_recommend", m_i, wk), 0, 1)
    recommend = _block(
        "pc_recommend",
        t,
        m_i,
        org.patient_pool.sample(m_i, rng),
        _staff(org, m_i, "GP", rng),
        val,
    )
    return [hba1c, recommend]


def _discharge_events(
    org: Org, stays: dict[str, np.ndarray], rng: np.random.Generator
) -> list[dict[str, np.ndarray]]:
    """Length of stay and 30-day readmission, one case per discharge within the period."""
    keep = (stays["discharge"] >= 0) & (stays["discharge"] < PERIOD_SECONDS)
    d_ms, d_t = stays["ms"][keep], stays["discharge"][keep]
    d_wk = d_t // (7 * SECONDS_PER_DAY)
    d_pat, d_staff = stays["patient"][keep], stays["discharge_staff"][keep]
    los = _block("ward_los", d_t, d_ms, d_pat, d_staff, stays["los"][keep])
    p = np.clip(_level(org, "ward_readmit30", d_ms, d_wk), 0, 1)
    readmit = _block("ward_readmit30", d_t, d_ms, d_pat, d_staff, rng.random(len(p)) < p)
    return [los, readmit]


def _patient_days(wards: np.ndarray, n_ms: int, stays: dict[str, np.ndarray]) -> np.ndarray:
    """Patients in each ward at each midnight (wards x days)."""
    wslot = np.full(n_ms, -1)
    wslot[wards] = np.arange(len(wards))
    n_days = cat.N_WEEKS * 7
    census = np.zeros((len(wards), n_days + 1), dtype=np.int64)
    first = np.clip(-(-stays["admit"] // SECONDS_PER_DAY), 0, n_days)  # first midnight in stay
    last = np.clip(-(-stays["discharge"] // SECONDS_PER_DAY), 0, n_days)  # first one after
    np.add.at(census, (wslot[stays["ms"]], first), 1)
    np.add.at(census, (wslot[stays["ms"]], last), -1)
    return np.cumsum(census, axis=1)[:, :n_days]


def _fall_events(
    org: Org, stays: dict[str, np.ndarray], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Falls per ward-day, with the ward's patient-days as the denominator weight."""
    none = np.int64(-1)
    wards = np.flatnonzero(org.ms["kind"].to_numpy() == "inpatient_ward")
    n_days = cat.N_WEEKS * 7
    pdays = _patient_days(wards, len(org.ms), stays)
    f_ms = np.repeat(wards, n_days)
    f_day = np.tile(np.arange(n_days), len(wards))
    rate = _level(org, "ward_falls", f_ms, f_day // 7) / 1000
    falls = rng.poisson(rate * pdays.ravel())
    return _block(
        "ward_falls",
        f_day * SECONDS_PER_DAY,
        f_ms,
        np.full(len(f_ms), none),
        np.full(len(f_ms), none),
        falls,
        pdays.ravel(),
    )


def _laboratory_events(org: Org, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """Turnaround per recorded specimen; rejection per specimen received."""
    m_i, wk, t = _cases(org, "laboratory", "v_tat", rng)
    tat = np.round(_lognormal(_level(org, "lab_tat", m_i, wk), 0.45, rng), 1)
    turnaround = _block(
        "lab_tat",
        t,
        m_i,
        org.patient_pool.sample(m_i, rng),
        _staff(org, m_i, "biomedical scientist", rng),
        tat,
    )
    m_i, wk, t = _cases(org, "laboratory", "v_rejected", rng)
    rej = rng.random(len(t)) < np.clip(_level(org, "lab_rejected", m_i, wk), 0, 1)
    rejected = _block(
        "lab_rejected",
        t,
        m_i,
        org.patient_pool.sample(m_i, rng),
        _staff(org, m_i, "lab assistant", rng),
        rej,
    )
    return [turnaround, rejected]


def _call_centre_events(org: Org, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """Every call (abandoned or not); time to answer for answered calls."""
    none = np.int64(-1)
    m_i, wk, t = _cases(org, "call_centre", "v_calls", rng)
    caller = org.patient_pool.sample(m_i, rng)
    handler = _staff(org, m_i, "call handler", rng)
    aband = rng.random(len(t)) < np.clip(_level(org, "cc_abandon", m_i, wk), 0, 1)
    abandon = _block("cc_abandon", t, m_i, caller, np.where(aband, none, handler), aband)
    ans = ~aband
    sec = np.round(_lognormal(_level(org, "cc_answer_sec", m_i[ans], wk[ans]), 0.8, rng))
    answer = _block("cc_answer_sec", t[ans], m_i[ans], caller[ans], handler[ans], sec)
    return [abandon, answer]


def measure_events(org: Org, stays: dict[str, np.ndarray], rng: np.random.Generator):
    """All measured cases as column arrays (internal codes), sorted by measure and time."""
    # The order of the steps is the order of the random draws: keep it.
    blocks = [
        *_primary_care_events(org, rng),
        *_discharge_events(org, stays, rng),
        _fall_events(org, stays, rng),
        *_laboratory_events(org, rng),
        *_call_centre_events(org, rng),
    ]
    out = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
    order = np.lexsort((out["ms"], out["t"], out["measure"]))
    return {k: v[order] for k, v in out.items()}


def ttna_observations(org: Org, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Weekly time to third next available appointment for every primary care team."""
    pc = np.flatnonzero(org.ms["kind"].to_numpy() == "primary_care")
    weeks = np.arange(cat.N_WEEKS)
    level = effect_grid(org, "pc_ttna")[pc][:, WARMUP_WEEKS:]
    noise_sd = np.where(org.ms["low_volume"].to_numpy()[pc], 0.22, 0.10)[:, None]
    # Chance variation is a normal draw cut at +/- NOISE_LIMIT standard deviations, so that every
    # point beyond 3-sigma limits in the demo is a special cause the truth tables plant (an
    # uncut draw once put a 3.6-SD week into a planted pilot's baseline, which no truth table
    # explained and which rightly cost it its place as a pilot).
    noise = np.clip(rng.standard_normal(level.shape), -cat.NOISE_LIMIT, cat.NOISE_LIMIT)
    value = level * (1 + noise_sd * noise)
    value = np.maximum(np.round(value, 1), 0.5)
    return dict(ms=np.repeat(pc, cat.N_WEEKS), week=np.tile(weeks, len(pc)), value=value.ravel())


def _monday(week: int) -> pd.Timestamp:
    return pd.Timestamp(cat.START_DATE) + pd.Timedelta(weeks=week)


def pdsa_log(org: Org) -> pd.DataFrame:
    """PDSA cycles of the pilots (2-4 each, the last starting at the planted date) and adopters."""
    ms = org.ms
    ids = ms["microsystem_id"].to_numpy()
    rows: list[dict[str, Any]] = []
    for ch in cat.CHANGES:
        m = int(np.flatnonzero((ms["pilot_of"] == ch["change"]).to_numpy())[0])
        c = len(ch["cycles"])
        for i, (pred, res, dec) in enumerate(ch["cycles"]):
            if i < c - 1:
                start = _monday(ch["week"] - 4 * (c - 1 - i))
                end = start + pd.Timedelta(days=18)
            else:
                start = _monday(ch["week"])
                end = start + pd.Timedelta(weeks=12) - pd.Timedelta(days=3)
            rows.append(
                dict(
                    microsystem_id=ids[m],
                    change=ch["change"],
                    start=start,
                    end=end,
                    prediction=pred,
                    result=res,
                    decision=dec,
                    measure_ids=ch["measure_ids"],
                )
            )
    by_change = {ch["change"]: ch for ch in cat.CHANGES}
    for e in org.plan:
        if e["planted_as"] not in ("adopter", "adopter_no_effect"):
            continue
        start = _monday(e["week"])
        rows.append(
            dict(
                microsystem_id=ids[e["ms"]],
                change=e["change"],
                start=start,
                end=start + pd.Timedelta(weeks=8) - pd.Timedelta(days=3),
                prediction=cat.ADOPTER_TEXT[0].format(pilot=ids[e["pilot"]]),
                result=cat.ADOPTER_TEXT[1],
                decision="adopt",
                measure_ids=by_change[e["change"]]["measure_ids"],
            )
        )
    df = pd.DataFrame(rows)
    df = df.sort_values(["microsystem_id", "start"], kind="stable").reset_index(drop=True)
    df.insert(
        1,
        "cycle_id",
        df["microsystem_id"]
        + "-"
        + (df.groupby("microsystem_id").cumcount() + 1).map("{:02d}".format),
    )
    return df


def adoption_table(org: Org) -> pd.DataFrame:
    """Later adopters of the successful changes (the pilots' own adoption is in ``pdsa``)."""
    ids = org.ms["microsystem_id"].to_numpy()
    rows = [
        dict(microsystem_id=ids[e["ms"]], change=e["change"], adopted=_monday(e["week"]))
        for e in org.plan
        if e["planted_as"] in ("adopter", "adopter_no_effect")
    ]
    df = pd.DataFrame(rows, columns=["microsystem_id", "change", "adopted"])
    return df.sort_values(["adopted", "microsystem_id"], kind="stable").reset_index(drop=True)


def readiness_survey(org: Org, rng: np.random.Generator) -> pd.DataFrame:
    """One answer per responding staff member per success characteristic (1, 2, 3 or empty)."""
    ms, staff = org.ms, org.staff
    profile = np.where(
        ms["planted_role"] == "pilot",
        "high",
        np.where(
            ms["low_readiness"],
            "low",
            np.where(ms["planted_role"] == "adopter", "adopter", "mixed"),
        ),
    )
    probs = np.asarray([cat.READINESS_PROFILES[p] for p in profile])[staff["main_ms"].to_numpy()]
    chars = list(cat.TEN_CHARACTERISTICS)
    n, k = len(staff), len(chars)
    respond = rng.random(n) >= cat.READINESS_NONRESPONSE
    u = rng.random((n, k))
    score = 1 + (u >= probs[:, [0]]).astype(int) + (u >= probs[:, [0]] + probs[:, [1]])
    cant = rng.random((n, k)) < cat.READINESS_CANT_RATE
    who = np.repeat(np.flatnonzero(respond), k)
    df = pd.DataFrame(
        {
            "staff_id": staff["staff_id"].to_numpy()[who],
            "characteristic": np.tile(chars, int(respond.sum())),
            "score": pd.array(np.where(cant, -1, score)[respond].ravel(), dtype="Int64"),
        }
    )
    df.loc[df["score"] == -1, "score"] = pd.NA
    first = df.assign(round=cat.READINESS_ROUNDS[0])
    return pd.concat([first, _second_round(org, first, rng)], ignore_index=True)


def _second_round(org: Org, first: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The pilot teams' respondents again, after their tests: answers a step up, down or the same
    (:data:`~qi_helpers.demo.catalogue.READINESS_ROUND2`), "can't rate" kept. Only the pilots:
    the other teams keep their one round, so the spread plan (each team's latest round) is the
    same as with one round."""
    ms, staff = org.ms, org.staff
    surveyed = (ms["planted_role"] == "pilot").to_numpy()
    again_staff = staff.loc[surveyed[staff["main_ms"].to_numpy()], "staff_id"]
    again = first[first["staff_id"].isin(set(again_staff))].copy()
    chances = np.asarray(
        [cat.READINESS_ROUND2.get(c, cat.READINESS_ROUND2_DEFAULT) for c in again["characteristic"]]
    ).reshape(-1, 2)
    u = rng.random(len(again))
    step = np.where(u < chances[:, 0], 1, np.where(u > 1 - chances[:, 1], -1, 0))
    score = again["score"].astype("float64").to_numpy()
    moved = np.clip(score + step, 1, 3)
    again["score"] = pd.array(np.where(np.isnan(score), np.nan, moved), dtype="Int64")
    return again.assign(round=cat.READINESS_ROUNDS[1])
