"""The privacy pass: identifiers and scripts taken out of a notebook, then out of its page.

Before a notebook is converted, :func:`prepare_notebook` drops what needs a kernel or a script
and removes every identifier the :class:`~qi_helpers.privacy.screen.IdentifierScreen` knows from
its outputs (charts' alt text and captions included: in their HTML, or in an image's metadata),
Markdown cells, error messages and parameters, with a visible note. After
conversion, :func:`sanitise_page` runs the allow-list sanitiser over all that came from the
notebook and :func:`screen_page` screens the whole page's text once more.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nbformat

from qi_helpers.errors import PrivacyError
from qi_helpers.privacy.html import clean_html
from qi_helpers.privacy.screen import IdentifierScreen

#: Output types dropped before conversion: they need a kernel or a script to show anything.
DROPPED_MIMETYPES = (
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.jupyter.widget-state+json",
    "application/javascript",
    "text/javascript",
    "application/vnd.bokehjs_load.v0+json",
    "application/vnd.bokehjs_exec.v0+json",
    "application/vnd.plotly.v1+json",
)

#: Text output types screened for identifiers.
TEXT_MIMETYPES = ("text/html", "text/plain", "text/markdown", "text/latex", "image/svg+xml")

#: Where the template puts the notebook's cells: everything between it and the last
#: ``</main>`` came from the notebook, and only that part is sanitised.
MAIN_OPEN = '<main class="qi-report" id="main">'

#: Removes identifiers from a text: ``(cleaned text, identifiers removed)``.
Scrub = Callable[[str], tuple[str, int]]


@dataclass(frozen=True)
class _Scrub:
    """Remove identifiers from one text of a notebook, or refuse it (``on_identifier``)."""

    screen: IdentifierScreen | None
    on_identifier: str
    where: str

    def __call__(self, text: str) -> tuple[str, int]:
        if self.screen is None or not text:
            return text, 0
        cleaned, n = self.screen.redact(text)
        if n and self.on_identifier == "refuse":
            found = sorted(set(self.screen.find(text)))[:3]
            raise PrivacyError(
                f"{self.where}: an output holds {n} identifier(s) of patients, encounters or "
                f"staff (for example {', '.join(found)}); nothing was published. Remove them "
                "from the workbook's output, or set publish.on_identifier: redact."
            )
        return cleaned, n


def _note_output(count: int) -> nbformat.NotebookNode:
    """The visible note under an output that lost ``count`` identifiers."""
    word = "identifier was" if count == 1 else "identifiers were"
    return nbformat.v4.new_output(
        "display_data",
        data={
            "text/html": (
                f'<p class="qi-privacy-note" role="note">Privacy: {count} {word} removed from '
                "the output above before publishing.</p>"
            )
        },
    )


def _scrub_data(data: dict[str, Any], scrub: Scrub) -> tuple[bool, int]:
    """Drop script and widget types from a rich output and screen its text types.

    Returns whether anything is left to show, and the identifiers removed.
    """
    for mime in DROPPED_MIMETYPES:
        data.pop(mime, None)
    if not data:
        return False, 0
    n = 0
    for mime in TEXT_MIMETYPES:
        if mime in data:
            value = data[mime]
            text = "".join(value) if isinstance(value, list) else str(value)
            data[mime], k = _scrub_html(text, scrub) if mime == "text/html" else scrub(text)
            n += k
    return True, n


#: An image inline in HTML, as the source of an element (a chart's ``<img src="data:image/png;
#: base64,...">``); the same text elsewhere (shown as text) is screened as text.
_INLINE_IMAGE = re.compile(
    r"""(?:(?<=src=")|(?<=src='))"""
    r"data:(?P<mime>[A-Za-z0-9.+/-]+);base64,(?P<data>[A-Za-z0-9+/=]+)"
)


def _scrub_html(text: str, scrub: Scrub) -> tuple[str, int]:
    """Screen an HTML output's text, not the base64 of its inline images (a run of base64 could
    read as an identifier by chance, and "redacting" it would break the picture); the text of
    an inline SVG is decoded and screened."""
    parts, total, last = [], 0, 0
    for m in _INLINE_IMAGE.finditer(text):
        cleaned, n = scrub(text[last : m.start()])
        parts.append(cleaned)
        total += n
        data, n = m.group("data"), 0
        if m.group("mime").lower() == "image/svg+xml":
            try:
                svg = base64.b64decode(data, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                svg = None
            if svg is not None:
                svg, n = scrub(svg)
                data = base64.b64encode(svg.encode("utf-8")).decode("ascii") if n else data
        parts.append(f"data:{m.group('mime')};base64,{data}")
        total += n
        last = m.end()
    cleaned, n = scrub(text[last:])
    parts.append(cleaned)
    return "".join(parts), total + n


def _scrub_output(output: nbformat.NotebookNode, scrub: Scrub) -> tuple[bool, int]:
    """Screen one output in place: whether the page keeps it, and the identifiers removed."""
    kind = output.get("output_type")
    if kind == "stream" and output.get("name") == "stderr":
        return False, 0  # warnings say nothing to a reader of the report
    if kind == "stream":
        output["text"], n = scrub(output.get("text", ""))
        return True, n
    if kind == "error":
        output["evalue"], n = scrub(str(output.get("evalue", "")))
        lines = []
        for line in output.get("traceback", []):
            cleaned, k = scrub(line)
            lines.append(cleaned)
            n += k
        output["traceback"] = lines
        return True, n
    if "data" in output:
        keep, n = _scrub_data(output["data"], scrub)
        return keep, n + _scrub_metadata(output.get("metadata") or {}, scrub)
    return True, 0


#: Output metadata a page shows as text: an image's alt text and caption.
SHOWN_METADATA = ("alt", "caption")


def _scrub_metadata(metadata: dict[str, Any], scrub: Scrub) -> int:
    """Screen the alt text and caption of an output's metadata (top level and per mimetype)."""
    n = 0
    for level in (metadata, *(v for v in metadata.values() if isinstance(v, dict))):
        for key in SHOWN_METADATA:
            if isinstance(level.get(key), str):
                level[key], k = scrub(level[key])
                n += k
    return n


def _scrub_outputs(outputs: list[Any], scrub: Scrub) -> tuple[list[Any], int]:
    """The outputs a page keeps of one cell, each followed by a note when it lost identifiers."""
    kept: list[Any] = []
    total = 0
    for output in outputs:
        keep, n = _scrub_output(output, scrub)
        if not keep:
            continue
        kept.append(output)
        if n:
            kept.append(_note_output(n))
            total += n
    return kept, total


def prepare_notebook(
    nb: nbformat.NotebookNode,
    screen: IdentifierScreen | None = None,
    *,
    on_identifier: str = "redact",
    where: str = "",
) -> tuple[nbformat.NotebookNode, int]:
    """The privacy and offline pass over an executed notebook, before it becomes a page.

    Drops warnings printed to stderr, widget views and scripts (a page needs no kernel and runs
    no script; widgets show the static output they were executed with), and removes every
    identifier ``screen`` knows from text outputs, Markdown cells, error messages and the
    recorded parameters, adding a visible note under each output it changed.

    Parameters
    ----------
    nb : NotebookNode
        Changed in place and returned.
    screen : IdentifierScreen, optional
        What to remove; None skips identifier screening.
    on_identifier : {"redact", "refuse"}
        ``refuse`` raises :class:`~qi_helpers.errors.PrivacyError` instead of redacting.
    where : str
        The notebook's path, for messages.

    Returns
    -------
    nb : NotebookNode
    count : int
        Identifiers removed.
    """
    scrub = _Scrub(screen, on_identifier, where)
    total = 0
    for cell in nb.cells:
        if cell.cell_type in ("markdown", "raw"):
            cell.source, n = scrub(cell.source)
            total += n
        elif cell.cell_type == "code":
            cell.outputs, n = _scrub_outputs(cell.get("outputs", []), scrub)
            total += n
    nb.metadata.pop("widgets", None)
    parameters = nb.metadata.get("papermill", {}).get("parameters", {})
    for key, value in list(parameters.items()):
        if isinstance(value, str):
            parameters[key], n = scrub(value)
            total += n
    return nb, total


def sanitise_page(html_text: str) -> str:
    """Sanitise all that a notebook put into a page (:func:`qi_helpers.privacy.html.clean_html`).

    The page's head, header and footer come from the template, with every value escaped; the
    part between :data:`MAIN_OPEN` and the last ``</main>`` is the notebook's cells and goes
    through the allow-list sanitiser as a whole, whatever block of nbconvert's template made
    it (tables, Markdown, images, errors, cells of any type). The per-output ``qi_clean``
    filter already did this output by output; this pass closes anything a template block
    would let through.
    """
    head, found, rest = html_text.partition(MAIN_OPEN)
    if not found:
        raise PrivacyError("the report template lost its <main> element; nothing was published.")
    body, _, tail = rest.rpartition("</main>")
    return head + MAIN_OPEN + clean_html(body) + "</main>" + tail


# What the page-wide screen does not read as text: the template's stylesheet (colours such as
# ``#003087`` are not identifiers) and inline images (SVG ones are decoded and screened).
_NOT_TEXT = re.compile(
    r"<style\b[^>]*>.*?</style\s*>"
    r"|data:(?P<mime>[A-Za-z0-9.+/-]+);base64,(?P<data>[A-Za-z0-9+/=]+)",
    re.IGNORECASE | re.DOTALL,
)


def _screen_svg(mime: str, data: str, screen: IdentifierScreen) -> tuple[str, int]:
    """Screen the text of an inline SVG image (its labels); other images are pixels."""
    if mime.lower() != "image/svg+xml":
        return data, 0
    try:
        svg = base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return data, 0
    cleaned, n = screen.redact(svg)
    return (base64.b64encode(cleaned.encode("utf-8")).decode("ascii"), n) if n else (data, 0)


def screen_page(html_text: str, screen: IdentifierScreen | None) -> tuple[str, int]:
    """Last safety net: screen a whole page's text, and the text of its inline SVG images.

    Returns
    -------
    html_text : str
    count : int
        Identifiers removed.
    """
    if screen is None:
        return html_text, 0
    parts, total, last = [], 0, 0
    for m in _NOT_TEXT.finditer(html_text):
        cleaned, n = screen.redact(html_text[last : m.start()])
        parts.append(cleaned)
        total += n
        if m.group("data"):
            data, n = _screen_svg(m.group("mime"), m.group("data"), screen)
            parts.append(f"data:{m.group('mime')};base64,{data}")
            total += n
        else:
            parts.append(m.group(0))
        last = m.end()
    cleaned, n = screen.redact(html_text[last:])
    parts.append(cleaned)
    return "".join(parts), total + n
