"""Read one input table from a file (CSV, TSV, Excel, Parquet) or a SQL database.

A table's source is a mapping from ``parameters/project.yaml``: either ``path:`` (with ``sheet:``
for Excel) or ``url:`` (any SQLAlchemy URL) with ``table:`` or ``query:``, plus optional
``columns:`` that rename a user's column names to the data contract's and ``date_format:`` (a
``strptime`` format such as ``%d/%m/%Y`` for every date column of the table; ISO dates need none).

Delimited text is read with the pyarrow CSV engine, every column as text (types are the schema's
job), in UTF-8 (with or without a byte-order mark) or, when the file is not valid UTF-8, in
Windows-1252, which Excel on Windows writes; :func:`read_source` says which encoding was used.

This module also holds :func:`neutralise_formulas`, which every export to CSV or Excel applies so
that a cell such as ``=HYPERLINK(...)`` from an input file is shown as text, never run as a formula.
"""

from __future__ import annotations

import os
import posixpath
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from qi_helpers.errors import ConfigError, DataError, format_rows

__all__ = [
    "FORMULA_PREFIXES",
    "SOURCE_KEYS",
    "TEXT_ENCODINGS",
    "Loaded",
    "SourceError",
    "formula_cells",
    "text_edges",
    "neutralise_formulas",
    "read_source",
    "read_table",
]

#: Encodings tried in turn for text files: UTF-8 (a byte-order mark is skipped), then
#: Windows-1252, which Excel on Windows writes.
TEXT_ENCODINGS = ("utf-8", "cp1252")

#: First characters that make a spreadsheet treat a cell as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

#: Default caps on reading one Excel sheet, each overridable in the table's source mapping:
#: the uncompressed size of what is parsed (the sheet's XML, the shared strings, styles and the
#: workbook's other XML parts) in MB, the rows, and the cells once every row is as wide as the
#: widest. An .xlsx is a zip archive: a file of 1 MB can inflate to hundreds of MB.
XLSX_LIMITS: dict[str, int] = {
    "max_xlsx_mb": 200,
    "max_xlsx_rows": 2_000_000,
    "max_xlsx_cells": 50_000_000,
}

#: The keys a table's source mapping may hold.
SOURCE_KEYS = frozenset(
    {"path", "sheet", "url", "table", "schema", "query", "columns", "date_format", *XLSX_LIMITS}
)


class SourceError(DataError):
    """A table's source cannot be read.

    Attributes
    ----------
    kind : str
        Why: ``missing_file``, ``missing_sheet``, ``missing_table``, ``encoding``,
        ``empty_file``, ``malformed`` (wrong number of cells, duplicate header), ``unreachable``
        (database), ``too_large`` (an Excel sheet over a cap of :data:`XLSX_LIMITS`) or
        ``unreadable``.
    column : str or None
        The column concerned (a duplicate header), if any.
    rows : tuple of int
        The first data rows concerned (rows with the wrong number of cells), if any.
    count : int
        How many rows are concerned.
    """

    def __init__(
        self,
        message: str,
        kind: str = "unreadable",
        *,
        column: str | None = None,
        rows: tuple[int, ...] = (),
        count: int = 0,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.column = column
        self.rows = tuple(rows)
        self.count = count or len(self.rows)


_ENCODING_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "cp1252": "Windows-1252"}


@dataclass
class Loaded:
    """A table as read, before validation.

    Attributes
    ----------
    frame : DataFrame
        The table with the user's columns renamed to the contract's.
    where : str
        The source for messages: the file (and sheet), or the URL (password hidden) and table.
    encoding : str or None
        For text files, the encoding used: ``"UTF-8"``, ``"UTF-8 with BOM"`` or
        ``"Windows-1252"``.
    notes : list of str
        Things a user should know about how the table was read (e.g. the encoding fallback).
    """

    frame: pd.DataFrame
    where: str
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)


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


def _read_arrow(path: Path, sep: str, encoding: str, use_threads: bool = True) -> pa.Table:
    read = pacsv.ReadOptions(encoding=encoding, use_threads=use_threads)
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
    bad_rows: list[tuple[int | None, str, int, int]] = []

    def on_invalid(row: Any) -> str:
        bad_rows.append((row.number, row.text, row.expected_columns, row.actual_columns))
        return "skip"

    parse = pacsv.ParseOptions(delimiter=sep, invalid_row_handler=on_invalid)
    convert = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names},
        strings_can_be_null=True,
        null_values=[""],
    )
    table = pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
    if bad_rows:
        if use_threads and any(number is None for number, *_ in bad_rows):
            return _read_arrow(path, sep, encoding, use_threads=False)
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


