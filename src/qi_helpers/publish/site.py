"""Publish executed notebooks as a self-contained, offline, privacy-safe HTML site.

Each executed notebook becomes one page (:func:`~qi_helpers.publish.pages.export_report`): code
and prompts hidden, no script, font or image from another host, a header with the microsystem
and the data period, and a provenance footer (package version, git commit, parameters, content
hashes of the input tables). Before a notebook is converted, its outputs go through a privacy
pass: identifiers of patients, encounters and (unless ``publish.show_staff``) staff, taken from
the configured input tables themselves, are removed with a visible note, and HTML that came from
data is sanitised. The index page is a dashboard of every microsystem. No wall-clock time is
written unless ``publish.timestamp`` asks for it, so the same inputs give the same bytes. A page
whose inputs did not change since the last build is reused, not made again.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

from qi_helpers.io import FileHashes, package_version, sha256_bytes, sha256_file, write_text
from qi_helpers.privacy.names import inside, safe_filename
from qi_helpers.project import Project
from qi_helpers.publish.archive import zip_site
from qi_helpers.publish.context import SiteContext, site_context
from qi_helpers.publish.export_jobs import ExportJob, export_pages
from qi_helpers.publish.folder import clean_old_pages, site_folder
from qi_helpers.publish.funnels import FUNNEL_PAGE, publish_funnel_page
from qi_helpers.publish.index import render_index
from qi_helpers.publish.manifest import cached_page, page_key, write_site_manifest
from qi_helpers.publish.pages import Page
from qi_helpers.publish.provenance import format_period
from qi_helpers.publish.report_files import (
    REPORT_WORKBOOK,
    Download,
    planned_report_files,
    publish_report_files,
)
from qi_helpers.publish.run_record import read_run_manifest, recorded_hashes, recorded_parts
from qi_helpers.publish.screening import screen_page
from qi_helpers.publish.stale import stale_reason
from qi_helpers.publish.tables import read_registry, read_results
from qi_helpers.slices import SERIES, slices_dir
from qi_helpers.workflow import FAILED_SUFFIX, notebook_names, workbook_named

#: The banner of a page made from a failed run's notebook.
FAILED_BANNER = (
    "This run FAILED: the error is shown below. The last good report is kept "
    "and linked from the index."
)


@dataclass
class SiteReport:
    """What :func:`publish_site` wrote."""

    index: Path
    pages: list[Page]
    index_bytes: int
    notes: list[str] = field(default_factory=list)
    archive: Path | None = None
    withheld: list[str] = field(default_factory=list)

    @property
    def redacted(self) -> int:
        """Identifiers removed over all pages."""
        return sum(p.redacted for p in self.pages)


@dataclass
class SiteBuild:
    """One build of a site: what its pages share, and what it made so far.

    Attributes
    ----------
    project : Project
    site : Path
        The site folder.
    ctx : SiteContext
        Settings, identifier screen and provenance shared by every page.
    registry : DataFrame
        Workbook 01's registry, for page titles.
    run_manifest : dict
        ``outputs/run.json``: what the run recorded about each report.
    digest : callable
        A file's sha256, each upstream table hashed once per build.
    shared : str
        What every page's bytes depend on besides its notebook and header (see
        :func:`~qi_helpers.publish.manifest.page_key`).
    cache : dict
        The previous manifest's files, whose pages may be reused (``{}``: none is).
    made : dict
        The manifest entries of the files written (or reused) so far.
    pages : list of Page
    stale : dict
        ``{(workbook, name): why}`` of the reports that are out of date.
    downloads : dict
        ``{microsystem_id: [Download, ...]}``: the report card files published beside each
        workbook 03 page (:mod:`~qi_helpers.publish.report_files`).
    withheld : list of str
        The report card files the privacy screen kept off the site, and why.
    """

    project: Project
    site: Path
    ctx: SiteContext
    registry: pd.DataFrame
    run_manifest: dict[str, Any]
    digest: Callable[[Path], str]
    shared: str
    cache: dict[str, dict[str, Any]]
    made: dict[str, dict[str, Any]] = field(default_factory=dict)
    pages: list[Page] = field(default_factory=list)
    stale: dict[tuple[str, str], str] = field(default_factory=dict)
    downloads: dict[str, list[Download]] = field(default_factory=dict)
    withheld: list[str] = field(default_factory=list)


def executed_notebooks(project: Project, workbook: str) -> list[Path]:
    """The executed notebooks of one workbook that become pages."""
    folder = project.notebooks_dir / workbook
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.glob("*.ipynb")) if not p.name.startswith(".")]


def page_file_name(notebook: Path) -> tuple[bool, str, str]:
    """``(failed, stem, page file name)`` of an executed notebook."""
    failed = notebook.name.endswith(FAILED_SUFFIX)
    stem = notebook.name.removesuffix(FAILED_SUFFIX).removesuffix(".ipynb")
    return failed, stem, safe_filename(stem) + (".failed.html" if failed else ".html")


def _title(workbook: str, ms_id: str, registry: pd.DataFrame) -> tuple[str, str]:
    """A page's title and subtitle: the microsystem's name for workbook 03, else the title."""
    if workbook == "03_analyse_tests":
        name = ms_id
        if not registry.empty and ms_id in registry.index and "name" in registry.columns:
            name = str(registry.at[ms_id, "name"])
        return f"Tests of change: {name}", f"Microsystem {ms_id}"
    known = workbook_named(workbook)
    return (known.title if known else workbook), ""


def _start_build(project: Project, site: Path, previous: dict[str, dict[str, Any]]) -> SiteBuild:
    """Read what every page of the build shares (the identifier screen is the slow part)."""
    ctx = site_context(project)
    registry = read_registry(project)
    run_manifest = read_run_manifest(project)
    # Upstream tables do not change while publishing: each is hashed once, not once per report.
    file_hashes = FileHashes(run_manifest.get("file_hashes"))
    digest = functools.cache(file_hashes.digest)
    # A page is made again only when what it is made from changed (publishing is the slowest
    # step of a run that changed one microsystem). Not with a database source: the identifier
    # screen reads tables whose content cannot be hashed.
    reuse = not any(str(v).startswith("database:") for v in ctx.hashes.values())
    # What screens every page: the screen's own digest when it has one (an input edit that adds
    # no identifier leaves the pages as they are), else the input tables it was built from.
    screened_by = ctx.screen.digest if ctx.screen is not None and ctx.screen.digest else ctx.hashes
    shared = json.dumps(
        [package_version(file_hashes), project.section("publish"), screened_by, ctx.commit,
         ctx.generated, ctx.organisation],
        sort_keys=True,
        default=str,
    )  # fmt: skip
    cache = previous if reuse else {}
    return SiteBuild(project, site, ctx, registry, run_manifest, digest, shared, cache)


def _list_planned(build: SiteBuild, previous: dict[str, dict[str, Any]]) -> None:
    """List every file the build will write in the manifest, before any page is written.

    A build stopped half-way then leaves a folder that is still recognised as a site, and every
    file it wrote can be cleaned away later.
    """
    planned: set[str] = set()
    for workbook in notebook_names():
        for notebook in executed_notebooks(build.project, workbook):
            failed, stem, page = page_file_name(notebook)
            planned.add(f"{workbook}/{page}")
            if workbook == REPORT_WORKBOOK and not failed:
                planned.update(planned_report_files(build.project, stem))
    if (slices_dir(build.project) / SERIES).is_file():
        planned.add(FUNNEL_PAGE)
    build.site.mkdir(parents=True, exist_ok=True)
    pending = {rel: {"sha256": ""} for rel in planned | {"index.html"}}
    write_site_manifest(build.site, {**pending, **previous}, complete=False)


def _period(build: SiteBuild, workbook: str, name: str) -> str:
    """A page's data period: up to the last period of a microsystem's results for workbook 03."""
    end = build.ctx.period_end
    if workbook == "03_analyse_tests":
        results = read_results(build.project, name)
        if "last_period" in results.columns and results["last_period"].notna().any():
            end = pd.to_datetime(results["last_period"]).max()
    return format_period(build.ctx.period_start, end)


def _stale_banner(
    build: SiteBuild,
    workbook: str,
    name: str,
    notebook: Path,
    executed: nbformat.NotebookNode,
    recorded: dict[str, str] | None,
) -> str:
    """The banner of a report that is out of date (``""`` when it is not); records why."""
    parts = recorded_parts(build.project, build.run_manifest, workbook, name, notebook)
    why = stale_reason(
        build.project,
        workbook,
        notebook,
        executed,
        recorded,
        build.ctx.hashes,
        parts,
        build.digest,
    )
    if not why:
        return ""
    build.stale[(workbook, name)] = why
    return f"This report may be out of date: {why}. Run `qi run` again."


@dataclass
class _PlannedPage:
    """A page of the build before it is made: where it goes, its key, its export (or reuse)."""

    workbook: str
    name: str
    title: str
    href: str
    failed: bool
    key: str
    job: ExportJob
    reused: Page | None


def _plan_page(build: SiteBuild, workbook: str, notebook: Path) -> _PlannedPage:
    """Everything about one page but making it: its header, key, and a page to reuse, if any."""
    ctx, site = build.ctx, build.site
    failed, stem, page_name = page_file_name(notebook)
    executed = nbformat.read(str(notebook), as_version=4)
    parameters = executed.metadata.get("papermill", {}).get("parameters", {})
    ms_id = str(parameters.get("microsystem_id", "") or "")
    name = (ms_id if workbook == "03_analyse_tests" else "") or stem
    title, subtitle = _title(workbook, name, build.registry)
    period = _period(build, workbook, name)
    recorded = recorded_hashes(build.run_manifest, workbook, stem)
    if failed:
        banner = FAILED_BANNER
    else:
        banner = _stale_banner(build, workbook, name, notebook, executed, recorded)
    href = f"{workbook}/{page_name}"
    inputs = recorded or ctx.hashes
    downloads: list[dict[str, str]] = []
    if workbook == REPORT_WORKBOOK and not failed:  # screened and copied before the page
        found = publish_report_files(build, stem)
        build.downloads[name] = found
        downloads = [{"href": d.file, "label": d.label} for d in found]
    options = {
        "title": title,
        "subtitle": subtitle,
        "period": period,
        "banner": banner,
        "inputs": inputs,
        "downloads": downloads,
    }
    key = page_key(notebook, options, build.shared)
    job = ExportJob(
        notebook,
        inside(site, site / workbook / page_name),
        {
            "title": title,
            "subtitle": subtitle,
            "organisation": ctx.organisation,
            "home": "../index.html",
            "data_period": period,
            "banner": banner,
            "downloads": downloads,
            "on_identifier": ctx.on_identifier,
            "provenance": {"commit": ctx.commit, "inputs": inputs, "generated": ctx.generated},
            "site": site,
        },
    )
    reused = cached_page(site, href, key, build.cache)
    return _PlannedPage(workbook, name, title, href, failed, key, job, reused)


def _record_page(build: SiteBuild, planned: _PlannedPage, page: Page) -> Page:
    """Add a made (or reused) page to the build's manifest and pages."""
    href = planned.href
    build.made[href] = {
        "key": planned.key,
        # a reused page was just checked against its recorded digest
        "sha256": (
            build.cache[href]["sha256"] if planned.reused else sha256_file(planned.job.html_path)
        ),
        "redacted": page.redacted,
        "bytes": page.bytes,
    }
    page.workbook, page.name, page.title = planned.workbook, planned.name, planned.title
    page.href = href
    page.status = "failed" if planned.failed else "ok"
    build.pages.append(page)
    return page


