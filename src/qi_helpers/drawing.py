"""Figures whose text is safe: every figure of ``qi_helpers`` is made here.

A figure draws text that comes from data: change names, cycle ids, microsystem ids, categories
on an axis. Two things can go wrong with it, and both are handled once, at draw time, for every
text of the figure (titles, labels, annotations, legends, table cells, text boxes and the tick
labels that axes make while drawing):

- matplotlib reads ``$...$`` as mathtext, so a ``$`` pair in a name changes what is shown or
  makes drawing raise (``ParseException``). A :class:`ScreenedFigure` draws with
  ``text.parse_math`` off, so ``$`` and backslashes show as themselves; data text needs no
  escaping;
- control characters from data (a backspace in a name) are drawn as empty boxes and make the
  SVG of the figure invalid XML (matplotlib writes each text into it, in a comment at least):
  they are dropped, as are lone surrogates (replaced), which no output can encode;
- a text may hold a patient or staff identifier (a cycle id ending in a patient id). The screen
  of the running project (:func:`qi_helpers.privacy.screen.active_screen`) removes it from
  whatever the figure draws; :attr:`ScreenedFigure.redactions` says how many were removed.

Figures are never registered with pyplot (a notebook shows each once, as the cell's value);
:mod:`qi_helpers.notebook_display` shows them through IPython's PNG formatter, which saves the
figure and so goes through :meth:`ScreenedFigure.draw`.
"""

from __future__ import annotations

import contextlib
import re
import weakref
from collections.abc import Iterator
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.axis import Tick
from matplotlib.figure import Figure
from matplotlib.table import Table
from matplotlib.text import Text
from matplotlib.ticker import Formatter

from qi_helpers.privacy.screen import active_screen

__all__ = [
    "CATEGORY_COLOURS",
    "DECISION_COLOURS",
    "OKABE_ITO",
    "ScreenedFigure",
    "ScreeningFormatter",
    "figure",
    "plain_text",
    "subplots",
]

#: The Okabe-Ito colour-blind-safe palette (Okabe & Ito 2008), by name: the one palette of every
#: figure of ``qi_helpers``.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

#: The order in which categories (microsystems, waves, ...) take the palette's colours, then grey.
CATEGORY_COLOURS: list[str] = [
    *(OKABE_ITO[name] for name in ("orange", "sky_blue", "bluish_green", "yellow", "blue")),
    *(OKABE_ITO[name] for name in ("vermillion", "reddish_purple", "black")),
    "#999999",
]

#: The colour of each PDSA decision.
DECISION_COLOURS: dict[str, str] = {
    "adopt": OKABE_ITO["bluish_green"],
    "adapt": OKABE_ITO["orange"],
    "abandon": OKABE_ITO["vermillion"],
    "ongoing": OKABE_ITO["sky_blue"],
}

# rc settings under which text is drawn as itself: Texts created under them (such as tick
# labels an axis adds while drawing) take parse_math from here.
_PLAIN_RC = {"text.parse_math": False}


@contextlib.contextmanager
def plain_text() -> Iterator[None]:
    """Within the block, new Text artists show ``$`` and backslashes as themselves.

    For code that measures text before the figure is drawn (seaborn's heatmap does, to decide
    whether to turn its tick labels), which would otherwise parse it as mathtext.
    """
    with matplotlib.rc_context(_PLAIN_RC):
        yield


# Characters XML 1.0 does not allow (tab and newline are kept: they lay text out), and C1
# controls; then lone surrogates, which no encoding writes.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _safe(text: str, screen: Any) -> tuple[str, int]:
    """``text`` without control characters and, when ``screen`` is given, identifiers; and how
    many identifiers were removed."""
    if not text:
        return text, 0
    text = _SURROGATE.sub("\ufffd", _CONTROL.sub("", text))
    return screen.redact(text) if screen is not None else (text, 0)


