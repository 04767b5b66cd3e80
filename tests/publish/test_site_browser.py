"""The published demo site in headless Chromium: offline, error-free, privacy-safe.

Runs `qi run` on the small demo once (minutes), then opens every page with all network access
outside ``file://`` blocked. Without Chromium the browser tests skip, with the reason; with
``CI=true`` a missing browser fails them instead.
"""

from __future__ import annotations

import html
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from support import CHROMIUM, CHROMIUM_ARGS, need_chromium

from qi_helpers.cli import main
from qi_helpers.project import load_yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "outputs" / "screenshots"


@pytest.fixture(scope="module")
def demo_site(demo_project, tmp_path_factory):
    root = tmp_path_factory.mktemp("browser") / "project"
    shutil.copytree(demo_project, root)
    code = main(["run", "--project", str(root), "--jobs", "2", "--quiet"])
    assert code == 0, "qi run failed on the demo"
    return root, root / "outputs" / "site"


@pytest.fixture(scope="module")
def browser():
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, url: str, *, javascript: bool = True):
    """Open a page offline; return (page, context, external requests, failures, console errors)."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, java_script_enabled=javascript
    )
    external, failed, errors = [], [], []

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("requestfailed", lambda req: failed.append(req.url))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
    page.goto(url, wait_until="load")
    return page, context, external, failed, errors


def test_every_page_loads_offline_without_errors(demo_site, browser):
    _, site = demo_site
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 8
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for path in pages:
        page, context, external, failed, errors = _open(browser, path.as_uri())
        assert page.title()
        assert not external, f"{path.name} requested {external[:3]}"
        assert not failed, f"{path.name}: failed requests {failed[:3]}"
        assert not errors, f"{path.name}: console errors {errors[:3]}"
        # Every image drew (inline data, nothing broken).
        broken = page.evaluate(
            "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length"
        )
        assert broken == 0, path.name
        if path.name == "index.html":
            page.screenshot(path=str(SCREENSHOTS / "index.png"), full_page=True)
        elif path.parent.name == "03_analyse_tests" and path.name == "NOR-PC1.html":
            page.screenshot(path=str(SCREENSHOTS / "report_03.png"), full_page=True)
        context.close()
    assert (SCREENSHOTS / "index.png").is_file() and (SCREENSHOTS / "report_03.png").is_file()


def test_index_filters_and_sorts(demo_site, browser):
    root, site = demo_site
    registry = pd.read_parquet(root / "outputs" / "data" / "registry.parquet")
    page, context, _, _, errors = _open(browser, (site / "index.html").as_uri())
    rows = page.locator("#qi-ms-table tbody tr")
    assert rows.count() == len(registry)
    assert page.locator("#qi-filters").is_visible()
    page.select_option("#qi-kind", "laboratory")
    n_labs = int((registry["kind"] == "laboratory").sum())
    assert page.locator("#qi-ms-table tbody tr:visible").count() == n_labs
    assert f"Showing {n_labs} of {len(registry)}" in page.inner_text("#qi-count")
    page.select_option("#qi-kind", "")
    page.fill("#qi-search", "NOR-PC1")
    assert page.locator("#qi-ms-table tbody tr:visible").count() == 1
    page.fill("#qi-search", "")
    page.click("#qi-ms-table thead th:nth-child(3) button")  # Site
    sites = page.eval_on_selector_all(
        "#qi-ms-table tbody tr td:nth-child(3)", "cells => cells.map(c => c.textContent.trim())"
    )
    assert sites == sorted(sites, key=str.lower)
    assert page.get_attribute("#qi-ms-table thead th:nth-child(3)", "aria-sort") == "ascending"
    assert not errors
    context.close()


def test_index_without_script_is_a_plain_table(demo_site, browser):
    root, site = demo_site
    registry = pd.read_parquet(root / "outputs" / "data" / "registry.parquet")
    page, context, _, _, _ = _open(browser, (site / "index.html").as_uri(), javascript=False)
    assert page.locator("#qi-ms-table tbody tr:visible").count() == len(registry)
    assert not page.locator("#qi-filters").is_visible()
    context.close()


def test_badges_have_text_for_screen_readers(demo_site, browser):
    _, site = demo_site
    page, context, _, _, _ = _open(browser, (site / "index.html").as_uri())
    badges = page.locator("#qi-ms-table .mdc")
    assert badges.count() > 0
    for i in range(min(badges.count(), 40)):
        badge = badges.nth(i)
        assert badge.get_attribute("role") == "img"
        assert badge.get_attribute("aria-label").startswith(("Variation", "Assurance", "No"))
    # a report link is named after its microsystem (not "Report" 500 times)
    link = page.locator("#qi-ms-table tbody tr a").first
    name = page.locator("#qi-ms-table tbody tr .qi-ms-name").first.inner_text()
    assert (
        page.evaluate(
            "(a) => a.getAttribute('aria-labelledby').split(' ')"
            ".map((id) => document.getElementById(id).textContent).join(' ')",
            link.element_handle(),
        )
        == f"Report {name}"
    )
    context.close()


def test_no_patient_or_encounter_identifier_is_published(demo_site, demo_tables):
    _, site = demo_site
    ids = set(demo_tables["patients"]["patient_id"].astype(str))
    ids |= set(demo_tables["activities"]["patient_id"].astype(str))
    ids |= set(demo_tables["activities"]["encounter_id"].dropna().astype(str))
    staff = set(demo_tables["staff"]["staff_id"].astype(str))
    token = re.compile(r"[A-Za-z0-9]+")
    files = [p for p in site.rglob("*") if p.is_file()]
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        text = re.sub(r"data:[a-z/+.-]+;base64,[A-Za-z0-9+/=]+", "", text)  # inline images
        found = set(token.findall(text))
        assert not found & ids, f"{path.name}: {sorted(found & ids)[:5]}"
        assert not found & staff, f"{path.name}: {sorted(found & staff)[:5]}"


def test_index_and_microsystem_reports_are_light(demo_site):
    _, site = demo_site
    assert (site / "index.html").stat().st_size < 300_000
    reports = list((site / "03_analyse_tests").glob("*.html"))
    assert reports
    for page in reports:
        assert page.stat().st_size < 1_000_000, page.name


def test_organisation_reports_are_under_1_mb(demo_site):
    _, site = demo_site
    for folder in ("01_identify_microsystems", "02_select_pilots", "04_plan_spread"):
        for page in (site / folder).glob("*.html"):
            assert page.stat().st_size < 1_000_000, page.name


def test_no_page_shows_a_small_shared_patient_count(demo_site):
    # The demo has neighbouring microsystems that share 1 to 10 patients (the registry under
    # outputs/data/ keeps those counts); workbook 01's registry and workbook 03's registry row
    # show them as "<11".
    root, site = demo_site
    registry = pd.read_parquet(root / "outputs" / "data" / "registry.parquet")
    kept = " ".join(registry["linked_microsystems"])
    assert any(0 < int(n) < 11 for n in re.findall(r"\((\d+) patients\)", kept))
    hidden = 0
    for page in sorted(site.rglob("*.html")):
        text = page.read_text("utf-8")
        shown = [int(n) for n in re.findall(r"\((\d+) patients\)", text)]
        assert all(n >= 11 for n in shown), page.name
        hidden += text.count("(&lt;11 patients)")
    text = (site / "01_identify_microsystems" / "01_identify_microsystems.html").read_text("utf-8")
    assert "(&lt;11 patients)" in text and hidden > text.count("(&lt;11 patients)")


def test_profile_cards_are_light_html_with_a_drawn_run_chart(demo_site, browser):
    root, site = demo_site
    registry = pd.read_parquet(root / "outputs" / "data" / "registry.parquet")
    report = site / "01_identify_microsystems" / "01_identify_microsystems.html"
    page, context, _, _, errors = _open(browser, report.as_uri())
    cards = page.locator(".qi-card")
    assert cards.count() == min(len(registry), 60)
    assert page.locator(".qi-card img.qi-card-run").count() == cards.count()
    drawn = page.evaluate(
        "Array.from(document.querySelectorAll('.qi-card img.qi-card-run'))"
        ".every(i => i.complete && i.naturalWidth > 0 && i.alt.startsWith('Run chart'))"
    )
    assert drawn
    first = sorted(registry["microsystem_id"])[0]
    assert cards.first.locator("h4").inner_text().startswith(f"{first}:")
    assert cards.first.locator("figcaption").count() == 6
    assert not errors
    context.close()


# ---- Tables for people (issue 20) ----------------------------------------------------------------
#: What a cell shows when a missing value was printed as it is.
MISSING_MARKS = {"NaN", "nan", "NaT", "<NA>", "None"}


class _Cells(HTMLParser):
    """The text of every table cell (``td`` and ``th``) of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.cells: list[str] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("td", "th"):
            self._open = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._open is not None:
            self.cells.append("".join(self._open).strip())
            self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self._open.append(data)


