"""Optional variety planted on top of the demo organisation (internal to ``health_system``).

The default demo (``make_demo(size, seed)``) is left exactly as it is: every other workbook's
tests read it. A :class:`DemoMix` passed to ``make_demo`` adds, on top of it:

* **service teams** that work in their own area, do their own kind of work and serve the patients
  of many teams: a pharmacy, an imaging department and a phlebotomy clinic on each site, and a
  patient contact centre serving every site (:data:`SERVICE_TEAMS`);
* **cross-cover**: ward staff nurses who also work shifts on another ward of their site;
* **bank and agency staff** who work a few shifts on one ward and declare no home unit;
* **students** on a ten-week placement in one primary care team.

The truth says what each is: ``truth_microsystems`` gains a row per service team and
``truth_membership`` a ``staff_type`` column (``core``, ``floater``, ``service``,
``cross_cover``, ``bank``, ``student``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from qi_helpers.demo.activity import draw_times
from qi_helpers.errors import ConfigError

__all__ = ["SERVICE_TEAMS", "DemoMix", "add_variety"]

#: The service teams a :class:`DemoMix` can plant. ``per_site``: one on each site (id
#: ``<site code>-<suffix>``), else one for the organisation (``ORG-<suffix>``); ``staff``: roles
#: and head counts; ``steps``: the activities of one contact, each with the role doing it;
#: ``served``: the kinds of team whose patients it serves; ``weekly``: contacts a week; ``times``:
#: the demo's day and hour pattern it follows.
SERVICE_TEAMS: dict[str, dict[str, Any]] = {
    "pharmacy": {
        "per_site": True,
        "suffix": "PHA",
        "area": "{site} Pharmacy",
        "kind": "pharmacy",
        "staff": (("pharmacist", 2), ("pharmacy technician", 2)),
        "steps": (
            ("prescription screened", "pharmacist"),
            ("medicines dispensed", "pharmacy technician"),
            ("dispensing checked", "pharmacist"),
        ),
        "served": ("primary_care", "inpatient_ward"),
        "weekly": 45,
        "times": "laboratory",
    },
    "imaging": {
        "per_site": True,
        "suffix": "IMG",
        "area": "{site} Imaging Department",
        "kind": "imaging",
        "staff": (("radiographer", 3), ("radiologist", 1)),
        "steps": (("image acquired", "radiographer"), ("image reported", "radiologist")),
        "served": ("inpatient_ward", "primary_care"),
        "weekly": 40,
        "times": "laboratory",
    },
    "phlebotomy": {
        "per_site": True,
        "suffix": "PHL",
        "area": "{site} Phlebotomy Clinic",
        "kind": "phlebotomy",
        "staff": (("phlebotomist", 3),),
        "steps": (("venepuncture", "phlebotomist"), ("sample labelled", "phlebotomist")),
        "served": ("primary_care",),
        "weekly": 50,
        "times": "primary_care",
    },
    "contact_centre": {
        "per_site": False,
        "suffix": "PCC",
        "area": "Patient Contact Centre",
        "kind": "call_centre",
        "staff": (("call handler", 5),),
        "steps": (("appointment call", "call handler"), ("call outcome logged", "call handler")),
        "served": ("primary_care", "inpatient_ward"),
        "weekly": 90,
        "times": "call_centre",
    },
}

_WEEKS = 104
_START = pd.Timestamp("2024-01-01")


@dataclass(frozen=True)
class DemoMix:
    """What :func:`qi_helpers.demo.health_system.make_demo` plants on top of the default demo.

    Attributes
    ----------
    services : tuple of str
        Service teams to plant, keys of :data:`SERVICE_TEAMS`.
    cross_cover : float
        Share (0-1) of ward staff nurses who also cover shifts on another ward of their site
        (about a fifth of their work).
    bank_staff : int
        Bank or agency staff per site, each working 4-8 shifts on one ward.
    students : int
        Students per site, each on a ten-week placement in one primary care team.
    """

    services: tuple[str, ...] = ()
    cross_cover: float = 0.0
    bank_staff: int = 0
    students: int = 0

    def check(self) -> None:
        """Raise :class:`~qi_helpers.errors.ConfigError` when a setting is out of range."""
        unknown = [s for s in self.services if s not in SERVICE_TEAMS]
        if unknown:
            raise ConfigError(
                f"DemoMix.services: unknown service team(s) {', '.join(map(repr, unknown))}; "
                f"expected some of {', '.join(map(repr, SERVICE_TEAMS))}."
            )
        if not 0 <= self.cross_cover <= 1:
            raise ConfigError(f"DemoMix.cross_cover must be in [0, 1], got {self.cross_cover!r}.")
        for name in ("bank_staff", "students"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"DemoMix.{name} must be a whole number >= 0, got {value!r}.")


class _Builder:
    """The tables being extended: new activity rows, staff, teams and staff types."""

    def __init__(self, tables: dict[str, pd.DataFrame], rng: np.random.Generator) -> None:
        self.rng = rng
        self.acts = tables["activities"].copy()
        self.staff = tables["staff"].copy()
        self.ms = tables["truth_microsystems"].copy()
        truth = tables["truth_membership"]
        main = truth[truth["main"]].set_index("staff_id")
        self.main = main["microsystem_id"].to_dict()
        self.types = np.where(main["floater"], "floater", "core")
        self.types = dict(zip(main.index, self.types, strict=True))
        # the role and work area of every row (reassigned rows keep their role and area)
        self.row_role = (
            self.acts["staff_id"].map(self.staff.set_index("staff_id")["role"]).to_numpy()
        )
        self.row_area = self.acts["location"].to_numpy()
        self.new_rows: list[pd.DataFrame] = []
        self.new_staff: list[dict[str, Any]] = []
        self.new_ms: list[dict[str, Any]] = []
        self.next_encounter = int(self.acts["encounter_id"].str[1:].astype(np.int64).max()) + 1

    def sites(self) -> list[tuple[str, str]]:
        """(code, name) of every site, in order."""
        on_site = self.ms[self.ms["site"] != "Organisation"]
        codes = on_site["microsystem_id"].str.split("-").str[0]
        return list(dict.fromkeys(zip(codes, on_site["site"], strict=True)))

    def add_person(self, role: str, ms_id: str, staff_type: str, *, fte: float, home) -> str:
        """A new member of staff; returns the id."""
        staff_id = f"S{len(self.staff) + len(self.new_staff) + 1:05d}"
        self.new_staff.append({"staff_id": staff_id, "role": role, "fte": fte, "home_unit": home})
        self.main[staff_id] = ms_id
        self.types[staff_id] = staff_type
        return staff_id

    def locations_of(self, codes: list[str] | None, kinds: tuple[str, ...]) -> np.ndarray:
        """The work areas of the teams of ``kinds`` on the sites ``codes`` (None: every site)."""
        teams = self.ms[self.ms["kind"].isin(kinds)]
        if codes is not None:
            teams = teams[teams["microsystem_id"].str.split("-").str[0].isin(codes)]
        return teams["locations"].to_numpy()


def _service(b: _Builder, key: str, code: str | None, site: str | None) -> None:
    """Plant one service team: its staff, and contacts with patients of the teams it serves."""
    spec = SERVICE_TEAMS[key]
    ms_id = f"{code or 'ORG'}-{spec['suffix']}"
    area = spec["area"].format(site=site)
    people = {
        role: [b.add_person(role, ms_id, "service", fte=1.0, home=ms_id) for _ in range(n)]
        for role, n in spec["staff"]
    }
    served = b.locations_of([code] if code else None, spec["served"])
    pool = np.flatnonzero(b.acts["location"].isin(served).to_numpy())
    weeks = np.arange(_WEEKS)
    contacts = b.rng.poisson(spec["weekly"], _WEEKS)
    week = np.repeat(weeks, contacts)
    start = draw_times(spec["times"], week, b.rng)
    patient = b.acts["patient_id"].to_numpy()[b.rng.choice(pool, size=len(week))]
    encounter = b.next_encounter + np.arange(len(week))
    b.next_encounter += len(week)
    frames = []
    for k, (activity, role) in enumerate(spec["steps"]):
        minutes = b.rng.integers(5, 25, len(week))
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": _START + pd.to_timedelta(start + 1800 * k, "s"),
                    "patient_id": patient,
                    "staff_id": b.rng.choice(people[role], size=len(week)),
                    "activity": activity,
                    "location": area,
                    "encounter_id": [f"E{e:08d}" for e in encounter],
                    "duration_min": minutes,
                }
            )
        )
    b.new_rows.append(pd.concat(frames, ignore_index=True))
    n_staff = sum(n for _, n in spec["staff"])
    name = f"{site} {key.title()}" if site else spec["area"]
    b.new_ms.append(_truth_row(ms_id, name, spec["kind"], site or "Organisation", area, n_staff))


def _truth_row(ms_id: str, name: str, kind: str, site: str, area: str, n: int) -> dict[str, Any]:
    return {
        "microsystem_id": ms_id,
        "name": name,
        "kind": kind,
        "site": site,
        "locations": area,
        "planted_role": "none",
        "pilot_of": "",
        "unstable": False,
        "low_volume": False,
        "low_readiness": False,
        "core_staff": n,
        "panel_size": 0,
        "beds": 0,
    }


def _role_rows(b: _Builder, location: str, role: str) -> np.ndarray:
    """Rows of the activity log done at ``location`` by core staff in ``role``."""
    return np.flatnonzero((b.row_area == location) & (b.row_role == role))


def _cross_cover(b: _Builder, share: float) -> None:
    """Ward staff nurses who also cover shifts on another ward of their site."""
    wards = b.ms[b.ms["kind"] == "inpatient_ward"]
    area = wards.set_index("microsystem_id")["locations"]
    counts = b.acts["staff_id"].value_counts()
    for ms_id in wards["microsystem_id"]:
        others = [w for w in area.index if w != ms_id and w.split("-")[0] == ms_id.split("-")[0]]
        if not others:
            continue
        nurses = [
            s
            for s, m in b.main.items()
            if m == ms_id and b.types[s] == "core" and s in counts.index
        ]
        roles = b.staff.set_index("staff_id")["role"]
        nurses = [s for s in nurses if roles.get(s) == "staff nurse"]
        for nurse in [s for s in nurses if b.rng.random() < share]:
            rows = _role_rows(b, area[str(b.rng.choice(others))], "staff nurse")
            need = min(len(rows), round(counts[nurse] * 0.25))
            chosen = b.rng.choice(rows, size=need, replace=False)
            b.acts.iloc[chosen, b.acts.columns.get_loc("staff_id")] = nurse
            b.types[nurse] = "cross_cover"


def _bank(b: _Builder, code: str, n: int) -> None:
    """Bank and agency staff: a few shifts each on one ward, no declared home unit."""
    wards = b.ms[(b.ms["kind"] == "inpatient_ward") & b.ms["microsystem_id"].str.startswith(code)]
    day = (b.acts["timestamp"] - _START).dt.days.to_numpy()
    for i in range(n):
        ward = wards.iloc[i % len(wards)]
        role = ("staff nurse", "healthcare assistant")[i % 2]
        person = b.add_person(role, ward["microsystem_id"], "bank", fte=0.1, home=None)
        rows = _role_rows(b, ward["locations"], role)
        shifts = b.rng.choice(np.unique(day[rows]), size=int(b.rng.integers(4, 9)), replace=False)
        on_shift = rows[np.isin(day[rows], shifts)]
        taken = on_shift[b.rng.random(len(on_shift)) < 0.5]
        b.acts.iloc[taken, b.acts.columns.get_loc("staff_id")] = person


def _students(b: _Builder, code: str, n: int) -> None:
    """Students who sit in on consultations of one primary care team for ten weeks."""
    teams = b.ms[(b.ms["kind"] == "primary_care") & b.ms["microsystem_id"].str.startswith(code)]
    teams = teams[~teams["low_volume"].astype(bool)]
    week = ((b.acts["timestamp"] - _START).dt.days // 7).to_numpy()
    for i in range(n):
        team = teams.iloc[i % len(teams)]
        person = b.add_person("student", team["microsystem_id"], "student", fte=1.0, home=None)
        first = int(b.rng.integers(0, _WEEKS - 10))
        rows = _role_rows(b, team["locations"], "GP")
        rows = rows[(week[rows] >= first) & (week[rows] < first + 10)]
        rows = rows[b.rng.random(len(rows)) < 0.5]
        b.new_rows.append(
            b.acts.iloc[rows].assign(staff_id=person, activity="consultation observed")
        )
        b.new_staff[-1]["home_unit"] = team["microsystem_id"]


def _membership(b: _Builder, acts: pd.DataFrame, staff: pd.DataFrame) -> pd.DataFrame:
    """``truth_membership`` recomputed from the final log, with each person's ``staff_type``."""
    ms = pd.concat([b.ms, pd.DataFrame(b.new_ms)], ignore_index=True)
    team_of_area = ms.set_index("locations")["microsystem_id"]
    counts = (
        acts.assign(microsystem_id=acts["location"].map(team_of_area))
        .groupby(["staff_id", "microsystem_id"])
        .size()
        .rename("activities")
        .reset_index()
    )
    total = counts.groupby("staff_id")["activities"].transform("sum")
    roster = staff.set_index("staff_id")
    declared = roster["home_unit"].reindex(counts["staff_id"]).to_numpy()
    main = counts["staff_id"].map(b.main).to_numpy()
    return pd.DataFrame(
        {
            "staff_id": counts["staff_id"].astype("str"),
            "microsystem_id": counts["microsystem_id"].astype("str"),
            "share": (counts["activities"] / total).round(3),
            "main": counts["microsystem_id"].to_numpy() == main,
            "role": roster["role"].reindex(counts["staff_id"]).to_numpy().astype(str),
            "floater": counts["staff_id"].map(b.types).eq("floater").to_numpy(),
            "declared_home_unit": pd.Series(declared, dtype="str"),
            "home_unit_wrong": pd.Series(declared).notna().to_numpy() & (declared != main),
            "activities": counts["activities"].to_numpy(),
            "staff_type": counts["staff_id"].map(b.types).astype("str"),
        }
    )


