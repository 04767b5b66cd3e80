"""Publishing: crafted executed notebooks and outputs, built into a site in a temporary folder.

No workbook is run here (fast); tests/publish/test_site_browser.py publishes the real demo run.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import (
    new_code_cell,
    new_markdown_cell,
    new_notebook,
    new_output,
)

from qi_helpers.cli import main
from qi_helpers.errors import ConfigError, PrivacyError
from qi_helpers.privacy.names import safe_filename
from qi_helpers.project import load_project
from qi_helpers.publish.pages import export_report
from qi_helpers.publish.site import publish_site

SCRIPT_NAME = "<script>alert(1)</script>"
IMG_NAME = '"><img src=x onerror=alert(1)>'
TRAVERSAL_ID = "../../etc/x"

PROJECT_YAML = """
project:
  name: Crafted
  organisation: "Crafted Health <b>Trust</b>"
data:
  tables:
    patients: {path: data/patients.csv}
    activities: {path: data/activities.csv}
    staff: {path: data/staff.csv}
    measures: {path: data/measures.csv}
outputs: outputs
publish:
  show_staff: false
  small_cell_threshold: 11
"""


def _notebook(ms_id: str | None, cells: list) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    parameters = {"project_root": "/somewhere/private"}
    if ms_id is not None:
        parameters["microsystem_id"] = ms_id
    nb.metadata["papermill"] = {"parameters": parameters}
    return nb


def _html_table(names: list[str]) -> str:
    frame = pd.DataFrame({"name": names, "patients": [12, 40][: len(names)]})
    return frame.to_html()


def _code(outputs: list) -> nbformat.NotebookNode:
    cell = new_code_cell("x = 1")
    cell.outputs = outputs
    return cell


def make_project(root: Path) -> Path:
    """A small project with executed notebooks that carry identifiers, hostile names and
    remote references, and the outputs the index reads."""
    (root / "parameters").mkdir(parents=True)
    (root / "parameters" / "project.yaml").write_text(PROJECT_YAML, encoding="utf-8")
    (root / "workbooks").mkdir()
    data = root / "data"
    data.mkdir()
    pd.DataFrame({"patient_id": ["P000101", "P000102", "P000103"]}).to_csv(
        data / "patients.csv", index=False
    )
    pd.DataFrame(
        {
            "timestamp": ["2024-01-01T08:00:00", "2025-06-30T09:00:00"],
            "patient_id": ["P000101", "P000102"],
            "staff_id": ["S00001", "S00002"],
            "activity": ["consultation", "consultation"],
            "location": [IMG_NAME, SCRIPT_NAME],
            "encounter_id": ["E00000001", "E00000002"],
        }
    ).to_csv(data / "activities.csv", index=False)
    pd.DataFrame({"staff_id": ["S00001", "S00002"], "role": ["GP", "nurse"]}).to_csv(
        data / "staff.csv", index=False
    )
    pd.DataFrame(
        {"measure_id": ["m1", "m2"], "name": ["Waiting days", "Recalled"], "unit": ["days", "%"]}
    ).to_csv(data / "measures.csv", index=False)

    out = root / "outputs"
    results = out / "data" / "results"
    results.mkdir(parents=True)
    ids = ["GOOD-1", SCRIPT_NAME, IMG_NAME, TRAVERSAL_ID, "BROKEN-1"]
    pd.DataFrame(
        {
            "microsystem_id": ids,
            "name": ["Good team", SCRIPT_NAME, IMG_NAME, "Traversal team", "Broken team"],
            "kind": ["primary_care", "inpatient_ward", "laboratory", "primary_care", "laboratory"],
            "site": ["North", SCRIPT_NAME, IMG_NAME, "South", "North"],
        }
    ).to_parquet(out / "data" / "registry.parquet")
    pd.DataFrame({"microsystem_id": ["GOOD-1", IMG_NAME], "selected": [True, False]}).to_parquet(
        out / "data" / "pilots.parquet"
    )
    pd.DataFrame({"microsystem_id": [SCRIPT_NAME], "change": ["Recall"], "wave": [1]}).to_parquet(
        out / "data" / "spread_plan.parquet"
    )
    pd.DataFrame(
        {
            "microsystem_id": ["GOOD-1", "GOOD-1"],
            "measure_id": ["m1", "m2"],
            "name": ["Waiting days", "Recalled"],
            "verdict": ["improved", "no signal yet"],
            "last_period": pd.to_datetime(["2025-06-23", "2025-06-23"]),
            "last_value": [6.5, 81.2],
            "variation_icon": ["improvement_low", "common_cause"],
            "assurance_icon": ["consistent_pass", None],
        }
    ).to_parquet(results / "GOOD-1.parquet")
    # A result without the icon columns (an older run): the index shows "no badge".
    pd.DataFrame(
        {"microsystem_id": ["BROKEN-1"], "measure_id": ["m1"], "name": ["Waiting days"]}
    ).to_parquet(results / "BROKEN-1.parquet")

    nbs = out / "notebooks"
    for folder in ("01_identify_microsystems", "03_analyse_tests"):
        (nbs / folder).mkdir(parents=True)
    leaky = _notebook(
        None,
        [
            new_markdown_cell("# 01 Identify microsystems\n\nThe teams.\n"),
            _code(
                [new_output("stream", name="stdout", text="Longest wait: P000102 (E00000002)\n")]
            ),
            _code([new_output("stream", name="stderr", text="DeprecationWarning: S00001\n")]),
            _code(
                [
                    new_output(
                        "execute_result",
                        data={
                            "text/html": _html_table([SCRIPT_NAME, "P000103"]),
                            "text/plain": "table",
                        },
                        execution_count=1,
                    )
                ]
            ),
            _code(
                [
                    new_output(
                        "display_data",
                        data={
                            "text/html": '<script src="https://cdn.example/require.js"></script>'
                            '<link rel="stylesheet" href="https://fonts.example/f.css">'
                            '<img src="https://cdn.example/logo.png">',
                            "application/javascript": "fetch('https://cdn.example/x')",
                            "application/vnd.jupyter.widget-view+json": {"model_id": "abc"},
                            "text/plain": "widget",
                        },
                    )
                ]
            ),
            _code(
                [
                    new_output(
                        "display_data",
                        data={
                            "text/markdown": f"**{SCRIPT_NAME}** improved; "
                            "![x](https://cdn.example/chart.png)",
                            "text/plain": "md",
                        },
                    )
                ]
            ),
        ],
    )
    nbformat.write(leaky, str(nbs / "01_identify_microsystems" / "01_identify_microsystems.ipynb"))
    for ms_id, file_stem in [
        ("GOOD-1", "GOOD-1"),
        (SCRIPT_NAME, "script-page"),
        (IMG_NAME, "img-page"),
        (TRAVERSAL_ID, safe_filename(TRAVERSAL_ID)),  # as the runner names it
    ]:
        nb = _notebook(
            ms_id,
            [
                new_markdown_cell("# 03 Analyse the tests of change\n"),
                _code(
                    [
                        new_output(
                            "execute_result",
                            data={"text/html": _html_table([ms_id]), "text/plain": ms_id},
                            execution_count=1,
                        )
                    ]
                ),
            ],
        )
        nbformat.write(nb, str(nbs / "03_analyse_tests" / f"{file_stem}.ipynb"))
    failed = _notebook(
        "BROKEN-1",
        [
            new_markdown_cell("# 03 Analyse the tests of change\n"),
            _code(
                [
                    new_output(
                        "error",
                        ename="DataError",
                        evalue="no data for P000101",
                        traceback=["DataError: no data for P000101"],
                    )
                ]
            ),
        ],
    )
    nbformat.write(failed, str(nbs / "03_analyse_tests" / "BROKEN-1.failed.ipynb"))
    (out / "run.json").write_text(
        json.dumps(
            {
                "tasks": [
                    {"workbook": "01", "name": "01_identify_microsystems", "status": "ok"},
                    {"workbook": "03", "name": "BROKEN-1", "status": "failed", "error": "x"},
                ]
            }
        ),
        encoding="utf-8",
    )
    return root


@pytest.fixture(scope="module")
def crafted(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("crafted") / "project")


@pytest.fixture(scope="module")
def site(crafted, tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "site"
    report = publish_site(load_project(crafted), out)
    return out, report


def _pages(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): p.read_text(encoding="utf-8") for p in sorted(out.rglob("*.html"))
    }


def test_every_notebook_becomes_a_page_inside_the_site(site):
    out, report = site
    hrefs = sorted(p.href for p in report.pages)
    assert "01_identify_microsystems/01_identify_microsystems.html" in hrefs
    assert "03_analyse_tests/BROKEN-1.failed.html" in hrefs
    assert len(report.pages) == 6
    for page in out.rglob("*"):
        assert out.resolve() in page.resolve().parents


def test_no_identifier_is_published_and_the_removal_is_visible(site):
    out, report = site
    pages = _pages(out)
    for name, text in pages.items():
        for identifier in ("P000101", "P000102", "P000103", "E00000001", "E00000002", "S00001"):
            assert identifier not in text, f"{identifier} in {name}"
    leaky = pages["01_identify_microsystems/01_identify_microsystems.html"]
    assert "[identifier removed]" in leaky
    assert "identifiers were removed from the output above" in leaky
    assert report.redacted >= 4
    assert "DeprecationWarning" not in leaky  # stderr is not published


@pytest.mark.parametrize("name", [SCRIPT_NAME, IMG_NAME])
def test_names_from_data_are_shown_as_text(site, name):
    out, _ = site
    for page, text in _pages(out).items():
        assert name not in text, page
        assert "<script>alert" not in text, page
        assert not re.search(r"<img[^>]*onerror", text), page
    index = (out / "index.html").read_text(encoding="utf-8")
    escaped = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    escaped = escaped.replace('"', "&#34;")
    assert escaped in index
    assert "Crafted Health &lt;b&gt;Trust&lt;/b&gt;" in index


def test_pages_request_nothing_from_another_host(site):
    out, _ = site
    for name, text in _pages(out).items():
        assert not re.search(r"""(src|srcset)\s*=\s*["']?(https?:)?//""", text), name
        assert not re.search(r"<link\b", text), name
        assert "cdn.example" not in text.replace("href", ""), name
        assert "<script src" not in text, name
        if name != "index.html":
            assert "<script" not in text.replace("&lt;script", ""), name