def test_no_table_cell_reads_nan_nat_na_or_none(demo_site):
    _, site = demo_site
    pages = sorted(site.rglob("*.html"))
    n_cells = 0
    for path in pages:
        parser = _Cells()
        parser.feed(path.read_text(encoding="utf-8"))
        bad = [c for c in parser.cells if c in MISSING_MARKS]
        assert not bad, f"{path.relative_to(site)}: cells read {sorted(set(bad))}"
        n_cells += len(parser.cells)
    assert n_cells > 1000  # the pages do have tables
    report = (site / "03_analyse_tests" / "NOR-PC1.html").read_text(encoding="utf-8")
    assert "More columns:" in report and 'class="qi-group"' in report


def test_no_page_scrolls_sideways_at_1280_px(demo_site, browser):
    _, site = demo_site
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for path in sorted(site.rglob("*.html")):
        page, context, _, _, _ = _open(browser, path.as_uri())
        width = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert width[0] <= width[1], f"{path.relative_to(site)} scrolls sideways: {width}"
        # and no table of a report needs a scroll bar of its own
        wide = page.evaluate(
            "Array.from(document.querySelectorAll('table.qi-readable'))"
            ".filter(t => t.offsetWidth > t.parentElement.clientWidth + 1)"
            ".map(t => t.querySelector('th').textContent)"
        )
        assert not wide, f"{path.relative_to(site)}: tables wider than the page {wide[:3]}"
        if path.parent.name == "03_analyse_tests" and path.name == "NOR-PC1.html":
            page.screenshot(path=str(SCREENSHOTS / "report_03_after.png"), full_page=True)
        context.close()
    assert (SCREENSHOTS / "report_03_after.png").is_file()


