"""The 5 Ps cards as HTML (qi_helpers.identify.cards) against the demo's profiles: same numbers,
one point per week, names from data escaped, no identifier, and light enough to scale."""

from __future__ import annotations

import base64
import dataclasses
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from IPython.display import HTML

from qi_helpers.errors import DataError
from qi_helpers.identify.card_chart import run_chart_svg
from qi_helpers.identify.cards import card_html, cards_html, small_cells
from qi_helpers.privacy.html import clean_html

SVG = "{http://www.w3.org/2000/svg}"


class Page(HTMLParser):
    """What a browser would make of a fragment: its elements and its text."""

    def __init__(self, fragment: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.chunks: list[str] = []
        self._in_style = False
        self.feed(fragment)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if not self._in_style:
            self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.chunks).split())

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())
        ]


def _svg(card: str) -> ET.Element:
    (image,) = Page(card).find("img", **{"class": "qi-card-run"})
    prefix = "data:image/svg+xml;base64,"
    assert image["src"].startswith(prefix)
    return ET.fromstring(base64.b64decode(image["src"][len(prefix) :]))


def _points(polyline: ET.Element) -> np.ndarray:
    return np.array([[float(v) for v in p.split(",")] for p in polyline.get("points").split()])


def _weekly(profiles, ms: str) -> pd.DataFrame:
    return profiles.weekly[profiles.weekly["facet1"] == ms].reset_index(drop=True)


def _row(profiles, ms: str) -> pd.Series:
    return profiles.summary.set_index("microsystem_id").loc[ms]


def test_the_card_shows_the_numbers_the_profile_holds(profiles):
    for ms in profiles.summary["microsystem_id"]:
        row, page = _row(profiles, ms), Page(card_html(profiles, ms))
        assert f"panel of {row['panel_size']:,}" in page.text
        assert f"{100 * row['share_female']:.0f}% female" in page.text
        assert f"{row['fte']:.1f} FTE" in page.text
        assert f"{row['n_core_staff']} core staff" in page.text
        # FTE by role: the table's rows are the profile's role_fte mix
        fte = profiles.mix[(profiles.mix["microsystem_id"] == ms)]
        fte = fte[fte["dimension"] == "role_fte"].sort_values("n", ascending=False).head(6)
        for role, n in zip(fte["category"], fte["n"], strict=True):
            assert re.search(rf"{re.escape(role)} {n:.1f}\b", page.text), (ms, role)
        # the weekly values behind the run chart, as text, in week order
        (values,) = re.findall(r"The weekly values (.*)$", page.text)
        shown = [float(v.replace(",", "")) for v in values.split(", ")]
        assert shown == _weekly(profiles, ms)["y"].tolist()
        assert f"median {row['weekly_median']:,g}" in page.text


def test_the_run_chart_has_one_point_per_week_drawn_from_the_weekly_table(profiles):
    for ms in profiles.summary["microsystem_id"]:
        weekly = _weekly(profiles, ms)
        svg = _svg(card_html(profiles, ms))
        (line,) = [p for p in svg.iter(f"{SVG}polyline") if p.get("data-series") == "y"]
        xy = _points(line)
        assert len(xy) == len(weekly)
        assert np.all(np.diff(xy[:, 0]) > 0)  # weeks left to right
        # higher counts are drawn higher (SVG y grows downwards)
        assert np.corrcoef(xy[:, 1], weekly["y"])[0, 1] < -0.999
        # the dashed median: weeks above the profile's median are above the line
        (median,) = svg.iter(f"{SVG}line")
        assert median.get("stroke-dasharray")
        level = float(median.get("y1"))
        clear = np.abs(weekly["y"] - weekly["cl"]) > 0.05 * (weekly["y"].max() - weekly["y"].min())
        above = (weekly["y"] > weekly["cl"])[clear]
        assert ((xy[:, 1] < level)[clear.to_numpy()] == above.to_numpy()).all(), ms


def test_points_of_a_runs_signal_are_coloured(profiles):
    signalling = profiles.summary[profiles.summary["runs_signal"]]["microsystem_id"]
    random = profiles.summary[~profiles.summary["runs_signal"]]["microsystem_id"]
    assert len(signalling) and len(random)
    for ms in signalling:
        weekly = _weekly(profiles, ms)
        svg = _svg(card_html(profiles, ms))
        coloured = [p for p in svg.iter(f"{SVG}polyline") if p.get("data-series") != "y"]
        n = sum(len(_points(p)) for p in coloured)
        longest, limit = weekly["longest_run"].iloc[0], weekly["longest_run_max"].iloc[0]
        if longest > limit:  # every point of the long run is part of the signal
            assert n >= longest, ms
        assert "non-random variation:" in Page(card_html(profiles, ms)).text
    for ms in random:
        svg = _svg(card_html(profiles, ms))
        assert [p.get("data-series") for p in svg.iter(f"{SVG}polyline")] == ["y"]
        assert "no non-random variation" in Page(card_html(profiles, ms)).text


