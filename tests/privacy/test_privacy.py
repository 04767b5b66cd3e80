"""Privacy helpers: small-cell suppression, identifier screening, sanitising, safe paths."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from qi_helpers.errors import ConfigError, DataError
from qi_helpers.privacy.html import clean_html, escape
from qi_helpers.privacy.names import inside, safe_filename
from qi_helpers.privacy.screen import REDACTED, IdentifierScreen
from qi_helpers.privacy.small_cells import (
    flag_small_denominators,
    small_cell_mask,
    suppress_small_counts,
)

# --- small cells --------------------------------------------------------------------------------


def worked_table() -> pd.DataFrame:
    """Patients by age band and ward, with row and column totals (hand-worked example)."""
    table = pd.DataFrame(
        {"ward_1": [3, 25, 40], "ward_2": [12, 30, 18], "ward_3": [20, 22, 35]},
        index=["under 18", "18-64", "65+"],
    )
    table["total"] = table.sum(axis=1)
    table.loc["total"] = table.sum()
    return table


def test_a_small_count_and_its_complement_are_hidden():
    table = worked_table()
    out = suppress_small_counts(
        table, ["ward_1", "ward_2", "ward_3"], total_row="total", total_column="total"
    )
    # The 3 is shown as "<11"; alone in its row and column it could be recovered from the totals
    # (35 - 12 - 20 = 3), so a second cell in that row, in that column, and a fourth closing the
    # rectangle are hidden too: 3, 12 (row), 25 (column), 30 (closes both).
    assert out.loc["under 18", "ward_1"] == "<11"
    hidden = {(r, c) for r in out.index for c in out.columns if out.loc[r, c] == "*"}
    assert hidden == {("under 18", "ward_2"), ("18-64", "ward_1"), ("18-64", "ward_2")}
    # Totals and every other cell are shown unchanged.
    assert out.loc["under 18", "total"] == "35"
    assert out.loc["total", "ward_1"] == "68"
    assert out.loc["65+", "ward_3"] == "35"


def test_no_hidden_count_can_be_recovered_from_the_totals():
    table = worked_table()
    inner = ["ward_1", "ward_2", "ward_3"]
    mask = small_cell_mask(table, inner, total_row="total", total_column="total")
    body = [r for r in table.index if r != "total"]
    lines = [[(r, c) for c in inner] for r in body] + [[(r, c) for r in body] for c in inner]
    for line in lines:
        hidden = [cell for cell in line if mask.loc[cell] != ""]
        # Never exactly one hidden cell in a line (it would equal total minus the shown cells),
        # and hidden cells together hold at least the threshold.
        assert len(hidden) != 1
        if hidden:
            assert sum(table.loc[cell] for cell in hidden) >= 11


def test_counts_of_eleven_and_zero_are_shown():
    table = pd.DataFrame({"n": [0, 11, 250]})
    out = suppress_small_counts(table, ["n"])
    assert out["n"].tolist() == ["0", "11", "250"]


def test_threshold_is_a_parameter():
    table = pd.DataFrame({"a": [4, 30], "b": [6, 30]})
    out = suppress_small_counts(table, ["a", "b"], threshold=5)
    assert out.loc[0, "a"] == "<5"
    assert out.loc[0, "b"] == "*"  # 6 alone is fine, but it is the complement of the 4


def test_a_line_with_no_other_cell_hides_its_total():
    table = pd.DataFrame({"n": [4], "total": [4]})
    mask = small_cell_mask(table, ["n"], total_column="total")
    assert mask.loc[0, "n"] == "primary"
    assert mask.loc[0, "total"] == "primary"


def test_bad_counts_are_reported_with_rows():
    with pytest.raises(DataError, match="row 2"):
        suppress_small_counts(pd.DataFrame({"n": [3, -1]}), ["n"])
    with pytest.raises(DataError, match="not in the table"):
        suppress_small_counts(pd.DataFrame({"n": [3]}), ["m"])
    with pytest.raises(ConfigError):
        suppress_small_counts(pd.DataFrame({"n": [3]}), ["n"], threshold=0)


def test_rates_on_small_denominators_are_flagged():
    table = pd.DataFrame({"rate": [0.5, 0.25, 0.0], "cases": [4, 40, 0]})
    out = flag_small_denominators(table, "cases")
    assert out["small_denominator"].tolist() == [True, False, False]


# --- identifiers ---------------------------------------------------------------------------------


@pytest.fixture
def screen() -> IdentifierScreen:
    tables = {
        "patients": pd.DataFrame({"patient_id": ["P000123", "P000124", "P000125"]}),
        "activities": pd.DataFrame(
            {
                "patient_id": ["P000123"],
                "encounter_id": ["E00000007"],
                "staff_id": ["S00012"],
            }
        ),
        "staff": pd.DataFrame({"staff_id": ["S00012", "S00013"], "name": ["Jane Smith", "Al"]}),
    }
    return IdentifierScreen.from_tables(tables)


def test_identifiers_from_the_tables_are_removed(screen):
    text = "Seen: P000123, E00000007 by S00012 (Jane Smith) at NOR-PC1 on 2024-01-01; 1234 visits"
    cleaned, n = screen.redact(text)
    assert n == 4
    for value in ("P000123", "E00000007", "S00012", "Jane Smith"):
        assert value not in cleaned
    assert "NOR-PC1" in cleaned and "1234 visits" in cleaned and "2024-01-01" in cleaned
    assert cleaned.count(REDACTED) == 4


def test_ids_shaped_like_the_tables_ids_are_removed_too(screen):
    cleaned, n = screen.redact("<td>P999999</td><td>E12345678</td>")
    assert n == 2 and "P999999" not in cleaned and "E12345678" not in cleaned


def test_ids_inside_markup_and_joined_with_punctuation_are_found(screen):
    cleaned, n = screen.redact('<a title="P000124">x</a> P000125-2 P000123_E00000007')
    assert n == 4
    assert "P0001" not in cleaned


def test_staff_are_kept_when_the_project_publishes_staff():
    tables = {"staff": pd.DataFrame({"staff_id": ["S00012"]}), "patients": None}
    cleaned, n = IdentifierScreen.from_tables(tables, show_staff=True).redact("S00012")
    assert (cleaned, n) == ("S00012", 0)


def test_short_numbers_are_not_mistaken_for_ids():
    screen = IdentifierScreen.from_tables({"patients": pd.DataFrame({"patient_id": ["42", "7"]})})
    assert screen.redact("42 patients, 7 wards") == ("42 patients, 7 wards", 0)


# --- markup and paths ---------------------------------------------------------------------------

XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


@pytest.mark.parametrize("name", XSS)
def test_escape_makes_names_text(name):
    out = escape(name)
    assert "<" not in out and ">" not in out and '"' not in out


def test_clean_html_keeps_tables_and_drops_scripts_and_styles():
    fragment = (
        "<style scoped>.dataframe td {color: red} @import url(https://cdn.example/x.css);</style>"
        '<table class="dataframe"><thead><tr style="text-align: right;"><th>name</th></tr></thead>'
        f"<tbody><tr><td>{XSS[0]}</td></tr><tr><td>{XSS[1]}</td></tr>"
        '<tr><td><img src="https://cdn.example/p.png"><img src="data:image/png;base64,AAAA"></td>'
        "</tr></tbody></table>"
    )
    out = clean_html(fragment)
    assert "<table" in out and "<th>name</th>" in out
    assert "<script" not in out and "alert(1)</" not in out
    assert "onerror" not in out
    assert "cdn.example" not in out
    assert "data:image/png;base64,AAAA" in out
    # no style from notebook output: the page's CSS comes only from its template
    assert "<style" not in out and "style=" not in out and "color: red" not in out


@pytest.mark.parametrize(
    "identifier", ["../../etc/x", "..", ".hidden", "a/b\\c", "/abs", "", "<script>", "x" * 500]
)
def test_safe_filename_stays_in_its_folder(tmp_path, identifier):
    name = safe_filename(identifier)
    assert name and "/" not in name and "\\" not in name and not name.startswith(".")
    assert len(name) <= 120
    assert inside(tmp_path, tmp_path / f"{name}.html").parent == tmp_path.resolve()


def test_distinct_unsafe_ids_get_distinct_names():
    assert safe_filename("a/b") != safe_filename("a_b")


def test_inside_refuses_paths_outside(tmp_path):
    with pytest.raises(ConfigError, match="outside"):
        inside(tmp_path / "site", tmp_path / "site" / ".." / ".." / "etc" / "x")
    with pytest.raises(ConfigError):
        inside(tmp_path, Path("/etc/passwd"))


def test_safe_filename_gives_distinct_ids_distinct_short_safe_names():
    """However long or alike two ids are, they never share a file name; every name is safe."""
    import hashlib
    import re

    from hypothesis import example, given, settings
    from hypothesis import strategies as st

    safe = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
    # Ids from any text, and from characters that clean to one another ("/" and "_" both give "_").
    parts = st.text(max_size=260) | st.text(alphabet="ab_-./ ", max_size=260)

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(prefix=parts, first=parts, second=parts)
    @example(prefix="MS-" + "x" * 200, first="-north", second="-south")
    @example(prefix="", first="x" * 130, second="x" * 131)
    @example(prefix="team/", first="a" * 150, second="a" * 151)
    def check(prefix: str, first: str, second: str) -> None:
        a, b = prefix + first, prefix + second
        names = safe_filename(a), safe_filename(b)
        for name in names:
            assert 0 < len(name) <= 120 and safe.fullmatch(name), name
        if a != b:
            assert names[0] != names[1], (a, b)

    check()
    # An id spelled like another id's hashed name keeps a name of its own.
    for digits in (8, 16):
        lookalike = "a_-" + hashlib.sha256(b"a/").hexdigest()[:digits]
        assert safe_filename(lookalike) != safe_filename("a/")