def publish_page(build: SiteBuild, workbook: str, notebook: Path) -> Page:
    """Publish one executed notebook into the site, or reuse its page when nothing changed.

    The page goes to ``<site>/<workbook>/<name>.html`` (``<name>.failed.html`` for a failed
    run's notebook); its manifest entry is added to ``build.made`` and the page to
    ``build.pages``.

    Returns
    -------
    Page
        With its workbook, name, title, link, status, identifiers removed and size.
    """
    planned = _plan_page(build, workbook, notebook)
    page = planned.reused or planned.job.run(build.ctx.screen)
    return _record_page(build, planned, page)


def _write_index(build: SiteBuild, funnels: Page | None = None) -> tuple[Path, int, int]:
    """Render, screen and write ``index.html``: its path, its size and the identifiers removed."""
    ctx, site = build.ctx, build.site
    index_html = render_index(
        build.project,
        build.pages,
        build.registry,
        context=ctx,
        stale=build.stale,
        funnels=funnels,
        downloads=build.downloads,
    )
    index_html, redacted = screen_page(index_html, ctx.screen)
    index = inside(site, site / "index.html")
    index_bytes = index_html.encode("utf-8")
    write_text(index, index_html)
    build.made["index.html"] = {"sha256": sha256_bytes(index_bytes)}
    return index, len(index_bytes), redacted


