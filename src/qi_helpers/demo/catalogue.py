"""Fixed catalogues behind the demo health system (see :mod:`qi_helpers.demo.health_system`).

Everything here is data, not logic: sizes, site names, roles and activities per kind of
microsystem, the measure catalogue, the planted changes and the plain-English PDSA texts.
"""

from __future__ import annotations

from typing import Any

START_DATE = "2024-01-01"  # a Monday
N_WEEKS = 104

#: Sizes of the demo health system. ``sites`` x (``primary_care`` + ``wards`` + ``labs``) +
#: ``call_centres`` microsystems.
DEMO_SIZES: dict[str, dict[str, Any]] = {
    "small": {
        "sites": 3,
        "primary_care_per_site": 3,
        "wards_per_site": 2,
        "labs_per_site": 1,
        "call_centres": 2,
        "microsystems": 20,
        "description": "3 sites, 20 microsystems, ~0.25 million activities; used by the tests",
    },
    "medium": {
        "sites": 14,
        "primary_care_per_site": 4,
        "wards_per_site": 2,
        "labs_per_site": 1,
        "call_centres": 3,
        "microsystems": 101,
        "description": "14 sites, 101 microsystems, ~1.2 million activities",
    },
    "large": {
        "sites": 70,
        "primary_care_per_site": 4,
        "wards_per_site": 2,
        "labs_per_site": 1,
        "call_centres": 12,
        "microsystems": 502,
        "description": "70 sites, 502 microsystems, >5 million activities; for benchmarks",
    },
}

#: The ten success characteristics of clinical microsystems (Nelson et al. 2002,
#: Jt Comm J Qual Improv 28(9):472-493), as snake_case ids mapped to readable labels.
TEN_CHARACTERISTICS: dict[str, str] = {
    "leadership": "Leadership",
    "organisational_support": "Organisational support",
    "staff_focus": "Staff focus",
    "education_and_training": "Education and training",
    "interdependence": "Interdependence of the care team",
    "patient_focus": "Patient focus",
    "community_and_market_focus": "Community and market focus",
    "performance_results": "Performance results",
    "process_improvement": "Process improvement",
    "information_and_information_technology": "Information and information technology",
}

KINDS = ("primary_care", "inpatient_ward", "laboratory", "call_centre")

# Curated site names (code, name); the first three are the sites of the small demo.
CURATED_SITES: list[tuple[str, str]] = [
    ("NOR", "Northfield"),
    ("RIV", "Riverside"),
    ("HIL", "Hillcrest"),
    ("WES", "Westbrook"),
    ("EAS", "Eastgate"),
    ("SOU", "Southmere"),
    ("OAK", "Oakley"),
    ("ASH", "Ashford"),
    ("KIN", "Kingsbridge"),
    ("MIL", "Millbrook"),
    ("STO", "Stonehaven"),
    ("FAI", "Fairview"),
    ("GRE", "Greenhill"),
    ("LAK", "Lakeside"),
]
NAME_PREFIXES = (
    "Elm Ash Bay Cedar Clear Deer Fox Glen Hazel Iron Ivy Lark Maple Moor Pine Red Rose "
    "Silver Sun Thorn Well Willow Beech Birch Cliff Crow Dun Fern Gold Holly Kings Long Marsh "
    "Mead Nether Over Quarry Rook Salt Swan Ted Upper Wolds Yew"
).split()
NAME_SUFFIXES = (
    "field side crest brook gate mere ley ford bridge haven view wood ton bury dale wick ham stead"
).split()

# Roles per kind: (role, count in a normal team, relative activity weight).
ROLES: dict[str, list[tuple[str, int, float]]] = {
    "primary_care": [
        ("GP", 2, 1.0),
        ("practice nurse", 2, 1.0),
        ("healthcare assistant", 1, 1.0),
        ("receptionist", 2, 1.0),
    ],
    "inpatient_ward": [
        ("staff nurse", 5, 1.0),
        ("doctor", 2, 1.0),
        ("healthcare assistant", 2, 1.0),
        ("pharmacist", 1, 1.0),
    ],
    "laboratory": [("biomedical scientist", 3, 1.0), ("lab assistant", 2, 1.0)],
    "call_centre": [("call handler", 7, 1.0), ("supervisor", 1, 1.0)],
}
LOW_VOLUME_ROLES = [("GP", 1, 1.0), ("practice nurse", 1, 1.0), ("receptionist", 1, 1.0)]
# When a team lacks a role, the work falls to the next role in this chain.
ROLE_FALLBACK = {
    "healthcare assistant": "practice nurse",
    "practice nurse": "GP",
    "receptionist": "GP",
    "pharmacist": "doctor",
    "supervisor": "call handler",
    "lab assistant": "biomedical scientist",
}