def read_text(path: str | os.PathLike[str], sep: str = ",") -> tuple[pd.DataFrame, str]:
    """Read a delimited text file with every column as text.

    Parameters
    ----------
    path : path
        The file.
    sep : str
        The separator (``","`` for CSV, ``"\\t"`` for TSV).

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
        table = _read_arrow(path, sep, "utf8")
    except pa.ArrowInvalid as exc:
        if "UTF8" not in str(exc) and "utf8" not in str(exc).lower():
            raise SourceError(
                f"{path}: cannot be parsed as delimited text ({exc}).", kind="malformed"
            ) from exc
        encoding = "cp1252"
        try:
            table = _read_arrow(path, sep, "cp1252")
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
    frame = table.to_pandas()
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, _ENCODING_NAMES[encoding]


# ------------------------------------------------------------------------------------ sources


def _read_file(spec: dict[str, Any], root: Path, name: str) -> Loaded:
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
        sep = "\t" if suffix in (".tsv", ".tab") else ","
        frame, encoding = read_text(path, sep=sep)
        notes = []
        if encoding == "Windows-1252":
            notes.append(
                "not valid UTF-8, so it was read as Windows-1252 (what Excel on Windows writes); "
                "check that accented names look right, or save the file as CSV UTF-8"
            )
        return Loaded(frame, str(path), encoding, notes)
    if suffix in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except (OSError, pa.ArrowException, ValueError) as exc:
            raise SourceError(
                f"{path}: cannot be read as Parquet ({exc}). Write it again, e.g. with "
                "pandas DataFrame.to_parquet.",
                kind="unreadable",
            ) from exc
        return Loaded(frame, str(path))
    if suffix in (".xlsx", ".xlsm"):
        return _read_excel(path, spec, name)
    if suffix == ".xls":
        raise ConfigError(
            f"{path}: the old Excel format .xls is not supported (table `{name}`). In Excel use "
            "Save As > 'Excel Workbook (.xlsx)'."
        )
    raise ConfigError(
        f"{path}: unsupported file type {suffix!r} for table `{name}`; use .csv, .tsv, .xlsx "
        "or .parquet."
    )


_MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_DOC_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


def _xlsx_limits(spec: dict[str, Any], name: str) -> dict[str, int]:
    """The caps for reading a sheet: :data:`XLSX_LIMITS`, with those the source sets."""
    limits = dict(XLSX_LIMITS)
    for key in XLSX_LIMITS:
        value = spec.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(
                f"data.tables.{name}.{key}: expected a whole number above 0, found {value!r} "
                f"(default {XLSX_LIMITS[key]:_})."
            )
        limits[key] = value
    return limits


def _part_path(folder: str, target: str) -> str:
    """A relationship's target as a member name of the archive."""
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(folder, target))


class _OversizedPart(Exception):
    """An XML part of a workbook would inflate beyond the cap (before it is parsed)."""

    def __init__(self, member: str, size: int) -> None:
        super().__init__(member, size)
        self.member, self.size = member, size


def _xml_part(book: zipfile.ZipFile, member: str, limit: int) -> Any:
    """Parse an XML part of the workbook, after checking the size the archive declares for it
    (reading stops there: zipfile never inflates a member beyond its declared size)."""
    from xml.etree import ElementTree

    try:
        info = book.getinfo(member)
    except KeyError:
        return None
    if info.file_size > limit:
        raise _OversizedPart(member, info.file_size)
    with book.open(info) as handle:
        return ElementTree.parse(handle).getroot()


def _xlsx_sheets(book: zipfile.ZipFile, limit: int) -> list[tuple[str, str]]:
    """The worksheets of an .xlsx archive in order: ``(name, archive member of its XML)``.

    Chart sheets are left out, as pandas and openpyxl's ``worksheets`` leave them out, so a
    sheet given by number counts the same sheets. Each part read here may inflate to at most
    ``limit`` bytes.
    """
    root_rels = _xml_part(book, "_rels/.rels", limit)
    workbook = "xl/workbook.xml"
    for rel in [] if root_rels is None else root_rels.iter(f"{_REL_NS}Relationship"):
        if rel.get("Type", "").endswith("/officeDocument"):
            workbook = _part_path("", rel.get("Target", workbook))
    folder, _, leaf = workbook.rpartition("/")
    rels_part = f"{folder}/_rels/{leaf}.rels" if folder else f"_rels/{leaf}.rels"
    rels = _xml_part(book, rels_part, limit)
    targets = {}
    for rel in [] if rels is None else rels.iter(f"{_REL_NS}Relationship"):
        if rel.get("Type", "").endswith("/worksheet"):
            targets[rel.get("Id")] = _part_path(folder, rel.get("Target", ""))
    root = _xml_part(book, workbook, limit)
    sheets = [] if root is None else root.iter(f"{_MAIN_NS}sheet")
    return [
        (str(s.get("name")), targets[s.get(f"{_DOC_REL_NS}id")])
        for s in sheets
        if s.get(f"{_DOC_REL_NS}id") in targets
    ]


