"""Charts for people: full width, text as large as the page's, a caption and alt text in words.

Every figure ``qi_helpers`` draws is a :class:`~qi_helpers.drawing.ScreenedFigure`. A notebook
shows one (:mod:`qi_helpers.notebook_display` registers :func:`chart_html` for it) as one HTML
``<figure class="qi-chart">``: the chart as an inline PNG ``<img>`` whose ``alt`` says what it
shows, and, when the drawing function wrote one, a ``<figcaption>`` that says it in words. The
same HTML is what JupyterLab shows and what the published page carries (nbconvert passes a
notebook's HTML output through; :mod:`qi_helpers.publish.screening` screens its text, alt
attributes included). :class:`Charts` holds several figures shown one per row, in order.

Text size. The page's CSS shows a chart at 100% of the text column's width. The PNG is saved
at ``TEXT_COLUMN_PX / width`` dots per inch, so that it is as wide as the column, and before it
is saved every text of the figure smaller than :func:`min_text_points` is raised to it. The
rule (see :func:`min_text_points`) keeps chart text at least as large as the body text, on the
screen at the page's widest and printed on A4.
"""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Iterable, Iterator, Sequence
from io import BytesIO
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text

from qi_helpers.privacy.html import escape, plain_text
from qi_helpers.privacy.screen import active_screen

__all__ = [
    "BODY_TEXT_PX",
    "PRINT_BODY_PT",
    "PRINT_COLUMN_IN",
    "TEXT_COLUMN_PX",
    "Charts",
    "chart_html",
    "chart_png",
    "chart_text",
    "describe_figure",
    "min_text_points",
    "raise_small_text",
    "with_caption",
]

#: The text column of a report page in CSS px: ``.qi-report`` is at most 1100px wide with 2rem
#: (32px) of padding on each side (``publish/templates/qi_report/report.css``).
TEXT_COLUMN_PX = 1100 - 2 * 32
#: The body text of a report page on the screen, in CSS px (``body { font-size: 16px }``).
BODY_TEXT_PX = 16
#: The text column of a printed page: A4 (210 mm) less the 15 mm margins of ``@page``, in inches.
PRINT_COLUMN_IN = (210 - 2 * 15) / 25.4
#: The body text of a printed page, in points (``@media print { body { font-size: 10pt } }``).
PRINT_BODY_PT = 10

# A figure's tight bounding box can make its PNG wider than the figure (a legend outside the
# axes): the text is raised again for the wider picture, at most this many times.
_FIT_ROUNDS = 3

#: What a figure's ``id`` may be made of (it is written into the page unescaped).
_ANCHOR = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def min_text_points(width_in: float) -> float:
    """The smallest font size, in points, of a chart ``width_in`` inches wide shown full width.

    The rule. A chart ``W`` inches wide is shown at the width of the page's text column,
    ``TEXT_COLUMN_PX`` CSS px: one inch of the figure is ``TEXT_COLUMN_PX / W`` CSS px, and a
    point (1/72 inch) ``TEXT_COLUMN_PX / (72 W)`` px, whatever the PNG's dpi. Text of ``F``
    points is at least the body text when ``F * TEXT_COLUMN_PX / (72 W) >= BODY_TEXT_PX``, that
    is ``F >= BODY_TEXT_PX * 72 * W / TEXT_COLUMN_PX`` (1.11 W). Printed on A4 the column is
    ``PRINT_COLUMN_IN`` wide and the body ``PRINT_BODY_PT``: ``F * PRINT_COLUMN_IN / W >=
    PRINT_BODY_PT``, that is ``F >= PRINT_BODY_PT * W / PRINT_COLUMN_IN`` (1.41 W). The larger
    of the two: 11.3 pt for a chart 8 inches wide.

    Parameters
    ----------
    width_in : float
        The width of the chart as saved, in inches.

    Returns
    -------
    float
    """
    screen = BODY_TEXT_PX * 72 * width_in / TEXT_COLUMN_PX
    printed = PRINT_BODY_PT * width_in / PRINT_COLUMN_IN
    return max(screen, printed)


def raise_small_text(fig: Figure, points: float) -> int:
    """Raise every text of ``fig`` smaller than ``points`` to ``points`` (in place).

    Titles, labels, legends, annotations, text boxes and the tick labels of every axis (also
    those the axis makes while drawing) are raised; larger text is left as it is.

    Returns
    -------
    int
        How many texts were raised (tick labels counted once per axis).
    """
    raised = 0
    for text in fig.findobj(Text):
        if text.get_text() and text.get_fontsize() < points:
            text.set_fontsize(points)
            raised += 1
    for ax in {id(a): a for a in fig.findobj(Axes)}.values():
        for name in ("x", "y"):
            axis = getattr(ax, f"{name}axis")
            labels = axis.get_ticklabels(which="both")
            if any(label.get_fontsize() < points for label in labels):
                ax.tick_params(axis=name, which="both", labelsize=points)
                raised += 1
    return raised


def _png_width(png: bytes) -> int:
    """The width in pixels written in a PNG's header (IHDR)."""
    return int(struct.unpack(">I", png[16:20])[0])


