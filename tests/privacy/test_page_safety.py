"""Every path from data to a page: text shows as itself, never as markup, style or a request.

Unit tests of the escaping function, the sanitiser, the identifier screen and the page's
Content-Security-Policy, then property-based tests (Hypothesis) that push generated strings
(markup, CSS escapes, mathtext, Unicode, control characters) through each path and parse the
result as a browser would.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nbconvert.filters.markdown import markdown2html
from support import live_markup, parse

from qi_helpers.changes.what_next import what_next
from qi_helpers.privacy.html import (
    clean_html,
    content_security_policy,
    escape,
    escape_markdown,
    plain_text,
)
from qi_helpers.privacy.screen import REDACTED, IdentifierScreen, _shape_pattern


def markdown_to_page(markdown: str) -> str:
    """What the report template does with a Markdown output: nbconvert's renderer, sanitised."""
    return clean_html(markdown2html(markdown))


ATTACKS = [
    '<img src=x onerror="alert(1)">\n\n<style>x{}</style>',
    "<style>body{background:u\\72l(http://127.0.0.1:9/beacon)}</style>",
    'qi-style-block-0-qi" onmouseover="alert(1)',
    "$x^2$ and $\\frac{1}{0}$ $",
    "<script>alert(1)</script>",
    "[click](javascript:alert(1))",
    "<a href='javascript:alert(1)'>x</a>",
    "# heading\n\n* list | table |\n---",
    "<svg onload=alert(1)>",
    "\x00\x1b[31m\u2028\u202e<b>bold</b>",
    "&lt;script&gt; &amp; &#60;img&#62;",
    "<!-- comment --><![CDATA[x]]>",
]


# --- escaping ------------------------------------------------------------------------------------


@pytest.mark.parametrize("attack", ATTACKS)
def test_escaped_names_render_as_their_own_text(attack):
    page = markdown_to_page(f"**What next:** *{escape_markdown(attack)}* improved")
    dom = parse(page)
    assert not live_markup(dom)
    assert {tag for tag, _ in dom.elements} <= {"p", "strong", "em"}
    assert plain_text(attack) in "".join(dom.text)


def test_plain_text_is_one_line():
    assert plain_text("a\n\nb\r\n\tc\x00d\u2028e") == "a b c d e"
    assert plain_text(None) == "" and plain_text(float("nan")) == ""


@pytest.mark.parametrize("attack", ATTACKS)
def test_html_escape_leaves_no_markup(attack):
    dom = parse(f'<p title="{escape(attack)}">{escape(attack)}</p>')
    assert dom.elements == [("p", {"title": attack})]


# --- the sanitiser -------------------------------------------------------------------------------


@pytest.mark.parametrize("attack", ATTACKS)
def test_clean_html_leaves_nothing_live(attack):
    assert not live_markup(parse(clean_html(attack)))
    assert not live_markup(parse(clean_html(f'<p class="{attack}">{attack}</p>')))


def test_the_old_style_placeholder_cannot_smuggle_a_block():
    # The old sanitiser swapped <style> blocks for "qi-style-block-N-qi" and put them back with
    # a text replace, so a placeholder written in data inside an attribute received the block,
    # quotes and all: this change name gave a live onerror handler in workbook 03's page.
    change = (
        '<img src="data:image/png;base64,AA" alt="qi-style-block-0-qi">\n\n'
        '<style>" onerror="alert(1)</style>'
    )
    verdicts = pd.DataFrame(
        {
            "measure_id": ["m"],
            "name": ["HbA1c"],
            "change": [change],
            "verdict": ["improved"],
            "decision": ["adopt"],
            "balancing_flag": [False],
            "balances": [None],
            "subgroups_flagged": [""],
            "periods_needed": [None],
            "baseline_stable": [True],
        }
    )
    assert not live_markup(parse(markdown_to_page(what_next(verdicts))))
    # and the sanitiser alone, given the raw markup
    out = clean_html(markdown2html(change))
    assert not live_markup(parse(out)) and "<style" not in out


def test_pandas_tables_keep_their_structure():
    table = pd.DataFrame({"change": ATTACKS[:3], "n": [1, 2, 3]})
    out = clean_html(table._repr_html_())
    dom = parse(out)
    assert not live_markup(dom)
    assert [t for t, _ in dom.elements].count("td") == 6
    assert ATTACKS[2] in "".join(dom.text)


