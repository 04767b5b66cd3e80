"""`qi run` on the small demo, in a temporary project: every report is there and clean."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import nbformat
import pandas as pd
import pytest

from qi_helpers.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ran(demo_project, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e") / "project"
    shutil.copytree(demo_project, root)
    code = main(["run", "--project", str(root), "--jobs", "2", "--quiet"])
    return root, code


def test_run_succeeds(ran):
    root, code = ran
    assert code == 0
    manifest = json.loads((root / "outputs" / "run.json").read_text())
    assert all(t["status"] == "ok" for t in manifest["tasks"])


def test_index_links_every_report(ran):
    root, _ = ran
    registry = pd.read_parquet(root / "outputs" / "data" / "registry.parquet")
    index = (root / "outputs" / "site" / "index.html").read_text(encoding="utf-8")
    links = set(re.findall(r'href="([^"]+)"', index))
    for page in (
        "01_identify_microsystems/01_identify_microsystems.html",
        "02_select_pilots/02_select_pilots.html",
        "04_plan_spread/04_plan_spread.html",
    ):
        assert page in links
        assert (root / "outputs" / "site" / page).is_file()
    reports = {
        link for link in links if link.startswith("03_analyse_tests/") and link.endswith(".html")
    }
    assert len(reports) == len(registry) >= 4
    for link in reports:
        assert (root / "outputs" / "site" / link).is_file()


def test_no_report_contains_an_error(ran):
    root, _ = ran
    notebooks = list((root / "outputs" / "notebooks").rglob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                assert output.get("output_type") != "error", f"{path.name}: {output.get('evalue')}"
    for page in (root / "outputs" / "site").rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "Traceback" not in text, page


def test_each_microsystem_report_has_charts_and_verdicts(ran):
    root, _ = ran
    results = list((root / "outputs" / "data" / "results").glob("*.parquet"))
    registry = pd.read_parquet(root / "outputs" / "data" / "registry.parquet")
    assert len(results) == len(registry)
    for page in (root / "outputs" / "site" / "03_analyse_tests").glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert text.count("data:image/png;base64") >= 2, f"{page.name}: charts missing"


def test_pages_need_no_internet(ran):
    root, _ = ran
    for page in (root / "outputs" / "site").rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r'(src|href)="(https?:)?//', text), page
        assert "<script src" not in text


def test_no_patient_identifier_is_published(ran, demo_tables):
    root, _ = ran
    patient_ids = set(demo_tables["patients"]["patient_id"].astype(str))
    encounter_ids = set(demo_tables["activities"]["encounter_id"].dropna().astype(str))
    pattern = re.compile(r"\b[PE]\d{6,8}\b")
    for page in (root / "outputs" / "site").rglob("*.html"):
        found = set(pattern.findall(page.read_text(encoding="utf-8")))
        assert not (found & (patient_ids | encounter_ids)), page


def test_spread_plan_written(ran):
    root, _ = ran
    plan = pd.read_parquet(root / "outputs" / "data" / "spread_plan.parquet")
    assert {"change", "microsystem_id", "wave", "wave_start"} <= set(plan.columns)


def test_a_microsystems_own_parameters_rerun_only_its_report(ran, tmp_path):
    # parameters/microsystems/<id>.yaml overrides the analysis section for that microsystem:
    # asking for 100 baseline points leaves NOR-PC1's planted improvement without a verdict.
    root = tmp_path / "project"
    shutil.copytree(ran[0], root)
    results = root / "outputs" / "data" / "results" / "NOR-PC1.parquet"
    assert "improved" in set(pd.read_parquet(results)["verdict"])
    own = root / "parameters" / "microsystems" / "NOR-PC1.yaml"
    own.parent.mkdir(parents=True, exist_ok=True)
    own.write_text("min_points: 100\n", encoding="utf-8")
    assert main(["run", "--project", str(root), "--jobs", "2", "--quiet"]) == 0
    manifest = json.loads((root / "outputs" / "run.json").read_text())
    ran_now = {t["name"] for t in manifest["tasks"] if not t.get("skipped")}
    assert "improved" not in set(pd.read_parquet(results)["verdict"])
    assert ran_now == {"NOR-PC1", "04_plan_spread"}, ran_now


def test_one_microsystems_edited_rows_rerun_only_that_microsystem(ran, tmp_path):
    """Issue 17: an edit of one microsystem's rows in an organisation-wide table (its PDSA log)
    reruns that microsystem's workbook 03 only (then the site), and the pages of the
    other microsystems are kept byte for byte."""
    root = tmp_path / "project"
    shutil.copytree(ran[0], root)
    site = root / "outputs" / "site" / "03_analyse_tests"
    before = {p.name: p.read_bytes() for p in site.glob("*.html")}
    funnels = root / "outputs" / "site" / "funnels.html"
    funnels_before = funnels.read_bytes()
    path = root / "data" / "demo" / "pdsa.csv"
    pdsa = pd.read_csv(path, dtype=str, keep_default_na=False)
    mine = pdsa["microsystem_id"] == "RIV-PC2"
    assert mine.any()
    pdsa.loc[mine, "result"] = pdsa.loc[mine, "result"] + " (edited after the team meeting)"
    pdsa.to_csv(path, index=False)
    assert main(["run", "--project", str(root), "--jobs", "2", "--quiet"]) == 0
    manifest = json.loads((root / "outputs" / "run.json").read_text())
    ran_now = {t["name"] for t in manifest["tasks"] if not t.get("skipped")}
    # 04 reruns only if RIV-PC2's verdicts changed (a PDSA note does not change them)
    assert ran_now - {"04_plan_spread"} == {"RIV-PC2"}, ran_now
    after = {p.name: p.read_bytes() for p in site.glob("*.html")}
    changed = sorted(name for name in before if after.get(name) != before[name])
    assert changed == ["RIV-PC2.html"], changed
    digest = json.loads((root / "outputs" / "digest.json").read_text())
    assert digest["entries"] == [], "a PDSA note changes no verdict, icon or special cause"
    # a PDSA note changes no measure series: the funnel page is the same, byte for byte
    assert funnels.read_bytes() == funnels_before


def test_the_first_run_says_there_is_nothing_to_compare_with_yet(ran):
    root, _ = ran
    digest = json.loads((root / "outputs" / "digest.json").read_text())
    assert (digest["first_run"], digest["previous_date"], digest["entries"]) == (True, None, [])
    index = (root / "outputs" / "site" / "index.html").read_text(encoding="utf-8")
    assert '<section class="qi-changes"' not in index, "no change: no panel"
    # The snapshot the next run compares with holds every verdict of every microsystem.
    snapshot = json.loads((root / "outputs" / "snapshot.json").read_text())
    results = pd.concat(
        pd.read_parquet(p) for p in (root / "outputs" / "data" / "results").glob("*.parquet")
    )
    assert len(snapshot["rows"]) == len(results) > 0
    assert sorted(snapshot["microsystems"]) == sorted(results["microsystem_id"].unique())


def test_an_edit_that_changes_one_verdict_is_exactly_that_change_in_the_digest(ran, tmp_path):
    """Issue 20: RIV-W2 adopted intentional rounding ten weeks before the end of the demo, too
    soon for a signal (the demo plants it so). Its team now records the change as abandoned:
    an abandoned change is judged over its abandoning cycle, where falls did not fall, so the
    verdict turns from 'no signal yet' to 'no change'; the chart and its icons stay the same."""
    root = tmp_path / "project"
    shutil.copytree(ran[0], root)
    results = root / "outputs" / "data" / "results" / "RIV-W2.parquet"
    falls = pd.read_parquet(results).set_index("measure_id").loc["ward_falls"]
    assert (falls["change"], falls["verdict"]) == ("Intentional rounding", "no signal yet")
    path = root / "data" / "demo" / "pdsa.csv"
    pdsa = pd.read_csv(path, dtype=str, keep_default_na=False)
    mine = pdsa["microsystem_id"] == "RIV-W2"
    assert list(pdsa.loc[mine, "decision"]) == ["adopt"]
    pdsa.loc[mine, "decision"] = "abandon"
    pdsa.to_csv(path, index=False)

    assert main(["run", "--project", str(root), "--jobs", "2", "--quiet"]) == 0
    assert pd.read_parquet(results).set_index("measure_id").loc["ward_falls", "verdict"] == (
        "no change"
    )
    digest = json.loads((root / "outputs" / "digest.json").read_text())
    first = json.loads((ran[0] / "outputs" / "digest.json").read_text())
    assert digest["previous_date"] == first["date"] and digest["first_run"] is False
    assert [
        (e["microsystem_id"], e["measure_id"], e["change"], e["kind"], e["before"], e["after"])
        for e in digest["entries"]
    ] == [
        ("RIV-W2", "ward_falls", "Intentional rounding", "verdict_changed", "no signal yet",
         "no change")
    ]  # fmt: skip
    index = (root / "outputs" / "site" / "index.html").read_text(encoding="utf-8")
    panel = re.search(r'<section class="qi-changes".*?</section>', index, re.S).group(0)
    assert panel.count("<li") == 1
    assert '<a href="03_analyse_tests/RIV-W2.html">RIV-W2</a>' in panel
    assert (
        "Inpatient falls per 1,000 patient-days: verdict changed from &#39;no signal yet&#39; "
        "to &#39;no change&#39; (change: Intentional rounding)"
    ) in panel


def test_funnel_page_is_built_and_linked_from_the_index(ran):
    """Issue 20: the organisation's funnel page, one plot per measure of the demo catalogue (each
    measure names its kind), with alt text and a caption in words, listed in the manifest."""
    root, _ = ran
    site = root / "outputs" / "site"
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="funnels.html"' in index
    page = (site / "funnels.html").read_text(encoding="utf-8")
    assert "Content-Security-Policy" in page and 'href="index.html"' in page
    measures = pd.read_csv(root / "data" / "demo" / "measures.csv")
    alts = re.findall(r'<img src="data:image/png;base64,[^"]+" alt="([^"]+)"', page)
    assert len(alts) == len(measures) == 10
    assert all(alt.startswith("Funnel plot. ") and "organisation" in alt for alt in alts)
    assert page.count("<figcaption>") == len(measures)
    assert "Microsystems outside the limits" in page
    assert "fewer than 11 cases" in page  # the small-cell rule, in words
    files = json.loads((site / "site.json").read_text(encoding="utf-8"))["files"]
    digest = hashlib.sha256((site / "funnels.html").read_bytes()).hexdigest()
    assert files["funnels.html"]["sha256"] == digest


def test_workbooks_02_and_04_show_the_funnel(ran):
    root, _ = ran
    site = root / "outputs" / "site"
    pilots = (site / "02_select_pilots" / "02_select_pilots.html").read_text(encoding="utf-8")
    assert "Room to improve, among the teams of the same kind" in pilots
    assert "gap to best" in pilots.lower().replace("_", " ")  # the column, however headed
    spread = (site / "04_plan_spread" / "04_plan_spread.html").read_text(encoding="utf-8")
    assert "Who is furthest from the best?" in spread
    assert "gap to best" in spread.lower().replace("_", " ")


# ---- issue 20: slides and PDF beside each workbook 03 page ----------------------------------


def _deck_texts(path) -> list[str]:
    from pptx import Presentation

    return [
        " ".join(" ".join(t.text for t in slide.element.xpath(".//a:t")).split())
        for slide in Presentation(str(path)).slides
    ]


def _pdf_text(path) -> str:
    from pypdf import PdfReader

    pages = PdfReader(str(path)).pages
    return " ".join(" ".join(page.extract_text() for page in pages).split())


def test_every_pptx_and_pdf_shows_the_verdicts_of_its_results(ran):
    """Issue 20: every slide deck of the site opens with python-pptx, has a title slide, one
    slide per measure and a "what next" slide, and each measure's slide and the PDF show the
    verdicts of outputs/data/results/<id>.parquet (what workbook 04 and the index read)."""
    root, _ = ran
    site = root / "outputs" / "site" / "03_analyse_tests"
    registry = pd.read_parquet(root / "outputs" / "data" / "registry.parquet")
    decks = sorted(site.glob("*.pptx"))
    assert [p.stem for p in decks] == sorted(registry["microsystem_id"])
    assert sorted(p.stem for p in site.glob("*.pdf")) == sorted(registry["microsystem_id"])
    for deck in decks:
        results = pd.read_parquet(root / "outputs" / "data" / "results" / f"{deck.stem}.parquet")
        measures = list(dict.fromkeys(results["measure_id"]))
        texts = _deck_texts(deck)
        assert len(texts) == 1 + len(measures) + 1, deck.name
        assert texts[-1].startswith("What next"), deck.name
        pdf = _pdf_text(site / f"{deck.stem}.pdf")
        for i, measure_id in enumerate(measures, start=1):
            rows = results[results["measure_id"] == measure_id]
            latest = rows.iloc[-1]
            assert texts[i].startswith(str(latest["name"])), (deck.name, i)
            assert f"Verdict: {latest['verdict']}" in texts[i], (deck.name, measure_id)
            assert f"Verdict: {latest['verdict']}" in pdf, (deck.name, measure_id)
            for row in rows.itertuples():
                if pd.notna(row.change):
                    said = f"After {row.change}: {row.verdict}"
                    assert said in texts[i] and said in pdf, (deck.name, said)


def test_the_page_and_the_index_link_the_files_and_the_manifest_and_zip_list_them(ran, tmp_path):
    import zipfile

    from qi_helpers.publish.archive import zip_site

    root, _ = ran
    site = root / "outputs" / "site"
    index = (site / "index.html").read_text(encoding="utf-8")
    index_links = set(re.findall(r'href="([^"]+)"', index))
    files = json.loads((site / "site.json").read_text(encoding="utf-8"))["files"]
    archive = zip_site(site, tmp_path / "site.zip")
    with zipfile.ZipFile(archive) as z:
        zipped = set(z.namelist())
    for page in sorted((site / "03_analyse_tests").glob("*.html")):
        text = page.read_text(encoding="utf-8")
        header = text[: text.index('<main class="qi-report"')]
        links = re.findall(r'href="([^"]+\.(?:pptx|pdf))"', header)
        assert links == [f"{page.stem}.pptx", f"{page.stem}.pdf"], page.name
        for link in links:
            href = f"03_analyse_tests/{link}"
            assert (site / href).is_file()
            assert href in index_links, href
            digest = hashlib.sha256((site / href).read_bytes()).hexdigest()
            assert files[href]["sha256"] == digest
            assert f"site/{href}" in zipped


def test_a_report_card_with_an_identifier_is_not_published(ran, tmp_path, demo_tables, capsys):
    """A patient's id in a measure name, written into NOR-PC1's files without the project's
    screen (as an edited or foreign file would be): publishing withholds both files, says so,
    and neither the page nor the index links them; the other microsystems keep theirs."""
    import qi_helpers.privacy.screen as screen_module
    from qi_helpers.changes import analyse_microsystem, load_slice, write_report_card
    from qi_helpers.project import load_project

    root = tmp_path / "project"
    shutil.copytree(ran[0], root)
    project = load_project(root)
    before = screen_module._ACTIVE_SCREEN
    screen_module.set_active_screen(None)
    try:
        data = load_slice(project, "NOR-PC1", period="week")
        patient = str(demo_tables["patients"]["patient_id"].iloc[3])
        measures = data.measures.copy()
        measures["name"] = measures["name"] + f" ({patient})"
        analysis = analyse_microsystem(
            data.cases, data.series, measures, data.pdsa, microsystem_id="NOR-PC1"
        )
        write_report_card(analysis, project)
    finally:
        screen_module.set_active_screen(before)
    capsys.readouterr()
    assert main(["publish", "--project", str(root)]) == 0
    err = capsys.readouterr().err
    site = root / "outputs" / "site"
    for suffix in (".pptx", ".pdf"):
        href = f"03_analyse_tests/NOR-PC1{suffix}"
        assert f"{href}: not published: its text holds" in err
        assert not (site / href).exists()
        files = json.loads((site / "site.json").read_text(encoding="utf-8"))["files"]
        assert href not in files
        assert href not in (site / "index.html").read_text(encoding="utf-8")
        page = (site / "03_analyse_tests" / "NOR-PC1.html").read_text(encoding="utf-8")
        assert f'href="NOR-PC1{suffix}"' not in page
        assert (site / f"03_analyse_tests/RIV-W1{suffix}").is_file()
