"""The published site of a project whose input tables were written by an attacker.

A copy of the small demo with hostile values planted in the input tables (values of our own,
one per class of weakness an attack on the site found): markup and style blocks in change and
measure names, a ``$`` pair, identifiers of other shapes (``MRN:000101``,
``s00140@trust.example``) written into PDSA results and cycle ids, an odd-shaped encounter id.
``qi run`` must succeed end to end, then every published byte is checked: no live markup (the
DOM is parsed), no identifier (by value), and, opened in Chromium with a local beacon server
listening, no request to any host and no script run.
"""

from __future__ import annotations

import http.server
import re
import threading
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    copy_project_skeleton,
    live_markup,
    need_chromium,
    parse,
)

from qi_helpers.cli import main
from qi_helpers.privacy.html import content_security_policy
from qi_helpers.privacy.screen import IdentifierScreen

pytestmark = pytest.mark.slow


class Beacon(http.server.BaseHTTPRequestHandler):
    """Records every request it gets: any request at all is a leak."""

    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - the standard library's name
        Beacon.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def beacon():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Beacon)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _patient(i: int) -> str:
    return f"MRN:{i:06d}"


def _staff(i: int) -> str:
    return f"s{i:05d}@trust.example"


def plant(tables: dict[str, pd.DataFrame], beacon: str) -> dict[str, str]:
    """Write the hostile values into the demo tables (in place); return what was planted."""
    patient = {p: _patient(int(p[1:])) for p in tables["patients"]["patient_id"]}
    staff = {s: _staff(int(s[1:])) for s in tables["staff"]["staff_id"]}
    for name, column, mapping in [
        ("patients", "patient_id", patient),
        ("activities", "patient_id", patient),
        ("measure_events", "patient_id", patient),
        ("staff", "staff_id", staff),
        ("activities", "staff_id", staff),
        ("measure_events", "staff_id", staff),
        ("readiness", "staff_id", staff),
    ]:
        frame = tables[name]
        frame[column] = frame[column].map(lambda v, m=mapping: m.get(v, v))
    tables["activities"].loc[7, "encounter_id"] = "ENC-77/1"

    change = tables["pdsa"].loc[tables["pdsa"]["microsystem_id"] == "NOR-PC1", "change"].iloc[0]
    hostile_change = (
        'Recall costs $5 to $10 <img src="data:image/png;base64,AA" alt="qi-style-block-0-qi">'
        " <img src=x onerror=\"document.title='PWNED'\">\n\n"
        "<style>\" onerror=\"document.title='PWNED'</style><style>body{display:none}</style>"
    )
    for name in ("pdsa", "adoption", "drivers"):  # a change idea is named as its cycles name it
        tables[name]["change"] = tables[name]["change"].replace(change, hostile_change)
    pdsa = tables["pdsa"]
    row = pdsa.index[pdsa["microsystem_id"] == "NOR-PC1"][0]
    pdsa.loc[row, "cycle_id"] = f"NOR-PC1-01-{_patient(103)}"
    pdsa.loc[row, "result"] = (
        f"Phoned {_patient(101)} and ({_patient(102).replace(':', '')}); "
        f"nurse {_staff(140)} followed up."
    )
    measures = tables["measures"]
    measures.loc[0, "name"] = (
        f"HbA1c <style>body{{background:u\\72l({beacon}/css)}}</style>"
        f"<img src={beacon}/img> $x^2$ tested"
    )
    measures.loc[1, "unit"] = f"<script>fetch('{beacon}/js')</script>min"
    return {"change": hostile_change, "measure": measures.loc[0, "name"]}


@pytest.fixture(scope="module")
def hostile_site(demo_tables, tmp_path_factory, beacon):
    from qi_helpers.demo.health_system import write_demo

    tables = {k: v.copy() for k, v in demo_tables.items()}
    planted = plant(tables, beacon)
    root = copy_project_skeleton(tmp_path_factory.mktemp("hostile") / "project")
    write_demo(tables, root / "data" / "demo")
    code = main(["run", "--project", str(root), "--jobs", "2", "--quiet"])
    assert code == 0, "qi run failed on the hostile project"
    site = root / "outputs" / "site"
    assert main(["publish", "--project", str(root), "--zip"]) == 0
    screen = IdentifierScreen.from_tables(tables)
    return root, site, tables, planted, screen


def _report_text(data: bytes, suffix: str) -> str:
    """The text a reader of a slide deck or PDF sees (issue 20's report cards)."""
    from io import BytesIO

    if suffix == ".pptx":
        from pptx import Presentation

        deck = Presentation(BytesIO(data))
        parts = [s for s in deck.slides] + [s.notes_slide for s in deck.slides if s.has_notes_slide]
        texts = [t.text for part in parts for t in part.element.xpath(".//a:t")]
        texts += [e.get("descr", "") for part in parts for e in part.element.xpath(".//p:cNvPr")]
        return "\n".join(texts + [str(deck.core_properties.title), deck.core_properties.subject])
    from pypdf import PdfReader

    reader = PdfReader(BytesIO(data))
    meta = [str(v) for v in (reader.metadata or {}).values()]
    return "\n".join(meta + [page.extract_text() for page in reader.pages])


