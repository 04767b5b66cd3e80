"""Publish executed notebooks as a self-contained, offline HTML site.

Each executed notebook becomes one page, converted in-process with nbconvert and the lean
``qi_report`` template (code hidden, no script or font from another host, images inline); the index
page links every report. Names that come from data are HTML-escaped everywhere.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources as importlib_resources
from pathlib import Path

import nbformat
import pandas as pd

from qi_helpers.privacy import escape, inside, safe_filename
from qi_helpers.project import Project
from qi_helpers.runner import FAILED_SUFFIX, WORKBOOKS

#: Human titles of the workbooks, for page headers and the index.
TITLES: dict[str, str] = {
    "01_identify_microsystems": "01 Identify microsystems",
    "02_select_pilots": "02 Select pilot microsystems",
    "03_analyse_tests": "03 Analyse tests of change",
    "04_plan_spread": "04 Plan the spread",
}

#: Parameters never shown in a page footer (local paths say nothing to a reader).
HIDDEN_PARAMETERS = {"project_root"}


def _templates_dir() -> Path:
    return Path(str(importlib_resources.files("qi_helpers") / "templates"))


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class Page:
    """One published report."""

    workbook: str
    name: str
    title: str
    href: str
    status: str  # "ok" or "failed"


def export_report(
    notebook: Path,
    html_path: Path,
    *,
    title: str,
    subtitle: str = "",
    organisation: str = "",
    home: str = "index.html",
) -> Path:
    """Convert one executed notebook to a report page.

    Code cells' inputs and prompts are hidden, warnings printed to stderr are dropped, errors are
    kept (a failed report shows what went wrong). The page makes no request to another host.

    Parameters
    ----------
    notebook : Path
        The executed notebook.
    html_path : Path
        Where the page goes (written atomically).
    title, subtitle, organisation : str
        Header text (escaped).
    home : str
        Relative link back to the index.

    Returns
    -------
    Path
        ``html_path``.
    """
    from nbconvert import HTMLExporter

    from qi_helpers import __version__

    nb = nbformat.read(str(notebook), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if o.get("name") != "stderr"]
    nb.metadata.pop("widgets", None)
    parameters = {
        k: v
        for k, v in nb.metadata.get("papermill", {}).get("parameters", {}).items()
        if k not in HIDDEN_PARAMETERS
    }
    exporter = HTMLExporter(
        template_name="qi_report",
        extra_template_basedirs=[str(_templates_dir())],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    css = (_templates_dir() / "qi_report" / "report.css").read_text(encoding="utf-8")
    resources = {
        "qi": {
            "title": title,
            "subtitle": subtitle,
            "organisation": organisation,
            "home": home,
            "version": __version__,
            "parameters": parameters,
            "css": css,
        }
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    _write_text_atomic(html_path, body)
    return html_path


def _registry(project: Project) -> pd.DataFrame:
    path = project.data_dir / "registry.parquet"
    if path.is_file():
        return pd.read_parquet(path).set_index("microsystem_id")
    return pd.DataFrame()


def build_site(project: Project, out_dir: Path | None = None) -> Path:
    """Publish every executed notebook under ``outputs/notebooks/`` and write the index.

    Parameters
    ----------
    project : Project
    out_dir : Path, optional
        The site folder; default ``outputs/site``.

    Returns
    -------
    Path
        The index page, ``<out_dir>/index.html``.
    """
    site = out_dir or project.site_dir
    site.mkdir(parents=True, exist_ok=True)
    registry = _registry(project)
    organisation = str(project.section("project").get("organisation", ""))
    pages: list[Page] = []
    for workbook in WORKBOOKS.values():
        folder = project.notebooks_dir / workbook
        if not folder.is_dir():
            continue
        for notebook in sorted(folder.glob("*.ipynb")):
            failed = notebook.name.endswith(FAILED_SUFFIX)
            stem = notebook.name.removesuffix(FAILED_SUFFIX).removesuffix(".ipynb")
            params = nbformat.read(str(notebook), as_version=4).metadata.get("papermill", {})
            ms_id = params.get("parameters", {}).get("microsystem_id", "")
            if workbook == "03_analyse_tests":
                name = str(registry["name"].get(ms_id, ms_id)) if not registry.empty else ms_id
                title, subtitle = f"Tests of change: {name}", f"Microsystem {ms_id}"
            else:
                title, subtitle = TITLES[workbook], ""
            if failed:
                subtitle = (subtitle + " - this run FAILED; the last good report is kept").strip(
                    " -"
                )
            page_name = safe_filename(stem) + (".failed.html" if failed else ".html")
            html_path = inside(site, site / workbook / page_name)
            export_report(
                notebook,
                html_path,
                title=title,
                subtitle=subtitle,
                organisation=organisation,
                home="../index.html",
            )
            pages.append(
                Page(
                    workbook,
                    ms_id or stem,
                    title,
                    f"{workbook}/{page_name}",
                    "failed" if failed else "ok",
                )
            )
    index = site / "index.html"
    _write_text_atomic(index, render_index(project, pages, registry))
    return index


def render_index(project: Project, pages: list[Page], registry: pd.DataFrame) -> str:
    """The site's index page: the organisation-level reports, then a table of microsystems."""
    organisation = escape(project.section("project").get("organisation", ""))
    css = (_templates_dir() / "qi_report" / "report.css").read_text(encoding="utf-8")
    org_rows, ms_rows = [], []
    for page in pages:
        link = f'<a href="{escape(page.href)}">{escape(page.title)}</a>'
        status = "ok" if page.status == "ok" else '<strong class="failed">failed</strong>'
        if page.workbook == "03_analyse_tests":
            info = registry.loc[page.name] if page.name in registry.index else None
            kind = escape(info["kind"]) if info is not None else ""
            site_name = escape(info["site"]) if info is not None else ""
            ms_rows.append(
                f"<tr><td>{escape(page.name)}</td><td>{kind}</td><td>{site_name}</td>"
                f"<td>{link}</td><td>{status}</td></tr>"
            )
        else:
            org_rows.append(f"<li>{link} ({status})</li>")
    run_info = ""
    manifest = project.outputs_dir / "run.json"
    if manifest.is_file():
        tasks = json.loads(manifest.read_text(encoding="utf-8")).get("tasks", [])
        failed = sum(t["status"] != "ok" for t in tasks)
        run_info = f"<p>Last run: {len(tasks)} notebooks, {failed} failed.</p>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>QI reports - {organisation}</title>
<style>
{css}
</style>
</head>
<body>
<header class="qi-header">
  <div class="qi-org">{organisation}</div>
  <h1 class="qi-title">Clinical microsystem improvement reports</h1>
</header>
<main class="qi-report">
{run_info}
<h2>Organisation</h2>
<ul>
{chr(10).join(org_rows)}
</ul>
<h2>Microsystems ({len(ms_rows)})</h2>
<table>
<thead><tr><th>Microsystem</th><th>Kind</th><th>Site</th><th>Report</th><th>Run</th></tr></thead>
<tbody>
{chr(10).join(ms_rows)}
</tbody>
</table>
</main>
</body>
</html>
"""
