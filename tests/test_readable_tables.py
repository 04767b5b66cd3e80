"""Tables for people (issue 20): the formatting rules on hand-built frames.

Every expected cell below is written by hand from the rule it checks (counts with thousands
separators, three significant digits, shares as percentages, "12 Aug 2024", empty for missing
values), never computed with the code under test.
"""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from qi_helpers import notebook_display
from qi_helpers.changes.tables import subgroup_table, verdict_table
from qi_helpers.privacy.html import clean_html
from qi_helpers.privacy.screen import IdentifierScreen, set_active_screen
from qi_helpers.readable_tables import grouped, readable_html
from qi_helpers.table_formats import ColumnFormat, column_format, format_value


class Tables(HTMLParser):
    """The tables of an HTML fragment: each a list of rows, each a list of cell texts; and
    the ``<summary>`` texts."""

    def __init__(self, fragment: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.summaries: list[str] = []
        self._cell: list[str] | None = None
        self._summary: list[str] | None = None
        self.feed(fragment)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "summary":
            self._summary = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "summary" and self._summary is not None:
            self.summaries.append("".join(self._summary))
            self._summary = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._summary is not None:
            self._summary.append(data)


def _tables(frame: pd.DataFrame, **options) -> Tables:
    return Tables(readable_html(frame, **options))


def test_missing_values_of_every_kind_are_empty_cells():
    frame = pd.DataFrame(
        {
            "change": pd.array(["Recall", pd.NA], dtype="string"),
            "start": pd.to_datetime(["2024-08-12", None]),
            "baseline_mean": [65.72, np.nan],
            "balances": [None, "pc_ttna"],
            "n_after": pd.array([1691, pd.NA], dtype="Int64"),
            "note": ["nan", "None"],  # text that a str() upstream made of a missing value
        }
    )
    rows = _tables(frame).tables[0][1:]
    assert rows[0] == ["Recall", "12 Aug 2024", "65.7", "", "1,691", ""]
    assert rows[1] == ["", "", "", "pc_ttna", "", ""]
    for row in rows:
        for cell in row:
            assert cell not in ("NaN", "nan", "NaT", "<NA>", "None")


def test_numbers_read_as_people_write_them():
    count = column_format("n_after")
    assert format_value(1691, count) == "1,691"
    assert format_value(2766.0, column_format("panel_size")) == "2,766"
    number = ColumnFormat("x", "number")
    # three significant digits; whole numbers from 100 on (133.1 -> 133)
    assert format_value(65.722952, number) == "65.7"
    assert format_value(9.94456, number) == "9.94"
    assert format_value(0.012345, number) == "0.0123"
    assert format_value(133.1, number) == "133"
    assert format_value(1234567.8, number) == "1,234,568"
    assert format_value(-0.0001, ColumnFormat("x", "number", 1)) == "0.0"
    # a share (0 to 1) is a percentage
    assert format_value(0.513, column_format("share_female")) == "51%"
    assert format_value(0.004, column_format("weekend_share")) == "0.4%"
    # a measure value takes its row's unit; a percentage keeps one decimal
    assert format_value(65.722952, column_format("baseline_mean"), {"unit": "%"}) == "65.7%"
    assert format_value(10.783654, column_format("baseline_mean"), {"unit": "days"}) == (
        "10.8 days"
    )
    assert format_value(True, column_format("measurable")) == "Yes"
    assert format_value(np.False_, column_format("flag")) == "No"


def test_dates_read_day_month_year():
    fmt = column_format("start")
    assert format_value(pd.Timestamp("2024-08-12"), fmt) == "12 Aug 2024"
    assert format_value(pd.Timestamp("2024-08-12 14:05"), fmt) == "12 Aug 2024 14:05"
    assert format_value(np.datetime64("2025-12-22"), fmt) == "22 Dec 2025"


def test_headers_are_readable_with_units():
    assert column_format("baseline_mean").header == "Baseline mean"
    assert column_format("panel_size").header == "Panel size (patients)"
    assert column_format("median_minutes").header == "Median duration (minutes)"
    # an unknown column gets a humanised header; a name that is not a code word stays
    assert column_format("weekly_foo_bar").header == "Weekly foo bar"
    assert column_format("NOR-PC1").header == "NOR-PC1"
    assert column_format("room_to_improve_why").header == "Room to improve: why"


def test_effect_and_its_interval_read_as_one_cell():
    # The example: HbA1c tested rose from 65.7% to 79.2%, +13.5 points (9.9 to 17.0).
    frame = pd.DataFrame(
        {
            "name": ["HbA1c tested", "Waits", "Falls"],
            "effect": [13.460962, -2.13, 0.8234],
            "effect_low": [9.94456, -3.9, 0.61],
            "effect_high": [17.006656, -0.35, 1.1],
            "effect_kind": ["difference in proportions", "difference in means", "rate ratio"],
            "unit": [np.nan, "days", "per 1,000 bed-days"],
        }
    )
    header, *rows = _tables(frame).tables[0]
    assert header == ["Name", "Effect (95% CI)", "Unit", "Effect measured as"]
    assert [r[1] for r in rows] == [
        "+13.5 points (9.9 to 17.0)",
        "-2.13 days (-3.90 to -0.350)",
        "0.82 (0.61 to 1.10)",
    ]


def test_no_index_column_unless_the_index_means_something():
    frame = pd.DataFrame({"name": ["a", "b"], "n_staff": [3, 4]})
    assert _tables(frame).tables[0][0] == ["Name", "Staff"]
    # rows filtered out of a default index still number nothing worth showing
    assert _tables(frame.iloc[[1]]).tables[0][1] == ["b", "4"]
    named = frame.set_index("name")
    assert _tables(named).tables[0] == [["Name", "Staff"], ["a", "3"], ["b", "4"]]
    # a transposed record: its field names read as headers
    record = pd.DataFrame(
        {"microsystem_id": ["NOR-PC1"], "kind": ["primary_care"], "weekly_volume": [133.1]}
    )
    record = record.set_index("microsystem_id").T
    assert _tables(record).tables[0][1:] == [["Kind", "primary care"], ["Activities a week", "133"]]


def test_at_most_eight_columns_in_view_and_the_rest_behind_a_disclosure():
    frame = pd.DataFrame({f"col_{i:02d}": [i, i + 1] for i in range(14)})
    frame.insert(0, "name", ["first", "second"])
    frame["measure_id"] = ["m1", "m2"]  # a detail column goes last
    parsed = _tables(frame)
    view, *more = parsed.tables
    assert view[0] == ["Name"] + [f"Col {i:02d}" for i in range(7)]
    assert parsed.summaries == [
        "More columns: " + ", ".join([f"Col {i:02d}" for i in range(7, 14)] + ["Measure id"])
    ]
    # narrow tables behind it: the row's name, then at most five columns each
    assert [t[0] for t in more] == [
        ["Name", "Col 07", "Col 08", "Col 09", "Col 10", "Col 11"],
        ["Name", "Col 12", "Col 13", "Measure id"],
    ]
    assert more[1][2] == ["second", "13", "14", "m2"]
    assert sum(len(t[0]) - 1 for t in more) == 8


def test_rows_of_one_measure_and_change_sit_under_one_heading():
    frame = pd.DataFrame(
        {
            "name": ["HbA1c tested"] * 3,
            "change": ["Recall register"] * 3,
            "dimension": ["age_band", "age_band", "sex"],
            "subgroup": ["0-17", "18-39", "F"],
            "n_after": [14, 39, 800],
        }
    )
    table = _tables(grouped(frame, ["name", "change", "dimension"])).tables[0]
    assert table == [
        ["Group", "After (n)"],
        ["HbA1c tested · Change: Recall register · Patients by: age band"],
        ["0-17", "14"],
        ["18-39", "39"],
        ["Patients by: sex"],  # only what changed since the heading above
        ["F", "800"],
    ]


def test_long_tables_are_cut_like_pandas():
    frame = pd.DataFrame({"n_staff": range(100)})
    rows = _tables(frame, max_rows=60, min_rows=10).tables[0][1:]
    assert [r[0] for r in rows] == ["0", "1", "2", "3", "4", "… 90 more rows …"] + [
        "95",
        "96",
        "97",
        "98",
        "99",
    ]
    assert "10 of 100 rows shown." in readable_html(frame, max_rows=60, min_rows=10)


def test_text_from_data_is_escaped_and_the_sanitiser_keeps_the_table():
    frame = pd.DataFrame({"change": ['<img src=x onerror="alert(1)">'] * 2, "x": [1, 2]})
    frame = pd.concat([frame, pd.DataFrame({f"c{i}": [0, 1] for i in range(9)})], axis=1)
    out = readable_html(frame)
    assert "<img" not in out and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in out
    cleaned = clean_html(out)
    for element in ("<table", "<details", "<summary>", 'class="qi-num"', 'scope="col"'):
        assert cleaned.count(element) == out.count(element) > 0, element


def test_a_displayed_table_is_screened_before_it_is_cut():
    # The identifier straddles the 400th character, where a long cell is cut: screening the
    # formatted table would leave its first half behind.
    patient = "P7Q3X9Z2K8"
    text = "x " * 197 + patient + " more text"
    screen = IdentifierScreen.from_tables({"patients": pd.DataFrame({"patient_id": [patient]})})
    set_active_screen(screen)
    try:
        out = notebook_display._table_html(pd.DataFrame({"note": [text]}))
    finally:
        set_active_screen(None)
    assert "P7Q3" not in out
    assert "[iden" in out  # the screen's mark, cut where the cell is cut


def _verdicts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "microsystem_id": ["NOR-PC1", "NOR-PC1"],
            "measure_id": ["pc_hba1c_tested", "pc_ttna"],
            "name": ["HbA1c tested", "Time to third next available appointment"],
            "verdict": ["improved", "baseline only"],
            "change": pd.array(["Recall register", pd.NA], dtype="string"),
            "effect": [13.460962, np.nan],
            "effect_low": [9.94456, np.nan],
            "effect_high": [17.006656, np.nan],
            "effect_kind": ["difference in proportions", "difference in means"],
            "baseline_mean": [65.722952, 10.783654],
            "after_mean": [79.183915, np.nan],
            "subgroups_flagged": ["", ""],
        }
    )