def test_workbook_03_opens_with_one_summary_card_per_measure(demo_site):
    root, site = demo_site
    results = pd.read_parquet(root / "outputs" / "data" / "results" / "NOR-PC1.parquet")
    page = (site / "03_analyse_tests" / "NOR-PC1.html").read_text(encoding="utf-8")
    summary, first_chart = page.find('class="qi-summary"'), page.find("data:image/png")
    assert 0 < summary < first_chart, "the summary cards come before the first chart"
    assert page.count('class="qi-summary-card"') == results["measure_id"].nunique()
    # The demo plants an improvement of HbA1c testing in NOR-PC1 (its recall register).
    card = page[page.find("HbA1c tested", summary) :].split("</li>")[0]
    assert "qi-status-ok" in card and ">improved<" in card
    assert re.search(r"rose from \d+% to \d+%, \+\d+\.\d points, 95% CI [\d.]+ to [\d.]+\.", card)
    assert 'class="mdc mdc-' in card


# ---- Summary first for workbooks 02 and 04 and the index (issue 20) -----------------------------


def _summary_region(page: str) -> str:
    """A report page from its summary cards to its first table or chart (asserting that order)."""
    start = page.find('class="qi-summary"')
    first = min(i for i in (page.find("<table"), page.find("data:image"), len(page)) if i >= 0)
    assert 0 < start < first, "the summary cards come before the first table or chart"
    return page[start:first]


def _top_screenshot(browser, path: Path, name: str) -> None:
    """A page at 1280 px from its top to the end of its summary cards, for a person to look at."""
    page, context, _, _, errors = _open(browser, path.as_uri())
    end = page.evaluate(
        "(() => { const r = document.querySelector('.qi-summary').getBoundingClientRect();"
        " return r.bottom + window.scrollY + 40; })()"
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    clip = {"x": 0, "y": 0, "width": 1280, "height": end}
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True, clip=clip)
    assert not errors, errors
    context.close()


