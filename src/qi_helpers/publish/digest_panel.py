"""The "Changed since" panel at the top of the index: the last run's digest, in words, with links.

``qi run`` writes ``outputs/digest.json`` (:mod:`qi_helpers.run.digest`) when a run completes;
the publisher reads it as plain JSON (it does not import :mod:`qi_helpers.run`). The panel lists
each change with a link to its microsystem's report (the failed run's page for a failure), or
to the organisation-level report. It is shown only when the run found changes, so a rerun of
the same inputs gives the same index, byte for byte. The digest file itself is not published:
its entries reach the site only as this panel, inside the index, which goes through the same
identifier screen as every page.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from qi_helpers.project import Project
from qi_helpers.publish.provenance import format_day
from qi_helpers.workflow import WORKBOOKS

#: Changes listed before the others are folded under "more".
SHOWN = 10
#: Under "more", a kind with more changes than this is one line: its count and the links (the
#: first whole run of 500 microsystems after a partial one listed 500 "first results" in 75 kB).
GROUPED = 10
#: A group's line, by kind: ``"<count> <words>: <links>"``.
_GROUP_WORDS = {
    "failed": "notebooks failed",
    "recovered": "notebooks ran again after a failure",
    "new_microsystem": "new microsystems with their first results",
    "removed": "microsystems no longer in the results",
    "new_measure": "new measures",
    "removed_measure": "measures no longer in the results",
    "verdict_changed": "verdicts changed",
    "new_signal": "new special causes",
    "signal_ended": "special causes ended",
    "icon_changed": "Making Data Count icons changed",
}


def _when(date: Any) -> str:
    """``"1 Dec 2026, 09:00 UTC"`` from an ISO date (``""`` when it is missing or not a date)."""
    try:
        ts = pd.Timestamp(str(date))
    except (TypeError, ValueError):
        return ""
    return "" if pd.isna(ts) else f"{format_day(ts)}, {ts:%H:%M} UTC"


def _read(project: Project) -> dict[str, Any]:
    """The digest (``{}`` when there is none or it cannot be read)."""
    try:
        data = json.loads(project.digest_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _link(found: dict[str, Any] | None, kind: str) -> str:
    """The report a change links to: the error's page for a failure, else the report."""
    if not found:
        return ""
    if kind == "failed" and found.get("error_href"):
        return str(found["error_href"])
    return str(found.get("href") or found.get("error_href") or "")


def digest_panel(
    project: Project, rows: list[dict[str, Any]], cards: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """What the index's "Changed since" panel shows (None: no digest, or no change in it).

    Parameters
    ----------
    project : Project
    rows : list of dict
        The index's microsystem rows (``id``, ``href``, ``error_href``).
    cards : list of dict
        The index's organisation-level cards, in :data:`~qi_helpers.workflow.WORKBOOKS` order
        (``title``, ``href``, ``error_href``).

    Returns
    -------
    dict or None
        ``since`` and ``run`` (the previous and this run's dates in words), ``count``, and
        ``shown`` and ``more`` (the changes, split after :data:`SHOWN`): each with ``who``
        (the microsystem id, or the organisation-level report's title), ``href`` (``""``
        when there is no report to link), ``kind`` and ``text``; under ``more``, the changes
        of a kind with more than :data:`GROUPED` are one group (:func:`_grouped`).
    """
    digest = _read(project)
    entries = [e for e in digest.get("entries") or [] if isinstance(e, dict)]
    if not entries:
        return None
    by_id = {str(r["id"]): r for r in rows}
    org = [wb.code for wb in WORKBOOKS.values() if not wb.per_microsystem]
    by_code = dict(zip(org, cards, strict=False))
    items = []
    for entry in entries:
        kind, ms = str(entry.get("kind", "")), entry.get("microsystem_id")
        if ms:
            who, found = str(ms), by_id.get(str(ms))
        else:
            found = by_code.get(str(entry.get("workbook", "")))
            who = str(found["title"]) if found else "Organisation"
        items.append(
            {
                "who": who,
                "href": _link(found, kind),
                "kind": kind,
                "text": str(entry.get("text") or ""),
            }
        )
    return {
        "since": _when(digest.get("previous_date")),
        "run": _when(digest.get("date")),
        "count": len(items),
        "shown": items[:SHOWN],
        "more": _grouped(items[SHOWN:]),
    }


def _grouped(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The changes under "more", those of a kind with more than :data:`GROUPED` as one group.

    A group is ``{"kind", "count", "words", "links": [{"who", "href"}]}`` in the place of its
    kind's first change; the other changes stay as they are, in their order.
    """
    counts = pd.Series([i["kind"] for i in items], dtype=object).value_counts()
    big = {k for k, n in counts.items() if n > GROUPED and k in _GROUP_WORDS}
    out: list[dict[str, Any]] = []
    groups: dict[str, dict[str, Any]] = {}
    for item in items:
        kind = item["kind"]
        if kind not in big:
            out.append(item)
            continue
        if kind not in groups:
            groups[kind] = {"kind": kind, "words": _GROUP_WORDS[kind], "links": []}
            out.append(groups[kind])
        groups[kind]["links"].append({"who": item["who"], "href": item["href"]})
    for group in groups.values():
        group["count"] = len(group["links"])
    return out
