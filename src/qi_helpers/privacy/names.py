"""Names from data that become file names: safe to write, and never outside their folder.

An identifier from data (a microsystem id) may hold any character; a file named after it must
neither escape its output folder nor collide with the file of another identifier.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from qi_helpers.errors import ConfigError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

#: Longest name :func:`safe_filename` returns (room for a suffix such as ``.failed.html`` within
#: the 255 bytes most file systems allow).
MAX_FILENAME = 120

#: Hex digits of the hash :func:`safe_filename` appends (64 bits: no two ids share a name by
#: chance, and finding two that do is out of reach).
_DIGEST_CHARS = 16

# What a hashed name ends with. An id that already ends like this is hashed too, so a name kept
# as it is can never equal the hashed name of another id.
_HASHED_TAIL = re.compile(rf"-[0-9a-f]{{{_DIGEST_CHARS}}}\Z")


def safe_filename(identifier: str) -> str:
    """Turn an identifier from data into a file name that stays inside its folder.

    Letters, digits, ``.``, ``_`` and ``-`` are kept; every other run of characters becomes ``_``;
    leading dots are removed (no hidden files, no ``..``). An id kept as it is must be at most
    :data:`MAX_FILENAME` characters long; any other id (changed, empty, too long, or ending like
    a hashed name) becomes its cleaned text cut short, then ``-`` and a hash of the original, so
    two different ids never share a file and no result is longer than :data:`MAX_FILENAME`.

    Parameters
    ----------
    identifier : str
        For example a microsystem id.

    Returns
    -------
    str
        A non-empty file-name-safe string of at most :data:`MAX_FILENAME` characters.
    """
    text = str(identifier)
    cleaned = _UNSAFE.sub("_", text).lstrip(".")
    if cleaned == text and cleaned and len(text) <= MAX_FILENAME and not _HASHED_TAIL.search(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:_DIGEST_CHARS]
    # The hash goes after the cut: it is what keeps two long ids that share a prefix apart.
    keep = MAX_FILENAME - len(digest) - 1
    return f"{(cleaned or 'id')[:keep]}-{digest}"


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
