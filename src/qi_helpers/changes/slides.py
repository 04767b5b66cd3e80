"""A microsystem's report card as slides for the team huddle (python-pptx, 16:9).

A title slide; one slide per measure with its chart, its verdicts and their effects in words,
the Making Data Count icons in words, and the PDSA cycles of its changes (the verdicts in words
are in the speaker notes); a "what next" slide. The content is a
:class:`~qi_helpers.changes.report_card.ReportCard`: nothing is computed here.

Every slide has a title (screen readers and the outline view use it) and every chart its
alternative text. The file is byte-reproducible: its core properties carry the data's date, and
its zip entries are dated 1 Jan 1980 in the order python-pptx writes them.
"""

from __future__ import annotations

import zipfile
from io import BytesIO
from typing import TYPE_CHECKING, Any

from qi_helpers.changes.card_content import CYCLE_COLUMNS

if TYPE_CHECKING:
    from qi_helpers.changes.card_content import MeasureCard, ReportCard

__all__ = ["MAX_CYCLE_ROWS", "slides_bytes", "stable_zip"]

#: PDSA cycles listed on a measure's slide (the PDF lists them all).
MAX_CYCLE_ROWS = 5

#: A result note longer than this is cut on a slide (the PDF shows it whole).
_MAX_NOTE = 80

#: The verdict's colour (NHS identity colours: green, red, warm yellow, mid grey).
_VERDICT_COLOURS = {
    "improved": "007F3B",
    "worsened": "DA291C",
    "no signal yet": "8A6D00",
    "too little data": "8A6D00",
}
_GREY = "425563"
_BLUE = "003087"

#: Layouts of python-pptx's default template.
_TITLE_SLIDE, _TITLE_AND_CONTENT, _TITLE_ONLY = 0, 1, 5