def _too_large(
    path: Path, label: str, what: str, key: str, limits: dict[str, int], name: str, unit: str = ""
) -> SourceError:
    """The error for a sheet over one of its caps, naming the file, the sheet and the setting."""
    return SourceError(
        f"{path} [sheet {label}]: {what}, over the limit of {limits[key]:_}{unit} "
        f"(table `{name}`); "
        f"nothing was read. If the sheet really is this large, raise data.tables.{name}.{key} "
        "in parameters/project.yaml, or save the table as CSV or Parquet.",
        kind="too_large",
    )


def _excel_cell(cell: Any) -> Any:
    """A cell's value as pandas' openpyxl reader gives it (errors missing, whole floats int)."""
    value = cell.value
    if value is None:
        return ""
    if cell.data_type == "e":
        return np.nan
    if cell.data_type == "n":
        whole = int(value)
        return whole if whole == value else float(value)
    return value


def _read_excel(path: Path, spec: dict[str, Any], name: str) -> Loaded:
    """Read one sheet of an .xlsx, within the caps of :data:`XLSX_LIMITS`.

    The sizes the archive declares for its parts are checked first (an .xlsx is a zip archive,
    and zip reads stop at the declared size), so a sheet that inflates far beyond its file size
    is refused at once, without being decompressed; rows and cells
    are then counted as the sheet is read (openpyxl's streaming read-only mode), so a sheet that
    is small on disk but holds too many rows, or rows too wide, is stopped early too.
    """
    sheet = spec.get("sheet", 0)
    limits = _xlsx_limits(spec, name)
    unreadable = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, KeyError)
    try:
        with zipfile.ZipFile(path) as book:
            # Every member counts, whatever its name: openpyxl opens the parts the workbook's
            # relationships name (any name), and parses every worksheet's start on loading,
            # the whole of it when it declares no dimensions.
            inflated = sum(m.file_size for m in book.infolist())
            worksheets = _xlsx_sheets(book, limits["max_xlsx_mb"] * 1_000_000)
    except _OversizedPart as exc:
        raise SourceError(
            f"{path}: its part {exc.member} inflates to {exc.size / 1e6:,.0f} MB, over the limit "
            f"of {limits['max_xlsx_mb']:_} MB (table `{name}`); nothing was read. If the "
            f"workbook really is this large, raise data.tables.{name}.max_xlsx_mb in "
            "parameters/project.yaml, or save the table as CSV or Parquet.",
            kind="too_large",
        ) from None
    except unreadable + (SyntaxError,) as exc:  # ElementTree.ParseError is a SyntaxError
        raise SourceError(
            f"{path}: cannot be read as an Excel workbook ({exc}). Open it in Excel and save it "
            "again as .xlsx.",
            kind="unreadable",
        ) from exc
    sheets = [s for s, _ in worksheets]
    if isinstance(sheet, str) and sheet not in sheets:
        raise SourceError(
            f"{path}: sheet {sheet!r} not found (table `{name}`); the workbook has the "
            f"sheets {', '.join(repr(s) for s in sheets)}. Set data.tables.{name}.sheet to "
            "one of them.",
            kind="missing_sheet",
        )
    if isinstance(sheet, int) and not 0 <= sheet < len(sheets):
        raise SourceError(
            f"{path}: sheet number {sheet} not found (table `{name}`); the workbook has "
            f"{len(sheets)} sheet(s): {', '.join(repr(s) for s in sheets)}.",
            kind="missing_sheet",
        )
    label = sheets[sheet] if isinstance(sheet, int) else sheet
    if inflated > limits["max_xlsx_mb"] * 1_000_000:
        what = f"the workbook inflates to {inflated / 1e6:,.0f} MB"
        raise _too_large(path, label, what, "max_xlsx_mb", limits, name, unit=" MB")
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    except unreadable as exc:
        raise SourceError(
            f"{path}: cannot be read as an Excel workbook ({exc}). Open it in Excel and save it "
            "again as .xlsx.",
            kind="unreadable",
        ) from exc
    data: list[list[Any]] = []
    width = 0
    last_with_data = -1
    try:
        worksheet = workbook[label]
        # Declared dimensions can be wrong (or made up): count what is actually there.
        worksheet.reset_dimensions()
        for number, row in enumerate(worksheet.rows):
            if number >= limits["max_xlsx_rows"]:
                what = f"it has more than {limits['max_xlsx_rows']:_} rows"
                raise _too_large(path, label, what, "max_xlsx_rows", limits, name)
            values = [_excel_cell(cell) for cell in row]
            while values and values[-1] == "":
                values.pop()
            if values:
                last_with_data = number
                width = max(width, len(values))
            # Every row is padded to the widest, so one far-right cell widens all of them.
            if (last_with_data + 1) * width > limits["max_xlsx_cells"]:
                what = f"it would make more than {limits['max_xlsx_cells']:_} cells"
                raise _too_large(path, label, what, "max_xlsx_cells", limits, name)
            data.append(values)
    except unreadable as exc:
        raise SourceError(
            f"{path} [sheet {label}]: cannot be read ({exc}). Open it in Excel and save it "
            "again as .xlsx.",
            kind="unreadable",
        ) from exc
    finally:
        workbook.close()
    frame = _sheet_frame([r + [""] * (width - len(r)) for r in data[: last_with_data + 1]])
    frame.columns = [str(c).strip() for c in frame.columns]
    unnamed = [c for c in frame.columns if c.startswith("Unnamed: ")]
    if unnamed and frame[unnamed].isna().all().all():
        frame = frame.drop(columns=unnamed)  # formatted but empty columns to the right
    frame = frame.dropna(how="all").reset_index(drop=True)  # formatted but empty rows below
    # Text cells stay text; empty strings are missing values, as in CSV.
    frame = frame.replace({"": None})
    return Loaded(frame, f"{path} [sheet {label}]")