def test_workbook_02_opens_with_one_card_per_chosen_pilot(demo_site, demo_tables, browser):
    root, site = demo_site
    settings = load_yaml(root / "parameters" / "project.yaml")["pilots"]
    pilots = pd.read_parquet(root / "outputs" / "data" / "pilots.parquet")
    chosen = pilots.loc[pilots["selected"], "microsystem_id"].tolist()
    path = site / "02_select_pilots" / "02_select_pilots.html"
    region = _summary_region(path.read_text(encoding="utf-8"))
    assert region.count('class="qi-summary-card"') == len(chosen) == settings["k"]
    assert all(f"({ms})</h3>" in region for ms in chosen)
    # The demo plants NOR-PC1 as the pilot of the measure the pilots are chosen for, with a
    # baseline of common-cause variation only.
    effects = demo_tables["truth_effects"]
    planted = effects.loc[
        (effects["planted_as"] == "pilot") & (effects["measure_id"] == settings["measure_id"]),
        "microsystem_id",
    ].tolist()
    assert planted == ["NOR-PC1"]
    card = region[region.find("(NOR-PC1)</h3>") :].split("</li>")[0]
    assert ">stable baseline<" in card and "Readiness: mean " in card and "Score <strong>" in card
    _top_screenshot(browser, path, "report_02.png")


def test_workbook_04_cards_count_each_wave_as_the_spread_plan(demo_site, browser):
    root, site = demo_site
    plan = pd.read_parquet(root / "outputs" / "data" / "spread_plan.parquet")
    expected = plan.groupby(["change", "wave"]).size()
    assert len(expected) > 0
    path = site / "04_plan_spread" / "04_plan_spread.html"
    region = _summary_region(path.read_text(encoding="utf-8"))
    found, cards = {}, {}
    for card in region.split('class="qi-summary-card"')[1:]:
        change = html.unescape(re.search(r'class="qi-summary-name">(.*?)</h3>', card).group(1))
        cards[change] = card
        for wave, n in re.findall(r"Wave (\d+)[^:<]*: <strong>(\d+)</strong>", card):
            found[(change, int(wave))] = int(n)
    assert found == {key: int(n) for key, n in expected.items()}
    assert all(">ready to spread<" in cards[change] for change in set(plan["change"]))
    # The demo plants the recall register in NOR-PC1: its card gives that evidence.
    recall = cards["Diabetes recall register with text reminders"]
    assert "improved in NOR-PC1" in recall
    _top_screenshot(browser, path, "report_04.png")


def _count(region: str, ident: str) -> int:
    """A count of the index summary by its element's id: the number that ends its first
    ``<strong>`` (0 when it is not shown, as a count of 0 may not be)."""
    at = region.find(f'id="{ident}"')
    if at < 0:
        return 0
    return int(
        re.findall(r"[\d,]+$", region[at : region.find("</strong>", at)])[0].replace(",", "")
    )


def test_index_summary_counts_what_the_results_say(demo_site, browser):
    root, site = demo_site
    data = root / "outputs" / "data"
    frames = [pd.read_parquet(p) for p in sorted((data / "results").glob("*.parquet"))]
    latest = pd.concat([f.drop_duplicates("measure_id", keep="last") for f in frames])
    registry = pd.read_parquet(data / "registry.parquet")
    page = (site / "index.html").read_text(encoding="utf-8")
    start = page.find('id="org-summary-heading"')
    assert 0 < start < page.find('id="microsystems-heading"')
    region = page[start : page.find("</section>", start)]
    assert f">{len(registry)} microsystems<" in region
    assert _count(region, "org-tested") == sum(bool(f["change"].notna().any()) for f in frames)
    assert _count(region, "org-measures") == len(latest)
    for verdict, n in latest["verdict"].value_counts().items():
        assert _count(region, "org-verdict-" + verdict.replace(" ", "-")) == n, verdict
    for column, group in (("variation_icon", "variation"), ("assurance_icon", "assurance")):
        for icon, n in latest[column].fillna("").replace("", "none").value_counts().items():
            assert _count(region, f"org-{group}-{icon.replace('_', '-')}") == n, icon
    pilots = pd.read_parquet(data / "pilots.parquet")
    for ms in pilots.loc[pilots["selected"], "microsystem_id"]:
        assert f'href="03_analyse_tests/{ms}.html"' in region
    plan = pd.read_parquet(data / "spread_plan.parquet")
    for (change, wave), n in plan.groupby(["change", "wave"]).size().items():
        assert f"wave {wave}: {n} team{'s' if n != 1 else ''}" in region, change
    assert 'href="02_select_pilots/02_select_pilots.html"' in region
    assert 'href="04_plan_spread/04_plan_spread.html"' in region
    page, context, _, _, errors = _open(browser, (site / "index.html").as_uri())
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("section.qi-org-summary").screenshot(path=str(SCREENSHOTS / "index_summary.png"))
    page.click("section.qi-org-summary a[href='04_plan_spread/04_plan_spread.html']")
    page.wait_for_load_state("load")
    assert page.url.endswith("/04_plan_spread.html")
    assert not errors, errors
    context.close()


