"""Charts made lighter for a page: PNG outputs re-encoded with a small palette."""

from __future__ import annotations

import base64
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


def shrink_images(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Apply :func:`shrink_png` to every PNG output of a notebook (in place)."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                value = data["image/png"]
                text = "".join(value) if isinstance(value, list) else str(value)
                data["image/png"] = shrink_png(text.replace("\n", "").strip())
    return nb
