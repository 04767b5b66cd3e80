"""The report card (issue 20): slides and a printable PDF from workbook 03's analysis.

Each file is opened as a reader would open it (python-pptx for the slides, pypdf for the PDF's
text) and checked against the verdict table workbook 03 computed (``analysis.verdicts``, the
table ``write_results`` saves), not against the report card's own content. The privacy checks
plant a patient identifier of the demo's own patients table in a measure name and in a PDSA note.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pandas as pd
import pytest

import qi_helpers.privacy.screen as screen_module
from qi_helpers.changes import analyse_microsystem, assign_microsystems, measure_series
from qi_helpers.changes.report_card import advice_lines, write_report_card
from qi_helpers.privacy.screen import REDACTED, IdentifierScreen, set_active_screen
from qi_helpers.publish.report_files import report_file_text, report_identifiers

pptx = pytest.importorskip("pptx")
pypdf = pytest.importorskip("pypdf")

MICROSYSTEM = "RIV-W1"  # three measures, an adopted change and a balancing measure that worsened


def truth_membership(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Each microsystem's work areas, from the planted truth (as in test_changes.py)."""
    micro = tables["truth_microsystems"]
    loc = micro.assign(location=micro["locations"].str.split(";")).explode("location")
    return {"locations": loc[["location", "microsystem_id"]].assign(share=1.0)}


def _analyse(tables, microsystem_id=MICROSYSTEM):
    cases = assign_microsystems(tables["measure_events"], truth_membership(tables))
    series = measure_series(cases, tables["measures"], tables["observations"])
    return analyse_microsystem(
        cases, series, tables["measures"], tables["pdsa"], microsystem_id=microsystem_id
    )


@pytest.fixture
def no_screen():
    """No identifier screen in this process while the test runs (restored after)."""
    before = screen_module._ACTIVE_SCREEN
    set_active_screen(None)
    yield
    set_active_screen(before)


@pytest.fixture(scope="module")
def written(demo_tables, tmp_path_factory):
    before = screen_module._ACTIVE_SCREEN
    set_active_screen(None)
    try:
        analysis = _analyse(demo_tables)
        folder = tmp_path_factory.mktemp("cards")
        paths = write_report_card(analysis, folder)
    finally:
        set_active_screen(before)
    return analysis, paths


def _slide_texts(path) -> list[str]:
    deck = pptx.Presentation(str(path))
    texts = []
    for slide in deck.slides:
        words = [t.text for t in slide.element.xpath(".//a:t")]
        texts.append(" ".join(" ".join(words).split()))
    return texts


def _pdf_text(path) -> str:
    reader = pypdf.PdfReader(str(path))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def test_the_files_are_named_after_the_microsystem(written):
    _, paths = written
    assert [p.name for p in paths] == [f"{MICROSYSTEM}.pptx", f"{MICROSYSTEM}.pdf"]


def test_a_title_slide_one_slide_per_measure_and_a_what_next_slide(written):
    analysis, (deck, _) = written
    verdicts = analysis.verdicts
    measures = list(dict.fromkeys(verdicts["measure_id"]))
    slides = pptx.Presentation(str(deck)).slides
    assert len(slides) == 1 + len(measures) + 1 == 5
    titles = [s.shapes.title.text for s in slides]
    names = verdicts.drop_duplicates("measure_id").set_index("measure_id")["name"]
    assert titles[0] == f"Tests of change: {MICROSYSTEM}"
    assert titles[1:-1] == [names[m] for m in measures]
    assert titles[-1] == "What next"
    # every chart has its alternative text
    for slide in list(slides)[1:-1]:
        pictures = slide.element.xpath(".//p:pic/p:nvPicPr/p:cNvPr")
        assert len(pictures) == 1 and pictures[0].get("descr").startswith("Run or control")


