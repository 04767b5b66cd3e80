"""The report card of a microsystem: what its slides and its printable PDF show (workbook 03).

A team takes its results into the huddle as slides, and a coach prints them: workbook 03 writes,
beside the verdict table, ``outputs/report_cards/<microsystem_id>.pptx`` (a title slide, one
slide per measure with its chart, its verdicts and the PDSA cycles of its changes, a "what next"
slide; :mod:`qi_helpers.changes.slides`) and ``<microsystem_id>.pdf`` (the same as a report
card on A4; :mod:`qi_helpers.changes.report_pdf`). Publishing screens both files and puts them
beside the microsystem's page (:mod:`qi_helpers.publish.report_files`).

Everything comes from what workbook 03 already computed: :class:`ReportCard` is made from
:class:`~qi_helpers.changes.microsystem.MicrosystemAnalysis` (its verdicts, measures, PDSA log
and one :func:`~qi_helpers.changes.figures.plot_change` chart per measure),
:func:`~qi_helpers.changes.summary.measure_summary` and
:func:`~qi_helpers.changes.what_next.what_next`, so the files say what the page says.

Why in workbook 03 rather than when publishing: the charts and verdicts exist only in the
notebook's kernel; writing the files there makes them rerun exactly when the notebook reruns
(the incremental rules are content-based) and spreads their cost over the run's workers. Each
chart is drawn once, as PNG bytes at :data:`CHART_DPI`, and the same bytes go into the slide and
the PDF.

Privacy: the verdicts, the PDSA log and the names pass the running project's identifier screen
(:func:`qi_helpers.privacy.screen.active_screen`) before anything is laid out, and the charts
are :class:`~qi_helpers.drawing.ScreenedFigure` drawings; publishing screens the text of the
written files once more and withholds a file that still holds an identifier. The report card
shows no count computed from patient data: levels (means, percentages, rates), effects with
their intervals, icons, dates and the PDSA log as the team wrote it, as the page's verdict
table and summary cards do; the subgroup results, which need the small-cell rule, stay on the
page only.

Same inputs, same bytes: dates inside the files are the data's last period, zip entries are
dated 1 Jan 1980, and a file whose bytes would not change is not rewritten.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from qi_helpers.changes.card_content import CYCLE_COLUMNS, MeasureCard, ReportCard, clean_text
from qi_helpers.changes.figures import plot_change
from qi_helpers.changes.pdsa import applies_to_measure
from qi_helpers.changes.report_pdf import pdf_bytes
from qi_helpers.changes.slides import slides_bytes
from qi_helpers.changes.summary import (
    ASSURANCE_BADGES,
    VARIATION_BADGES,
    effect_sentence,
    measure_summary,
)
from qi_helpers.changes.what_next import what_next
from qi_helpers.io import sha256_bytes, sha256_file, write_bytes
from qi_helpers.privacy.names import inside, safe_filename
from qi_helpers.privacy.screen import active_screen
from qi_helpers.table_formats import column_format, format_value, is_missing

if TYPE_CHECKING:
    from qi_helpers.changes.analysis import ChangeAnalysis
    from qi_helpers.changes.microsystem import MicrosystemAnalysis
    from qi_helpers.project import Project

__all__ = [
    "CHART_DPI",
    "CYCLE_COLUMNS",
    "REPORT_CARD_SUFFIXES",
    "MeasureCard",
    "ReportCard",
    "report_card",
    "write_report_card",
]

#: The resolution of each chart's PNG (its figure is 8 x 4 inches): sharp on a projector and
#: on paper at the width it is placed, and drawn once for both files.
CHART_DPI = 110

#: The files of a report card, by suffix, and what a link to each says.
REPORT_CARD_SUFFIXES: dict[str, str] = {
    ".pptx": "Slides (PowerPoint)",
    ".pdf": "Report card (PDF)",
}

#: The date inside the files when there are no data (no measured period yet).
_NO_DATE = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

#: How a date reads ("22 Dec 2025").
_DATE = column_format("start")

_MARKDOWN_TOKEN = re.compile(r"\\(.)|\*+")


def _markdown_plain(text: str) -> str:
    """A line of :func:`~qi_helpers.changes.what_next.what_next`'s Markdown as plain text: its
    emphasis dropped, its escapes (``\\*``, ``&lt;``) turned back into the data's characters."""
    return html.unescape(_MARKDOWN_TOKEN.sub(lambda m: m.group(1) or "", text))


