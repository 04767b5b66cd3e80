"""The IHI Framework for Spread as a checklist for the spread team (workbook 04).

A change does not spread by itself: the Framework for Spread (Massoud et al., *A Framework for
Spread: From Local Improvements to System-Wide Change*, IHI Innovation Series white paper, 2006)
names seven components to put in place around the waves of adopters. :func:`framework_checklist`
reads the team's record of each (``spread.framework`` in ``parameters/project.yaml``) and says
what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from qi_helpers.errors import ConfigError

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

#: The statuses a component may have, from finished to not begun.
FRAMEWORK_STATUSES = ("done", "in progress", "not started")


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