def stable_zip(data: bytes) -> bytes:
    """The same zip with every entry dated 1 Jan 1980 (so the same content, the same bytes)."""
    out = BytesIO()
    with zipfile.ZipFile(BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            target.writestr(entry, source.read(info.filename))
    return out.getvalue()


def _cut(text: str, limit: int = _MAX_NOTE) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _paragraphs(frame: Any, lines: list[tuple[str, int, bool, str]]) -> None:
    """Fill a text frame: one paragraph per ``(text, points, bold, colour)``."""
    from pptx.dml.color import RGBColor
    from pptx.util import Pt

    frame.word_wrap = True
    for i, (text, size, bold, colour) in enumerate(lines):
        paragraph = frame.paragraphs[0] if i == 0 else frame.add_paragraph()
        run = paragraph.add_run()
        run.text = text
        run.font.size = Pt(size)
        run.font.bold = bold
        run.font.color.rgb = RGBColor.from_string(colour)
        paragraph.space_after = Pt(4)


def _title(slide: Any, text: str, *, top: float = 0.3, height: float = 0.9, size: int = 28) -> None:
    """Place and fill the slide's title placeholder (the default template is 4:3)."""
    from pptx.util import Inches

    title = slide.shapes.title
    title.left, title.top = Inches(0.5), Inches(top)
    title.width, title.height = Inches(12.33), Inches(height)
    title.text_frame.clear()
    _paragraphs(title.text_frame, [(text, size, True, _BLUE)])


def _title_slide(prs: Any, card: ReportCard) -> None:
    from pptx.util import Inches

    slide = prs.slides.add_slide(prs.slide_layouts[_TITLE_SLIDE])
    _title(slide, card.title, top=1.6, height=1.4, size=36)
    body = slide.placeholders[1]
    body.left, body.top, body.width, body.height = (Inches(0.5), Inches(3.2), Inches(12.33),
                                                    Inches(3.6))  # fmt: skip
    lines = [(card.subtitle, 18, False, _GREY)]
    for m in card.measures:
        lines.append((f"{m.name}: {m.verdict}", 16, False, _VERDICT_COLOURS.get(m.verdict, _GREY)))
    body.text_frame.clear()
    _paragraphs(body.text_frame, lines)


def _panel_lines(m: MeasureCard) -> list[tuple[str, int, bool, str]]:
    """The text beside a measure's chart: verdict, icons, latest value, effects."""
    lines = [(f"Verdict: {m.verdict}", 20, True, _VERDICT_COLOURS.get(m.verdict, _GREY))]
    lines.append((m.variation, 12, False, _GREY))
    lines.append((m.assurance, 12, False, _GREY))
    if m.latest:
        lines.append((f"Latest: {m.latest}", 14, True, "231F20"))
    for change, verdict, effect in m.verdicts:
        if change:
            lines.append((f"After {change}: {verdict}", 12, True, "231F20"))
        if effect:
            lines.append((effect, 11, False, "231F20"))
    return lines


def _cycle_table(slide: Any, m: MeasureCard, top: float) -> None:
    """The PDSA cycles of the measure's changes, at most :data:`MAX_CYCLE_ROWS` of them."""
    from pptx.util import Inches, Pt

    shown = m.cycles[:MAX_CYCLE_ROWS]
    if not shown:
        box = slide.shapes.add_textbox(Inches(0.5), Inches(top), Inches(12.33), Inches(0.5))
        _paragraphs(box.text_frame, [("No PDSA cycle logged for this measure yet.", 12, False,
                                      _GREY)])  # fmt: skip
        return
    rows = len(shown) + 1 + (len(m.cycles) > len(shown))
    shape = slide.shapes.add_table(rows, len(CYCLE_COLUMNS), Inches(0.5), Inches(top),
                                   Inches(12.33), Inches(0.3 * rows))  # fmt: skip
    table = shape.table
    for i, width in enumerate((1.7, 2.6, 1.2, 1.2, 1.0, 4.63)):
        table.columns[i].width = Inches(width)
    cells = [CYCLE_COLUMNS, *[[r[0], _cut(r[1], 40), *r[2:5], _cut(r[5])] for r in shown]]
    if len(m.cycles) > len(shown):
        more = len(m.cycles) - len(shown)
        cells.append([f"and {more} more", "", "", "", "", "every cycle is in the PDF report card"])
    for r, values in enumerate(cells):
        for c, value in enumerate(values):
            cell = table.cell(r, c)
            cell.text = value
            for paragraph in cell.text_frame.paragraphs:
                for run in paragraph.runs:
                    run.font.size = Pt(11)


def _measure_slide(prs: Any, m: MeasureCard) -> None:
    from pptx.enum.text import MSO_AUTO_SIZE
    from pptx.util import Inches

    slide = prs.slides.add_slide(prs.slide_layouts[_TITLE_ONLY])
    _title(slide, m.name)
    if m.chart_png:
        picture = slide.shapes.add_picture(BytesIO(m.chart_png), Inches(0.5), Inches(1.25),
                                           width=Inches(8.0))  # fmt: skip
        picture._element.nvPicPr.cNvPr.set("descr", m.chart_alt)
    else:
        box = slide.shapes.add_textbox(Inches(0.5), Inches(1.25), Inches(8.0), Inches(1.0))
        _paragraphs(box.text_frame, [("No measured data yet.", 16, False, _GREY)])
    panel = slide.shapes.add_textbox(Inches(8.7), Inches(1.25), Inches(4.13), Inches(3.75))
    _paragraphs(panel.text_frame, _panel_lines(m))
    panel.text_frame.auto_size = MSO_AUTO_SIZE.TEXT_TO_FIT_SHAPE
    _cycle_table(slide, m, top=5.2)
    if m.reasons:
        slide.notes_slide.notes_text_frame.text = "\n".join(m.reasons)


def _what_next_slide(prs: Any, card: ReportCard) -> None:
    from pptx.enum.text import MSO_AUTO_SIZE
    from pptx.util import Inches, Pt

    slide = prs.slides.add_slide(prs.slide_layouts[_TITLE_AND_CONTENT])
    _title(slide, "What next")
    body = slide.placeholders[1]
    body.left, body.top, body.width, body.height = (Inches(0.5), Inches(1.3), Inches(12.33),
                                                    Inches(5.9))  # fmt: skip
    frame = body.text_frame
    frame.clear()
    items = card.what_next or ["No advice yet: no verdict to act on."]
    _paragraphs(frame, [(item.strip(), 18 if not item.startswith("  ") else 16, False, "231F20")
                        for item in items])  # fmt: skip
    for paragraph, item in zip(frame.paragraphs, items, strict=True):
        paragraph.level = 1 if item.startswith("  ") else 0
    if card.note:
        paragraph = frame.add_paragraph()
        run = paragraph.add_run()
        run.text = card.note
        run.font.italic = True
        run.font.size = Pt(14)
    frame.auto_size = MSO_AUTO_SIZE.TEXT_TO_FIT_SHAPE


def slides_bytes(card: ReportCard) -> bytes:
    """The report card as a 16:9 PowerPoint file (see the module's notes)."""
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(13.333), Inches(7.5)
    _title_slide(prs, card)
    for measure in card.measures:
        _measure_slide(prs, measure)
    _what_next_slide(prs, card)
    props = prs.core_properties
    props.title = card.title[:255]  # the format's limit
    props.subject = card.subtitle[:255]
    props.author = props.last_modified_by = "qi_helpers"
    props.keywords = props.comments = props.category = ""
    props.revision = 1
    props.created = props.modified = props.last_printed = card.date.replace(tzinfo=None)
    buffer = BytesIO()
    prs.save(buffer)
    return stable_zip(buffer.getvalue())