# Encounter types for PC, lab and call centre: (weight, [(activity, role, minutes), ...]).
ENCOUNTERS: dict[str, list[tuple[float, list[tuple[str, str, float]]]]] = {
    "primary_care": [
        (0.22, [("booking", "receptionist", 3), ("consultation", "GP", 12)]),
        (0.12, [("consultation", "GP", 11)]),
        (0.07, [("consultation", "GP", 12), ("blood test", "healthcare assistant", 8)]),
        (0.07, [("medication review", "GP", 15)]),
        (0.08, [("booking", "receptionist", 3), ("diabetes review", "practice nurse", 20)]),
        (0.06, [("chronic disease review", "practice nurse", 20)]),
        (0.08, [("vaccination", "practice nurse", 8)]),
        (0.09, [("blood test", "healthcare assistant", 8)]),
        (0.05, [("blood pressure check", "healthcare assistant", 10)]),
        (0.10, [("telephone consultation", "GP", 8)]),
        (0.06, [("prescription request", "receptionist", 4)]),
    ],
    "laboratory": [
        (
            0.97,
            [
                ("specimen received", "lab assistant", 4),
                ("analysis", "biomedical scientist", 15),
                ("result reported", "biomedical scientist", 5),
            ],
        ),
        (
            0.03,
            [("specimen received", "lab assistant", 4), ("specimen rejected", "lab assistant", 3)],
        ),
    ],
    "call_centre": [
        (0.55, [("inbound call", "call handler", 5)]),
        (0.22, [("inbound call", "call handler", 6), ("callback", "call handler", 6)]),
        (0.18, [("inbound call", "call handler", 5), ("appointment booking", "call handler", 3)]),
        (0.05, [("inbound call", "call handler", 7), ("escalation review", "supervisor", 10)]),
    ],
}
# Ward stays: admission and discharge plus intermediate activities drawn from these.
WARD_FIRST = ("admission", "doctor", 30.0)
WARD_LAST = ("discharge", "doctor", 20.0)
WARD_MIDDLE: list[tuple[float, tuple[str, str, float]]] = [
    (0.30, ("nursing observation", "staff nurse", 10)),
    (0.22, ("ward round", "doctor", 8)),
    (0.15, ("medication round", "staff nurse", 6)),
    (0.18, ("personal care", "healthcare assistant", 20)),
    (0.08, ("medication reconciliation", "pharmacist", 15)),
    (0.07, ("nursing observation", "healthcare assistant", 10)),
]

# Day-of-week weights (Mon..Sun) and hour-of-day weights per kind.
DOW_WEIGHTS = {
    "primary_care": [1.25, 1.05, 1.0, 1.0, 0.8, 0.0, 0.0],
    "inpatient_ward": [1.05, 1.0, 1.0, 1.0, 1.0, 0.95, 0.95],
    "laboratory": [1.15, 1.05, 1.0, 1.0, 1.0, 0.45, 0.0],
    "call_centre": [1.6, 1.1, 1.0, 0.95, 0.9, 0.0, 0.0],
}
_H = [0.0] * 24
HOUR_WEIGHTS = {
    "primary_care": _H[:8] + [1.2, 1.3, 1.3, 1.2, 0.7, 0.6, 1.0, 1.1, 1.1, 0.9] + _H[18:],
    "inpatient_ward": [0.3] * 6
    + [0.6, 1.0, 1.4, 1.5, 1.4, 1.2, 1.0, 0.9, 1.0, 1.0]
    + [0.9, 0.8, 0.9, 0.8, 0.7, 0.6, 0.4, 0.3],
    "laboratory": _H[:8] + [0.8, 1.3, 1.4, 1.4, 1.2, 1.1, 1.2, 1.1, 0.9, 0.7, 0.5, 0.3] + _H[20:],
    "call_centre": _H[:8] + [2.0, 1.6, 1.3, 1.1, 0.9, 0.9, 1.0, 0.9, 0.8, 0.7] + _H[18:],
}
# Mean activities per microsystem-week before seasonality (PC scales with panel size).
ACTIVITY_RATE = {"primary_care": 110.0, "laboratory": 105.0, "call_centre": 140.0}