def test_each_measure_slide_shows_the_verdict_of_each_of_its_changes(written):
    analysis, (deck, _) = written
    verdicts = analysis.verdicts
    texts = _slide_texts(deck)
    measures = list(dict.fromkeys(verdicts["measure_id"]))
    for i, measure_id in enumerate(measures, start=1):
        rows = verdicts[verdicts["measure_id"] == measure_id]
        last = rows.iloc[-1]
        assert f"Verdict: {last['verdict']}" in texts[i], texts[i]
        for row in rows.itertuples():
            if pd.notna(row.change):
                assert f"After {row.change}: {row.verdict}" in texts[i]
    # the title slide lists every measure with its latest verdict
    for measure_id in measures:
        last = verdicts[verdicts["measure_id"] == measure_id].iloc[-1]
        assert f"{last['name']}: {last['verdict']}" in texts[0]


def test_the_pdf_shows_every_measure_and_verdict_and_every_pdsa_cycle(written, demo_tables):
    analysis, (_, pdf) = written
    text = _pdf_text(pdf)
    for row in analysis.verdicts.itertuples():
        assert row.name in text
        latest = analysis.verdicts[analysis.verdicts["measure_id"] == row.measure_id].iloc[-1]
        assert f"Verdict: {latest['verdict']}" in text
        if pd.notna(row.change):
            assert f"After {row.change}: {row.verdict}" in text
    cycles = demo_tables["pdsa"].query("microsystem_id == @MICROSYSTEM")["cycle_id"]
    assert len(cycles) >= 1
    for cycle in cycles:
        assert cycle in text
    assert "What next" in text


def test_the_balancing_measure_that_worsened_is_in_what_next(written):
    analysis, (deck, pdf) = written
    worse = analysis.verdicts[analysis.verdicts["balancing_flag"]]
    assert len(worse) == 1  # planted in the demo: criteria-led discharge brings patients back
    name = worse["name"].iloc[0]
    last = _slide_texts(deck)[-1]
    assert f"{name} (balancing measure for" in last and "worsened" in last
    assert f"{name} (balancing measure for" in _pdf_text(pdf)


def test_the_files_are_byte_reproducible_and_not_rewritten(written, demo_tables, no_screen):
    analysis, paths = written
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    stamps = [p.stat().st_mtime_ns for p in paths]
    again = write_report_card(_analyse(demo_tables), paths[0].parent)
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in again] == digests
    assert [p.stat().st_mtime_ns for p in again] == stamps  # nothing rewritten
    # the dates inside are the data's last period, not the clock
    props = pptx.Presentation(str(paths[0])).core_properties
    last = pd.to_datetime(analysis.verdicts["last_period"]).max()
    assert props.created == props.modified == dt.datetime(last.year, last.month, last.day)
    meta = pypdf.PdfReader(str(paths[1])).metadata
    assert meta.creation_date.date() == last.date()


def _planted(tables, measure_id):
    """The demo tables with a real patient's id in a measure's name and in a PDSA note."""
    patient = str(tables["patients"]["patient_id"].iloc[5])
    planted = {k: v.copy() for k, v in tables.items()}
    measures = planted["measures"]
    at = measures.index[measures["measure_id"] == measure_id][0]
    measures.loc[at, "name"] = f"{measures.loc[at, 'name']} for {patient}"
    pdsa = planted["pdsa"]
    row = pdsa.index[pdsa["microsystem_id"] == MICROSYSTEM][0]
    pdsa.loc[row, "result"] = f"Phoned {patient} to check the leaflet was understood."
    return planted, patient


def test_a_planted_identifier_makes_both_files_fail_the_screen(
    demo_tables, written, tmp_path, no_screen
):
    planted, patient = _planted(demo_tables, written[0].verdicts["measure_id"].iloc[0])
    analysis = _analyse(planted)
    assert analysis.measures["name"].str.contains(patient).any()  # the measure is RIV-W1's
    paths = write_report_card(analysis, tmp_path)
    screen = IdentifierScreen.from_tables(demo_tables)
    for path in paths:
        assert patient in report_file_text(path), path.name
        assert patient in report_identifiers(path, screen), path.name
    # the PDSA note alone is enough
    planted["measures"] = demo_tables["measures"]
    paths = write_report_card(_analyse(planted), tmp_path / "note")
    for path in paths:
        assert report_identifiers(path, screen), path.name


