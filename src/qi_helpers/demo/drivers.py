"""Driver diagrams of the demo (internal): one per pilot, and the organisation's.

Each pilot's diagram holds its planted change (named as its PDSA log names it, linked to the
measures its cycles list) and one change idea it has not tested yet; the organisation's holds
every planted change. No random draw: the table follows from the planted plan, so adding it
changed no other table of the demo.
"""

from __future__ import annotations

import pandas as pd

from qi_helpers.demo import catalogue as cat
from qi_helpers.demo.structure import Org

#: Per planted change: its pilot's aim, the drivers of the change, and an idea not tested yet
#: (primary driver, secondary driver, change idea, measure ids).
PILOT_DIAGRAMS: dict[str, dict[str, object]] = {
    "Diabetes recall register with text reminders": {
        "aim": "80% of diabetic reviews include an HbA1c test by the end of 2024",
        "drivers": ("Every patient with diabetes is reviewed on time",
                    "Patients know when their review is due"),
        "untested": ("Every review follows the diabetes care bundle",
                     "Blood is taken before the review", "Pre-review blood test clinic",
                     "pc_hba1c_tested"),
    },
    "Carve-out scheduling": {
        "aim": "Third next available appointment within 7 days by the end of 2024",
        "drivers": ("Capacity matches daily demand", "Slots held back for same-day need"),
        "untested": ("Demand is planned ahead", "Routine reviews booked at the visit before",
                     "Book the next review before the patient leaves", "pc_ttna;pc_recommend"),
    },
    "Intentional rounding": {
        "aim": "Fewer than 5 inpatient falls per 1,000 patient-days by the end of 2024",
        "drivers": ("Patients at risk are seen often", "Regular checks on every patient"),
        "untested": ("The ward is safe to move around", "Patients can reach what they need",
                     "Call bell and walking aid within reach", "ward_falls"),
    },
    "Lean specimen reception": {
        "aim": "Specimen turnaround within 45 minutes by the end of 2024",
        "drivers": ("Specimens flow without waiting", "No batching at reception"),
        "untested": ("Specimens arrive ready to test", "Wards label specimens correctly",
                     "Labelling checklist for wards", "lab_rejected"),
    },
    "Criteria-led discharge": {
        "aim": "Length of stay of 5 days or less, with no more readmissions, by the end of 2024",
        "drivers": ("Patients leave when they are ready",
                    "Discharge decided against agreed criteria"),
        "untested": ("Discharge is planned from admission",
                     "An expected discharge date for every patient",
                     "Expected date of discharge set on admission", "ward_los;ward_readmit30"),
    },
    "Call-back scripting": {
        "aim": "Fewer than 5% of calls abandoned by the end of 2024",
        "drivers": ("Callers are not left waiting", "Callers are offered another way"),
        "untested": ("Enough handlers at peak times", "The rota follows the Monday peak",
                     "Rota matched to call demand", "cc_abandon;cc_answer_sec"),
    },
}  # fmt: skip

#: The organisation's aim and where each planted change sits in its diagram.
ORGANISATION_AIM = "Safe, timely and effective care in every microsystem by the end of 2025"
ORGANISATION_DRIVERS: dict[str, tuple[str, str]] = {
    "Diabetes recall register with text reminders": (
        "Reliable care for long-term conditions",
        "Proactive recall of patients due a review",
    ),
    "Carve-out scheduling": ("Timely access to care", "Capacity matched to demand"),
    "Lean specimen reception": ("Timely access to care", "Work flows without batching"),
    "Call-back scripting": ("Timely access to care", "Callers are offered another way"),
    "Intentional rounding": ("Safe wards", "Patients at risk are seen often"),
    "Criteria-led discharge": ("Efficient patient flow", "Patients leave when they are ready"),
}

COLUMNS = ["microsystem_id", "aim", "primary_driver", "secondary_driver", "change", "measure_id"]


def _rows(ms: str, aim: str, primary: str, secondary: str, change: str, measures: str) -> list:
    return [[ms, aim, primary, secondary, change, m] for m in measures.split(";")]


def driver_diagrams(org: Org) -> pd.DataFrame:
    """The ``drivers`` table of the demo: each pilot's diagram, then the organisation's.

    Returns
    -------
    DataFrame
        ``microsystem_id`` (empty for the organisation), ``aim, primary_driver,
        secondary_driver, change, measure_id``: one row per change idea and measure.
    """
    ms = org.ms
    rows: list[list[str]] = []
    for ch in cat.CHANGES:
        pilot = str(ms.loc[ms["pilot_of"] == ch["change"], "microsystem_id"].iloc[0])
        plan = PILOT_DIAGRAMS[ch["change"]]
        primary, secondary = plan["drivers"]
        rows += _rows(pilot, plan["aim"], primary, secondary, ch["change"], ch["measure_ids"])
        rows += _rows(pilot, plan["aim"], *plan["untested"])
    for ch in cat.CHANGES:
        primary, secondary = ORGANISATION_DRIVERS[ch["change"]]
        rows += _rows("", ORGANISATION_AIM, primary, secondary, ch["change"], ch["measure_ids"])
    table = pd.DataFrame(rows, columns=COLUMNS).astype("str")
    pilots = table[table["microsystem_id"] != ""].sort_values("microsystem_id", kind="stable")
    return pd.concat([pilots, table[table["microsystem_id"] == ""]], ignore_index=True)
