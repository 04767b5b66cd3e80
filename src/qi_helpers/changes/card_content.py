"""What a report card holds: the measures' cards and the microsystem's card, as plain text.

The content of a microsystem's slides and PDF (:mod:`qi_helpers.changes.report_card` makes it
from workbook 03's analysis; :mod:`qi_helpers.changes.slides` and
:mod:`qi_helpers.changes.report_pdf` lay it out). Every text is one line without control
characters (:func:`clean_text`), so that no slide's XML and no PDF line breaks on it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from qi_helpers.privacy.html import plain_text
from qi_helpers.table_formats import is_missing

__all__ = ["CYCLE_COLUMNS", "MeasureCard", "ReportCard", "clean_text"]

#: Characters no XML document (a slide) may hold, beyond the control characters
#: :func:`~qi_helpers.privacy.html.plain_text` removes.
_NOT_XML = re.compile(r"[\ud800-\udfff\ufffe\uffff]")


def clean_text(value: object) -> str:
    """Text from data for a slide or a PDF: one line, no control character, ``""`` if missing."""
    if is_missing(value):
        return ""
    return _NOT_XML.sub("\ufffd", plain_text(value))


@dataclass(frozen=True)
class MeasureCard:
    """One measure of the report card: its slide, and its section of the PDF.

    Attributes
    ----------
    measure_id, name : str
    verdict : str
        The verdict of the measure's latest change (or ``baseline only``).
    variation, assurance : str
        The NHS Making Data Count icons of the latest point, in words.
    latest : str
        The latest value with its unit and date, e.g. ``79.0% (22 Dec 2025)``.
    verdicts : list of (str, str, str)
        One ``(change, verdict, effect in words)`` per change judged.
    reasons : list of str
        Each verdict in words (the verdict table's ``reason``).
    cycles : list of list of str
        The PDSA cycles of the changes that concern this measure: cycle, change, start, end,
        decision, result (empty strings where the log has none).
    chart_png : bytes
        The measure's chart (:func:`~qi_helpers.changes.figures.plot_change`); ``b""`` without data.
    chart_alt : str
        The chart's alternative text.
    """

    measure_id: str
    name: str
    verdict: str
    variation: str
    assurance: str
    latest: str
    verdicts: list[tuple[str, str, str]]
    reasons: list[str]
    cycles: list[list[str]]
    chart_png: bytes
    chart_alt: str


#: The columns of :attr:`MeasureCard.cycles`.
CYCLE_COLUMNS = ["Cycle", "Change", "Start", "End", "Decision", "Result"]


@dataclass(frozen=True)
class ReportCard:
    """What a microsystem's slides and PDF show.

    Attributes
    ----------
    microsystem_id : str
    title : str
        ``Tests of change: <name>`` (the page's title).
    subtitle : str
        ``Microsystem <id>``, and the data period.
    date : datetime
        The last measured period (UTC): the date written inside the files.
    measures : list of MeasureCard
        In the report's order (by aim and family, each balancing measure after its outcome).
    what_next : list of str
        The "what next" advice, one item per line; a sub-item starts with two spaces.
    note : str
        The caveat that closes the advice (serial correlation of the intervals).
    """

    microsystem_id: str
    title: str
    subtitle: str
    date: dt.datetime
    measures: list[MeasureCard] = field(default_factory=list)
    what_next: list[str] = field(default_factory=list)
    note: str = ""
