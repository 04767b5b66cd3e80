"""Publishing makes a page again only when what it is made from changed.

A tiny project (tests/support.py) is run once; its site is published, then published
again after nothing changed, after one report's notebook changed, after a page was edited by
hand and after a publish setting changed.
"""

from __future__ import annotations

import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
import pytest
import yaml
from support import run_tiny_project

from qi_helpers.errors import QIError
from qi_helpers.project import load_project
from qi_helpers.publish import export_jobs
from qi_helpers.publish import site as publish


@pytest.fixture(scope="module")
def ran(demo_project, tmp_path_factory) -> Path:
    """A tiny project after one run of 01, 02, 03 (x 2) and 04 (not published)."""
    base = tmp_path_factory.mktemp("reuse") / "base"
    return run_tiny_project(base, demo_project / "data" / "demo", units=2)


@pytest.fixture
def published(ran, tmp_path, monkeypatch):
    """A copy of the project with its site published once; counts the pages exported after."""
    root = tmp_path / "project"
    shutil.copytree(ran, root)
    first = publish.publish_site(load_project(root))
    exported: list[str] = []
    real = export_jobs.export_report

    def counting(notebook, html_path, **kwargs):
        exported.append(Path(html_path).name)
        return real(notebook, html_path, **kwargs)

    monkeypatch.setattr(export_jobs, "export_report", counting)
    return root, first, exported


def _pages(root: Path) -> dict[str, bytes]:
    site = root / "outputs" / "site"
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in sorted(site.rglob("*.html"))}


def test_nothing_changed_nothing_exported_and_the_same_bytes(published):
    root, first, exported = published
    before = _pages(root)
    again = publish.publish_site(load_project(root))
    assert exported == []
    assert _pages(root) == before
    assert [(p.href, p.bytes, p.redacted, p.title) for p in again.pages] == [
        (p.href, p.bytes, p.redacted, p.title) for p in first.pages
    ]


def test_only_the_page_whose_notebook_changed_is_made_again(published):
    root, _, exported = published
    before = _pages(root)
    notebooks = sorted((root / "outputs" / "notebooks" / "03_analyse_tests").glob("*.ipynb"))
    changed = notebooks[0]
    nb = nbformat.read(str(changed), as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("A note added after the run."))
    nbformat.write(nb, str(changed))
    publish.publish_site(load_project(root))
    assert exported == [changed.stem + ".html"]
    after = _pages(root)
    differ = {k for k in after if after[k] != before[k]} - {"index.html"}  # always rebuilt
    assert differ == {f"03_analyse_tests/{changed.stem}.html"}
    assert "A note added after the run." in after[f"03_analyse_tests/{changed.stem}.html"].decode()


def test_a_page_edited_by_hand_is_made_again(published):
    root, _, exported = published
    page = root / "outputs" / "site" / "02_select_pilots" / "02_select_pilots.html"
    good = page.read_bytes()
    page.write_bytes(good.replace(b"</body>", b"<p>edited</p></body>"))
    publish.publish_site(load_project(root))
    assert exported == ["02_select_pilots.html"]
    assert page.read_bytes() == good


def test_a_publish_setting_change_makes_every_page_again(published):
    root, first, exported = published
    config = root / "parameters" / "project.yaml"
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    settings["publish"]["small_cell_threshold"] = 6
    config.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    publish.publish_site(load_project(root))
    assert sorted(exported) == sorted(Path(p.href).name for p in first.pages)


def test_pages_made_on_workers_are_the_serial_build_byte_for_byte(ran, tmp_path):
    """``qi run`` hands the pages to its workers; the site is the same as one made serially."""
    root = tmp_path / "project"
    shutil.copytree(ran, root)
    project = load_project(root)
    serial = publish.publish_site(project, tmp_path / "serial")
    pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
    with pool:
        submitted: list[str] = []
        real_submit = pool.submit

        def counting_submit(fn, *args, **kwargs):
            submitted.append(args[0].html_path.name)
            return real_submit(fn, *args, **kwargs)

        pool.submit = counting_submit  # type: ignore[method-assign]
        parallel = publish.publish_site(project, tmp_path / "parallel", executor=pool, workers=2)
    assert len(submitted) == len(serial.pages) >= export_jobs.MIN_PARALLEL
    site_a, site_b = tmp_path / "serial", tmp_path / "parallel"
    files = sorted(p.relative_to(site_a).as_posix() for p in site_a.rglob("*") if p.is_file())
    assert files == sorted(
        p.relative_to(site_b).as_posix() for p in site_b.rglob("*") if p.is_file()
    )
    for rel in files:
        assert (site_a / rel).read_bytes() == (site_b / rel).read_bytes(), rel
    assert [(p.href, p.bytes, p.redacted, p.status) for p in parallel.pages] == [
        (p.href, p.bytes, p.redacted, p.status) for p in serial.pages
    ]


def test_a_worker_with_another_screen_refuses_to_export(ran, tmp_path):
    root = tmp_path / "project"
    shutil.copytree(ran, root)
    project = load_project(root)
    build_screen = project.identifier_screen()
    notebook = sorted((root / "outputs" / "notebooks").rglob("*.ipynb"))[0]
    job = export_jobs.ExportJob(notebook, tmp_path / "page.html", {"title": "t"})
    with pytest.raises(QIError, match="changed while the site was being published"):
        export_jobs._export_on_worker(job, str(root), "not-" + str(build_screen.digest))
    assert not (tmp_path / "page.html").exists()
