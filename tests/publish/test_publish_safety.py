"""`qi publish --out` only ever writes, cleans and zips a site folder.

The site folder must be new, empty, or hold a site published before, recognised by its manifest
(``site.json``, every file the site wrote with its sha256). Anything else (the project folder,
``--out .``, a folder with other files) is refused with an error naming the folder, before
anything is written; cleaning deletes only files the previous manifest lists; the zip holds the
manifest's files and the manifest, nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from support import make_tiny_project

from qi_helpers.cli import main
from qi_helpers.errors import QIError
from qi_helpers.project import load_project
from qi_helpers.publish import export_jobs
from qi_helpers.publish import site as publish

MANIFEST = "site.json"


def _notebook(title: str, text: str) -> nbformat.NotebookNode:
    """An executed notebook as papermill leaves it: a title and one output."""
    cell = new_code_cell("print(text)", execution_count=1)
    cell.outputs = [new_output("stream", name="stdout", text=text)]
    return new_notebook(cells=[new_markdown_cell(f"# {title}"), cell])


def _executed(root: Path, workbook: str, name: str) -> Path:
    path = root / "outputs" / "notebooks" / workbook / f"{name}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(_notebook(name, f"report of {name}"), str(path))
    return path


@pytest.fixture
def project(demo_project, tmp_path) -> Path:
    """A tiny project with executed notebooks (01 and three of 03), never run: fast."""
    root = make_tiny_project(tmp_path / "project", demo_project / "data" / "demo")
    _executed(root, "01_identify_microsystems", "01_identify_microsystems")
    for name in ("MS-1", "MS-2", "MS-3"):
        _executed(root, "03_analyse_tests", name)
    return root


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``folder`` with its size and modification time."""
    return {
        p.relative_to(folder).as_posix(): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


def _site_files(site: Path) -> dict[str, str]:
    """Every file in a site folder but its manifest, with its sha256."""
    return {
        p.relative_to(site).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(site.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _listed(site: Path) -> dict[str, str]:
    manifest = json.loads((site / MANIFEST).read_text(encoding="utf-8"))
    return {rel: entry["sha256"] for rel, entry in manifest["files"].items()}


# --- folders that are not a site are refused, before anything is written -----------------------


def test_publishing_into_the_project_folder_with_zip_is_refused(project, capsys):
    before = _tree(project)
    parent = _tree(project.parent)
    code = main(["publish", "--project", str(project), "--out", str(project), "--zip"])
    err = capsys.readouterr().err
    assert code == 1
    assert str(project) in err and "refusing" in err and "project folder" in err
    assert _tree(project) == before  # no page, no manifest, nothing
    assert _tree(project.parent) == parent  # and no project.zip beside it
    assert not project.with_name(project.name + ".zip").exists()


def test_out_dot_in_the_project_folder_is_refused(project, capsys, monkeypatch):
    monkeypatch.chdir(project)
    before = _tree(project)
    code = main(["publish", "--project", str(project), "--out", "."])
    assert code == 1
    assert "refusing" in capsys.readouterr().err
    assert _tree(project) == before


@pytest.mark.parametrize(
    "where",
    ["outputs", "outputs/data", "outputs/notebooks", "data", "parameters", "a folder of notes"],
)
def test_folders_that_hold_other_files_are_refused(project, where):
    folder = project / where
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("not a site\n", encoding="utf-8")
    before = _tree(project)
    with pytest.raises(QIError, match="refusing") as raised:
        publish.publish_site(load_project(project), folder, archive=True)
    assert str(folder) in str(raised.value)
    assert _tree(project) == before


def test_a_file_and_a_foreign_manifest_are_refused(project, tmp_path):
    a_file = tmp_path / "site.html"
    a_file.write_text("mine\n", encoding="utf-8")
    with pytest.raises(QIError, match="not a folder"):
        publish.publish_site(load_project(project), a_file)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / MANIFEST).write_text('{"name": "some other tool"}', encoding="utf-8")
    with pytest.raises(QIError, match="not a site manifest"):
        publish.publish_site(load_project(project), foreign)
    assert sorted(p.name for p in foreign.iterdir()) == [MANIFEST]


def test_a_manifest_that_lists_files_outside_the_site_is_not_trusted(project, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n", encoding="utf-8")
    site = tmp_path / "site"
    site.mkdir()
    files = {"../victim.txt": {"sha256": ""}, str(victim): {"sha256": ""}}
    manifest = {"format": "qi-site/1", "complete": True, "files": files}
    (site / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(QIError, match="refusing"):
        publish.publish_site(load_project(project), site)
    assert victim.read_text(encoding="utf-8") == "keep me\n"


def test_an_unrelated_file_where_the_zip_goes_is_not_replaced(project, tmp_path):
    site = tmp_path / "shared" / "site"
    site.parent.mkdir()
    other = site.with_name("site.zip")
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("minutes/2024.docx", b"board minutes")
    before = other.read_bytes()
    with pytest.raises(QIError, match="refusing to replace"):
        publish.publish_site(load_project(project), site, archive=True)
    assert other.read_bytes() == before
    assert not site.exists()


# --- new, empty and earlier site folders are used, through the manifest ------------------------


@pytest.mark.parametrize("kind", ["new", "empty"])
def test_a_new_or_empty_folder_gets_the_site_and_its_manifest(project, tmp_path, kind):
    site = tmp_path / "shared" / "site"
    if kind == "empty":
        site.mkdir(parents=True)
    report = publish.publish_site(load_project(project), site)
    assert report.index == (site / "index.html").resolve()
    listed = _listed(site)
    assert listed == _site_files(site)  # every file the site wrote, with its sha256
    assert "index.html" in listed and "03_analyse_tests/MS-1.html" in listed
    manifest = json.loads((site / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["complete"] is True
    assert not list(site.rglob(".*"))  # no hidden cache beside the manifest
    # publishing again into the site it made is accepted and gives the same bytes
    publish.publish_site(load_project(project), site)
    assert _listed(site) == listed


def test_the_zip_holds_exactly_the_manifest_files_and_the_manifest(project, tmp_path, capsys):
    site = tmp_path / "shared" / "site"
    assert main(["publish", "--project", str(project), "--out", str(site)]) == 0
    # Someone leaves other files in the site folder: they are neither zipped nor deleted.
    (site / "secret.csv").write_text("patient_id\nP000101\n", encoding="utf-8")
    (site / "03_analyse_tests" / "draft.html").write_text("<p>draft</p>", encoding="utf-8")
    assert main(["publish", "--project", str(project), "--out", str(site), "--zip"]) == 0
    archive = site.with_name("site.zip")
    assert f"Archive: {archive}" in capsys.readouterr().out
    with zipfile.ZipFile(archive) as zf:
        names = sorted(zf.namelist())
        listed = _listed(site)
        assert names == sorted(f"site/{rel}" for rel in [*listed, MANIFEST])
        for rel, digest in listed.items():
            assert hashlib.sha256(zf.read(f"site/{rel}")).hexdigest() == digest
    assert (site / "secret.csv").is_file() and (site / "03_analyse_tests" / "draft.html").is_file()
    first = archive.read_bytes()
    assert main(["publish", "--project", str(project), "--out", str(site), "--zip"]) == 0
    assert archive.read_bytes() == first


def test_cleaning_deletes_only_files_of_the_previous_manifest(project, tmp_path):
    site = tmp_path / "site"
    publish.publish_site(load_project(project), site)
    keep = site / "03_analyse_tests" / "kept-by-hand.html"
    keep.write_text("<p>mine</p>", encoding="utf-8")
    (project / "outputs" / "notebooks" / "03_analyse_tests" / "MS-3.ipynb").unlink()
    publish.publish_site(load_project(project), site)
    assert not (site / "03_analyse_tests" / "MS-3.html").exists()  # a page of the old site
    assert keep.read_text(encoding="utf-8") == "<p>mine</p>"  # never listed: never deleted
    assert "03_analyse_tests/MS-3.html" not in _listed(site)


def test_a_page_that_became_a_link_out_of_the_site_is_not_followed(project, tmp_path):
    site = tmp_path / "site"
    publish.publish_site(load_project(project), site)
    outside = tmp_path / "outside.html"
    outside.write_text("not the site's\n", encoding="utf-8")
    page = site / "03_analyse_tests" / "MS-3.html"
    page.unlink()
    page.symlink_to(outside)
    (project / "outputs" / "notebooks" / "03_analyse_tests" / "MS-3.ipynb").unlink()
    publish.publish_site(load_project(project), site)
    assert outside.read_text(encoding="utf-8") == "not the site's\n"


def test_a_build_stopped_half_way_leaves_a_site_that_is_taken_up_again(
    project, tmp_path, monkeypatch
):
    site = tmp_path / "site"
    real = export_jobs.export_report
    calls = []

    def stop_after_one(notebook, html_path, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(notebook)
        return real(notebook, html_path, **kwargs)

    monkeypatch.setattr(export_jobs, "export_report", stop_after_one)
    with pytest.raises(KeyboardInterrupt):
        publish.publish_site(load_project(project), site)
    written = _site_files(site)
    assert written and set(written) <= set(_listed(site))  # every file written is listed
    with pytest.raises(QIError, match="no finished site"):
        publish.zip_site(site)
    monkeypatch.setattr(export_jobs, "export_report", real)
    report = publish.publish_site(load_project(project), site, archive=True)
    assert report.archive is not None and _listed(site) == _site_files(site)


def test_a_site_of_a_version_without_manifest_is_taken_over(project, tmp_path):
    site = tmp_path / "site"
    (site / "03_analyse_tests").mkdir(parents=True)
    (site / "index.html").write_text("<p>old index</p>", encoding="utf-8")
    (site / ".pages.json").write_text("{}", encoding="utf-8")
    (site / "03_analyse_tests" / "GONE-1.html").write_text("<p>old</p>", encoding="utf-8")
    publish.publish_site(load_project(project), site)
    assert not (site / "03_analyse_tests" / "GONE-1.html").exists()
    assert not (site / ".pages.json").exists()
    assert _listed(site) == _site_files(site)


def test_a_changed_file_is_not_zipped(project, tmp_path):
    site = tmp_path / "site"
    publish.publish_site(load_project(project), site)
    (site / "index.html").write_text("<p>edited after publishing</p>", encoding="utf-8")
    with pytest.raises(QIError, match="changed since"):
        publish.zip_site(site)
    assert not site.with_name("site.zip").exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".site.zip")]


def test_a_folder_with_only_desktop_files_counts_as_empty(project, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    report = publish.publish_site(load_project(project), site, archive=True)
    assert (site / ".DS_Store").is_file() and ".DS_Store" not in _listed(site)
    with zipfile.ZipFile(report.archive) as zf:
        assert "site/.DS_Store" not in zf.namelist()