def publish_site(
    project: Project,
    out_dir: Path | None = None,
    *,
    archive: bool = False,
    executor: Executor | None = None,
    workers: int = 1,
) -> SiteReport:
    """Publish every executed notebook under ``outputs/notebooks/`` and write the index.

    Each notebook becomes ``<site>/<workbook>/<name>.html`` (a failed run's notebook
    ``<name>.failed.html``, beside the last good report), and the organisation's funnel plots
    ``<site>/funnels.html`` (:mod:`~qi_helpers.publish.funnels`, when the slices were
    prepared). Each workbook 03 page gets its report card's slides and PDF beside it, when
    the privacy screen finds no identifier in their text
    (:mod:`~qi_helpers.publish.report_files`). The site's manifest,
    ``<site>/site.json`` (:data:`~qi_helpers.publish.manifest.SITE_MANIFEST`), lists every file
    the site wrote with its sha256; pages of notebooks that no longer exist are removed, and only
    files the previous manifest lists are ever removed. Identifiers of the configured input
    tables are removed from every page (see
    :func:`~qi_helpers.publish.screening.prepare_notebook`); ``publish.on_identifier: refuse``
    stops instead.

    Parameters
    ----------
    project : Project
    out_dir : Path, optional
        The site folder; default ``outputs/site``. It must not exist yet, be empty, or hold a
        site published before (recognised by its manifest); anything else is refused before
        anything is written.
    archive : bool
        Also write ``<out_dir>.zip`` (same bytes for the same site), for a shared drive: the
        files of the manifest and the manifest, nothing else.
    executor : Executor, optional
        Workers (``qi run``'s) that make the pages in parallel
        (:func:`~qi_helpers.publish.export_jobs.export_pages`); the same bytes as without.
    workers : int
        How many pages ``executor`` makes at once.

    Returns
    -------
    SiteReport
        The index, every page with its size and the identifiers removed, notes, the archive,
        and the report card files withheld by the privacy screen.

    Raises
    ------
    ConfigError
        When ``out_dir`` cannot receive the site (see above), naming it and why.
    PrivacyError
        With ``publish.on_identifier: refuse`` when a page would show an identifier.
    """
    site = Path(out_dir) if out_dir else project.site_dir
    # Before anything is written: is this folder empty, new, or a site we published?
    previous = site_folder(project, site, archive=archive)
    build = _start_build(project, site, previous)
    _list_planned(build, previous)
    planned = [
        _plan_page(build, workbook, notebook)
        for workbook in notebook_names()
        for notebook in executed_notebooks(project, workbook)
    ]
    to_make = [p for p in planned if p.reused is None]
    made = iter(
        export_pages(
            [p.job for p in to_make],
            build.ctx.screen,
            root=project.root,
            executor=executor,
            workers=workers,
        )
    )
    for page in planned:
        _record_page(build, page, page.reused or next(made))
    funnels = publish_funnel_page(build)
    notes = build.ctx.notes
    if not build.pages:
        notes.append(f"no executed notebooks under {project.notebooks_dir}: run `qi run` first")
    clean_old_pages(site, previous, set(build.made) | {"index.html"})
    index, index_bytes, redacted = _write_index(build, funnels)
    write_site_manifest(site, build.made, complete=True)
    report = SiteReport(index, build.pages, index_bytes, notes, withheld=build.withheld)
    if redacted:
        notes.append(f"{redacted} identifier(s) removed from the index")
    if archive:
        report.archive = zip_site(site)
    return report


def build_site(
    project: Project,
    out_dir: Path | None = None,
    *,
    executor: Executor | None = None,
    workers: int = 1,
) -> Path:
    """Publish the site (see :func:`publish_site`) and return the index page's path.

    Parameters
    ----------
    project : Project
    out_dir : Path, optional
        The site folder; default ``outputs/site``. New, empty, or a site published before
        (see :func:`publish_site`).
    executor : Executor, optional
        Workers that make the pages in parallel (see :func:`publish_site`).
    workers : int
        How many pages ``executor`` makes at once.

    Returns
    -------
    Path
        ``<out_dir>/index.html``.
    """
    return publish_site(project, out_dir, executor=executor, workers=workers).index