def advice_lines(markdown: str) -> tuple[list[str], str]:
    """``what_next``'s Markdown as plain items (sub-items start with two spaces) and its note."""
    items, note = [], ""
    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("**What next:**"):  # the heading, or the whole advice
            stripped = stripped.removeprefix("**What next:**").strip()
            if stripped:
                items.append(clean_text(_markdown_plain(stripped)))
            continue
        if not stripped:
            continue
        if stripped.startswith("- "):
            indent = "  " if line.startswith("  ") else ""
            items.append(indent + clean_text(_markdown_plain(stripped[2:])))
        else:
            note = clean_text(_markdown_plain(stripped))
    return items, note


def _icon_text(table: dict[str, tuple[str, str, str]], key: str, empty: str) -> str:
    return table[key][2] if key in table else empty


def chart_png(item: ChangeAnalysis, *, dpi: int = CHART_DPI) -> tuple[bytes, str]:
    """One measure's chart as PNG bytes (drawn once), and its alternative text."""
    if item.chart.empty:
        return b"", ""
    fig = plot_change(item)
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    name = clean_text(item.measure.get("name", item.measure_id))
    alt = f"Run or control chart of {name} by period, with its PDSA cycles marked."
    screen = active_screen()
    if screen is not None:
        alt, _ = screen.redact(alt)
    return buffer.getvalue(), alt


def _cycles(pdsa: pd.DataFrame, measure_id: str) -> list[list[str]]:
    """The PDSA cycles of the changes that concern one measure, as text cells."""
    rows = []
    for _, r in pdsa.iterrows():
        if not applies_to_measure(r.get("measure_ids"), measure_id):
            continue
        rows.append(
            [
                clean_text(r.get("cycle_id")),
                clean_text(r.get("change")),
                clean_text(format_value(r.get("start"), _DATE)),
                clean_text(format_value(r.get("end"), _DATE)),
                clean_text(r.get("decision")) or "ongoing",
                clean_text(r.get("result")),
            ]
        )
    return rows


def _unit(row: dict[str, object], unit: object) -> str:
    """A measure's unit: the catalogue's, else ``%`` for a proportion (as the summary cards)."""
    if not is_missing(unit):
        return str(unit)
    return "%" if str(row.get("effect_kind", "")) == "difference in proportions" else ""


def _measure_card(
    summary: dict[str, str],
    rows: pd.DataFrame,
    pdsa: pd.DataFrame,
    chart: tuple[bytes, str],
    unit: object = None,
) -> MeasureCard:
    """One measure's card from its summary row, its verdict rows and its chart."""
    verdicts = []
    for r in rows.to_dict("records"):
        effect = clean_text(effect_sentence(r, _unit(r, unit)))
        verdicts.append((clean_text(r.get("change")), clean_text(r.get("verdict")), effect))
    latest = summary["latest"]
    if latest and summary["last_period"]:
        latest = f"{latest} ({summary['last_period']})"
    return MeasureCard(
        measure_id=summary["measure_id"],
        name=clean_text(summary["name"]),
        verdict=clean_text(summary["verdict"]),
        variation=_icon_text(VARIATION_BADGES, summary["variation_icon"], "No variation icon"),
        assurance=_icon_text(ASSURANCE_BADGES, summary["assurance_icon"], "No target to assure"),
        latest=clean_text(latest),
        verdicts=verdicts,
        reasons=[t for t in map(clean_text, rows.get("reason", pd.Series(dtype=object))) if t],
        cycles=_cycles(pdsa, summary["measure_id"]),
        chart_png=chart[0],
        chart_alt=chart[1],
    )


def _data_date(verdicts: pd.DataFrame) -> dt.datetime:
    """The last measured period, as a UTC date (a fixed date without data)."""
    last = pd.to_datetime(verdicts.get("last_period", pd.Series(dtype="datetime64[ns]")))
    if last.notna().any():
        day = last.max()
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return _NO_DATE


