"""Read one sheet of an Excel workbook (.xlsx, .xlsm), within caps on what it may inflate to.

An .xlsx is a zip archive: a file of 1 MB can inflate to hundreds of MB. :func:`read_excel` checks
the sizes the archive declares for its parts before anything is decompressed, then counts rows
and cells as the sheet is streamed (openpyxl's read-only mode), and gives the table as
``pandas.read_excel`` would (values as read, the first row the header).
"""

from __future__ import annotations

import posixpath
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pandas as pd
from pandas.errors import EmptyDataError
from pandas.io.parsers import TextParser

from qi_helpers.data.loaded import Loaded
from qi_helpers.errors import SourceError
from qi_helpers.errors import ConfigError

__all__ = ["XLSX_LIMITS", "read_excel"]

#: Default caps on reading one Excel sheet, each overridable in the table's source mapping:
#: the uncompressed size of what is parsed (the sheet's XML, the shared strings, styles and the
#: workbook's other XML parts) in MB, the rows, and the cells once every row is as wide as the
#: widest. An .xlsx is a zip archive: a file of 1 MB can inflate to hundreds of MB.
XLSX_LIMITS: dict[str, int] = {
    "max_xlsx_mb": 200,
    "max_xlsx_rows": 2_000_000,
    "max_xlsx_cells": 50_000_000,
}

_MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_DOC_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"

#: What reading a damaged workbook may raise (zipfile, openpyxl and the XML parser).
_UNREADABLE = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, KeyError)


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


def _not_a_workbook(path: Path, exc: BaseException) -> SourceError:
    return SourceError(
        f"{path}: cannot be read as an Excel workbook ({exc}). Open it in Excel and save it "
        "again as .xlsx.",
        kind="unreadable",
    )


def _archive(path: Path, limits: dict[str, int], name: str) -> tuple[int, list[str]]:
    """What the archive declares: the total inflated size of its members, and its worksheets.

    Nothing is decompressed beyond the workbook's small XML parts that list the sheets.
    """
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
    except _UNREADABLE + (SyntaxError,) as exc:  # ElementTree.ParseError is a SyntaxError
        raise _not_a_workbook(path, exc) from exc
    return inflated, [s for s, _ in worksheets]


def _sheet_label(path: Path, sheet: Any, sheets: list[str], name: str) -> str:
    """The name of the sheet asked for (by name or number), or the error that it is missing."""
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
    return sheets[sheet] if isinstance(sheet, int) else sheet


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


def _sheet_rows(
    worksheet: Any, path: Path, label: str, limits: dict[str, int], name: str
) -> list[list[Any]]:
    """The sheet's rows up to the last one with data, each padded to the widest, within caps."""
    data: list[list[Any]] = []
    width = 0
    last_with_data = -1
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
    return [r + [""] * (width - len(r)) for r in data[: last_with_data + 1]]


def _read_rows(path: Path, label: str, limits: dict[str, int], name: str) -> list[list[Any]]:
    """Stream the sheet's rows with openpyxl (read-only mode, cached values, no links)."""
    # openpyxl is needed for .xlsx sources only and is slow to import: imported when used.
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    except _UNREADABLE as exc:
        raise _not_a_workbook(path, exc) from exc
    try:
        return _sheet_rows(workbook[label], path, label, limits, name)
    except _UNREADABLE as exc:
        raise SourceError(
            f"{path} [sheet {label}]: cannot be read ({exc}). Open it in Excel and save it "
            "again as .xlsx.",
            kind="unreadable",
        ) from exc
    finally:
        workbook.close()


def _sheet_frame(data: list[list[Any]]) -> pd.DataFrame:
    """The rows of a sheet as a table, the first row its header, as ``pandas.read_excel`` does
    (``dtype=object``: values as read, the same missing values and header names)."""
    if not data:
        return pd.DataFrame()
    try:
        return TextParser(data, header=0, dtype=object, skip_blank_lines=False).read()
    except EmptyDataError:
        return pd.DataFrame()


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop formatted but empty columns and rows; empty strings become missing, as in CSV."""
    frame.columns = [str(c).strip() for c in frame.columns]
    unnamed = [c for c in frame.columns if c.startswith("Unnamed: ")]
    if unnamed and frame[unnamed].isna().all().all():
        frame = frame.drop(columns=unnamed)  # formatted but empty columns to the right
    frame = frame.dropna(how="all").reset_index(drop=True)  # formatted but empty rows below
    # Text cells stay text; empty strings are missing values, as in CSV.
    return frame.replace({"": None})


def read_excel(path: Path, spec: dict[str, Any], name: str) -> Loaded:
    """Read one sheet of an .xlsx, within the caps of :data:`XLSX_LIMITS`.

    The sizes the archive declares for its parts are checked first (an .xlsx is a zip archive,
    and zip reads stop at the declared size), so a sheet that inflates far beyond its file size
    is refused at once, without being decompressed; rows and cells are then counted as the
    sheet is read (openpyxl's streaming read-only mode), so a sheet that is small on disk but
    holds too many rows, or rows too wide, is stopped early too.

    Parameters
    ----------
    path : Path
        The workbook.
    spec : dict
        The table's source mapping: ``sheet`` (a name or a number from 0, default 0) and the
        caps of :data:`XLSX_LIMITS`.
    name : str
        The contract table's name (for messages).

    Returns
    -------
    Loaded
        The sheet as a table (``path [sheet <name>]`` as its source).

    Raises
    ------
    ConfigError
        For a cap that is not a whole number above 0.
    SourceError
        For a missing sheet, a workbook over a cap, or one that cannot be read.
    """
    limits = _xlsx_limits(spec, name)
    inflated, sheets = _archive(path, limits, name)
    label = _sheet_label(path, spec.get("sheet", 0), sheets, name)
    if inflated > limits["max_xlsx_mb"] * 1_000_000:
        what = f"the workbook inflates to {inflated / 1e6:,.0f} MB"
        raise _too_large(path, label, what, "max_xlsx_mb", limits, name, unit=" MB")
    frame = _tidy(_sheet_frame(_read_rows(path, label, limits, name)))
    return Loaded(frame, f"{path} [sheet {label}]")