def test_a_traversal_id_writes_inside_the_site(site):
    out, report = site
    page = next(p for p in report.pages if p.name == TRAVERSAL_ID)
    assert (out / page.href).resolve().parent == (out / "03_analyse_tests").resolve()
    assert not (out.parent / "etc").exists() and not Path("/etc/x.html").exists()


def test_export_refuses_to_write_outside(crafted, tmp_path):
    notebook = crafted / "outputs/notebooks/03_analyse_tests/GOOD-1.ipynb"
    with pytest.raises(ConfigError, match="outside"):
        export_report(
            notebook, tmp_path / "site" / ".." / ".." / "x.html", title="x", site=tmp_path / "site"
        )


def test_index_dashboard_rows_badges_status(site):
    out, _ = site
    index = (out / "index.html").read_text(encoding="utf-8")
    rows = re.findall(r"<tr data-kind.*?</tr>", index, flags=re.DOTALL)
    assert len(rows) == 5
    good = next(r for r in rows if "GOOD-1" in r)
    assert 'aria-label="Variation: improvement, lower">L<' in good
    assert 'aria-label="Assurance: consistently meets target">P<' in good
    assert 'aria-label="Variation: common cause">~<' in good
    assert "6.5 days" in good and "81.2%" in good
    assert "23 Jun 2025" in good
    assert 'href="03_analyse_tests/GOOD-1.html"' in good
    assert ">Pilot<" in good
    broken = next(r for r in rows if "BROKEN-1" in r)
    assert "No variation icon" in broken
    assert "failed" in broken and 'href="03_analyse_tests/BROKEN-1.failed.html#error"' in broken
    adopter = next(r for r in rows if "&lt;script&gt;alert(1)&lt;/script&gt;" in r)
    assert "Adopter, wave 1" in adopter
    for link in ("01_identify_microsystems/01_identify_microsystems.html",):
        assert f'href="{link}"' in index