def add_variety(
    tables: dict[str, pd.DataFrame], mix: DemoMix, rng: np.random.Generator
) -> dict[str, pd.DataFrame]:
    """Plant ``mix`` on top of the demo ``tables``; returns the tables changed.

    The activities, the staff roster and the truth of teams and membership are rebuilt; every
    other table (measures, PDSA log, readiness) is the default demo's.
    """
    mix.check()
    b = _Builder(tables, rng)
    sites = b.sites()
    for key in mix.services:
        if SERVICE_TEAMS[key]["per_site"]:
            for code, name in sites:
                _service(b, key, code, name)
        else:
            _service(b, key, None, None)
    if mix.cross_cover:
        _cross_cover(b, mix.cross_cover)
    for code, _ in sites:
        _bank(b, code, mix.bank_staff)
        _students(b, code, mix.students)
    acts = pd.concat([b.acts, *b.new_rows], ignore_index=True)
    acts = acts.sort_values(["timestamp", "staff_id"], kind="stable", ignore_index=True)
    staff = pd.concat([b.staff, pd.DataFrame(b.new_staff)], ignore_index=True)
    staff = staff.astype({"staff_id": "str", "role": "str", "home_unit": "str"})
    ms = pd.concat([b.ms, pd.DataFrame(b.new_ms)], ignore_index=True).astype(b.ms.dtypes)
    return {
        "activities": acts,
        "staff": staff,
        "truth_microsystems": ms,
        "truth_membership": _membership(b, acts, staff),
    }
