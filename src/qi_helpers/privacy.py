"""Keeping published output safe to share: safe file names, escaping, identifier screening.

Published reports are read outside the team, so nothing in them may identify a patient, and no
name that comes from data may be able to inject markup or write outside the output folder.
"""

from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path

from qi_helpers.errors import ConfigError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(identifier: str) -> str:
    """Turn an identifier from data into a file name that stays inside its folder.

    Letters, digits, ``.``, ``_`` and ``-`` are kept; every other run of characters becomes ``_``;
    leading dots are removed (no hidden files, no ``..``). When anything was changed, a short hash
    of the original is appended so two different ids never share a file.

    Parameters
    ----------
    identifier : str
        For example a microsystem id.

    Returns
    -------
    str
        A non-empty file-name-safe string.
    """
    text = str(identifier)
    cleaned = _UNSAFE.sub("_", text).lstrip(".")
    if cleaned != text or not cleaned:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
        cleaned = f"{cleaned or 'id'}-{digest}"
    return cleaned[:120]


def inside(folder: Path, path: Path) -> Path:
    """Return ``path`` resolved, after checking that it lies inside ``folder``.

    Raises
    ------
    ConfigError
        When the path would escape the folder.
    """
    folder = folder.resolve()
    resolved = path.resolve()
    if folder != resolved and folder not in resolved.parents:
        raise ConfigError(f"{path}: refusing to write outside {folder}.")
    return resolved


def escape(text: object) -> str:
    """HTML-escape any value for inclusion in a page (quotes included)."""
    return html.escape("" if text is None else str(text), quote=True)