def test_the_verdict_table_reads_measure_change_verdict_and_effect_first():
    table = _tables(verdict_table(_verdicts())).tables[0]
    assert table[0][:4] == ["Name", "Change", "Verdict", "Effect (95% CI)"]
    assert table[1][:6] == [
        "HbA1c tested",
        "Recall register",
        "improved",
        "+13.5 points (9.9 to 17.0)",
        "65.7%",
        "79.2%",
    ]
    assert table[2][:6] == [
        "Time to third next available appointment",
        "",
        "baseline only",
        "",
        "10.8",
        "",
    ]


@pytest.mark.parametrize("threshold", [11])
def test_the_subgroup_table_groups_rows_and_hides_small_counts(threshold):
    subgroups = pd.DataFrame(
        {
            "microsystem_id": "NOR-PC1",
            "measure_id": "pc_hba1c_tested",
            "name": "HbA1c tested",
            "change": "Recall register",
            "whole_verdict": "improved",
            "dimension": ["all", "age_band", "age_band"],
            "subgroup": ["all", "0-17", "40-64"],
            "n_baseline": [989, 5, 215],
            "n_after": [1691, 14, 351],
            "baseline_mean": [65.722952, 60.0, 66.511628],
            "after_mean": [79.183915, 78.571429, 78.917379],
            "effect": [13.460962, 18.571429, 12.405751],
            "effect_low": [9.94456, -25.6, 4.888428],
            "effect_high": [17.006656, 50.0, 20.050247],
            "effect_kind": "difference in proportions",
            "verdict": ["improved", "too little data", "improved"],
            "flag": [False, False, False],
            "reason": ["", "fewer than 20 cases before or after", ""],
        }
    )
    parsed = _tables(subgroup_table(subgroups, threshold=threshold))
    rows = parsed.tables[0]
    heading = "HbA1c tested · Change: Recall register · Verdict for all patients: improved"
    assert rows[1] == [f"{heading} · Patients by: all"]
    assert rows[3] == ["Patients by: age band"]
    # a small count shows as "<11" and the group's estimates are hidden (empty, not NaN)
    assert rows[4] == ["0-17", "", "", "", "", "", "<11", "14"]
    assert rows[5][:4] == ["40-64", "improved", "No", "+12.4 points (4.9 to 20.1)"]
    assert rows[2][6:] == ["989", "1,691"]  # counts made text by suppress_small still read
    assert all(len(r) <= 8 for r in rows)
    assert "HbA1c tested" not in {cell for row in rows[1:] for cell in row if len(row) > 1}