@pytest.mark.parametrize(
    "name", ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "A & B's <b>team</b>"]
)
def test_names_from_data_are_shown_as_text(profiles, name):
    ms = profiles.summary["microsystem_id"].iloc[0]
    summary = profiles.summary.copy()
    summary.loc[summary["microsystem_id"] == ms, ["name", "purpose", "role_mix"]] = name
    mix = profiles.mix.copy()
    mix.loc[mix["microsystem_id"] == ms, "category"] = name + mix["category"]
    hostile = dataclasses.replace(profiles, summary=summary, mix=mix)
    card = card_html(hostile, ms)
    page = Page(card)
    assert name in page.text  # shown, as text
    assert not page.find("script")
    assert len(page.find("b")) == 5  # the five Ps, none from the name
    assert [a for a in page.find("img") if a.get("class") != "qi-card-run"] == []
    assert all(a.get("src", "").startswith("data:image/svg+xml;base64,") for a in page.find("img"))
    assert not any(key.startswith("on") for _, attrs in page.tags for key in attrs)
    assert name not in card  # never raw


def test_a_microsystem_id_from_data_is_escaped_everywhere(profiles):
    old, new = profiles.summary["microsystem_id"].iloc[0], '"><img src=x onerror=alert(1)>'

    def renamed(frame: pd.DataFrame, column: str) -> pd.DataFrame:
        return frame.assign(**{column: frame[column].replace(old, new)})

    hostile = dataclasses.replace(
        profiles,
        summary=renamed(profiles.summary, "microsystem_id"),
        mix=renamed(profiles.mix, "microsystem_id"),
        processes=renamed(profiles.processes, "microsystem_id"),
        weekly=renamed(profiles.weekly, "facet1"),
    )
    page = Page(cards_html(hostile, [new]))
    assert page.text.startswith(f"{new}:")
    assert len(page.find("img")) == 1 and not page.find("img", src="x")


def test_the_published_page_keeps_the_card_as_it_is(profiles):
    """publish sanitises HTML outputs (privacy.clean_html): only the card's <style> goes (the
    report's template carries CARD_CSS), every other element, attribute and text stays."""
    from qi_helpers.identify.cards import CARD_CSS
    from qi_helpers.publish.theme import report_css

    html = cards_html(profiles)
    cleaned = Page(clean_html(html))
    original = Page(html)
    assert [t for t, _ in original.tags][0] == "style"
    assert [t for t, _ in cleaned.tags] == [t for t, _ in original.tags][1:]
    assert cleaned.tags == original.tags[1:]
    assert cleaned.find("img") == original.find("img")
    assert cleaned.text == original.text
    assert "qi-card" in html and html.count("<style>") == 1
    assert CARD_CSS.strip() in report_css()


def test_no_patient_staff_or_encounter_identifier_on_any_card(profiles, demo_tables):
    ids = set(demo_tables["patients"]["patient_id"].astype(str))
    ids |= set(demo_tables["activities"]["patient_id"].astype(str))
    ids |= set(demo_tables["activities"]["encounter_id"].dropna().astype(str))
    ids |= set(demo_tables["staff"]["staff_id"].astype(str))
    html = cards_html(profiles)
    svgs = [
        base64.b64decode(src.split(",", 1)[1]).decode()
        for src in re.findall(r'src="(data:image/svg\+xml;base64,[^"]+)"', html)
    ]
    assert len(svgs) == len(profiles.summary)
    tokens = set(re.findall(r"[A-Za-z0-9]+", html + "".join(svgs)))
    assert not tokens & ids, sorted(tokens & ids)[:5]


def test_cards_stay_light_as_the_organisation_grows(profiles):
    html = cards_html(profiles)
    per_card = len(html.encode("utf-8")) / len(profiles.summary)
    # 60 cards (the default max_cards) must leave room in a 1 MB page
    assert per_card < 10_000, per_card


def test_an_unknown_microsystem_is_a_data_error(profiles):
    with pytest.raises(DataError, match="no profile"):
        card_html(profiles, "NOPE")


def test_a_week_without_a_value_is_left_out_of_the_line(profiles):
    ms = profiles.summary["microsystem_id"].iloc[0]
    weekly = _weekly(profiles, ms)
    weekly.loc[3, "y"] = np.nan
    svg = ET.fromstring(run_chart_svg(weekly))
    (line,) = [p for p in svg.iter(f"{SVG}polyline") if p.get("data-series") == "y"]
    assert len(_points(line)) == len(weekly) - 1