def test_with_the_project_screen_the_identifiers_are_removed_before_writing(
    demo_tables, written, tmp_path, no_screen
):
    planted, patient = _planted(demo_tables, written[0].verdicts["measure_id"].iloc[0])
    screen = IdentifierScreen.from_tables(demo_tables)
    set_active_screen(screen)
    paths = write_report_card(_analyse(planted), tmp_path)
    for path in paths:
        text = report_file_text(path)
        assert patient not in text and REDACTED in text, path.name
        assert report_identifiers(path, screen) == [], path.name


def test_names_from_data_show_as_themselves():
    md = (
        "**What next:**\n\n- **A\\*B &lt;x&gt; \\$5** improved after *Recall \\(v2\\)*: adopt.\n"
        "  - Not every patient group shared it (age\\_band 65\\+): talk with them.\n\n"
        "*Intervals assume independent weeks.*"
    )
    items, note = advice_lines(md)
    assert items == [
        "A*B <x> $5 improved after Recall (v2): adopt.",
        "  Not every patient group shared it (age_band 65+): talk with them.",
    ]
    assert note == "Intervals assume independent weeks."


def test_control_characters_in_names_do_not_break_the_files(demo_tables, tmp_path, no_screen):
    tables = {k: v.copy() for k, v in demo_tables.items()}
    tables["measures"].loc[:, "name"] = tables["measures"]["name"] + " \x08\x1b[31m\x0c"
    paths = write_report_card(_analyse(tables), tmp_path)
    assert len(pptx.Presentation(str(paths[0])).slides) == 5
    assert "[31m" in _pdf_text(paths[1])


def test_names_beyond_latin_1_are_printed_in_a_unicode_font(demo_tables, tmp_path, no_screen):
    """Latin-1 text is set in Helvetica (a standard PDF font); other text in the DejaVu Sans
    embedded from matplotlib, and it reads back as written."""
    tables = {k: v.copy() for k, v in demo_tables.items()}
    tables["measures"].loc[:, "name"] = tables["measures"]["name"] + " (≥ 65 → Ωmega)"
    plain, unicode = (
        write_report_card(_analyse(demo_tables), tmp_path / "plain")[1],
        write_report_card(_analyse(tables), tmp_path / "unicode")[1],
    )
    assert "≥ 65 → Ωmega" in _pdf_text(unicode)
    assert any("DejaVuSans" in name for name in _font_names(unicode))
    assert _font_names(plain) <= {"/Helvetica", "/Helvetica-Bold", "/Helvetica-Oblique"}


def _font_names(path) -> set[str]:
    names = set()
    for page in pypdf.PdfReader(str(path)).pages:
        for ref in page["/Resources"]["/Font"].values():
            names.add(str(ref.get_object()["/BaseFont"]))
    return names


def test_a_fresh_process_writes_the_same_bytes(written, tmp_path):
    """No clock, random tag or process state gets into the files: another Python process
    writing the same analysis gives the same bytes (python-pptx's zip dates, the PDF's dates,
    file id and font subset are all fixed)."""
    import pickle
    import subprocess
    import sys

    analysis, paths = written
    (tmp_path / "analysis.pkl").write_bytes(pickle.dumps(analysis))
    script = (
        "import pickle, sys, matplotlib; matplotlib.use('Agg');"
        "from qi_helpers.changes import write_report_card;"
        "a = pickle.loads(open(sys.argv[1], 'rb').read()); write_report_card(a, sys.argv[2])"
    )
    out = tmp_path / "fresh"
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "analysis.pkl"), str(out)], check=True
    )
    for path in paths:
        assert (out / path.name).read_bytes() == path.read_bytes(), path.name