def test_failed_report_shows_the_error_with_an_anchor(site):
    out, _ = site
    text = (out / "03_analyse_tests" / "BROKEN-1.failed.html").read_text(encoding="utf-8")
    assert 'id="error"' in text and "FAILED" in text
    assert "DataError" in text


def test_report_header_and_provenance(site):
    out, _ = site
    text = (out / "03_analyse_tests" / "GOOD-1.html").read_text(encoding="utf-8")
    assert "Tests of change: Good team" in text
    assert "Data: 1 Jan 2024 to 23 Jun 2025" in text
    assert "qi_helpers 0.1.0" in text
    assert "microsystem_id = GOOD-1" in text
    assert "/somewhere/private" not in text  # local paths are not shown
    assert re.search(r"patients [0-9a-f]{12}", text)


def test_same_inputs_give_the_same_bytes(crafted, site, tmp_path):
    out, _ = site
    again = tmp_path / "again"
    publish_site(load_project(crafted), again)
    assert _pages(out) == _pages(again)


def test_refuse_policy_stops_publishing(crafted, tmp_path):
    project = load_project(crafted, overrides={"publish": {"on_identifier": "refuse"}})
    with pytest.raises(PrivacyError, match="identifier"):
        publish_site(project, tmp_path / "site")


def test_cli_publish_with_zip(crafted, tmp_path, capsys):
    out = tmp_path / "shared" / "site"
    code = main(["publish", "--project", str(crafted), "--out", str(out), "--zip"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Published 6 reports" in printed and str(out / "index.html") in printed
    archive = out.with_name("site.zip")
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
    assert "site/index.html" in names and "site/03_analyse_tests/GOOD-1.html" in names
    first = archive.read_bytes()
    main(["publish", "--project", str(crafted), "--out", str(out), "--zip"])
    assert archive.read_bytes() == first