CONDITIONS = ("diabetes", "hypertension", "copd", "heart_failure", "asthma")
AGE_BANDS = ("0-17", "18-39", "40-64", "65-79", "80+")
AGE_PROBS = (0.20, 0.27, 0.31, 0.15, 0.07)
# Prevalence of each condition by age band (rows follow AGE_BANDS, columns CONDITIONS).
CONDITION_PREVALENCE = [
    [0.003, 0.002, 0.000, 0.000, 0.09],
    [0.02, 0.04, 0.003, 0.002, 0.08],
    [0.08, 0.20, 0.03, 0.01, 0.07],
    [0.17, 0.45, 0.09, 0.05, 0.07],
    [0.20, 0.60, 0.12, 0.12, 0.06],
]
AGE_USE = (0.7, 0.6, 0.9, 1.5, 2.0)  # relative use of services by age band

# The measure catalogue.
MEASURE_COLUMNS = [
    "measure_id", "name", "family", "chart", "improvement", "aim", "unit", "multiply",
    "target", "period", "kind", "balances",
]  # fmt: skip
MEASURES: list[tuple[Any, ...]] = [
    ("pc_hba1c_tested", "HbA1c tested in diabetic review", "process", "p", "up", "effective",
     "%", 100, 80.0, "week", "primary_care", ""),
    ("pc_ttna", "Time to third next available appointment", "outcome", "i", "down", "timely",
     "days", 1, 7.0, "week", "primary_care", ""),
    ("pc_recommend", "Patient would recommend the practice", "outcome", "p", "up",
     "patient-centred", "%", 100, 90.0, "week", "primary_care", ""),
    ("ward_falls", "Inpatient falls per 1,000 patient-days", "outcome", "u", "down", "safe",
     "falls per 1,000 patient-days", 1000, 5.0, "week", "inpatient_ward", ""),
    ("ward_los", "Length of stay", "outcome", "xbar", "down", "efficient", "days", 1, 5.0,
     "week", "inpatient_ward", ""),
    ("ward_readmit30", "Emergency readmission within 30 days", "balancing", "p", "down", "safe",
     "%", 100, 8.0, "week", "inpatient_ward", "ward_los"),
    ("lab_tat", "Specimen turnaround time", "outcome", "xbar", "down", "timely", "minutes", 1,
     45.0, "week", "laboratory", ""),
    ("lab_rejected", "Specimens rejected", "process", "p", "down", "safe", "%", 100, 2.0, "week",
     "laboratory", ""),
    ("cc_abandon", "Calls abandoned", "outcome", "p", "down", "patient-centred", "%", 100, 5.0,
     "week", "call_centre", ""),
    ("cc_answer_sec", "Time to answer a call", "process", "xbar", "down", "timely", "seconds", 1,
     30.0, "week", "call_centre", ""),
]  # fmt: skip

