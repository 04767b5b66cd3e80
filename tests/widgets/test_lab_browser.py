"""The coach's JupyterLab, in a real browser: open workbook 03, run it, use its explorer.

A headless ``jupyter lab`` serves a demo project (demo data and workbook 01's outputs ready), and
Chromium, driven by Playwright, does what a coach does: open the workbook, *Run > Run All Cells*,
pick another measure in the explorer and watch the chart change. Screenshots land in this
project's ``outputs/screenshots/`` (``lab_03_before.png``, ``lab_03_after.png``). Without
Chromium the test is skipped, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

import json
import re

import pytest
from support import CHROMIUM, CHROMIUM_ARGS, ROOT, LabServer, need_chromium, prepare_lab_project

NOTEBOOK = "workbooks/03_analyse_tests.ipynb"
SCREENSHOTS = ROOT / "outputs" / "screenshots"
KERNEL_TIMEOUT_MS = 180_000
RUN_TIMEOUT_MS = 300_000


@pytest.fixture(scope="module")
def lab(tmp_path_factory, demo_tables):
    """A running JupyterLab on a project with the demo data and workbook 01's outputs."""
    need_chromium()
    root = prepare_lab_project(tmp_path_factory, demo_tables)
    server = LabServer(root, tmp_path_factory.mktemp("jupyter_home"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture()
def page(lab):
    """A Chromium page (headless) with a viewport large enough for a chart."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            yield context.new_page()
        finally:
            browser.close()


def _shoot(page, name: str):
    """Screenshot the page to ``outputs/screenshots/<name>`` of this project (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path))
    return path


def _errors_shown(page) -> list[str]:
    """Texts of error outputs and of stderr outputs that carry a traceback or an error."""
    texts = page.locator(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'],"
        " .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']"
    ).all_inner_texts()
    return [t for t in texts if re.search(r"Traceback|Error", t)]


def _wait_kernel_idle(page) -> None:
    """Wait until the notebook's kernel has started and is idle (status bar and toolbar)."""
    page.locator("#jp-main-statusbar").get_by_text(re.compile(r"Python 3.*\|\s*Idle")).wait_for(
        timeout=KERNEL_TIMEOUT_MS
    )
    page.wait_for_selector(
        ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=KERNEL_TIMEOUT_MS
    )


def _explorer_chart_src(cell) -> str:
    return cell.locator(".widget-output img, .jupyter-widgets-output-area img").first.get_attribute(
        "src"
    )


def test_coach_runs_workbook_03_and_picks_a_measure(lab, page):
    """Open 03 in JupyterLab, run all cells, pick another measure: the chart follows, no errors."""
    expected_cells = sum(
        c["cell_type"] == "code"
        for c in json.loads((lab.root / NOTEBOOK).read_text(encoding="utf-8"))["cells"]
    )
    page.goto(lab.url(f"/lab/tree/{NOTEBOOK}"), timeout=KERNEL_TIMEOUT_MS)
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    code_cells = notebook.locator(".jp-CodeCell")
    page.wait_for_function(
        "n => document.querySelectorAll("
        "'.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell').length === n",
        arg=expected_cells,
        timeout=KERNEL_TIMEOUT_MS,
    )
    _wait_kernel_idle(page)

    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()

    # Done when every code cell shows an execution count ([n]:, not [*]: or [ ]:) and the
    # kernel is idle again.
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll(
                '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
        timeout=RUN_TIMEOUT_MS,
    )
    _wait_kernel_idle(page)
    counts = code_cells.locator(".jp-InputPrompt").all_inner_texts()
    assert len(counts) == expected_cells
    assert all(re.search(r"\[\d+\]", c) for c in counts), counts
    assert _errors_shown(page) == []
    assert notebook.locator(".jp-OutputArea-output img").count() >= 2, "no charts shown"
    # Charts for people, as on the published page: one <figure> per measure, one per row, each
    # with alt text in words and a caption naming its measure (qi_helpers.chart_display).
    measured = notebook.locator(".qi-charts figure.qi-chart")
    assert measured.count() >= 2  # the first microsystem of the registry: a lab, 2 measures
    captions = measured.locator("figcaption").all_inner_texts()
    assert len(captions) == measured.count() and all(", weekly" in c for c in captions), captions
    alts = notebook.locator("figure.qi-chart img").evaluate_all("imgs => imgs.map(i => i.alt)")
    assert alts and all(len(a.split()) >= 6 for a in alts), alts
    tops = measured.locator("img").evaluate_all(
        "imgs => imgs.map(i => i.getBoundingClientRect().top)"
    )
    assert tops == sorted(tops) and len(set(tops)) == len(tops)
    measured.first.scroll_into_view_if_needed()
    _shoot(page, "lab_03_charts.png")
    # JupyterLab shows the tables the published page shows (qi_helpers.readable_tables): the
    # summary cards, readable tables with no index column and the extra columns behind
    # "More columns", and no NaN / NaT / <NA> / None in a cell.
    assert notebook.locator(".qi-summary-card").count() >= 1
    tables = notebook.locator("table.qi-readable")
    assert tables.count() >= 4
    assert (
        notebook.locator("details.qi-more summary").first.inner_text().startswith("More columns:")
    )
    cells = tables.locator("td, th").all_inner_texts()
    assert not {c.strip() for c in cells} & {"NaN", "NaT", "<NA>", "None", "nan"}
    verdicts = tables.filter(has=page.locator("th", has_text=re.compile(r"^Effect \(95% CI\)$")))
    verdicts.first.scroll_into_view_if_needed()
    _shoot(page, "lab_03_tables.png")

    # The explorer: its cell holds the pickers (ipywidgets Dropdowns render as <select>).
    cell = code_cells.filter(has=page.locator(".widget-dropdown select"))
    assert cell.count() == 1, "the explorer's pickers are not shown"
    measure = (
        cell.locator(".widget-dropdown")
        .filter(has=page.locator("label", has_text=re.compile(r"^Measure$")))
        .locator("select")
    )
    cell.locator(".widget-output img, .jupyter-widgets-output-area img").first.wait_for(
        timeout=KERNEL_TIMEOUT_MS
    )
    cell.scroll_into_view_if_needed()
    before_src = _explorer_chart_src(cell)
    before_measure = measure.input_value()
    before = _shoot(page, "lab_03_before.png")

    options = measure.locator("option")
    values = [options.nth(i).get_attribute("value") for i in range(options.count())]
    labels = options.all_inner_texts()
    assert len(values) >= 2, f"only one measure to pick: {labels}"
    other = next(i for i, v in enumerate(values) if v != before_measure)
    measure.select_option(value=values[other])

    # The chart is redrawn for the picked measure: the <img> in the explorer's output changes.
    page.wait_for_function(
        """([cellIndex, old]) => {
            const cells = document.querySelectorAll(
                '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell');
            const img = cells[cellIndex].querySelector(
                '.widget-output img, .jupyter-widgets-output-area img');
            return img !== null && img.getAttribute('src') !== old;
        }""",
        arg=[_index_of(code_cells, cell), before_src],
        timeout=RUN_TIMEOUT_MS,
    )
    _wait_kernel_idle(page)
    assert measure.input_value() == values[other]
    assert _explorer_chart_src(cell) != before_src
    assert _errors_shown(page) == []
    cell.scroll_into_view_if_needed()
    after = _shoot(page, "lab_03_after.png")
    assert before.stat().st_size > 10_000 and after.stat().st_size > 10_000


def _index_of(cells, cell) -> int:
    """The position of ``cell`` among ``cells`` (both Playwright locators)."""
    handle = cell.element_handle()
    for i in range(cells.count()):
        if cells.nth(i).evaluate("(a, b) => a === b", handle):
            return i
    raise AssertionError("the explorer's cell is not among the notebook's code cells")


@pytest.mark.slow
def test_qi_lab_makes_the_demo_and_workbook_01_outputs_ready(tmp_path, capsys):
    """``make lab`` runs ``qi lab``: on a fresh project, data and registry appear before the lab."""
    from conftest import copy_project_skeleton

    from qi_helpers.cli import main

    root = copy_project_skeleton(tmp_path / "project")
    assert main(["lab", "--prepare-only", "--project", str(root)]) == 0
    said = capsys.readouterr().out
    assert (root / "data" / "demo" / "activities.csv").is_file()
    assert (root / "outputs" / "data" / "registry.parquet").is_file()
    assert list((root / "outputs" / "data").glob("membership_*.parquet"))
    assert "running workbook 01" in said and "Ready" in said

    # Once ready, nothing is run again.
    assert main(["lab", "--prepare-only", "--project", str(root)]) == 0
    assert "running workbook 01" not in capsys.readouterr().out
