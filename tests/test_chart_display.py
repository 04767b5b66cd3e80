"""Charts for people: text at least the page's body size, alt text and captions, one per row.

The size rule is checked on the PNG a notebook shows, against the page's numbers written in
``report.css`` (the text column is 1100px less 2 x 2rem of padding; body text 16px; printed on
A4 with 15 mm margins and 10pt body text), not against the constants of the module.
"""

from __future__ import annotations

import base64
import re
import struct
from io import BytesIO

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from qi_helpers import privacy  # noqa: E402
from qi_helpers.chart_display import (  # noqa: E402
    Charts,
    chart_html,
    chart_png,
    describe_figure,
    min_text_points,
    with_caption,
)
from qi_helpers.drawing import subplots  # noqa: E402
from qi_helpers.publish.theme import template_text  # noqa: E402

#: The page's numbers, read by hand from report.css.
COLUMN_PX = 1100 - 2 * 32
BODY_PX = 16
A4_COLUMN_IN = (210 - 2 * 15) / 25.4
PRINT_BODY_PT = 10


def test_the_page_numbers_of_the_rule_are_those_of_the_stylesheet():
    css = template_text("report.css")
    assert re.search(r"body \{[^}]*font-size: 16px", css)
    assert re.search(r"\.qi-report \{ max-width: 1100px; margin: 0 auto; padding: 1rem 2rem", css)
    assert "@page { size: A4; margin: 15mm; }" in css
    assert re.search(r"@media print \{\s*body \{ font-size: 10pt", css)


def test_the_smallest_text_is_the_larger_of_the_screen_and_the_print_rule():
    # 8 inches shown 1036 px wide: 1 pt = 1036 / (72 * 8) = 1.799 px, so 16 px needs 8.90 pt;
    # printed 7.087 inches wide: 1 pt prints as 7.087 / 8 = 0.886 pt, so 10 pt needs 11.29 pt.
    assert abs(min_text_points(8) - 11.289) < 0.01
    assert abs(min_text_points(10) - 14.111) < 0.01


def _text_px(png: bytes, points: float, dpi: float) -> float:
    """How tall ``points`` of text are on the page when the PNG is shown COLUMN_PX wide."""
    width = struct.unpack(">I", png[16:20])[0]
    return points * dpi / 72 * COLUMN_PX / width


def test_every_text_of_a_shown_chart_is_at_least_the_body_text():
    fig, ax = subplots(figsize=(8, 4))
    ax.plot(pd.date_range("2024-01-01", periods=30, freq="W-MON"), range(30), label="weekly")
    ax.set_title("A title at 7 points", fontsize=7)
    ax.set_xticks(ax.get_xticks(), labels=[str(t) for t in ax.get_xticks()], fontsize=6)
    ax.annotate("cycle 3", (ax.get_xticks()[2], 5), fontsize=5)
    ax.legend(fontsize=6)
    png = chart_png(fig)
    dpi = COLUMN_PX / 8
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]
    assert sizes and min(sizes) >= 11.28
    assert _text_px(png, min(sizes), dpi) >= BODY_PX
    # printed: the picture's width in inches at this dpi, shrunk to the A4 column
    width_in = struct.unpack(">I", png[16:20])[0] / dpi
    assert min(sizes) * min(1.0, A4_COLUMN_IN / width_in) >= PRINT_BODY_PT - 0.05
    assert Image.open(BytesIO(png)).size[0] <= COLUMN_PX * 1.02


def test_a_legend_outside_the_axes_raises_the_text_for_the_wider_picture():
    fig, ax = subplots(figsize=(8, 4), layout=None)
    ax.plot(range(10), label="a long legend entry that sits outside the axes")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    png = chart_png(fig)
    dpi = COLUMN_PX / 8
    smallest = min(t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text())
    assert _text_px(png, smallest, dpi) >= BODY_PX - 0.2