# Planted changes. ``effects``: (measure_id, effect_type, effect, planted_as, expected_verdict).
# ``pilot``: the microsystem that tests it (site index, kind code, number), ``week``: the week
# index of the adopt cycle's start, ``spread``: whether later adopters take it up.
CHANGES: list[dict[str, Any]] = [
    {
        "change": "Diabetes recall register with text reminders",
        "pilot": (0, "PC", 1),
        "week": 40,
        "spread": True,
        "effects": [("pc_hba1c_tested", "absolute", 0.15, "pilot", "improved")],
        "measure_ids": "pc_hba1c_tested",
        "cycles": [
            (
                "Text reminders to 10 patients overdue a diabetic review will bring at least 5 in.",
                "7 of 10 booked; two texts went to old numbers.",
                "adapt",
            ),
            (
                "Checking numbers first, reminders to all 60 overdue patients will bring half in.",
                "34 of 60 attended; the register missed newly diagnosed patients.",
                "adapt",
            ),
            (
                "A monthly recall register with text reminders will lift HbA1c testing in diabetic "
                "reviews from about 65% to 80%.",
                "HbA1c testing rose to about 80% and stayed there.",
                "adopt",
            ),
        ],
    },
    {
        "change": "Carve-out scheduling",
        "pilot": (1, "PC", 1),
        "week": 36,
        "spread": True,
        "effects": [("pc_ttna", "relative", -0.40, "pilot", "improved")],
        "measure_ids": "pc_ttna",
        "cycles": [
            (
                "Holding 2 same-day slots per GP on Mondays will absorb the Monday rush.",
                "Slots filled by 9:30; Monday queue shorter.",
                "adapt",
            ),
            (
                "Holding 3 same-day slots per GP every day will cut third next available by a day.",
                "Third next available fell from 14 to 12 days.",
                "adapt",
            ),
            (
                "Adding nurse slots to the carve-out will keep the backlog down.",
                "Nurses' own clinics overbooked; moved to afternoons.",
                "adapt",
            ),
            (
                "Carve-out scheduling for all clinicians will cut time to third next available "
                "appointment by about 40%.",
                "Time to third next available fell from about 14 to about 8 days.",
                "adopt",
            ),
        ],
    },
    {
        "change": "Intentional rounding",
        "pilot": (0, "W", 1),
        "week": 44,
        "spread": True,
        "effects": [("ward_falls", "relative", -0.40, "pilot", "improved")],
        "measure_ids": "ward_falls",
        "cycles": [
            (
                "Hourly rounding on 4 high-risk beds for one week will be feasible for the night "
                "shift.",
                "Feasible; two rounds missed at handover.",
                "adapt",
            ),
            (
                "Moving the round off the handover hour will stop rounds being missed.",
                "No rounds missed in two weeks.",
                "adapt",
            ),
            (
                "Intentional rounding on every bed will cut falls by about 40%.",
                "Falls per 1,000 patient-days fell by about 40%.",
                "adopt",
            ),
        ],
    },
    {
        "change": "Lean specimen reception",
        "pilot": (2, "LAB", 0),
        "week": 38,
        "spread": True,
        "effects": [("lab_tat", "relative", -0.25, "pilot", "improved")],
        "measure_ids": "lab_tat;lab_rejected",
        "cycles": [
            (
                "A one-piece flow bench for morning specimens will cut waiting at reception.",
                "Queue at reception halved in the morning peak.",
                "adapt",
            ),
            (
                "One-piece flow all day, with a runner to the analysers, will cut turnaround by a "
                "quarter.",
                "Turnaround fell by about a quarter; rejections unchanged.",
                "adopt",
            ),
        ],
    },
    {
        "change": "Criteria-led discharge",
        "pilot": (1, "W", 1),
        "week": 42,
        "spread": False,
        "effects": [
            ("ward_los", "relative", -0.15, "pilot", "improved"),
            ("ward_readmit30", "relative", 0.60, "harm", "worsened"),
        ],
        "measure_ids": "ward_los;ward_readmit30",
        "cycles": [
            (
                "Nurses discharging 5 patients against agreed criteria will save half a day each.",
                "4 of 5 left before noon; one waited for transport.",
                "adapt",
            ),
            (
                "Criteria on every admission will free discharges at weekends.",
                "Weekend discharges doubled.",
                "adapt",
            ),
            (
                "Criteria-led discharge for all patients will cut length of stay by about 15% "
                "without more readmissions.",
                "Length of stay fell by about 15%; readmissions to be watched.",
                "adopt",
            ),
        ],
    },
    {
        "change": "Call-back scripting",
        "pilot": (-1, "CC", 1),
        "week": 40,
        "spread": False,
        "effects": [("cc_abandon", "relative", 0.0, "failed", "no_change")],
        "measure_ids": "cc_abandon;cc_answer_sec",
        "cycles": [
            (
                "A scripted offer of a call-back to 20 callers in the Monday peak will stop them "
                "hanging up.",
                "Most callers accepted; handlers found the script long.",
                "adapt",
            ),
            (
                "A shorter script for all handlers will cut abandoned calls.",
                "Abandoned calls did not change; handlers prefer the old way.",
                "adapt",
            ),
            (
                "Call-back scripting on every line will cut call abandonment by a third.",
                "No change in abandoned calls after 12 weeks; abandoned.",
                "abandon",
            ),
        ],
    },
]
ADOPTER_TEXT = (
    "Adopting the change tested in {pilot} will reproduce its effect here.",
    "Embedded in routine work; see the run chart.",
)
WAVE_WEEKS = (70, 82, 94)
#: Chance variation of observed measures is cut at this many standard deviations.
NOISE_LIMIT = 2.5
UNSTABLE_WEEK = 12  # the unrelated step in the unstable team's baseline

# Readiness profiles: probabilities of scores 1, 2, 3.
READINESS_PROFILES = {
    "high": (0.04, 0.21, 0.75),
    "adopter": (0.10, 0.40, 0.50),
    "mixed": (0.22, 0.50, 0.28),
    "low": (0.62, 0.30, 0.08),
}
READINESS_NONRESPONSE = 0.12
# Two survey rounds (``readiness.round``): everyone before the pilots were chosen, then the
# pilot teams again after their tests (before the first wave of spread).
READINESS_ROUNDS = ("2024-05-06", "2025-03-03")
# Round 2, per answer of a respondent surveyed again: chance of one step up, of one step down.
# Most answers rise a little; performance results and process improvement most (the teams
# learned to measure and test); organisational support drifts down (the tests took time the
# organisation did not give).
READINESS_ROUND2_DEFAULT = (0.30, 0.04)
READINESS_ROUND2 = {
    "performance_results": (0.70, 0.0),
    "process_improvement": (0.70, 0.0),
    "organisational_support": (0.0, 0.50),
}
READINESS_CANT_RATE = 0.05