def test_content_security_policy_names_only_the_template_blocks():
    css, js = "body{margin:0}", "console.log(1)"
    policy = content_security_policy(styles=[css], scripts=[js])
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy and "img-src data:" in policy
    assert "unsafe-inline" not in policy
    assert "script-src 'none'" in content_security_policy(styles=[css])


# --- the identifier screen -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def odd_screen():
    patients = pd.DataFrame({"patient_id": [f"MRN:{i:06d}" for i in range(100, 160)]})
    staff = pd.DataFrame(
        {"staff_id": [f"s{i:05d}@trust.example" for i in range(140, 150)], "role": "GP"}
    )
    activities = pd.DataFrame(
        {
            "patient_id": patients["patient_id"].iloc[:41],
            "staff_id": "s00140@trust.example",
            "encounter_id": [f"E{i:08d}" for i in range(40)] + ["ENC-77/1"],
        }
    )
    return IdentifierScreen.from_tables(
        {"patients": patients, "staff": staff, "activities": activities}
    )


@pytest.mark.parametrize(
    "text",
    [
        "seen MRN:000101 today",
        "(MRN:000101)",
        "mrn:000101",
        "MRN 000101",
        "MRN000101",
        "patient 000101, again",
        "cycle C7-MRN:000101",
        "C7MRN000101",
        "by s00140@trust.example.",
        "<s00140@trust.example>",
        "S00140",
        "encounter ENC-77/1 and E00000007",
    ],
)
def test_identifiers_of_any_shape_are_found_by_value(odd_screen, text):
    cleaned, n = odd_screen.redact(text)
    assert n >= 1, text
    for token in ("000101", "s00140", "ENC-77/1", "E00000007"):
        assert token.lower() not in cleaned.lower()
    assert REDACTED in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "65.000101 mmol",
        "1000101 visits",
        "trust example",
        "MRN",
        "2024-01-01",
        "0.000150",
        "sha256 9fab000101cd77e1",
    ],
)
def test_ordinary_text_and_numbers_are_left_alone(odd_screen, text):
    assert odd_screen.redact(text) == (text, 0)


def test_one_odd_shaped_id_never_stops_the_screen():
    ids = [f"E{i:08d}" for i in range(500)] + ["ENC-77/1", "", "  ", "1/2/3", "Ünïcödé-9"]
    assert _shape_pattern(pd.Series(ids)) is not None
    screen = IdentifierScreen.from_tables({"activities": pd.DataFrame({"encounter_id": ids})})
    assert screen.redact("ENC-77/1 E00000499 E99999999")[1] == 3


@given(st.lists(st.text(min_size=0, max_size=12), max_size=30))
@settings(max_examples=200, deadline=None)
def test_shape_pattern_never_fails(values):
    pattern = _shape_pattern(pd.Series(values, dtype=object))
    if pattern is not None:
        re.compile(pattern)


@given(st.text(max_size=200))
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_redaction_removes_every_id_it_reports(odd_screen, text):
    planted = f"{text} MRN:000123 {text}"
    cleaned, n = odd_screen.redact(planted)
    assert n >= 1 and "000123" not in cleaned.replace(text, "")
    assert not odd_screen.find(cleaned.replace(REDACTED, " "))


# --- property tests: generated text through each data-to-page path -------------------------------

HOSTILE = st.one_of(
    st.text(max_size=80),
    st.sampled_from(ATTACKS),
    st.lists(
        st.sampled_from(
            [
                "<",
                ">",
                "&",
                '"',
                "'",
                "$",
                "\\",
                "`",
                "*",
                "_",
                "[",
                "]",
                "(",
                ")",
                "#",
                "\n",
                "<style>",
                "</style>",
                "<img src=x onerror=a()>",
                "u\\72l(",
                "javascript:",
                "qi-style-block-0-qi",
                "\x00",
                "\u202e",
                "é",
                "😀",
                "<!--",
                "-->",
                "|",
                "---",
            ]
        ),
        max_size=20,
    ).map("".join),
)