def test_chart_html_is_one_figure_with_escaped_screened_alt_text_and_caption():
    screen = privacy.IdentifierScreen.from_tables(
        {"patients": pd.DataFrame({"patient_id": ["P000123"]})}
    )
    privacy.set_active_screen(screen)
    try:
        fig, ax = subplots(figsize=(8, 3))
        ax.plot(range(5))
        with_caption(fig, 'Seen <b>"fast"</b> for P000123', alt="Run chart of P000123 & co")
        html = chart_html(fig)
    finally:
        privacy.set_active_screen(None)
    assert html.startswith('<figure class="qi-chart"><img src="data:image/png;base64,')
    assert "P000123" not in html and privacy.REDACTED in html
    assert 'alt="Run chart of [identifier removed] &amp; co"' in html
    assert "<figcaption>Seen &lt;b&gt;&quot;fast&quot;&lt;/b&gt; for [identifier removed]" in html
    data = re.search(r"base64,([A-Za-z0-9+/=]+)", html).group(1)
    assert Image.open(BytesIO(base64.b64decode(data))).format == "PNG"


def test_a_figure_without_a_caption_is_described_by_its_titles_and_axes():
    fig, ax = subplots(figsize=(8, 3))
    ax.bar(["a", "b"], [1, 2], label="wave 1")
    ax.set_title("Spread plan")
    ax.set_xlabel("microsystem")
    ax.set_ylabel("adopters")
    ax.legend()
    assert describe_figure(fig) == (
        "Chart: Spread plan (across: microsystem; up: adopters) key: wave 1"
    )
    html = chart_html(fig)
    assert 'alt="Chart: Spread plan' in html and "<figcaption>" not in html


def test_charts_show_one_figure_per_chart_in_order():
    figs = []
    for name in ("first", "second", "third"):
        fig, ax = subplots(figsize=(8, 3))
        ax.plot(range(3))
        figs.append(with_caption(fig, f"The {name} chart."))
    charts = Charts(figs)
    assert len(charts) == 3 and charts[1] is figs[1] and list(charts) == figs
    bundle = charts._repr_mimebundle_()
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", bundle["text/html"])
    assert captions == ["The first chart.", "The second chart.", "The third chart."]
    assert bundle["text/html"].count('<figure class="qi-chart">') == 3
    assert bundle["text/plain"].splitlines() == captions


def test_an_anchor_becomes_the_figures_id_and_only_a_safe_one_is_taken():
    fig, ax = subplots(figsize=(8, 3))
    ax.plot(range(3))
    with_caption(fig, "A chart to link to.", anchor="qi-chart-2")
    assert chart_html(fig).startswith('<figure class="qi-chart" id="qi-chart-2"><img ')
    for bad in ('x" onclick="alert(1)', "2nd", "qi chart", ""):
        with pytest.raises(ValueError, match="anchor"):
            with_caption(fig, "A chart.", anchor=bad)
    fig.anchor = 'x" onclick="alert(1)'  # set by hand, around with_caption: left out
    assert chart_html(fig).startswith('<figure class="qi-chart"><img ')


def test_a_page_carries_the_chart_html_lighter_and_still_whole():
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from qi_helpers.publish.images import shrink_images

    fig, ax = subplots(figsize=(8, 3))
    ax.plot(range(20), [i % 7 for i in range(20)])
    html = chart_html(with_caption(fig, "Seven steps, again and again."))
    cell = new_code_cell("plot()", execution_count=1)
    cell.outputs = [new_output("display_data", data={"text/html": html})]
    nb = shrink_images(new_notebook(cells=[cell]))
    light = nb.cells[0].outputs[0]["data"]["text/html"]
    assert len(light) < len(html)
    before, after = (
        Image.open(BytesIO(base64.b64decode(re.search(r"base64,([^\"]+)", h).group(1))))
        for h in (html, light)
    )
    assert before.size == after.size and after.mode == "P"
    assert light.endswith('alt="Seven steps, again and again."><figcaption>Seven steps, again '
                          "and again.</figcaption></figure>")  # fmt: skip