class ScreeningFormatter(Formatter):
    """A tick formatter that screens the labels of the formatter it wraps.

    Everything is delegated to ``inner``; the labels, the offset text and the cursor readout it
    returns go through the active identifier screen. Categorical axes label their ticks with
    data strings at draw time, so screening the texts that exist before drawing is not enough.

    Parameters
    ----------
    inner : matplotlib.ticker.Formatter
        The axis' formatter.

    Attributes
    ----------
    redactions : int
        Identifiers removed from the labels of the latest :meth:`format_ticks` call (the ticks
        last drawn; layout engines format the same ticks several times a draw). Axes that
        share a formatter (``sharex``/``sharey``) count the labels of the last one drawn.
    """

    def __init__(self, inner: Formatter) -> None:
        self._inner = inner
        self.redactions = 0

    @property
    def inner(self) -> Formatter:
        """The wrapped formatter."""
        return self._inner

    def __getattr__(self, name: str) -> Any:
        # Anything else a caller asks of the formatter (set_useOffset, offset_string...) is the
        # wrapped one's. Read through __dict__ so that an unpickled, not yet filled instance
        # does not recurse.
        inner = self.__dict__.get("_inner")
        if inner is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(inner, name)

    @staticmethod
    def _clean(label: str) -> tuple[str, int]:
        return _safe(label, active_screen())

    @property
    def locs(self) -> Any:  # Formatter.locs is a class attribute: use the inner one's
        return self._inner.locs

    @locs.setter
    def locs(self, value: Any) -> None:
        self._inner.locs = value

    def set_axis(self, axis: Any) -> None:
        # docstring inherited
        self.axis = axis
        self._inner.set_axis(axis)

    def create_dummy_axis(self, **kwargs: Any) -> None:
        # docstring inherited
        self._inner.create_dummy_axis(**kwargs)
        self.axis = self._inner.axis

    def _set_locator(self, locator: Any) -> None:
        self._inner._set_locator(locator)

    def set_locs(self, locs: Any) -> None:
        # docstring inherited
        self._inner.set_locs(locs)

    def __call__(self, x: Any, pos: int | None = None) -> str:
        return self._clean(self._inner(x, pos))[0]

    def format_ticks(self, values: Any) -> list[str]:
        # docstring inherited
        cleaned = [self._clean(label) for label in self._inner.format_ticks(values)]
        self.redactions = sum(n for _, n in cleaned)
        return [label for label, _ in cleaned]

    def format_data(self, value: Any) -> str:
        # docstring inherited
        return self._clean(self._inner.format_data(value))[0]

    def format_data_short(self, value: Any) -> str:
        # docstring inherited
        return self._clean(self._inner.format_data_short(value))[0]

    def get_offset(self) -> str:
        # docstring inherited
        return self._clean(self._inner.get_offset())[0]


def _axes_axis(ax: Any) -> Iterator[Any]:
    """The axes' x, y (and z, in 3D) axes."""
    for name in ("xaxis", "yaxis", "zaxis"):
        axis = getattr(ax, name, None)
        if axis is not None:
            yield axis


def _wrap_formatters(fig: Figure) -> list[ScreeningFormatter]:
    """Wrap every axis' major and minor formatter (once) and return the wrappers, each once
    (shared axes share their formatters)."""
    wrappers: dict[int, ScreeningFormatter] = {}
    # findobj also reaches inset axes and subfigures' axes; colorbars are axes too
    for ax in {id(a): a for a in fig.findobj(Axes)}.values():
        for axis in _axes_axis(ax):
            # set_*_formatter marks the formatter as chosen by the user, which would stop a
            # later unit change from installing its own: keep the axis' flags as they were.
            defaults = (axis.isDefault_majfmt, axis.isDefault_minfmt)
            for level, setter in ((axis.major, axis.set_major_formatter),
                                  (axis.minor, axis.set_minor_formatter)):  # fmt: skip
                if not isinstance(level.formatter, ScreeningFormatter):
                    setter(ScreeningFormatter(level.formatter))
                wrappers[id(level.formatter)] = level.formatter
            axis.isDefault_majfmt, axis.isDefault_minfmt = defaults
    return list(wrappers.values())


def _texts(fig: Figure) -> Iterator[tuple[Text, bool]]:
    """Every Text of the figure, and whether it is a tick label (set again from the formatter
    at draw time). Table cells hold their Text outside the artist tree: added by hand."""
    ticks = {id(label) for tick in fig.findobj(Tick) for label in (tick.label1, tick.label2)}
    for artist in fig.findobj(lambda a: isinstance(a, (Text, Table))):
        if isinstance(artist, Table):
            for cell in artist.get_celld().values():
                yield cell.get_text(), False
        else:
            yield artist, id(artist) in ticks


class _NoScreen:
    """Stands for "no active screen" where a screen is held weakly."""


_NO_SCREEN = _NoScreen()