@given(HOSTILE)
@settings(max_examples=400, deadline=None)
def test_fuzz_markdown_path(name):
    page = markdown_to_page(
        f"- **{escape_markdown(name)}** improved after *{escape_markdown(name)}*"
    )
    dom = parse(page)
    assert not live_markup(dom)
    assert {tag for tag, _ in dom.elements} <= {"ul", "li", "strong", "em"}
    assert "".join(dom.text).count(plain_text(name)) >= (2 if plain_text(name) else 0)


@given(HOSTILE)
@settings(max_examples=300, deadline=None)
def test_fuzz_table_path(name):
    table = pd.DataFrame({name: [name, name]}, index=[name, "x"])
    assert not live_markup(parse(clean_html(table._repr_html_())))


@given(HOSTILE)
@settings(max_examples=300, deadline=None)
def test_fuzz_raw_html_path(name):
    assert not live_markup(parse(clean_html(name)))
    assert not live_markup(parse(clean_html(f"<div title='{name}'>{name}</div>")))


@given(HOSTILE)
@settings(max_examples=200, deadline=None)
def test_fuzz_what_next(name):
    verdicts = pd.DataFrame(
        {
            "measure_id": ["m1", "m2"],
            "name": [name, f"other {name}"],
            "change": [name, name],
            "verdict": ["improved", "no signal yet"],
            "decision": ["adopt", "ongoing"],
            "balancing_flag": [False, False],
            "balances": [None, None],
            "subgroups_flagged": [name, ""],
            "periods_needed": [None, 4],
            "baseline_stable": [True, True],
        }
    )
    dom = parse(markdown_to_page(what_next(verdicts)))
    assert not live_markup(dom)
    assert {tag for tag, _ in dom.elements} <= {"p", "ul", "li", "strong", "em"}


@given(HOSTILE)
@settings(max_examples=150, deadline=None)
def test_fuzz_profile_card_bars_and_names(name):
    from qi_helpers.identify.cards import _mix_table

    mix = pd.DataFrame({"category": [name, "other"], "n": [30, 12], "share": [0.7, 0.3]})
    out = _mix_table(mix, name, (name, name), "qi-card-ages")
    assert not live_markup(parse(clean_html(out)))
    assert not live_markup(parse(out))  # the card's own markup needs no style attribute either


def test_a_chart_output_is_screened_in_its_words_not_in_its_pixels():
    """A chart's HTML output (qi_helpers.chart_display): its alt text, caption and inline SVG
    text lose the identifier; the base64 of its PNG is left whole, even where a run of it reads
    like an identifier, so the picture still decodes; the same text outside an image's source
    is screened as text."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from qi_helpers.publish.screening import prepare_notebook

    screen = IdentifierScreen.from_tables({"patients": pd.DataFrame({"patient_id": ["P000123"]})})
    png = "iVBORw0KGgo+P000123/AAAA"  # a base64 run holding the id between + and /
    svg = base64.b64encode(b"<svg><text>cycle P000123</text></svg>").decode("ascii")
    html = (
        f'<figure class="qi-chart"><img src="data:image/png;base64,{png}" alt="Chart of P000123">'
        f'<img src="data:image/svg+xml;base64,{svg}" alt="card">'
        "<figcaption>Seen for P000123.</figcaption></figure>"
        "<p>Not a picture: data:image/png;base64,P000123</p>"
    )
    cell = new_code_cell("plot()", execution_count=1)
    cell.outputs = [
        new_output("display_data", data={"text/html": html}),
        new_output("display_data", data={"image/png": "AAAA"}, metadata={"image/png": {
            "alt": "Bars of P000123"}}),
    ]  # fmt: skip
    nb, count = prepare_notebook(new_notebook(cells=[cell]), screen)
    shown = nb.cells[0].outputs[0]["data"]["text/html"]
    assert f"data:image/png;base64,{png}" in shown
    assert 'alt="Chart of [identifier removed]"' in shown
    assert "<figcaption>Seen for [identifier removed].</figcaption>" in shown
    inline = re.search(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", shown).group(1)
    assert base64.b64decode(inline) == b"<svg><text>cycle [identifier removed]</text></svg>"
    assert "<p>Not a picture: data:image/png;base64,[identifier removed]</p>" in shown
    assert nb.cells[0].outputs[2]["metadata"]["image/png"]["alt"] == "Bars of [identifier removed]"
    assert count == 5
    assert isinstance(nb, nbformat.NotebookNode)
