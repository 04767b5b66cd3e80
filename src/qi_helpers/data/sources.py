"""Read one input table from a file (CSV, TSV, Excel, Parquet) or a SQL database.

A table's source is a mapping from ``parameters/project.yaml``: either ``path:`` (with ``sheet:``
for Excel) or ``url:`` (any SQLAlchemy URL) with ``table:`` or ``query:``, plus optional
``columns:`` that rename a user's column names to the data contract's and ``date_format:`` (a
``strptime`` format such as ``%d/%m/%Y`` for every date column of the table; ISO dates need
none).

Delimited text is read here with the pyarrow CSV engine, every column as text (types are the
schema's job), in UTF-8 (with or without a byte-order mark) or, when the file is not valid
UTF-8, in Windows-1252, which Excel on Windows writes; :func:`read_source` says which encoding
was used. Excel workbooks are read by :mod:`qi_helpers.data.excel`, databases by
:mod:`qi_helpers.data.databases`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from qi_helpers.data.databases import read_sql
from qi_helpers.data.excel import XLSX_LIMITS, read_excel
from qi_helpers.data.loaded import Loaded
from qi_helpers.data.arrow_memory import give_back_freed_memory, use_system_allocator
from qi_helpers.errors import SourceError
from qi_helpers.errors import ConfigError, format_rows

__all__ = [
    "SOURCE_KEYS",
    "TEXT_ENCODINGS",
    "read_source",
    "read_table",
    "read_text",
]

#: Encodings tried in turn for text files: UTF-8 (a byte-order mark is skipped), then
#: Windows-1252, which Excel on Windows writes.
TEXT_ENCODINGS = ("utf-8", "cp1252")

#: The keys a table's source mapping may hold.
SOURCE_KEYS = frozenset(
    {"path", "sheet", "url", "table", "schema", "query", "columns", "date_format", *XLSX_LIMITS}
)

_ENCODING_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "cp1252": "Windows-1252"}


# --------------------------------------------------------------------------------- text files


def _sniff(path: Path) -> str:
    """Refuse files that are not delimited text; return ``utf-8-sig`` when a BOM starts it."""
    with path.open("rb") as handle:
        head = handle.read(65536)
    if not head.strip():
        raise SourceError(
            f"{path}: the file is empty; expected a header row with the column names. "
            "Fill it in or remove the table from data.tables.",
            kind="empty_file",
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceError(
            f"{path}: unreadable encoding: the file is UTF-16 (Excel's 'Unicode Text'); expected "
            "UTF-8 or Windows-1252. In Excel use Save As > 'CSV UTF-8 (Comma delimited)'.",
            kind="encoding",
        )
    if head.startswith(b"PK\x03\x04"):
        raise SourceError(
            f"{path}: unreadable encoding: this is an Excel workbook or zip archive, not text. "
            "Rename it to .xlsx (and give `sheet:`) or save it from Excel as CSV UTF-8.",
            kind="encoding",
        )
    if b"\x00" in head:
        raise SourceError(
            f"{path}: unreadable encoding: the file holds NUL bytes (binary data or UTF-16); "
            "expected UTF-8 or Windows-1252 text. Save it as CSV UTF-8.",
            kind="encoding",
        )
    return "utf-8-sig" if head.startswith(b"\xef\xbb\xbf") else "utf-8"


def _header(path: Path, read: pacsv.ReadOptions, sep: str) -> list[str]:
    """The column names of the header, refusing a name that appears twice."""
    parse = pacsv.ParseOptions(delimiter=sep, invalid_row_handler=lambda row: "skip")
    with pacsv.open_csv(path, read_options=read, parse_options=parse) as reader:
        names = reader.schema.names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SourceError(
            f"{path}: duplicate column name(s) {', '.join(dupes)} in the header; each column "
            "must appear once. Rename or delete the extra column.",
            kind="malformed",
            column=", ".join(dupes),
        )
    return names


def _read_arrow(
    path: Path,
    sep: str,
    encoding: str,
    use_threads: bool = True,
    columns: frozenset[str] | None = None,
) -> pa.Table:
    read = pacsv.ReadOptions(encoding=encoding, use_threads=use_threads)
    names = _header(path, read, sep)
    bad_rows: list[tuple[int | None, str, int, int]] = []

    def on_invalid(row: Any) -> str:
        bad_rows.append((row.number, row.text, row.expected_columns, row.actual_columns))
        return "skip"

    parse = pacsv.ParseOptions(delimiter=sep, invalid_row_handler=on_invalid)
    convert = pacsv.ConvertOptions(
        # large_string: what pandas keeps text in, so the frame shares the table's buffers
        # (read as `string`, pandas copied every column's offsets wider: 0.1 GB for 6.1 M rows)
        column_types={n: pa.large_string() for n in names},
        strings_can_be_null=True,
        null_values=[""],
        include_columns=None if columns is None else [n for n in names if n.strip() in columns],
    )
    table = pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
    if bad_rows:
        if use_threads and any(number is None for number, *_ in bad_rows):
            return _read_arrow(path, sep, encoding, use_threads=False, columns=columns)
        rows = [number - 1 for number, *_ in bad_rows]  # physical line -> data row
        _, text, expected, actual = bad_rows[0]
        raise SourceError(
            f"{path}: {len(rows)} row(s) with the wrong number of cells: {format_rows(rows)} "
            f"(data rows, 1 = the row under the header); e.g. {text[:80]!r} has {actual} cells "
            f"where the header has {expected}. Quote cells that contain the separator "
            f"({sep!r}) or remove the extra cells.",
            kind="malformed",
            rows=tuple(rows[:10]),
            count=len(rows),
        )
    return table


def read_text(
    path: str | os.PathLike[str], sep: str = ",", columns: frozenset[str] | None = None
) -> tuple[pd.DataFrame, str]:
    """Read a delimited text file with every column as text.

    Parameters
    ----------
    path : path
        The file.
    sep : str
        The separator (``","`` for CSV, ``"\\t"`` for TSV).
    columns : frozenset of str, optional
        Read only these columns (names as in the header; others in the set are ignored).

    Returns
    -------
    frame : DataFrame
        Every column as text (``str`` dtype), empty cells missing.
    encoding : str
        The encoding used: ``"UTF-8"``, ``"UTF-8 with BOM"`` or ``"Windows-1252"``.

    Raises
    ------
    DataError
        For an empty file, a binary or UTF-16 file, bytes that are neither UTF-8 nor
        Windows-1252, duplicate column names or rows with the wrong number of cells.
    """
    path = Path(path)
    encoding = _sniff(path)
    try:
        table = _read_arrow(path, sep, "utf8", columns=columns)
    except pa.ArrowInvalid as exc:
        if "UTF8" not in str(exc) and "utf8" not in str(exc).lower():
            raise SourceError(
                f"{path}: cannot be parsed as delimited text ({exc}).", kind="malformed"
            ) from exc
        encoding = "cp1252"
        table = _read_windows_1252(path, sep, columns)
    frame = table.to_pandas()
    del table
    give_back_freed_memory()  # what the reader used while parsing: 0.15 GB for 6.1 M rows
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, _ENCODING_NAMES[encoding]


def _read_windows_1252(path: Path, sep: str, columns: frozenset[str] | None) -> pa.Table:
    """The fallback for a file that is not valid UTF-8."""
    try:
        return _read_arrow(path, sep, "cp1252", columns=columns)
    except UnicodeDecodeError as err:
        raise SourceError(
            f"{path}: unreadable encoding: neither UTF-8 nor Windows-1252 (byte "
            f"{err.object[err.start : err.start + 1]!r} near byte {err.start} of a block). "
            "Open it in a text editor or Excel and save it as CSV UTF-8.",
            kind="encoding",
        ) from err
    except pa.ArrowInvalid as err:
        raise SourceError(
            f"{path}: cannot be parsed as delimited text ({err}).", kind="malformed"
        ) from err


# ------------------------------------------------------------------------------------ sources


def _read_delimited(path: Path, columns: frozenset[str] | None = None) -> Loaded:
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    frame, encoding = read_text(path, sep=sep, columns=columns)
    notes = []
    if encoding == "Windows-1252":
        notes.append(
            "not valid UTF-8, so it was read as Windows-1252 (what Excel on Windows writes); "
            "check that accented names look right, or save the file as CSV UTF-8"
        )
    return Loaded(frame, str(path), encoding, notes)


def _read_parquet(path: Path, columns: frozenset[str] | None = None) -> Loaded:
    try:
        if columns is not None:
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            frame = pd.read_parquet(path, columns=[n for n in names if n in columns])
        else:
            frame = pd.read_parquet(path)
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise SourceError(
            f"{path}: cannot be read as Parquet ({exc}). Write it again, e.g. with "
            "pandas DataFrame.to_parquet.",
            kind="unreadable",
        ) from exc
    return Loaded(frame, str(path))


def _read_file(
    spec: dict[str, Any], root: Path, name: str, columns: frozenset[str] | None = None
) -> Loaded:
    path = Path(os.path.expanduser(str(spec["path"])))
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        hint = f" (the folder {path.parent} does not exist)" if not path.parent.is_dir() else ""
        raise SourceError(
            f"{path}: file not found{hint} (table `{name}`). Check data.tables.{name}.path in "
            "parameters/project.yaml; relative paths start at the project folder.",
            kind="missing_file",
        )
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv", ".tab"):
        return _read_delimited(path, columns)
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path, columns)
    if suffix in (".xlsx", ".xlsm"):
        return read_excel(path, spec, name)
    if suffix == ".xls":
        raise ConfigError(
            f"{path}: the old Excel format .xls is not supported (table `{name}`). In Excel use "
            "Save As > 'Excel Workbook (.xlsx)'."
        )
    raise ConfigError(
        f"{path}: unsupported file type {suffix!r} for table `{name}`; use .csv, .tsv, .xlsx "
        "or .parquet."
    )


def _check_spec(spec: Any, name: str) -> None:
    """Refuse a source that is not a mapping or holds a key that is not a source key."""
    if not isinstance(spec, dict):
        raise ConfigError(
            f"data.tables.{name}: expected a mapping with `path:` or `url:`, found {spec!r}."
        )
    unknown = sorted(set(spec) - SOURCE_KEYS)
    if unknown:
        raise ConfigError(
            f"data.tables.{name}: unknown key(s) {', '.join(unknown)}; expected some of "
            f"{', '.join(sorted(SOURCE_KEYS))}."
        )


def _rename_columns(loaded: Loaded, spec: dict[str, Any], name: str) -> None:
    """Rename the user's columns to the contract's (``columns:``), noting names not found."""
    renames = spec.get("columns") or {}
    if not isinstance(renames, dict):
        raise ConfigError(
            f"data.tables.{name}.columns: expected a mapping from your column names to ours "
            f"(e.g. {{Staff ID: staff_id}}), found {renames!r}."
        )
    if renames:
        absent = [k for k in renames if k not in loaded.frame.columns]
        if absent:
            loaded.notes.append(
                f"data.tables.{name}.columns renames {', '.join(map(str, absent))}, which the "
                f"source does not have (its columns: {', '.join(map(str, loaded.frame.columns))})"
            )
        loaded.frame = loaded.frame.rename(columns={str(k): str(v) for k, v in renames.items()})


def read_source(
    spec: dict[str, Any], *, root: Path, name: str, columns: frozenset[str] | None = None
) -> Loaded:
    """Read the table a source mapping describes, saying where it came from and how.

    Parameters
    ----------
    spec : dict
        ``{"path": ...}`` (optional ``sheet``) or ``{"url": ..., "table"|"query": ...}``
        (optional ``schema``), each with optional ``columns`` (mapping from the user's names to
        the contract's) and ``date_format`` (used by the schema, not here).
    root : Path
        The project folder; relative paths are resolved against it.
    name : str
        The contract table's name (for messages).
    columns : frozenset of str, optional
        The contract's columns wanted: text and Parquet files then read only those (and the
        columns the source renames to them), which saves time and memory on large files; other
        sources are read whole.

    Returns
    -------
    Loaded
        The frame (columns renamed), the source description, the encoding and notes.

    Raises
    ------
    ConfigError
        For a source mapping without ``path`` or ``url``, an unknown key, an unsupported file
        type or an unusable database URL.
    DataError
        For a missing file, sheet or table, an unreadable encoding, or a file or database that
        cannot be read.
    """
    _check_spec(spec, name)
    use_system_allocator()
    if "path" in spec:
        renames = spec.get("columns") if isinstance(spec.get("columns"), dict) else {}
        wanted = None
        if columns is not None:
            wanted = frozenset(columns) | {str(k) for k, v in renames.items() if v in columns}
        loaded = _read_file(spec, root, name, wanted)
    elif "url" in spec:
        loaded = read_sql(spec, root, name)
    else:
        raise ConfigError(f"data.tables.{name}: give either `path:` or `url:` (found {spec!r}).")
    _rename_columns(loaded, spec, name)
    return loaded


def read_table(
    spec: dict[str, Any], *, root: Path, name: str, columns: frozenset[str] | None = None
) -> tuple[pd.DataFrame, str]:
    """Read the table a source mapping describes.

    Parameters
    ----------
    spec : dict
        ``{"path": ...}`` or ``{"url": ..., "table"|"query": ...}``, optional ``sheet``,
        ``columns`` (mapping from the user's names to the contract's); see :func:`read_source`.
    root : Path
        The project folder; relative paths are resolved against it.
    name : str
        The contract table's name (for messages).
    columns : frozenset of str, optional
        Read only these of the contract's columns where the source allows (see
        :func:`read_source`).

    Returns
    -------
    frame : DataFrame
        The table, with columns renamed. Text files give every column as text.
    where : str
        A description of the source for messages (file path, or URL and table).

    Raises
    ------
    ConfigError
        For a source mapping without ``path`` or ``url``, or an unsupported file type.
    DataError
        For a missing file, sheet or table, or one that cannot be read.
    """
    loaded = read_source(spec, root=root, name=name, columns=columns)
    return loaded.frame, loaded.where