def _sheet_frame(data: list[list[Any]]) -> pd.DataFrame:
    """The rows of a sheet as a table, the first row its header, as ``pandas.read_excel`` does
    (``dtype=object``: values as read, the same missing values and header names)."""
    from pandas.errors import EmptyDataError
    from pandas.io.parsers import TextParser

    if not data:
        return pd.DataFrame()
    try:
        return TextParser(data, header=0, dtype=object, skip_blank_lines=False).read()
    except EmptyDataError:
        return pd.DataFrame()


def _read_sql(spec: dict[str, Any], root: Path, name: str) -> Loaded:
    import sqlalchemy as sa

    url = spec["url"]
    try:
        parsed = sa.engine.make_url(url)
        database = parsed.database
        if parsed.get_backend_name() == "sqlite" and database and database != ":memory:":
            path = Path(os.path.expanduser(database))
            if not path.is_absolute():  # relative to the project folder, like `path:`
                parsed = parsed.set(database=str(root / path))
            if not (root / path).is_file():
                raise SourceError(
                    f"{root / path}: SQLite database file not found (table `{name}`). Check "
                    f"data.tables.{name}.url; a relative path starts at the project folder.",
                    kind="missing_file",
                )
        engine = sa.create_engine(parsed)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise ConfigError(
            f"data.tables.{name}.url: cannot use this database URL ({exc}). Expected a "
            "SQLAlchemy URL such as sqlite:///data/qi.db or "
            "postgresql+psycopg://user@host:5432/dbname, with its driver installed."
        ) from exc
    safe_url = engine.url.render_as_string(hide_password=True)
    try:
        if "query" in spec:
            where = f"{safe_url} (query for `{name}`)"
            with engine.connect() as conn:
                frame = pd.read_sql_query(sa.text(spec["query"]), conn)
        elif "table" in spec:
            table, schema = str(spec["table"]), spec.get("schema")
            if schema is None and "." in table:
                schema, table = table.split(".", 1)
            shown = f"{schema}.{table}" if schema else table
            where = f"{safe_url} table {shown}"
            with engine.connect() as conn:
                found = sa.inspect(conn).get_table_names(schema=schema)
                views = sa.inspect(conn).get_view_names(schema=schema)
                if table not in found and table not in views:
                    listing = ", ".join(sorted(found)) or "none"
                    raise SourceError(
                        f"{where}: table not found (table `{name}`); the database has the tables "
                        f"{listing}. Check data.tables.{name}.table (names are case-sensitive).",
                        kind="missing_table",
                    )
                frame = pd.read_sql_table(table, conn, schema=schema)
        else:
            raise ConfigError(f"data.tables.{name}: a `url:` source needs `table:` or `query:`.")
    except sa.exc.OperationalError as exc:
        first = str(exc.orig or exc).strip().splitlines()[0]
        raise SourceError(
            f"{safe_url}: cannot read table `{name}` ({first}). Check that the database is "
            "running and reachable, and the user, password and database name in the URL.",
            kind="unreachable",
        ) from exc
    except (sa.exc.SQLAlchemyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise SourceError(
            f"{where}: cannot be read ({first}). Check the table name or the query.",
            kind="unreadable",
        ) from exc
    finally:
        engine.dispose()
    return Loaded(frame, where)


def read_source(spec: dict[str, Any], *, root: Path, name: str) -> Loaded:
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
    if "path" in spec:
        loaded = _read_file(spec, root, name)
    elif "url" in spec:
        loaded = _read_sql(spec, root, name)
    else:
        raise ConfigError(f"data.tables.{name}: give either `path:` or `url:` (found {spec!r}).")
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
    return loaded


def read_table(spec: dict[str, Any], *, root: Path, name: str) -> tuple[pd.DataFrame, str]:
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
    loaded = read_source(spec, root=root, name=name)
    return loaded.frame, loaded.where


# ------------------------------------------------------------------------ formula neutralising


def _is_text(series: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)


def text_edges(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first and last byte and the byte length of every cell of an arrow string column.

    A vectorised look at the buffers (no per-cell work), used to find formulas, surrounding
    spaces and empty cells in columns of millions of rows. Missing cells have length 0.

    Returns
    -------
    first, last : ndarray of uint8
        0 for empty or missing cells.
    length : ndarray of int64
    """
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    firsts, lasts, lengths = [], [], []
    for chunk in chunks:
        n = len(chunk)
        wide = pa.types.is_large_string(chunk.type)
        validity, offsets_buf, data_buf = chunk.buffers()[:3]
        offsets = np.frombuffer(offsets_buf, dtype=np.int64 if wide else np.int32)
        offsets = offsets[chunk.offset : chunk.offset + n + 1].astype(np.int64)
        data = (
            np.frombuffer(data_buf, dtype=np.uint8)
            if data_buf is not None and data_buf.size
            else np.zeros(1, dtype=np.uint8)
        )
        length = np.diff(offsets)
        if validity is not None and chunk.null_count:
            length = np.where(chunk.is_valid().to_numpy(zero_copy_only=False), length, 0)
        empty = length == 0
        top = max(len(data) - 1, 0)
        first = data[np.minimum(offsets[:-1], top)]  # a plain gather: no boolean indexing
        last = data[np.clip(offsets[1:] - 1, 0, top)]
        first[empty] = 0
        last[empty] = 0
        firsts.append(first)
        lasts.append(last)
        lengths.append(length)
    if not chunks:
        empty = np.zeros(0, dtype=np.uint8)
        return empty, empty, np.zeros(0, dtype=np.int64)
    return np.concatenate(firsts), np.concatenate(lasts), np.concatenate(lengths)


_FORMULA_BYTES = np.zeros(256, dtype=bool)
_FORMULA_BYTES[[ord(c) for c in FORMULA_PREFIXES]] = True


def formula_cells(series: pd.Series) -> pd.Series:
    """Which cells of a column a spreadsheet would run as a formula.

    Parameters
    ----------
    series : Series
        Any column; only text cells can be formulas.

    Returns
    -------
    Series of bool
        True for text cells that start with one of :data:`FORMULA_PREFIXES`.
    """
    if not _is_text(series):
        return pd.Series(False, index=series.index)
    if isinstance(series.dtype, pd.StringDtype) and series.dtype.storage == "pyarrow":
        first, _, _ = text_edges(series.array.__arrow_array__())
        return pd.Series(_FORMULA_BYTES[first], index=series.index, dtype=bool)
    text = series.map(lambda v: v if isinstance(v, str) else None)
    return text.str.startswith(FORMULA_PREFIXES).fillna(False).astype(bool)


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Make text cells that a spreadsheet would run as formulas harmless, for export.

    A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with a
    single quote (the OWASP advice against CSV injection), so Excel and LibreOffice show it as
    text. Numbers (even negative ones) and dates are left alone.

    Parameters
    ----------
    frame : DataFrame
        The table about to be written to CSV or Excel.

    Returns
    -------
    DataFrame
        ``frame`` itself when no cell needs it, otherwise a copy with those cells prefixed.
    """
    out = frame
    for column in frame.columns:
        hit = formula_cells(frame[column])
        if hit.any():
            if out is frame:
                out = frame.copy()
            values = out[column].astype(object)
            values[hit] = "'" + values[hit].astype(str)
            keep = pd.api.types.is_string_dtype(frame[column].dtype)
            out[column] = values.astype(frame[column].dtype) if keep else values
    return out