def _period(analysis: MicrosystemAnalysis) -> str:
    """``Data: 6 Jan 2025 to 22 Dec 2025`` from the charts' periods (``""`` without data)."""
    xs = [a.chart["x"] for a in analysis.analyses if not a.chart.empty]
    if not xs:
        return ""
    first = min(pd.to_datetime(x).min() for x in xs)
    last = max(pd.to_datetime(x).max() for x in xs)
    return f"Data: {format_value(first, _DATE)} to {format_value(last, _DATE)}"


def report_card(analysis: MicrosystemAnalysis, *, name: str = "") -> ReportCard:
    """What a microsystem's slides and PDF show, from workbook 03's analysis.

    Parameters
    ----------
    analysis : MicrosystemAnalysis
        From :func:`~qi_helpers.changes.microsystem.analyse_microsystem`.
    name : str
        The microsystem's name (workbook 01's registry); default its id.

    Returns
    -------
    ReportCard
        One :class:`MeasureCard` per measure with results, in the report's order, each with its
        chart drawn once; the "what next" advice as plain lines. Text from data passed the
        active identifier screen first.
    """
    verdicts, pdsa, measures = analysis.verdicts, analysis.pdsa, analysis.measures
    screen = active_screen()
    if screen is not None:
        verdicts, _ = screen.redact_frame(verdicts)
        pdsa, _ = screen.redact_frame(pdsa)
        measures, _ = screen.redact_frame(measures)
        name, _ = screen.redact(name)
    summary = measure_summary(verdicts, measures)
    charts = {a.measure_id: a for a in analysis.analyses}
    units = {}
    if {"measure_id", "unit"} <= set(measures.columns):
        units = dict(zip(measures["measure_id"].astype(str), measures["unit"], strict=True))
    cards = []
    for row in summary.to_dict("records"):
        rows = verdicts[verdicts["measure_id"] == row["measure_id"]]
        item = charts.get(row["measure_id"])
        chart = chart_png(item) if item is not None else (b"", "")
        cards.append(_measure_card(row, rows, pdsa, chart, units.get(row["measure_id"])))
    items, note = advice_lines(what_next(verdicts))
    ms_id = clean_text(analysis.microsystem_id)
    period = _period(analysis)
    return ReportCard(
        microsystem_id=ms_id,
        title=f"Tests of change: {clean_text(name) or ms_id}",
        subtitle=f"Microsystem {ms_id}" + (f" · {period}" if period else ""),
        date=_data_date(verdicts),
        measures=cards,
        what_next=items,
        note=note,
    )


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` atomically unless the file already holds exactly these bytes."""
    if path.is_file() and not path.is_symlink() and sha256_file(path) == sha256_bytes(data):
        return False
    write_bytes(path, data)
    return True


def _registry_name(registry: pd.DataFrame | None, microsystem_id: str) -> str:
    """The microsystem's name in workbook 01's registry (``""`` when it has none)."""
    if registry is None or registry.empty or "name" not in registry.columns:
        return ""
    table = registry.reset_index() if "microsystem_id" not in registry.columns else registry
    names = table.loc[table["microsystem_id"].astype(str) == microsystem_id, "name"]
    return clean_text(names.iloc[0]) if len(names) else ""


def write_report_card(
    analysis: MicrosystemAnalysis,
    project: Project | str | Path,
    *,
    registry: pd.DataFrame | None = None,
) -> list[Path]:
    """Write a microsystem's slides (``.pptx``) and printable report card (``.pdf``).

    Parameters
    ----------
    analysis : MicrosystemAnalysis
        From :func:`~qi_helpers.changes.microsystem.analyse_microsystem`.
    project : Project, or a folder
        The files go to ``project.report_cards_dir`` (``outputs/report_cards/``), or into the
        folder given, as ``<microsystem_id>.pptx`` and ``<microsystem_id>.pdf`` (safe names).
    registry : DataFrame, optional
        Workbook 01's registry, for the microsystem's name in the title.

    Returns
    -------
    list of Path
        The two files. A file whose bytes did not change is left as it was (not rewritten).
    """
    folder = Path(getattr(project, "report_cards_dir", project))
    ms_id = analysis.microsystem_id
    card = report_card(analysis, name=_registry_name(registry, ms_id))
    paths = []
    for suffix, make in ((".pptx", slides_bytes), (".pdf", pdf_bytes)):
        path = inside(folder, folder / f"{safe_filename(ms_id)}{suffix}")
        write_if_changed(path, make(card))
        paths.append(path)
    return paths
