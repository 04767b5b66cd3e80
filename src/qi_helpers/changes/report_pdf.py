"""A microsystem's report card as a printable PDF (A4), made with fpdf2.

The same content as the slides (:mod:`qi_helpers.changes.slides`), laid out for paper: the
title and an "at a glance" table of every measure's verdict and icons; then one section per
measure (its verdicts with their effects in words, the icons, the latest value, its chart and
every PDSA cycle of its changes, notes included), each kept on one page when it fits; then
what next. A footer numbers the pages.

Why fpdf2 rather than matplotlib's PDF backend (already installed) or an HTML-to-PDF library:

- text flows: paragraphs wrap and tables grow and break across pages by themselves, where a
  matplotlib figure would need every line placed and every page break computed by hand;
- the text is real text, so the PDF can be searched, read aloud, and its text read back by the
  privacy screen before publishing. When every character of the report card is in Latin-1 (as
  in most English names), it is set in Helvetica, one of the PDF's standard fonts (nothing to
  embed or parse: reading a TrueType font costs about a second a document); otherwise in the
  DejaVu Sans that matplotlib ships (so no font is installed), embedded as a subset with its
  map back to Unicode;
- a chart goes in as the very PNG bytes drawn once for the slides, not re-rasterised;
- it is pure Python and installs from PyPI with no system package (its own dependencies, Pillow,
  fontTools and defusedxml, were already installed); WeasyPrint would need Pango.

The file is byte-reproducible: its creation date is the data's date (no clock is read).
"""

from __future__ import annotations

from functools import cache
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qi_helpers.changes.card_content import CYCLE_COLUMNS

if TYPE_CHECKING:
    from qi_helpers.changes.card_content import MeasureCard, ReportCard

__all__ = ["FONT", "font_files", "pdf_bytes"]

#: The font family of a report card with characters beyond Latin-1 (DejaVu Sans, shipped with
#: matplotlib); others use Helvetica, a standard PDF font.
FONT = "DejaVu"

#: A measure's section starts on a new page unless this much height (mm) is left: its
#: heading, verdicts and chart stay together.
_SECTION_MM = 135

_GREY = (66, 85, 99)
_BLUE = (0, 48, 135)
_VERDICT_COLOURS = {
    "improved": (0, 127, 59),
    "worsened": (218, 41, 28),
    "no signal yet": (138, 109, 0),
    "too little data": (138, 109, 0),
}