def chart_png(fig: Figure, *, tight: bool = True) -> bytes:
    """The chart as a PNG as wide as the page's text column, its text raised to the rule.

    The figure's text is raised to :func:`min_text_points` of its width, then it is saved at
    ``TEXT_COLUMN_PX / width`` dpi with a tight bounding box (what a notebook shows). When
    the tight box is wider than the figure, the rule is applied again for that width.

    Parameters
    ----------
    fig : Figure
    tight : bool
        False: the whole figure as it is laid out, drawn once (a tight box draws it twice),
        for pages with many figures.

    Returns
    -------
    bytes
        The PNG (no ``Software`` metadata: the same figure gives the same bytes).
    """
    width = float(fig.get_figwidth())
    dpi = TEXT_COLUMN_PX / width
    png = b""
    for _ in range(_FIT_ROUNDS):
        raise_small_text(fig, min_text_points(width))
        buffer = BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight" if tight else None,
                    facecolor="white", metadata={"Software": None})  # fmt: skip
        png = buffer.getvalue()
        shown = _png_width(png) / dpi
        if shown <= width * 1.02:
            break
        width = shown
    return png


def _clean(text: str) -> str:
    """One line of text, with the active identifier screen applied."""
    line = plain_text(text)
    screen = active_screen()
    return screen.redact(line)[0] if screen is not None and line else line


def _axes_words(ax: Axes) -> str:
    """What one axes says of itself: its title, its axes' labels and its legend's entries."""
    title = " ".join(ax.get_title(loc=loc) for loc in ("left", "center", "right")).strip()
    words = [title] if title else []
    across, up = ax.get_xlabel().strip(), ax.get_ylabel().strip()
    if across or up:
        axes = [f"across: {across}" if across else "", f"up: {up}" if up else ""]
        words.append("(" + "; ".join(a for a in axes if a) + ")")
    legend = ax.get_legend()
    if legend is not None:
        entries = [t.get_text() for t in legend.get_texts() if t.get_text()]
        if entries:
            words.append("key: " + ", ".join(entries))
    return " ".join(words)


def describe_figure(fig: Figure, *, limit: int = 600) -> str:
    """Alt text for a figure whose drawing function wrote none: what its titles and axes say.

    Returns
    -------
    str
        ``"Chart: <suptitle>. <title> (across: <x label>; up: <y label>) key: <legend>. ..."``,
        one sentence per axes that says anything, cut at ``limit`` characters.
    """
    parts = []
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_text().strip():
        parts.append(suptitle.get_text().strip())
    for ax in fig.axes:
        words = _axes_words(ax)
        if words and words not in parts:
            parts.append(words)
    text = "Chart: " + ". ".join(parts) if parts else "Chart without a title or labels"
    text = _clean(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def with_caption(
    fig: Figure, caption: str, alt: str | None = None, *, anchor: str | None = None
) -> Figure:
    """Give a figure its caption and alt text (shown by :func:`chart_html`); returns ``fig``.

    Parameters
    ----------
    fig : Figure
    caption : str
        What the chart shows, in words (the ``<figcaption>``).
    alt : str, optional
        The image's alt text; by default the caption.
    anchor : str, optional
        The ``id`` of its ``<figure>``, so that a link on the page (``#<anchor>``) lands on
        it: a letter, then letters, digits, ``-`` and ``_``.

    Raises
    ------
    ValueError
        When ``anchor`` holds other characters.
    """
    if anchor is not None and not _ANCHOR.fullmatch(anchor):
        raise ValueError(
            f"with_caption: anchor {anchor!r}: a letter, then letters, digits, - or _."
        )
    fig.caption = caption
    fig.alt = alt if alt is not None else caption
    fig.anchor = anchor
    return fig


def chart_html(fig: Figure, *, tight: bool = True) -> str:
    """A figure as one ``<figure class="qi-chart">``: image, alt text and caption.

    The caption and alt text are one line each, with identifiers the active screen knows
    removed, and HTML-escaped. A figure without alt text gets :func:`describe_figure`.

    Parameters
    ----------
    fig : Figure
    tight : bool
        As :func:`chart_png`.

    Returns
    -------
    str
    """
    caption = _clean(str(getattr(fig, "caption", "") or ""))
    alt = _clean(str(getattr(fig, "alt", "") or "")) or caption or describe_figure(fig)
    data = base64.b64encode(chart_png(fig, tight=tight)).decode("ascii")
    figcaption = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    anchor = getattr(fig, "anchor", None)
    where = f' id="{anchor}"' if anchor and _ANCHOR.fullmatch(anchor) else ""
    return (
        f'<figure class="qi-chart"{where}><img src="data:image/png;base64,{data}" '
        f'alt="{escape(alt)}">{figcaption}</figure>'
    )


def chart_text(fig: Figure) -> str:
    """A figure as plain text (a notebook's ``text/plain``): its caption, else its alt text."""
    caption = _clean(str(getattr(fig, "caption", "") or ""))
    return caption or _clean(str(getattr(fig, "alt", "") or "")) or describe_figure(fig)


class Charts(Sequence[Figure]):
    """Figures shown one per row, in order, each with its caption: a notebook cell's value.

    A sequence of figures (``len``, indexing, iteration). A notebook shows it as one HTML
    output of one :func:`chart_html` figure per chart, in order; the page's CSS gives each the
    full width of the text column.

    Parameters
    ----------
    figures : iterable of Figure
    """

    def __init__(self, figures: Iterable[Figure]) -> None:
        self._figures = list(figures)

    def __len__(self) -> int:
        return len(self._figures)

    def __getitem__(self, index: Any) -> Any:
        return self._figures[index]

    def __iter__(self) -> Iterator[Figure]:
        return iter(self._figures)

    def __repr__(self) -> str:
        return f"Charts({len(self._figures)} figures)"

    @property
    def captions(self) -> list[str]:
        """Each figure's caption (or alt text), in order."""
        return [chart_text(fig) for fig in self._figures]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        html = "\n".join(chart_html(fig) for fig in self._figures)
        return {"text/html": f'<div class="qi-charts">{html}</div>',
                "text/plain": "\n".join(self.captions)}  # fmt: skip