def test_index_shows_each_teams_progress_score_and_history(demo_site, demo_tables, browser):
    root, site = demo_site
    scores = pd.read_parquet(root / "outputs" / "data" / "progress.parquet")
    now = scores[scores["month"] == scores["month"].max()].set_index("microsystem_id")["score"]
    planted = demo_tables["truth_effects"].groupby("microsystem_id")["planted_as"].agg(set)
    pilots = [ms for ms, kinds in planted.items() if kinds == {"pilot"}]
    assert all(now[ms] >= 3.5 for ms in pilots) and sum(now[ms] >= 4 for ms in pilots) >= 3
    assert [now[ms] for ms, k in planted.items() if "harm" in k] == [3.0]  # capped
    assert [now[ms] for ms, k in planted.items() if k == {"failed"}] == [2.5]  # abandoned
    page, context, _, _, errors = _open(browser, (site / "index.html").as_uri())
    rows = page.locator("#qi-ms-table tbody tr")
    for ms in pilots:
        row = rows.filter(has_text=ms)
        cell = row.locator("td:nth-child(5)")
        assert cell.locator("b").inner_text() == f"{now[ms]:.1f}"
        chart = cell.locator("img.qi-prog")
        assert chart.count() == 1 and chart.bounding_box()["width"] == 96
        assert chart.get_attribute("alt").startswith("Progress score by month, from ")
        history = cell.locator("small").inner_text()  # the chart in words, selectable text
        assert history.split(", ")[-1].startswith(f"{now[ms]:.1f} ")  # the last move: now
        assert history[:3] in {"1.0", "1.5", "2.0"}  # the month before the first cycle
    flat = rows.filter(has_text="HIL-PC2").locator("td:nth-child(5)")  # no diagram, no cycle
    assert flat.locator("b").inner_text() == "1.0" and flat.locator("img").count() == 0
    assert flat.locator("small").inner_text().startswith("since ")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    first = rows.filter(has_text=pilots[0])
    first.screenshot(path=str(SCREENSHOTS / "index_progress_row.png"))
    page.locator("#qi-ms-table").screenshot(path=str(SCREENSHOTS / "index_progress.png"))
    assert not errors
    context.close()


def test_funnel_page_reads_at_1280_px_with_full_width_charts(demo_site, browser):
    """Issue 20: the funnel page has no sideways scroll at 1280 px, its charts take the width of
    the text column, and every chart has alt text; its link from the index opens it."""
    _, site = demo_site
    page, context, _, _, errors = _open(browser, (site / "index.html").as_uri())
    page.click("a[href='funnels.html']")
    page.wait_for_load_state("load")
    assert page.url.endswith("/funnels.html")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    widths = page.evaluate(
        "Array.from(document.querySelectorAll('figure.qi-funnel img'))"
        ".map(i => [i.getBoundingClientRect().width, i.alt.length])"
    )
    main = page.evaluate("document.querySelector('main').clientWidth")
    assert len(widths) >= 8
    assert all(w >= 0.85 * main - 64 and alt > 40 for w, alt in widths), (widths, main)
    assert page.locator("table.qi-outliers tbody tr").count() >= 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "funnels.png"), full_page=True)
    assert not errors, errors
    context.close()


# ---- Driver diagrams (issue 21) ---------------------------------------------------------------
def _idea_block(page: str, change: str) -> str:
    """The HTML of one change idea of a page's driver diagram."""
    diagram = page.find('class="qi-dd"')
    start = page.find(f"<strong>{html.escape(change, quote=False)}</strong>", diagram)
    assert diagram > 0 and start > 0, f"no change idea {change!r} in the page's diagram"
    return page[start : page.find("</div>", start)]