def test_batch_profile_cards_show_html_not_pictures(profiles):
    from matplotlib.figure import Figure

    from qi_helpers.widgets.identify import profile_cards

    shown = profile_cards(profiles, interactive=False)
    assert not any(isinstance(item, Figure) for item in shown.items)
    (cards,) = [item for item in shown.items if isinstance(item, HTML)]
    assert len(Page(cards.data).find("div", **{"class": "qi-card"})) == len(profiles.summary)
    few = profile_cards(profiles, interactive=False, max_cards=2)
    assert "first 2 of" in few.items[0].data
    assert len(Page(few.items[1].data).find("div", **{"class": "qi-card"})) == 2


# ---- small cells (publishing policy: counts from 1 to threshold - 1 are not shown) -----------


def _mix_rows(card: str, css: str) -> dict[str, str]:
    """Category -> the value shown, in one mix table of a card."""
    table = re.search(rf'<table class="qi-card-mix {css}">(.*?)</table>', card, re.S).group(1)
    rows = re.findall(r'<th scope="row">(.*?)</th><td>(.*?)</td>', table)
    return {Page(k).text: Page(v).text for k, v in rows}


def test_small_cells_hide_a_small_count_and_its_complement_in_a_partition():
    counts = pd.Series([3, 50, 40, 0, 120], index=list("abcde"))
    shown = small_cells(counts, 11, partition=True)
    assert shown.tolist() == ["<11", "", "*", "", ""]
    # not a partition (a patient may have several conditions): nothing to recover
    assert small_cells(counts, 11, partition=False).tolist() == ["<11", "", "", "", ""]
    # two hidden counts summing to less than 11 would still be the total minus 90: hide 90 too
    assert small_cells(pd.Series([3, 4, 90]), 11, partition=True).tolist() == ["<11", "<11", "*"]
    assert small_cells(pd.Series([3, 9, 90]), 11, partition=True).tolist() == ["<11", "<11", ""]
    # a threshold of 1 hides nothing
    assert (small_cells(counts, 1, partition=True) == "").all()


def test_a_small_age_band_is_hidden_with_the_next_smallest(profiles):
    mix = profiles.mix
    ages = mix[(mix["dimension"] == "age_band") & (mix["category"] != "unknown") & (mix["n"] > 0)]
    # a microsystem whose smallest age band is well apart from the next smallest
    gaps = ages.sort_values("n").groupby("microsystem_id")["n"].agg(lambda n: n.iloc[1] - n.iloc[0])
    ms = gaps.idxmax()
    bands = ages[ages["microsystem_id"] == ms].sort_values("n")
    smallest, second = bands.iloc[0], bands.iloc[1]
    threshold = int(smallest["n"]) + 1
    assert second["n"] >= threshold
    rows = _mix_rows(card_html(profiles, ms, threshold=threshold), "qi-card-ages")
    assert rows[smallest["category"]] == f"<{threshold}"
    assert rows[second["category"]] == "*"
    others = bands.iloc[2:]
    for r in others.itertuples():
        assert rows[r.category] == f"{100 * r.share:.0f}%"
    # at the default threshold the same card shows every band (the demo's panels are large)
    default = _mix_rows(card_html(profiles, ms), "qi-card-ages")
    assert "*" not in default.values() and not any(v.startswith("<") for v in default.values())


def test_small_panels_and_shares_are_not_published(profiles):
    ms = profiles.summary.loc[profiles.summary["panel_size"] > 0, "microsystem_id"].iloc[0]
    row = _row(profiles, ms)
    above = int(row["panel_size"]) + 1
    page = Page(card_html(profiles, ms, threshold=above))
    assert f"panel of <{above} patients" in page.text
    assert f"panel of {row['panel_size']:,}" not in page.text
    assert "female" in page.text and "not shown: small numbers" in page.text
    assert f"{100 * row['share_female']:.0f}% female" not in page.text
    conditions = _mix_rows(card_html(profiles, ms, threshold=above), "qi-card-conditions")
    assert conditions and set(conditions.values()) == {f"<{above}"}


def test_the_batch_cards_follow_the_projects_threshold(profiles):
    from qi_helpers.widgets.identify import profile_cards

    ms = profiles.summary.loc[profiles.summary["panel_size"] > 0, "microsystem_id"].iloc[0]
    above = int(_row(profiles, ms)["panel_size"]) + 1
    shown = profile_cards(profiles, [ms], interactive=False, small_cell_threshold=above)
    (cards,) = [item for item in shown.items if isinstance(item, HTML)]
    assert f"panel of &lt;{above} patients" in cards.data
