"""Files that other steps read: one atomic writer, one content hash.

Every file ``qi_helpers`` hands on (tables between workbooks, executed notebooks, pages, manifests)
is written through :func:`atomic_write`: to a temporary file beside the target, flushed to disk,
then renamed over it, so a reader (or a run interrupted by a power cut) sees the old file or the
new one, never half of one. :func:`sha256_file` is the one content hash of the incremental rules
(the run plan, the publish cache and the site manifest agree because they share it).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qi_helpers import __version__

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FileHashes",
    "atomic_write",
    "package_version",
    "parquet_bytes",
    "sha256_bytes",
    "sha256_file",
    "write_bytes",
    "write_json",
    "write_parquet",
    "write_text",
]


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Write a file through a temporary file, fsync and a rename.

    Parameters
    ----------
    path : str or Path
        The file to write; its folder is created when missing.
    write : callable
        Called with the temporary path; writes the whole content there.

    Returns
    -------
    Path
        ``path``. On any error the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # pid and thread id: workers and their threads may write beside each other.
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        write(tmp)
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())  # the content is on disk before the name points at it
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write bytes atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 text atomically, newlines as given (see :func:`atomic_write`)."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, payload: Any, *, sort_keys: bool = False) -> Path:
    """Write a JSON document (indent 1, a final newline) atomically."""
    return write_text(path, json.dumps(payload, indent=1, sort_keys=sort_keys) + "\n")


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """A table as Parquet bytes, byte-reproducibly (zstd; no pandas index, no ``attrs``, no
    creation time).

    The same frame always gives the same bytes, so a file's digest changes only when its content
    does: what content-based reruns rely on (:mod:`qi_helpers.changes.slices`).
    """
    # pyarrow is imported here, not at the top: worker processes import this module for its
    # hashes and writers and should not pay for pandas and pyarrow before they run a notebook.
    import pyarrow as pa
    import pyarrow.parquet as pq

    plain = frame.reset_index(drop=True)
    plain.attrs = {}  # pandas would store them (e.g. the source's path): same data, same bytes
    table = pa.Table.from_pandas(plain, preserve_index=False)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def write_parquet(path: str | Path, frame: pd.DataFrame) -> Path:
    """Write a table to Parquet atomically and byte-reproducibly (:func:`parquet_bytes`).

    Returns
    -------
    Path
        ``path``.
    """
    return write_bytes(path, parquet_bytes(frame))


def sha256_bytes(data: bytes) -> str:
    """The sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """The sha256 hex digest of a file's content, read in chunks."""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


#: A file's cached digest is trusted only when the file was last modified at least this many
#: seconds before the digest was taken (a file rewritten within the same clock tick, with the same
#: size, would otherwise look unchanged).
_RACY_SECONDS = 2.0


class FileHashes:
    """Content digests of files, cached by size and modification time.

    Parameters
    ----------
    cache : dict, optional
        ``{path: [size, mtime_ns, digest]}`` as returned by :meth:`to_json` on an earlier run.
    """

    def __init__(self, cache: dict[str, list[Any]] | None = None) -> None:
        self.cache: dict[str, list[Any]] = dict(cache or {})
        self.hashed = 0  # files actually read (for tests and benchmarks)

    def digest(self, path: Path) -> str:
        """The sha256 digest of a file's content, or ``"missing"`` when it does not exist."""
        try:
            stat = path.stat()
        except OSError:
            return "missing"
        key = str(path)
        hit = self.cache.get(key)
        if hit and hit[0] == stat.st_size and hit[1] == stat.st_mtime_ns:
            return str(hit[2])
        value = sha256_file(path)
        self.hashed += 1
        if time.time() - stat.st_mtime_ns / 1e9 > _RACY_SECONDS:
            self.cache[key] = [stat.st_size, stat.st_mtime_ns, value]
        else:
            self.cache.pop(key, None)
        return value

    def to_json(self) -> dict[str, list[Any]]:
        """The cache, for ``outputs/run.json``."""
        return dict(sorted(self.cache.items()))


#: Files of the package that change what a notebook computes or how its report looks.
PACKAGE_SUFFIXES = frozenset({".py", ".j2", ".css", ".js", ".json"})


def package_version(hashes: FileHashes, package_dir: Path | None = None) -> str:
    """The ``qi_helpers`` version with a digest of its code, e.g. ``0.1.0+3f2a9c0d1e4b5a6f``.

    Parameters
    ----------
    hashes : FileHashes
        Digests cached by size and modification time: rereading the package costs a ``stat``
        per file when nothing changed.
    package_dir : Path, optional
        The package folder (default: the installed ``qi_helpers``).

    Returns
    -------
    str
        The version, ``+`` and 16 hex digits of a sha256 over the relative path and content
        digest of every code, template and style file (``__pycache__`` left out). Editing the
        package without bumping its version still changes it.
    """
    root = package_dir or Path(__file__).resolve().parent  # io.py sits at the package's top
    files = sorted(
        path
        for path in root.rglob("*")
        if path.suffix in PACKAGE_SUFFIXES and "__pycache__" not in path.parts and path.is_file()
    )
    combined = hashlib.sha256()
    for path in files:
        combined.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
        combined.update(hashes.digest(path).encode("ascii") + b"\n")
    return f"{__version__}+{combined.hexdigest()[:16]}"