def _published_files(site: Path) -> dict[str, str]:
    """Every text file of the site, the text of every slide deck and PDF, and every member of
    its zip, by name."""
    files = {}
    for path in sorted(site.rglob("*")):
        if path.is_file() and path.suffix in (".html", ".json", ".txt", ".css", ".js", ".csv"):
            files[str(path.relative_to(site))] = path.read_text(encoding="utf-8", errors="replace")
        elif path.is_file() and path.suffix in (".pptx", ".pdf"):
            files[str(path.relative_to(site))] = _report_text(path.read_bytes(), path.suffix)
    for archive in sorted(site.parent.glob("*.zip")) + sorted(site.rglob("*.zip")):
        with zipfile.ZipFile(archive) as z:
            for member in z.namelist():
                data = z.read(member)
                suffix = Path(member).suffix
                files[f"{archive.name}:{member}"] = (
                    _report_text(data, suffix)
                    if suffix in (".pptx", ".pdf")
                    else data.decode("utf-8", "replace")
                )
    return files


# Not text a reader sees: inline images (pixels) and the template's stylesheet, whose colours
# (``#003087``) look like the digits of this project's patient ids.
_NOT_TEXT = re.compile(
    r"data:image/(?!svg)[A-Za-z0-9.+-]+;base64,[A-Za-z0-9+/=]+|<style>.*?</style>", re.DOTALL
)


# SHA-256 digests (site.json, the provenance footer): random hex, not text from data.
_HASH = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{12,64}(?![0-9A-Za-z])")


def _svg_text(text: str) -> str:
    """The page with its inline SVG images decoded: their labels are published text too."""
    import base64

    return re.sub(
        r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)",
        lambda m: base64.b64decode(m.group(1)).decode("utf-8", "replace"),
        text,
    )


def test_the_hostile_project_runs_and_publishes(hostile_site):
    _, site, *_ = hostile_site
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 8
    assert not list(site.rglob("*.failed.html"))
    for path in pages:
        assert 'id="error"' not in path.read_text(encoding="utf-8"), path.name


def test_no_page_has_live_markup(hostile_site):
    _, site, *_ = hostile_site
    for path in sorted(site.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        head, _, body = text.partition("</head>")
        dom = parse(body)
        problems = [p for p in live_markup(dom) if p != "<script>" or path.name != "index.html"]
        assert not problems, f"{path.name}: {problems[:5]}"
        # the head holds the template's one style block, allowed by the page's policy by hash
        styles = re.findall(r"<style>(.*?)</style>", head, flags=re.DOTALL)
        scripts = re.findall(r"<script>(.*?)</script>", body, flags=re.DOTALL)
        assert len(styles) == 1 and text.count("<style") == 1, path.name
        policies = [
            attrs.get("content")
            for tag, attrs in parse(head).elements
            if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"
        ]
        expected = content_security_policy(styles=styles, scripts=scripts)
        assert policies == [expected], f"{path.name}: policy {policies}"


def test_hostile_names_show_as_text(hostile_site):
    _, site, _, planted, _ = hostile_site
    page = next((site / "03_analyse_tests").glob("NOR-PC1*.html")).read_text(encoding="utf-8")
    dom = parse(page.partition("</head>")[2])
    text = " ".join("".join(dom.text).split())
    assert "costs $5 to $10" in text  # the `$` pair shows as itself
    assert "onerror=" in text  # the tag is shown as text, not made an element


def test_no_identifier_is_published(hostile_site):
    _, site, tables, _, screen = hostile_site
    files = _published_files(site)
    assert any(".zip:" in n and n.endswith("index.html") for n in files), "no site.zip checked"
    # NOR-PC1's slides and PDF, whose PDSA log holds the planted ids, are published and read
    assert {"03_analyse_tests/NOR-PC1.pptx", "03_analyse_tests/NOR-PC1.pdf"} <= set(files)
    assert any(n.endswith("NOR-PC1.pdf") and ".zip:" in n for n in files)
    planted = ["MRN:000101", "000102", "MRN:000103", "s00140@trust.example", "s00140", "ENC-77/1"]
    planted += ["s0014", "MRN:00010"]  # an id cut short by a table's "..." is still a leak
    for name, text in files.items():
        text = _HASH.sub("", _svg_text(_NOT_TEXT.sub("", text)))
        for value in planted:
            assert value.lower() not in text.lower(), f"{name} shows {value}"
        found = screen.find(text)
        assert not found, f"{name} shows identifiers {found[:3]}"


def test_chromium_makes_no_request_and_runs_no_script(hostile_site, beacon):
    need_chromium()
    from playwright.sync_api import sync_playwright

    _, site, *_ = hostile_site
    Beacon.hits.clear()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for path in sorted(site.rglob("*.html")):
                page = browser.new_page()
                dialogs: list[str] = []
                page.on("dialog", lambda d, seen=dialogs: (seen.append(d.message), d.dismiss()))
                page.goto(path.as_uri(), wait_until="load")
                page.wait_for_timeout(200)
                assert "PWNED" not in page.title(), path.name
                assert not dialogs, f"{path.name} opened {dialogs}"
                hidden = page.evaluate("getComputedStyle(document.body).display")
                assert hidden != "none", f"{path.name}: a style from data blanked the page"
                # the template's own stylesheet applies (its hash in the policy is right)
                rule = page.evaluate(
                    "getComputedStyle(document.querySelector('header')).borderBottomStyle"
                )
                assert rule == "solid", f"{path.name}: the page's own CSS was blocked"
                page.close()
        finally:
            browser.close()
    assert Beacon.hits == [], f"the pages requested {Beacon.hits[:5]} from the beacon"
