"""Reading tables from CSV, TSV, Excel, Parquet and SQL, and neutralising formulas for export."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qi_helpers.data.formulas import formula_cells, neutralise_formulas, text_edges
from qi_helpers.data.sources import read_source, read_table
from qi_helpers.errors import ConfigError, DataError

STAFF = pd.DataFrame({"staff_id": ["007", "S2"], "role": ["GP", "Nurse"], "fte": [1.0, 0.5]})


def test_csv_keeps_identifiers_as_text(tmp_path):
    (tmp_path / "staff.csv").write_text("staff_id,role,fte\n007,GP,1\nS2,Nurse,\n")
    loaded = read_source({"path": "staff.csv"}, root=tmp_path, name="staff")
    assert loaded.frame["staff_id"].tolist() == ["007", "S2"]  # leading zeros kept
    assert loaded.frame["fte"].isna().tolist() == [False, True]  # empty cells are missing
    assert loaded.where == str(tmp_path / "staff.csv")
    assert loaded.encoding == "UTF-8" and loaded.notes == []


def test_tsv(tmp_path):
    (tmp_path / "staff.tsv").write_text("staff_id\trole\nS1\tGP, partner\n")
    frame, _ = read_table({"path": "staff.tsv"}, root=tmp_path, name="staff")
    assert frame["role"].tolist() == ["GP, partner"]


def test_windows_1252_is_read_and_said(tmp_path):
    (tmp_path / "staff.csv").write_bytes("staff_id,role\nS1,Sage-femme é\n".encode("cp1252"))
    loaded = read_source({"path": "staff.csv"}, root=tmp_path, name="staff")
    assert loaded.frame["role"].tolist() == ["Sage-femme é"]
    assert loaded.encoding == "Windows-1252"
    assert "Windows-1252" in loaded.notes[0]


def test_excel_sheet_by_name_and_number(tmp_path):
    path = tmp_path / "staff.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"x": [1]}).to_excel(writer, sheet_name="Notes", index=False)
        STAFF.to_excel(writer, sheet_name="Roster", index=False)
    by_name = read_source({"path": "staff.xlsx", "sheet": "Roster"}, root=tmp_path, name="staff")
    assert by_name.frame["role"].tolist() == ["GP", "Nurse"]
    assert by_name.where.endswith("staff.xlsx [sheet Roster]")
    by_number = read_source({"path": "staff.xlsx", "sheet": 1}, root=tmp_path, name="staff")
    assert by_number.where.endswith("[sheet Roster]")
    with pytest.raises(DataError, match=r"sheet 'Staff' not found.*'Notes', 'Roster'"):
        read_table({"path": "staff.xlsx", "sheet": "Staff"}, root=tmp_path, name="staff")


def test_parquet(tmp_path):
    STAFF.to_parquet(tmp_path / "staff.parquet")
    frame, where = read_table({"path": "staff.parquet"}, root=tmp_path, name="staff")
    assert frame["staff_id"].tolist() == ["007", "S2"]
    assert where.endswith("staff.parquet")


def test_sqlite_table_query_and_relative_path(tmp_path):
    with sqlite3.connect(tmp_path / "qi.db") as con:
        STAFF.to_sql("roster", con, index=False)
    table = read_source({"url": "sqlite:///qi.db", "table": "roster"}, root=tmp_path, name="staff")
    assert table.frame["role"].tolist() == ["GP", "Nurse"]
    assert "roster" in table.where
    query = read_source(
        {"url": "sqlite:///qi.db", "query": "SELECT staff_id, role FROM roster WHERE fte = 1"},
        root=tmp_path,
        name="staff",
    )
    assert query.frame["staff_id"].tolist() == ["007"]
    with pytest.raises(DataError, match=r"table not found.*the database has the tables roster"):
        read_table({"url": "sqlite:///qi.db", "table": "staff"}, root=tmp_path, name="staff")
    with pytest.raises(DataError, match="SQLite database file not found"):
        read_table({"url": "sqlite:///nope.db", "table": "staff"}, root=tmp_path, name="staff")


def test_database_password_is_never_shown(tmp_path):
    spec = {"url": "postgresql+psycopg://qi:s3cret@127.0.0.1:1/qi", "table": "staff"}
    with pytest.raises(DataError) as error:
        read_table(spec, root=tmp_path, name="staff")
    assert "s3cret" not in str(error.value)
    assert "127.0.0.1" in str(error.value)


def test_columns_are_renamed_and_absent_ones_said(tmp_path):
    (tmp_path / "staff.csv").write_text("Staff ID,Job\nS1,GP\n")
    spec = {"path": "staff.csv", "columns": {"Staff ID": "staff_id", "Job": "role", "FTE": "fte"}}
    loaded = read_source(spec, root=tmp_path, name="staff")
    assert list(loaded.frame.columns) == ["staff_id", "role"]
    assert "FTE" in loaded.notes[0]


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"path": "x.csv", "sheeet": 1}, "unknown key"),
        ({"sheet": 1}, "give either `path:` or `url:`"),
        ({"path": "x.xls"}, None),
        ({"url": "nosuchdb://x", "table": "t"}, "cannot use this database URL"),
        ({"url": "sqlite:///:memory:"}, "needs `table:` or `query:`"),
    ],
)
def test_configuration_mistakes(tmp_path, spec, message):
    (tmp_path / "x.xls").write_bytes(b"old")
    with pytest.raises(ConfigError, match=message or ".xls"):
        read_table(spec, root=tmp_path, name="staff")


def test_neutralise_formulas_prefixes_text_only():
    frame = pd.DataFrame(
        {
            "change": ['=HYPERLINK("http://x")', "+1", "-x", "@SUM(A1)", "plain", None],
            "number": [-1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "obj": pd.Series(["\tx", "ok", 3, None, "=1", "a"], dtype=object),
        }
    )
    out = neutralise_formulas(frame)
    assert out["change"].tolist()[:5] == [
        '\'=HYPERLINK("http://x")',
        "'+1",
        "'-x",
        "'@SUM(A1)",
        "plain",
    ]
    assert pd.isna(out["change"].iloc[5])
    assert out["number"].tolist() == frame["number"].tolist()  # negative numbers untouched
    assert out["obj"].tolist()[:3] == ["'\tx", "ok", 3] and out["obj"].iloc[4] == "'=1"
    assert frame["change"].iloc[0].startswith("=")  # the input is not changed
    clean = pd.DataFrame({"a": ["x", "y"]})
    assert neutralise_formulas(clean) is clean


def test_demo_csv_export_neutralises_formulas(tmp_path, demo_tables):
    from qi_helpers.demo.health_system import write_demo

    tables = dict(demo_tables)
    tables["pdsa"] = demo_tables["pdsa"].copy()
    tables["pdsa"].loc[0, "change"] = "=cmd|' /C calc'!A0"
    write_demo(tables, tmp_path)
    written = pd.read_csv(tmp_path / "pdsa.csv", dtype=str)
    assert written["change"].iloc[0] == "'=cmd|' /C calc'!A0"


@given(st.lists(st.one_of(st.none(), st.text(max_size=6)), max_size=30), st.integers(0, 5))
def test_text_edges_match_python(values, cut):
    arr = pa.array(values, type=pa.string()).slice(min(cut, len(values)))
    first, last, length = text_edges(pa.chunked_array([arr, arr], type=pa.string()))
    expected = [v for v in values[min(cut, len(values)) :]] * 2
    for f, la, n, v in zip(first, last, length, expected, strict=True):
        raw = (v or "").encode()
        assert n == len(raw)
        assert f == (raw[0] if raw else 0) and la == (raw[-1] if raw else 0)


def test_formula_cells_on_numbers_is_all_false():
    assert not formula_cells(pd.Series([-1, 2])).any()


def test_reading_a_table_moves_pyarrow_to_the_system_allocator(tmp_path):
    """Memory pyarrow frees goes back to the system (qi_helpers.data.arrow_memory): with the
    default allocator, workbook 01's kernel kept 0.6 GB it no longer used on the large demo."""
    (tmp_path / "t.csv").write_text("a,b\nx,1\n", encoding="utf-8")
    read_source({"path": "t.csv"}, root=tmp_path, name="t")
    assert pa.default_memory_pool().backend_name == "system"
    text = pa.array(["x" * 100] * 10_000)  # new buffers come from it
    assert pa.system_memory_pool().bytes_allocated() >= text.nbytes
