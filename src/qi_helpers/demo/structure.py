"""The organisation behind the demo: sites, microsystems, staff, patients and the planted plan.

Internal to :mod:`qi_helpers.demo.health_system`. Everything is drawn from the random generator
passed in, so the same seed gives the same organisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from qi_helpers.demo import catalogue as cat

ALL_ROLES: list[str] = sorted({r for roles in cat.ROLES.values() for r, _, _ in roles})
ROLE_CODE = {r: i for i, r in enumerate(ALL_ROLES)}


# Share of a ward's, lab's (per source) and call centre's cases drawn from primary care panels
# (and, for labs, from the site's wards): small, so cross-team sharing stays weak.
LEAK = {"ward": 0.01, "lab": 0.005, "call_centre": 0.015}


class Pools:
    """Weighted sampling from many groups at once (one vectorised ``searchsorted``).

    Parameters
    ----------
    groups : list of (ndarray of int, ndarray of float)
        For each group, the members and their (positive) weights.
    """

    def __init__(self, groups: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.members = np.concatenate([g[0] for g in groups]).astype(np.int64)
        cums = []
        starts = [0]
        for k, (_, w) in enumerate(groups):
            w = np.asarray(w, dtype=float)
            cums.append(k + np.cumsum(w) / w.sum())
            starts.append(starts[-1] + len(w))
        self.cum = np.concatenate(cums)
        self.start = np.array(starts[:-1], dtype=np.int64)
        self.stop = np.array(starts[1:], dtype=np.int64)

    def sample(self, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw one member of ``group[i]`` for every i, by weight."""
        group = np.asarray(group, dtype=np.int64)
        pos = np.searchsorted(self.cum, group + rng.random(len(group)), side="right")
        pos = np.clip(pos, self.start[group], self.stop[group] - 1)
        return self.members[pos]


@dataclass
class Org:
    """The generated organisation (internal)."""

    size: str
    ms: pd.DataFrame  # one row per microsystem, positional index = microsystem index
    staff: pd.DataFrame  # one row per staff member, positional index = staff index
    patients: dict[str, np.ndarray]  # column arrays, positional index = patient index
    patient_pool: Pools  # group = microsystem index
    staff_pool: Pools  # group = staff_group[ms, role]
    staff_group: np.ndarray  # (n_ms, n_roles) -> group in staff_pool
    plan: list[dict[str, Any]] = field(default_factory=list)  # planted effects