def _planted_status(effects: pd.DataFrame) -> str:
    """The status a pilot's planted change should show (truth_effects of that change)."""
    if (effects["planted_as"] == "failed").any():
        return "abandoned"
    if (effects["expected_verdict"] == "worsened").any():
        return "tested, a measure worsened"
    return "tested and improved"


def test_pilot_diagrams_show_the_planted_verdicts(demo_site, demo_tables):
    root, site = demo_site
    truth, effects = demo_tables["truth_microsystems"], demo_tables["truth_effects"]
    pilots = truth[truth["planted_role"] == "pilot"]
    assert len(pilots) == 6
    for pilot in pilots.itertuples():
        planted = effects[(effects["microsystem_id"] == pilot.microsystem_id)
                          & (effects["change"] == pilot.pilot_of)]  # fmt: skip
        results = pd.read_parquet(
            root / "outputs" / "data" / "results" / f"{pilot.microsystem_id}.parquet"
        )
        judged = results[results["change"] == pilot.pilot_of].set_index("measure_id")["verdict"]
        for effect in planted.itertuples():  # the results agree with the truth ...
            assert judged[effect.measure_id] == effect.expected_verdict.replace("_", " ")
        page = (site / "03_analyse_tests" / f"{pilot.microsystem_id}.html").read_text("utf-8")
        block = _idea_block(page, pilot.pilot_of)  # ... and the diagram shows them
        assert f"</span> {_planted_status(planted)}</span>" in block, pilot.microsystem_id
        for effect in planted.itertuples():
            assert f": {effect.expected_verdict.replace('_', ' ')}</li>" in block
        assert page.count('class="qi-dd"') == 1 and "not tested yet</span>" in page


def test_organisation_diagram_shows_the_spread_of_each_planted_change(demo_site, demo_tables):
    _, site = demo_site
    effects = demo_tables["truth_effects"]
    page = (site / "04_plan_spread" / "04_plan_spread.html").read_text("utf-8")
    assert page.count('class="qi-dd"') == 1
    for change, planted in effects[effects["change"] != ""].groupby("change"):
        if (planted["planted_as"] == "adopter").any():
            expected = "spreading"  # adopted by other teams (the adoption log)
        elif (planted["planted_as"] == "harm").any():
            expected = "held back"
        else:
            assert (planted["planted_as"] == "failed").any()
            expected = "abandoned"
        assert f"</span> {expected}</span>" in _idea_block(page, change), change


def test_driver_diagram_links_resolve_and_its_text_is_selectable(demo_site, browser):
    _, site = demo_site
    path = site / "03_analyse_tests" / "NOR-PC1.html"
    page, context, _, _, errors = _open(browser, path.as_uri())
    diagram = page.locator(".qi-dd")
    assert diagram.count() == 1 and diagram.is_visible()
    hrefs = page.eval_on_selector_all(".qi-dd a", "as => as.map(a => a.getAttribute('href'))")
    assert any(h.startswith("#qi-dd-cycle-") for h in hrefs)
    assert any(h.startswith("#qi-chart-") for h in hrefs)
    for href in hrefs:  # every link lands on one element of this page
        assert href.startswith("#") and page.locator(f"[id='{href[1:]}']").count() == 1, href
    # a measure's link lands on the figure of its chart: the caption names the measure
    link = page.locator(".qi-dd a[href^='#qi-chart-']").first
    name, target = link.inner_text(), link.get_attribute("href")
    link.click()
    assert page.evaluate("location.hash") == target
    figure = page.locator(f"figure.qi-chart[id='{target[1:]}']")
    assert figure.count() == 1 and figure.locator("figcaption").inner_text().startswith(name)
    assert (
        page.evaluate(f"document.getElementById('{target[1:]}').getBoundingClientRect().top")
        < 900 * 0.5
    )
    # the text is text: selectable, and copied as the reader sees it
    selected = page.evaluate(
        "() => { const r = document.createRange();"
        " r.selectNodeContents(document.querySelector('.qi-dd-tree'));"
        " const s = window.getSelection(); s.removeAllRanges(); s.addRange(r);"
        " return s.toString(); }"
    )
    assert "Diabetes recall register with text reminders" in selected
    assert "tested and improved" in selected and "not tested yet" in selected
    assert page.evaluate("getComputedStyle(document.querySelector('.qi-dd')).userSelect") != (
        "none"
    )
    # the tree reads left to right: the aim left of the primary drivers, left of the ideas
    lefts = page.evaluate(
        "['.qi-dd-aim', '.qi-dd-primary', '.qi-dd-secondary', '.qi-dd-idea']"
        ".map(s => document.querySelector(s).getBoundingClientRect().left)"
    )
    assert lefts == sorted(lefts) and len(set(lefts)) == 4
    page.evaluate("window.getSelection().removeAllRanges()")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    diagram.screenshot(path=str(SCREENSHOTS / "driver_diagram.png"))
    assert (SCREENSHOTS / "driver_diagram.png").stat().st_size > 5_000
    assert not errors, errors
    context.close()