@cache
def font_files() -> dict[str, Path]:
    """DejaVu Sans regular and bold, from matplotlib's own data folder."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return {"": folder / "DejaVuSans.ttf", "B": folder / "DejaVuSans-Bold.ttf"}


def _texts(card: ReportCard) -> list[str]:
    """Every text from data the report card shows."""
    texts = [card.title, card.subtitle, card.note, *card.what_next]
    for m in card.measures:
        texts += [m.name, m.verdict, m.variation, m.assurance, m.latest, m.chart_alt]
        texts += [text for row in m.verdicts for text in row]
        texts += [text for row in m.cycles for text in row]
    return texts


def _latin1(card: ReportCard) -> bool:
    """Whether every character of the report card is in Latin-1 (a standard font has it)."""
    try:
        "".join(_texts(card)).encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _new_pdf(card: ReportCard) -> Any:
    """An A4 document with the font, metadata and footer of the report card."""
    from fpdf import FPDF

    family = "helvetica" if _latin1(card) else FONT

    class _Card(FPDF):  # type: ignore[misc]
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font(family, size=8)
            self.set_text_color(*_GREY)
            self.cell(0, 5, f"{card.title} · page {self.page_no()} of {{nb}}", align="C")

    pdf = _Card(orientation="portrait", unit="mm", format="A4")
    pdf.qi_font = family
    if family == FONT:
        for style, path in font_files().items():
            pdf.add_font(FONT, style=style, fname=str(path))
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(True, margin=18)
    pdf.set_creation_date(card.date)
    pdf.set_title(card.title)
    pdf.set_subject(card.subtitle)
    pdf.set_author("qi_helpers")
    pdf.set_creator("qi_helpers")
    pdf.set_lang("en-GB")
    return pdf


def _write(pdf: Any, text: str, *, size: float = 10, style: str = "", colour=(35, 31, 32),
           height: float = 5.0) -> None:  # fmt: skip
    """One paragraph, wrapped to the page width."""
    if style == "I" and pdf.qi_font == FONT:  # DejaVu is embedded upright and bold only
        style = ""
    pdf.set_font(pdf.qi_font, style=style, size=size)
    pdf.set_text_color(*colour)
    pdf.multi_cell(0, height, text, align="L", new_x="LMARGIN", new_y="NEXT")


def _table(pdf: Any, rows: list[list[str]], widths: tuple[float, ...], size: float = 8.5) -> None:
    """A table with a heading row (its first row), wrapped cells, breaking across pages."""
    pdf.set_font(pdf.qi_font, size=size)
    pdf.set_text_color(35, 31, 32)
    with pdf.table(col_widths=widths, text_align="LEFT", line_height=size * 0.5,
                   first_row_as_headings=True) as table:  # fmt: skip
        for values in rows:
            row = table.row()
            for value in values:
                row.cell(value)
    pdf.ln(3)


def _glance(pdf: Any, card: ReportCard) -> None:
    """The first page's table: every measure's verdict, latest value and icons."""
    _write(pdf, "At a glance", size=13, style="B", colour=_BLUE, height=8)
    rows = [["Measure", "Verdict", "Latest", "Variation", "Assurance"]]
    for m in card.measures:
        rows.append([m.name, m.verdict, m.latest, m.variation, m.assurance])
    if len(rows) == 1:
        _write(pdf, "No measure with results yet.")
        return
    _table(pdf, rows, (34, 16, 18, 16, 16))


def _section(pdf: Any, m: MeasureCard) -> None:
    """One measure: heading, verdicts and effects, icons, latest value, chart, PDSA cycles."""
    if pdf.will_page_break(_SECTION_MM):
        pdf.add_page()
    else:
        pdf.ln(4)
    _write(pdf, m.name, size=14, style="B", colour=_BLUE, height=7)
    colour = _VERDICT_COLOURS.get(m.verdict, _GREY)
    _write(pdf, f"Verdict: {m.verdict}", size=12, style="B", colour=colour, height=6)
    _write(pdf, f"{m.variation}. {m.assurance}.", size=9, colour=_GREY)
    if m.latest:
        _write(pdf, f"Latest: {m.latest}", size=10, style="B")
    for change, verdict, effect in m.verdicts:
        if change:
            _write(pdf, f"After {change}: {verdict}", size=10, style="B")
        if effect:
            _write(pdf, effect, size=10)
    if m.chart_png:
        pdf.ln(2)
        pdf.image(BytesIO(m.chart_png), w=pdf.epw, alt_text=m.chart_alt)
    pdf.ln(2)
    if m.cycles:
        _write(pdf, "PDSA cycles of its changes", size=10, style="B", height=6)
        _table(pdf, [CYCLE_COLUMNS, *m.cycles], (20, 30, 17, 17, 14, 42), size=8)
    else:
        _write(pdf, "No PDSA cycle logged for this measure yet.", size=9, colour=_GREY)


def _what_next(pdf: Any, card: ReportCard) -> None:
    if pdf.will_page_break(40):
        pdf.add_page()
    else:
        pdf.ln(4)
    _write(pdf, "What next", size=14, style="B", colour=_BLUE, height=7)
    for item in card.what_next or ["No advice yet: no verdict to act on."]:
        sub = item.startswith("  ")
        pdf.set_x(pdf.l_margin + (8 if sub else 0))
        pdf.set_font(pdf.qi_font, size=10)
        pdf.set_text_color(35, 31, 32)
        pdf.multi_cell(0, 5, ("· " if sub else "- ") + item.strip(), align="L", new_x="LMARGIN",
                       new_y="NEXT")  # fmt: skip
        pdf.ln(1)
    if card.note:
        pdf.ln(2)
        _write(pdf, card.note, size=9, style="I", colour=_GREY)


def pdf_bytes(card: ReportCard) -> bytes:
    """The report card as an A4 PDF (see the module's notes)."""
    pdf = _new_pdf(card)
    pdf.add_page()
    _write(pdf, card.title, size=20, style="B", colour=_BLUE, height=10)
    _write(pdf, card.subtitle, size=10, colour=_GREY)
    _write(pdf, "Aggregated results only: identifiers of patients, encounters and staff are "
           "removed before publishing.", size=8, colour=_GREY)  # fmt: skip
    pdf.ln(4)
    _glance(pdf, card)
    for measure in card.measures:
        _section(pdf, measure)
    _what_next(pdf, card)
    return bytes(pdf.output())
