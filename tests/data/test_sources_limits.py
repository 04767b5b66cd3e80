"""An Excel sheet is read within caps: a zip bomb is refused in seconds, naming file and sheet.

An .xlsx is a zip archive: a file under 1 MB can hold a sheet that inflates to hundreds of MB and
keeps a reader busy for minutes. The sizes the archive declares are checked before anything is
parsed (``max_xlsx_mb``, default 200), and rows and cells are counted while the sheet is read
(``max_xlsx_rows``, default 2 million; ``max_xlsx_cells``).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml
from support import make_tiny_project

from qi_helpers.data.sources import read_source
from qi_helpers.errors import ConfigError, DataError

SHEET = "xl/worksheets/sheet1.xml"
STRINGS = "xl/sharedStrings.xml"
_MAIN = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def _small_xlsx(path: Path, rows: int = 2) -> Path:
    """A valid workbook with one sheet, ``Staff``: a header and ``rows`` rows."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Staff"
    sheet.append(["staff_id", "role", "fte", "home_unit"])
    for i in range(rows):
        sheet.append([f"S{i + 1:05d}", "nurse", 1.0, "NOR-PC1"])
    book.save(path)
    return path


def _bomb(path: Path, mb: int, member: str = SHEET) -> Path:
    """A small valid .xlsx whose ``member`` is replaced by ``mb`` MB of repetitive XML.

    Deflate shrinks the repetition about a thousandfold: the file stays small on disk.
    """
    small = _small_xlsx(path.with_name("small-" + path.name))
    if member == SHEET:
        head = b"<?xml version='1.0'?><worksheet " + _MAIN + b"><sheetData>"
        head += b'<row r="1"><c r="A1" t="inlineStr"><is><t>staff_id</t></is></c></row>'
        unit = b'<row><c t="inlineStr"><is><t>S00001</t></is></c></row>'
        tail = b"</sheetData></worksheet>"
    else:
        head = b"<?xml version='1.0'?><sst " + _MAIN + b">"
        unit = b"<si><t>nurse nurse nurse nurse</t></si>"
        tail = b"</sst>"
    chunk = unit * (1_000_000 // len(unit))
    with zipfile.ZipFile(small) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename != member:
                dst.writestr(info, src.read(info), compress_type=zipfile.ZIP_DEFLATED)
        with dst.open(member, "w", force_zip64=True) as out:
            out.write(head)
            for _ in range(mb):
                out.write(chunk)
            out.write(tail)
    small.unlink()
    return path


@pytest.mark.parametrize("member", [SHEET, STRINGS])
def test_a_sheet_that_inflates_past_the_cap_is_refused_at_once(tmp_path, member):
    path = _bomb(tmp_path / "staff.xlsx", mb=30, member=member)
    assert path.stat().st_size < 1_000_000
    spec = {"path": "staff.xlsx", "sheet": "Staff", "max_xlsx_mb": 10}
    start = time.perf_counter()
    with pytest.raises(DataError) as raised:
        read_source(spec, root=tmp_path, name="staff")
    assert time.perf_counter() - start < 5
    message = str(raised.value)
    assert str(path) in message and "[sheet Staff]" in message
    assert "max_xlsx_mb" in message and raised.value.kind == "too_large"


def test_too_many_rows_are_refused_naming_file_and_sheet(tmp_path):
    _small_xlsx(tmp_path / "staff.xlsx", rows=50)
    spec = {"path": "staff.xlsx", "sheet": 0, "max_xlsx_rows": 10}
    with pytest.raises(DataError, match=r"staff\.xlsx \[sheet Staff\].*10 rows") as raised:
        read_source(spec, root=tmp_path, name="staff")
    assert "max_xlsx_rows" in str(raised.value)
    # within the cap the table is read as before
    spec["max_xlsx_rows"] = 51
    assert len(read_source(spec, root=tmp_path, name="staff").frame) == 50


def test_one_cell_far_to_the_right_cannot_widen_every_row_past_the_cap(tmp_path):
    path = _small_xlsx(tmp_path / "staff.xlsx", rows=30)
    book = openpyxl.load_workbook(path)
    book["Staff"].cell(row=2, column=16_000, value="x")
    book.save(path)
    spec = {"path": "staff.xlsx", "max_xlsx_cells": 100_000}
    with pytest.raises(DataError, match=r"\[sheet Staff\].*100_000 cells"):
        read_source(spec, root=tmp_path, name="staff")


@pytest.mark.parametrize("value", [0, -5, "lots", 1.5, True])
def test_caps_must_be_whole_numbers_above_zero(tmp_path, value):
    _small_xlsx(tmp_path / "staff.xlsx")
    with pytest.raises(ConfigError, match="max_xlsx_rows"):
        read_source({"path": "staff.xlsx", "max_xlsx_rows": value}, root=tmp_path, name="staff")


def test_default_caps_are_documented_and_sane():
    from qi_helpers.data.excel import XLSX_LIMITS

    assert XLSX_LIMITS["max_xlsx_mb"] == 200
    assert XLSX_LIMITS["max_xlsx_rows"] == 2_000_000
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for key in XLSX_LIMITS:
        assert key in readme


def test_sheets_are_read_as_pandas_reads_them(tmp_path):
    path = tmp_path / "mixed.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Mixed"
    rows = [
        ["id", None, "id", "when", "n", "note", "error"],
        ["P1", None, 1, dt.datetime(2024, 1, 2), 3.0, "NA", "=1/0"],
        [None] * 7,
        ["P2", "z", 2.5, "2024-01-03", 4, "", "#N/A"],
    ]
    for row in rows:
        sheet.append(row)
    book.save(path)
    ours = read_source({"path": "mixed.xlsx"}, root=tmp_path, name="t").frame
    theirs = pd.read_excel(path, dtype=object)
    theirs = theirs.dropna(how="all").reset_index(drop=True).replace({"": None})
    pd.testing.assert_frame_equal(ours, theirs)


def test_qi_check_on_a_267_mb_sheet_stops_within_seconds(demo_project, tmp_path):
    """The reported attack, with the default caps, through the command."""
    root = make_tiny_project(tmp_path / "project", demo_project / "data" / "demo")
    bomb = _bomb(root / "data" / "roster.xlsx", mb=267)
    assert bomb.stat().st_size < 2_000_000
    config_file = root / "parameters" / "project.yaml"
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    config["data"]["tables"]["staff"] = {"path": "data/roster.xlsx", "sheet": "Staff"}
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    start = time.perf_counter()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "qi_helpers.cli", "check", "--project", str(root)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("qi check was still reading the sheet after 60 s")
    assert time.perf_counter() - start < 30
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "roster.xlsx" in output and "Staff" in output and "200" in output
