"""Per-table validation: typed columns out, every error of a table in one message."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from qi_helpers.data.columns import COLUMNS_ADVICE, require_columns
from qi_helpers.data.contracts import CONTRACTS
from qi_helpers.data.validation import inspect, validate
from qi_helpers.errors import ContractError, DataError


def test_the_demo_tables_are_valid_and_typed(demo_tables):
    for name in CONTRACTS:
        typed, problems = inspect(name, demo_tables[name], source=f"{name}.csv")
        assert [p for p in problems if p.level == "error"] == [], name
    activities = validate("activities", demo_tables["activities"].astype(str))
    assert activities["timestamp"].dtype == "datetime64[ns]"
    assert activities["duration_min"].dtype == "float64"
    assert activities["staff_id"].dtype == "string"


def test_text_from_csv_is_typed():
    frame = pd.DataFrame(
        {"staff_id": [" S1 ", "12"], "role": ["GP", "RN"], "fte": ["1", "0.5"]}, dtype="str"
    )
    staff = validate("staff", frame)
    assert staff["staff_id"].tolist() == ["S1", "12"]  # spaces trimmed
    assert staff["fte"].tolist() == [1.0, 0.5]


def test_numbers_as_identifiers_from_excel_become_text():
    frame = pd.DataFrame({"staff_id": [101.0, 102.0], "role": ["GP", "RN"]})
    assert validate("staff", frame)["staff_id"].tolist() == ["101", "102"]
    objects = pd.DataFrame({"staff_id": pd.Series([101, "S2"], dtype=object), "role": ["a", "b"]})
    assert validate("staff", objects)["staff_id"].tolist() == ["101", "S2"]


def test_excel_dates_and_text_dates_mix():
    frame = pd.DataFrame(
        {
            "microsystem_id": ["A", "A"],
            "cycle_id": ["1", "2"],
            "change": ["x", "y"],
            "start": pd.Series([dt.datetime(2024, 3, 4), "2024-04-01"], dtype=object),
        }
    )
    pdsa = validate("pdsa", frame)
    assert pdsa["start"].tolist() == [pd.Timestamp("2024-03-04"), pd.Timestamp("2024-04-01")]


def test_date_format_reads_day_first_dates():
    frame = pd.DataFrame({"microsystem_id": ["A"], "change": ["x"], "adopted": ["04/03/2024"]})
    adoption = validate("adoption", frame, date_format="%d/%m/%Y")
    assert adoption["adopted"].iloc[0] == pd.Timestamp("2024-03-04")


def test_all_errors_of_a_table_in_one_message():
    frame = pd.DataFrame(
        {
            "measure_id": ["m1", "m1", "m3"],
            "name": ["a", "b", "c"],
            "family": ["process", "outcome", "structure"],
            "chart": ["p", "pie", "i"],
            "improvement": ["up", "down", "down"],
            "target": ["80", "x", "5"],
        }
    )
    with pytest.raises(ContractError) as error:
        validate("measures", frame, source="measures.csv")
    message = str(error.value)
    assert isinstance(error.value, DataError)
    kinds = sorted(p.kind for p in error.value.problems)
    assert kinds == ["bad_number", "duplicate_id", "unknown_value", "unknown_value"]
    assert message.startswith("measures.csv (table `measures`):")
    for text in (
        "column `measure_id`, rows 1, 2: duplicate identifiers",
        "column `target`, row 2: not a number (e.g. 'x')",
        "column `chart`, row 2: unknown value(s) 'pie'",
        "column `family`, row 3: unknown value(s) 'structure'",
    ):
        assert text in message
    assert message.count("Fix: ") == 4


def test_coded_values_are_normalised():
    frame = pd.DataFrame(
        {
            "measure_id": ["m1"],
            "name": ["a"],
            "family": [" Process"],
            "chart": ["P"],
            "improvement": ["UP "],
        }
    )
    measures = validate("measures", frame)
    assert measures[["family", "chart", "improvement"]].iloc[0].tolist() == ["process", "p", "up"]


def test_warnings_do_not_stop_validation():
    frame = pd.DataFrame({"microsystem_id": ["A"], "change": ["=1+1"], "adopted": ["2099-01-01"]})
    typed, problems = inspect("adoption", frame)
    assert {p.kind for p in problems} == {"formula", "future_date"}
    assert validate("adoption", frame)["adopted"].iloc[0].year == 2099


def test_empty_table_and_unknown_table():
    with pytest.raises(DataError, match="has no rows"):
        validate("staff", pd.DataFrame({"staff_id": [], "role": []}))
    with pytest.raises(DataError, match="unknown table `staf`"):
        validate("staf", pd.DataFrame({"a": [1]}))


def test_require_columns_names_the_table_the_missing_and_the_found_columns():
    table = pd.DataFrame({"change": ["x"], 7: [1]})
    require_columns(table, ["change"], "adoption")  # all present: nothing raised
    with pytest.raises(DataError) as caught:
        require_columns(table, ["microsystem_id", "change", "adopted"], "adoption")
    assert str(caught.value) == (
        f"adoption: missing column(s) microsystem_id, adopted; found change, 7. {COLUMNS_ADVICE}"
    )
    with pytest.raises(DataError, match=r"^results: missing column\(s\) a; found no columns\. Run"):
        require_columns(pd.DataFrame(), ["a", "a"], "results", advice="Run workbook 03.")