def _site_names(n: int) -> list[tuple[str, str]]:
    """Return ``n`` (code, name) pairs with unique three-letter codes."""
    sites = list(cat.CURATED_SITES[:n])
    used_names = {s[1] for s in sites}
    used_codes = {s[0] for s in sites} | {"ORG"}
    i = 0
    while len(sites) < n:
        p = cat.NAME_PREFIXES[i % len(cat.NAME_PREFIXES)]
        s = cat.NAME_SUFFIXES[(i * 7 + i // len(cat.NAME_PREFIXES)) % len(cat.NAME_SUFFIXES)]
        i += 1
        name = p + s
        if name in used_names:
            continue
        letters = name.upper()
        code = next(
            (
                letters[0] + letters[a] + letters[b]
                for a in range(1, len(letters))
                for b in range(a + 1, len(letters))
                if letters[0] + letters[a] + letters[b] not in used_codes
            ),
            None,
        )
        if code is None:  # pragma: no cover - the name lists are long enough
            continue
        used_names.add(name)
        used_codes.add(code)
        sites.append((code, name))
    return sites


def _microsystems(size: str) -> pd.DataFrame:
    spec = cat.DEMO_SIZES[size]
    rows: list[dict[str, Any]] = []
    sites = _site_names(spec["sites"])
    n_cc = spec["call_centres"]
    for s, (code, name) in enumerate(sites):
        region = s * n_cc // len(sites)
        for n in range(1, spec["primary_care_per_site"] + 1):
            rows.append(
                dict(
                    microsystem_id=f"{code}-PC{n}",
                    name=f"{name} Primary Care Team {n}",
                    kind="primary_care",
                    site=name,
                    site_idx=s,
                    number=n,
                    region=region,
                    location=f"{name} Health Centre - Suite {n}",
                )
            )
        for n in range(1, spec["wards_per_site"] + 1):
            rows.append(
                dict(
                    microsystem_id=f"{code}-W{n}",
                    name=f"{name} Hospital Ward {n}",
                    kind="inpatient_ward",
                    site=name,
                    site_idx=s,
                    number=n,
                    region=region,
                    location=f"{name} Hospital - Ward {n}",
                )
            )
        for n in range(1, spec["labs_per_site"] + 1):
            suffix = "" if spec["labs_per_site"] == 1 else str(n)
            rows.append(
                dict(
                    microsystem_id=f"{code}-LAB{suffix}",
                    name=f"{name} Laboratory{suffix}",
                    kind="laboratory",
                    site=name,
                    site_idx=s,
                    number=n,
                    region=region,
                    location=f"{name} Laboratory{suffix}",
                )
            )
    for n in range(1, n_cc + 1):
        rows.append(
            dict(
                microsystem_id=f"ORG-CC{n}",
                name=f"Call Centre {n}",
                kind="call_centre",
                site="Organisation",
                site_idx=-1,
                number=n,
                region=n - 1,
                location=f"Call Centre {n}",
            )
        )
    ms = pd.DataFrame(rows)
    return ms


def _ms_index(ms: pd.DataFrame, ref: tuple[int, str, int]) -> int:
    site, abbr, number = ref
    if abbr == "CC":
        mid = f"ORG-CC{number}"
    else:
        code = ms.loc[ms["site_idx"] == site, "microsystem_id"].iloc[0].split("-")[0]
        mid = f"{code}-LAB" if abbr == "LAB" else f"{code}-{abbr}{number}"
    return int(np.flatnonzero(ms["microsystem_id"].to_numpy() == mid)[0])


def _plan(ms: pd.DataFrame, size: str, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Choose pilots, flags and adopters; return the planted effects (week-indexed)."""
    ms["planted_role"] = "none"
    for col in ("unstable", "low_volume", "low_readiness"):
        ms[col] = False
    ms.loc[_ms_index(ms, (2, "PC", 2)), "unstable"] = True
    ms.loc[_ms_index(ms, (2, "PC", 3)), "low_volume"] = True
    ms.loc[_ms_index(ms, (1, "PC", 3)), "low_readiness"] = True
    ms["pilot_of"] = ""
    plan: list[dict[str, Any]] = []
    for ch in cat.CHANGES:
        m = _ms_index(ms, ch["pilot"])
        ms.loc[m, "planted_role"] = "pilot"
        ms.loc[m, "pilot_of"] = ch["change"]
        for mid, etype, eff, planted_as, verdict in ch["effects"]:
            plan.append(
                dict(
                    ms=m,
                    measure_id=mid,
                    change=ch["change"],
                    week=ch["week"],
                    effect_type=etype,
                    effect=eff,
                    planted_as=planted_as,
                    expected_verdict=verdict,
                    note=f"{planted_as}: {ch['change']}",
                )
            )
    m = int(np.flatnonzero(ms["unstable"].to_numpy())[0])
    for mid, etype, eff in (("pc_hba1c_tested", "absolute", -0.15), ("pc_ttna", "relative", 0.5)):
        plan.append(
            dict(
                ms=m,
                measure_id=mid,
                change="",
                week=cat.UNSTABLE_WEEK,
                effect_type=etype,
                effect=eff,
                planted_as="unstable_baseline",
                expected_verdict="worsened",
                note="unrelated step: practice nurse long-term absence (not a change)",
            )
        )
    # Adopters of the changes that spread, in waves.
    taken = (ms["planted_role"] != "none") | ms["unstable"] | ms["low_volume"] | ms["low_readiness"]
    taken = taken.to_numpy().copy()
    adopters: list[dict[str, Any]] = []
    spreading = [ch for ch in cat.CHANGES if ch["spread"]]
    for c, ch in enumerate(spreading):
        pilot = _ms_index(ms, ch["pilot"])
        kind = ms.loc[pilot, "kind"]
        eligible = np.flatnonzero((ms["kind"].to_numpy() == kind) & ~taken)
        n = 1 if size == "small" else max(1, round(0.25 * len(eligible)))
        chosen = np.sort(rng.choice(eligible, size=min(n, len(eligible)), replace=False))
        for j, a in enumerate(chosen):
            taken[a] = True
            adopters.append(dict(ms=int(a), ch=ch, pilot=pilot, wave=(j + c) % 3))
    n_null = {"small": 0, "medium": 2, "large": 4}[size]
    null_idx = set(rng.choice(len(adopters), size=n_null, replace=False).tolist())
    for k, ad in enumerate(adopters):
        a, ch = ad["ms"], ad["ch"]
        ms.loc[a, "planted_role"] = "adopter"
        mid, etype, eff, _, _ = ch["effects"][0]
        null = k in null_idx
        plan.append(
            dict(
                ms=a,
                measure_id=mid,
                change=ch["change"],
                week=cat.WAVE_WEEKS[ad["wave"]],
                effect_type=etype,
                effect=0.0 if null else eff,
                planted_as="adopter_no_effect" if null else "adopter",
                expected_verdict="no_change" if null else "improved",
                note=f"wave {ad['wave'] + 1} adopter of {ch['change']}"
                + (" with no effect" if null else ""),
                pilot=ad["pilot"],
            )
        )
    return plan


def _staff(ms: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    rows: list[tuple[int, str]] = []
    for m, r in enumerate(ms.itertuples()):
        roles = cat.LOW_VOLUME_ROLES if r.low_volume else cat.ROLES[r.kind]
        for role, count, _ in roles:
            extra = 0
            if not r.low_volume and role in ("GP", "staff nurse", "call handler"):
                extra = int(rng.integers(0, 2))
                if role == "GP" and r.planted_role == "pilot":
                    extra = 1  # pilots have big enough panels to show their effect
            rows.extend([(m, role)] * (count + extra))
    staff = pd.DataFrame(rows, columns=["main_ms", "role"])
    n = len(staff)
    staff.insert(0, "staff_id", [f"S{i + 1:05d}" for i in range(n)])
    staff["fte"] = rng.choice(
        np.round(np.arange(0.4, 1.01, 0.1), 1), size=n, p=[0.05, 0.08, 0.12, 0.1, 0.15, 0.1, 0.4]
    )
    # Floaters: a second team of the same kind on the same site (call centres: another centre).
    kind = ms["kind"].to_numpy()[staff["main_ms"]]
    site = ms["site_idx"].to_numpy()[staff["main_ms"]]
    lowvol = ms["low_volume"].to_numpy()[staff["main_ms"]]
    alt: list[np.ndarray] = []
    for i in range(n):
        same = (ms["kind"].to_numpy() == kind[i]) & (ms["site_idx"].to_numpy() == site[i])
        same &= ~ms["low_volume"].to_numpy()
        same[staff["main_ms"].iat[i]] = False
        alt.append(np.flatnonzero(same))
    # Floaters are primary care and call centre staff in roles that have colleagues; they run a
    # list of patients in the second team (a care-home round, a results line), see
    # ``_demo_activity.assign_floaters``.
    role_ok = staff["role"].isin(["GP", "practice nurse", "receptionist", "call handler"])
    eligible = np.flatnonzero(np.array([len(a) > 0 for a in alt]) & ~lowvol & role_ok.to_numpy())
    n_float = round(0.065 * n)
    second = np.full(n, -1, dtype=np.int64)
    share = np.ones(n)
    pairs: dict[tuple[int, int], int] = {}
    main_ms = staff["main_ms"].to_numpy()
    chosen = 0
    for i in rng.permutation(eligible):
        if chosen == n_float:
            break
        b = int(rng.choice(alt[i]))
        pair = (min(main_ms[i], b), max(main_ms[i], b))
        if pairs.get(pair, 0) >= 2:
            continue
        pairs[pair] = pairs.get(pair, 0) + 1
        second[i] = b
        share[i] = rng.uniform(0.6, 0.7)
        chosen += 1
    staff["second_ms"] = second
    staff["main_share"] = share
    # Declared home unit: right for ~90%, wrong (a neighbouring or old team) for the rest.
    home = staff["main_ms"].to_numpy().copy()
    wrong = rng.random(n) < 0.10
    for i in np.flatnonzero(wrong):
        if second[i] >= 0 and rng.random() < 0.5:
            home[i] = second[i]
        elif len(alt[i]):
            home[i] = rng.choice(alt[i])
        else:  # the same kind of team on the next site (a transfer not yet recorded)
            cand = np.flatnonzero(
                (ms["kind"].to_numpy() == kind[i])
                & (ms.index.to_numpy() != staff["main_ms"].iat[i])
            )
            home[i] = rng.choice(cand) if len(cand) else home[i]
    staff["home_unit_wrong"] = home != staff["main_ms"].to_numpy()
    staff["home_unit"] = ms["microsystem_id"].to_numpy()[home]
    return staff


def _patients(ms: pd.DataFrame, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Patients and the microsystem whose population they belong to.

    Primary care teams have registered panels; each ward has its own catchment (patients of its
    specialty, older on average), each laboratory its own external requesters (patients of
    practices outside the organisation) and each call centre its own callers (people phoning the
    organisation about hospital appointments). Small fractions of wards', labs' and call centres'
    cases come from the primary care panels of their site or region (see ``_patient_pools``).
    """
    kind = ms["kind"].to_numpy()
    n_gp = ms["n_gp"].to_numpy()
    panel = np.where(kind == "primary_care", 1000 * n_gp + rng.integers(0, 500, len(ms)), 0)
    panel = np.where(ms["low_volume"], 250, panel)
    ms["panel_size"] = panel
    size = panel.copy()
    size[kind == "inpatient_ward"] = np.round(
        1800 * ms["beds"].to_numpy()[kind == "inpatient_ward"] / 24
    )
    size[kind == "laboratory"] = 3000
    size[kind == "call_centre"] = 2500
    owner = np.repeat(np.arange(len(ms)), size)
    n = len(owner)
    elderly = kind[owner] == "inpatient_ward"
    age = np.where(
        elderly,
        np.searchsorted(
            np.cumsum([0.04, 0.12, 0.26, 0.30, 0.28]), rng.random(n) * 0.999999, side="right"
        ),
        np.searchsorted(np.cumsum(cat.AGE_PROBS), rng.random(n) * 0.999999, side="right"),
    )
    sex = (rng.random(n) < 0.49).astype(np.int8)  # 1 = M
    prev = np.asarray(cat.CONDITION_PREVALENCE)[age]  # (n, 5)
    has = rng.random((n, len(cat.CONDITIONS))) < prev
    mask = (has * (1 << np.arange(len(cat.CONDITIONS)))).sum(axis=1)
    propensity = rng.gamma(2.5, 1 / 2.5, n) * np.asarray(cat.AGE_USE)[age] * (1 + 0.6 * has.sum(1))
    caller = rng.gamma(0.35, 1.0, n)  # how often a patient phones the call centre
    return dict(
        owner=owner,
        site=ms["site_idx"].to_numpy()[owner],
        age=age,
        sex=sex,
        cond=mask,
        diabetic=has[:, 0],
        propensity=propensity,
        caller=caller,
        panel=kind[owner] == "primary_care",
    )


def _mix(parts: list[tuple[np.ndarray, np.ndarray, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate weighted pools so that pool ``k`` gets share ``parts[k][2]`` of the draws."""
    parts = [p for p in parts if len(p[0])]
    idx = np.concatenate([p[0] for p in parts])
    w = np.concatenate([p[2] * p[1] / p[1].sum() for p in parts])
    return idx, w


def _patient_pools(ms: pd.DataFrame, pt: dict[str, np.ndarray]) -> Pools:
    """Which patients each microsystem serves, with sampling weights."""
    owner, site, prop, age = pt["owner"], pt["site"], pt["propensity"], pt["age"]
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(len(ms) + 1))
    own = [order[bounds[m] : bounds[m + 1]] for m in range(len(ms))]
    kind = ms["kind"].to_numpy()
    site_panel = {
        s: np.flatnonzero(pt["panel"] & (site == s)) for s in range(int(ms["site_idx"].max()) + 1)
    }
    elderly = np.asarray([0.3, 0.5, 1.0, 2.5, 4.0])
    site_idx = ms["site_idx"].to_numpy()
    groups = []
    for m, r in enumerate(ms.itertuples()):
        if r.kind == "primary_care":
            idx, w = own[m], prop[own[m]]
        elif r.kind == "inpatient_ward":
            sp = site_panel[r.site_idx]
            idx, w = _mix(
                [
                    (own[m], prop[own[m]], 1 - LEAK["ward"]),
                    (sp, prop[sp] * elderly[age[sp]], LEAK["ward"]),
                ]
            )
        elif r.kind == "laboratory":
            sp = site_panel[r.site_idx]
            wards = np.concatenate(
                [
                    own[k]
                    for k in np.flatnonzero((kind == "inpatient_ward") & (site_idx == r.site_idx))
                ]
            )
            idx, w = _mix(
                [
                    (own[m], prop[own[m]], 1 - 2 * LEAK["lab"]),
                    (sp, prop[sp], LEAK["lab"]),
                    (wards, prop[wards], LEAK["lab"]),
                ]
            )
        else:  # call centre: its callers (frequent callers call most) and the region's panels
            sites = np.unique(site_idx[(ms["region"].to_numpy() == r.region) & (site_idx >= 0)])
            sp = np.concatenate([site_panel[s] for s in sites])
            idx, w = _mix(
                [
                    (own[m], pt["caller"][own[m]], 1 - LEAK["call_centre"]),
                    (sp, prop[sp], LEAK["call_centre"]),
                ]
            )
        groups.append((idx, w))
    return Pools(groups)


def _staff_pools(ms: pd.DataFrame, staff: pd.DataFrame) -> tuple[Pools, np.ndarray]:
    """Per (microsystem, role): who does that role's work there, weighted by fte.

    Only main teams are pooled; floaters' work in their second team is assigned afterwards
    (see ``_demo_activity.assign_floaters``) so that their share of activity is exact.
    """
    who = np.arange(len(staff))
    w = staff["fte"].to_numpy() * staff["main_share"].to_numpy()
    role = staff["role"].map(ROLE_CODE).to_numpy()
    key = staff["main_ms"].to_numpy() * len(ALL_ROLES) + role
    order = np.lexsort((who, key))
    keys, first = np.unique(key[order], return_index=True)
    bounds = list(first) + [len(order)]
    groups = [
        (who[order][a:b], w[order][a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    group_of = {int(k): g for g, k in enumerate(keys)}
    table = np.full((len(ms), len(ALL_ROLES)), -1, dtype=np.int64)
    for m in range(len(ms)):
        for r_name, r in ROLE_CODE.items():
            name = r_name
            while (m * len(ALL_ROLES) + ROLE_CODE[name]) not in group_of:
                name = cat.ROLE_FALLBACK.get(name, "")
                if not name:
                    break
            if name:
                table[m, r] = group_of[m * len(ALL_ROLES) + ROLE_CODE[name]]
    return Pools(groups), table


def build_org(size: str, rng: np.random.Generator) -> Org:
    """Build the organisation for ``size`` (sites, microsystems, staff, patients, plan)."""
    ms = _microsystems(size)
    plan = _plan(ms, size, rng)
    staff = _staff(ms, rng)
    ms["n_gp"] = np.bincount(staff["main_ms"][staff["role"] == "GP"], minlength=len(ms))
    ms["beds"] = np.where(ms["kind"] == "inpatient_ward", rng.integers(22, 31, len(ms)), 0)
    for ch in cat.CHANGES:  # pilot wards are big enough to show their effect
        m = _ms_index(ms, ch["pilot"])
        if ms.loc[m, "kind"] == "inpatient_ward":
            ms.loc[m, "beds"] = 36 if ch["change"] == "Intentional rounding" else 30
    pt = _patients(ms, rng)
    patient_pool = _patient_pools(ms, pt)
    staff_pool, staff_group = _staff_pools(ms, staff)
    return Org(
        size=size,
        ms=ms,
        staff=staff,
        patients=pt,
        patient_pool=patient_pool,
        staff_pool=staff_pool,
        staff_group=staff_group,
        plan=plan,
    )