# ---- Charts for people (issue 20) ----------------------------------------------------------------
#: An A4 page printed with the report's ``@page`` margins (15 mm), in CSS px (96 per inch).
A4_CONTENT_PX = ((210 - 30) / 25.4 * 96, (297 - 30) / 25.4 * 96)


class _Images(HTMLParser):
    """The ``alt`` of every ``<img>`` of a page (None when it has none)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.alts: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.alts.append(dict(attrs).get("alt"))


def test_every_image_of_every_page_has_alt_text_in_words(demo_site):
    _, site = demo_site
    n_images = 0
    for path in sorted(site.rglob("*.html")):
        parser = _Images()
        parser.feed(path.read_text(encoding="utf-8"))
        for alt in parser.alts:
            assert alt and len(alt.split()) >= 6, f"{path.relative_to(site)}: alt {alt!r}"
            assert alt not in ("Chart", "Picture", "Chart without a description")
        n_images += len(parser.alts)
    assert n_images >= 30


def _measure_names(root: Path, microsystem_id: str) -> list[str]:
    results = pd.read_parquet(root / "outputs" / "data" / "results" / f"{microsystem_id}.parquet")
    return list(dict.fromkeys(results["name"].astype(str)))


def test_workbook_03_charts_are_full_width_one_per_row_with_a_caption_naming_the_measure(
    demo_site, browser
):
    root, site = demo_site
    names = _measure_names(root, "NOR-PC1")
    page, context, _, _, errors = _open(
        browser, (site / "03_analyse_tests" / "NOR-PC1.html").as_uri()
    )
    column = page.evaluate(
        "(() => { const m = document.querySelector('main'); const s = getComputedStyle(m);"
        " return m.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight); })()"
    )
    script = (
        "(sel) => Array.from(document.querySelectorAll(sel)).map(f => {"
        " const i = f.querySelector('img'); const r = i.getBoundingClientRect();"
        " const c = f.querySelector('figcaption');"
        " return {top: r.top + window.scrollY, width: r.width, alt: i.alt,"
        " caption: c ? c.textContent : ''}; })"
    )
    figures = page.evaluate(script, "figure.qi-chart")
    measured = page.evaluate(script, ".qi-charts figure.qi-chart")  # plot_measures' output
    assert column > 900
    assert len(measured) == len(names) >= 3, ([f["caption"][:50] for f in measured], names)
    for name, chart in zip(names, measured, strict=True):  # in order, caption naming it
        assert chart["caption"].startswith(name + ","), (name, chart["caption"])
        assert chart["alt"].endswith(chart["caption"]) and "chart" in chart["alt"].lower()
    assert len(figures) > len(measured)  # the PDSA timeline, subgroups, explorer too
    assert all(f["width"] >= 0.85 * column for f in figures), (column, figures)
    assert all(f["caption"] for f in figures)
    tops = [f["top"] for f in measured]
    assert tops == sorted(tops) and len(set(tops)) == len(tops)  # one per row, in order
    heights = page.evaluate(
        "Array.from(document.querySelectorAll('figure.qi-chart img')).map(i => i.height)"
    )
    assert all(h > 0 for h in heights)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "report_03_charts.png"), full_page=True)
    assert not errors, errors
    context.close()


def test_printed_pages_keep_every_chart_on_one_page(demo_site, browser):
    """In print, each figure has ``break-inside: avoid`` and fits on one A4 page (so the
    printer can honour it), the navigation is hidden, and the page prints to PDF."""
    root, site = demo_site
    width, height = A4_CONTENT_PX
    pages = [
        site / "03_analyse_tests" / "NOR-PC1.html",
        site / "index.html",
        site / "funnels.html",
        *sorted(site.glob("0[124]_*/*.html")),
    ]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    n_figures = 0
    for path in pages:
        page, context, _, _, _ = _open(browser, path.as_uri())
        page.set_viewport_size({"width": int(width), "height": int(height)})
        page.emulate_media(media="print")
        found = page.evaluate(
            "Array.from(document.querySelectorAll('figure')).map(f => ["
            " getComputedStyle(f).breakInside, f.getBoundingClientRect().height])"
        )
        assert all(b == "avoid" for b, _ in found), (path.name, found)
        assert all(h <= height for _, h in found), (path.name, max(h for _, h in found))
        n_figures += len(found)
        nav = page.evaluate(
            "Array.from(document.querySelectorAll('.qi-nav')).map(n => getComputedStyle(n).display)"
        )
        assert all(d == "none" for d in nav), path.name
        if path.name == "NOR-PC1.html":
            pdf = page.pdf(format="A4", print_background=True)
            assert pdf.startswith(b"%PDF") and len(pdf) > 50_000
            (SCREENSHOTS / "report_03_print.pdf").write_bytes(pdf)
        context.close()
    assert n_figures >= 20


# ---- The microsystem assessment by characteristic (issue 21) ------------------------------------


def test_workbook_03_shows_how_the_team_rates_itself(demo_site, demo_tables, browser):
    """NOR-W1, a pilot surveyed again after its tests: its profile against the organisation,
    its strengths and gaps in words, and the change since the first round (the demo plants
    organisational support down in every pilot's second round)."""
    _, site = demo_site
    path = site / "03_analyse_tests" / "NOR-W1.html"
    text = html.unescape(re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8")))
    text = re.sub(r"\s+", " ", text)
    section = text[text.index("How the team rates itself") :]
    assert "Strengths:" in section and "Gaps:" in section
    assert "Since the survey of 6 May 2024: " in section
    assert re.search(r"down: [^.]*organisational support \d\.\d to \d\.\d", section)
    assert "information and information technology" in section
    assert "information_and_information_technology" not in text
    page, context, _, _, errors = _open(browser, path.as_uri())
    alt = page.evaluate(
        "Array.from(document.images).map(i => i.alt).find(a => a.includes('rates itself'))"
    )
    assert alt.startswith("Dot chart. How NOR-W1 rates itself on the ten success")
    assert "open circles are the team's previous round" in alt
    box = page.evaluate(
        "(() => { const hs = Array.from(document.querySelectorAll('h2'));"
        " const i = hs.findIndex(h => h.textContent.includes('How the team rates itself'));"
        " const top = hs[i].getBoundingClientRect().top + window.scrollY - 10;"
        " const end = hs[i + 1].getBoundingClientRect().top + window.scrollY - 10;"
        " return [top, end - top]; })()"
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    clip = {"x": 0, "y": box[0], "width": 1280, "height": box[1]}
    page.screenshot(path=str(SCREENSHOTS / "assessment_profile.png"), full_page=True, clip=clip)
    assert not errors, errors
    context.close()


def test_workbooks_02_and_04_name_the_characteristics(demo_site):
    _, site = demo_site
    cards = _summary_region(
        (site / "02_select_pilots" / "02_select_pilots.html").read_text(encoding="utf-8")
    )
    # The pilots are chosen on the first round (as_of 2024-06-30): their strengths by name.
    assert re.search(r"Readiness: mean \d\.\d\d of 3 [^<]*; strengths: [a-z ]+ \d\.\d of 3", cards)
    plan = (site / "04_plan_spread" / "04_plan_spread.html").read_text(encoding="utf-8")
    # The low-readiness team (RIV-PC3) is in the last wave with its gaps named.
    assert re.search(r"[a-z ]+ \d\.\d of 3[^<]*: needs support before wave \d", plan)
    assert "support first with RIV-PC3: " in html.unescape(plan)
