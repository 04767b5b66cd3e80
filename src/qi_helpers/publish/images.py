"""Charts made lighter for a page: PNG outputs re-encoded with a small palette.

Charts come as PNG outputs or, for the figures of ``qi_helpers``, as PNG images inline in an
HTML ``<figure>`` (:mod:`qi_helpers.chart_display`); both are made lighter.
"""

from __future__ import annotations

import base64
import re
from io import BytesIO

import nbformat
from PIL import Image

#: Colours kept when a chart is re-encoded as a palette PNG (charts use few colours).
PNG_COLOURS = 64


def shrink_png(data: str, colours: int = PNG_COLOURS) -> str:
    """Re-encode a base64 PNG (a chart) with a palette of ``colours``, when that is smaller.

    Charts drawn by matplotlib use a handful of colours but are saved as full-colour PNGs; a
    palette PNG of the same size in pixels is two to three times smaller, so reports stay
    light enough to open from a shared drive. Deterministic: the same image gives the same bytes.
    """
    raw = base64.b64decode(data)
    try:
        image = Image.open(BytesIO(raw))
        image.load()
    except (OSError, ValueError):
        return data
    if image.mode in ("P", "1", "L"):
        return data
    if image.mode in ("RGBA", "LA"):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
    quantised = image.convert("RGB").quantize(
        colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    out = BytesIO()
    quantised.save(out, format="PNG", compress_level=9)
    smaller = out.getvalue()
    return base64.b64encode(smaller).decode("ascii") if len(smaller) < len(raw) else data


#: A PNG inline in HTML (a chart's ``<img src="data:image/png;base64,...">``).
_INLINE_PNG = re.compile(r"(data:image/png;base64,)([A-Za-z0-9+/=]+)")


def _shrink_one(match: re.Match[str]) -> str:
    try:
        return match.group(1) + shrink_png(match.group(2))
    except ValueError:  # not base64 (binascii.Error): left as it is, the sanitiser decides
        return match.group(0)


def _shrink_inline(html: str) -> str:
    """``html`` with every inline PNG re-encoded by :func:`shrink_png`."""
    return _INLINE_PNG.sub(_shrink_one, html)


def shrink_images(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Apply :func:`shrink_png` to every PNG output of a notebook and to the PNG images inline
    in its HTML outputs (in place)."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                value = data["image/png"]
                text = "".join(value) if isinstance(value, list) else str(value)
                data["image/png"] = shrink_png(text.replace("\n", "").strip())
            html = data.get("text/html")
            if html is not None:
                text = "".join(html) if isinstance(html, list) else str(html)
                if "data:image/png;base64," in text:
                    data["text/html"] = _shrink_inline(text)
    return nb