class ScreenedFigure(Figure):
    """A :class:`matplotlib.figure.Figure` that draws its text as plain, screened text.

    At every draw (``savefig``, a notebook's PNG display, ``canvas.draw``):

    - text is drawn with ``text.parse_math`` off, so ``$`` and ``\\`` show as themselves and
      no name from data can make drawing raise;
    - every text of the figure is screened with :func:`qi_helpers.privacy.screen.active_screen`
      (when a project's screen is active): the Text artists' text is replaced by the screened
      text, and each axis' formatters are wrapped in a :class:`ScreeningFormatter` so that tick
      labels made while drawing are screened too.

    Make one with :func:`figure` or :func:`subplots`.

    Attributes
    ----------
    redactions : int
        How many identifiers were removed from the text the figure showed at its latest draw
        (0 before the first draw, and when no screen was ever active), so that a caller can
        report them.
    caption, alt : str
        What the chart shows in words and its alt text (set by the drawing function with
        :func:`qi_helpers.chart_display.with_caption`; a notebook shows them with the chart).
    """

    redactions: int = 0
    #: What the chart shows, in words (a page's ``<figcaption>``); empty when none was written.
    caption: str = ""
    #: The chart's alt text for screen readers; empty: the caption, else its titles and labels
    #: (:func:`qi_helpers.chart_display.chart_html`).
    alt: str = ""
    _qi_generation: int = 0

    def _generation(self, screen: Any) -> int:
        """A number that changes whenever the active screen does, so that texts screened under
        another screen are screened again. The screen is held weakly (a screen freed and a new
        one made at the same address are told apart) and never pickled with the figure (it
        holds the identifiers)."""
        key = _NO_SCREEN if screen is None else screen
        ref = self.__dict__.get("_qi_screen_ref")
        if ref is None or ref() is not key:
            self._qi_screen_ref = weakref.ref(key)
            self._qi_generation += 1
        return self._qi_generation

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_qi_screen_ref", None)  # unpickled, the figure screens its texts again
        return state

    def _prepare_text(self) -> dict[int, int]:
        """Make every text plain and screened; the identifiers removed, per non-tick Text."""
        screen = active_screen()
        generation = self._generation(screen)
        counts: dict[int, int] = {}
        for text, is_tick in _texts(self):
            text.set_parse_math(False)
            current = text.get_text()
            # A text screened before keeps its count, so redactions does not drop to 0 on the
            # next draw; a text set anew, or any text under a new screen (or once unpickled),
            # is screened again.
            memo = getattr(text, "_qi_screened", None)
            earlier = memo[2] if memo is not None and memo[1] == current else 0
            if memo is not None and memo[0] == generation and memo[1] == current:
                count = earlier
            else:
                cleaned, found = _safe(current, screen)
                if cleaned != current:
                    text.set_text(cleaned)
                count = earlier + found
                text._qi_screened = (generation, cleaned, count)
            if not is_tick:  # tick labels are counted by their formatters
                counts[id(text)] = count
        return counts

    def draw(self, renderer: Any) -> None:
        """Draw the figure with plain, screened text (see the class docstring)."""
        with plain_text():
            counts = self._prepare_text()
            wrappers = _wrap_formatters(self)
            super().draw(renderer)
        self.redactions = sum(counts.values()) + sum(w.redactions for w in wrappers)

    def get_tightbbox(self, renderer: Any = None, *args: Any, **kwargs: Any) -> Any:
        # savefig(bbox_inches="tight"), as IPython's PNG display does, measures the text
        # between its two draws: measure it as plain text too.
        with plain_text():
            return super().get_tightbbox(renderer, *args, **kwargs)


def figure(**kwargs: Any) -> ScreenedFigure:
    """A new :class:`ScreenedFigure`, not registered with pyplot.

    Parameters
    ----------
    **kwargs
        As :class:`matplotlib.figure.Figure` (``figsize``, ``layout``, ``dpi``...).

    Returns
    -------
    ScreenedFigure
    """
    with plain_text():  # its titles and labels are plain text from the start
        return ScreenedFigure(**kwargs)


def subplots(
    nrows: int = 1,
    ncols: int = 1,
    *,
    figsize: tuple[float, float] | None = None,
    layout: str | None = "tight",
    **kwargs: Any,
) -> tuple[ScreenedFigure, Any]:
    """Like ``pyplot.subplots``, without pyplot: a :class:`ScreenedFigure` and its axes.

    The figure is not registered with pyplot, so a notebook shows it once (as the cell's value)
    and nothing needs closing.

    Parameters
    ----------
    nrows, ncols : int
        The grid of axes.
    figsize : (float, float), optional
        Width and height in inches.
    layout : str or None
        The figure's layout engine (``"tight"`` by default, ``"constrained"``, or None).
    **kwargs
        Passed to :meth:`matplotlib.figure.Figure.subplots` (``squeeze``, ``sharey``,
        ``height_ratios``...).

    Returns
    -------
    fig : ScreenedFigure
    axes : Axes or array of Axes
    """
    fig = figure(figsize=figsize, layout=layout)
    with plain_text():
        axes = fig.subplots(nrows, ncols, **kwargs)
    return fig, axes
