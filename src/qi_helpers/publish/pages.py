"""One executed notebook as one report page: converted in-process, screened, sanitised.

The page is made with nbconvert and the lean ``qi_report`` template: code and prompts hidden, no
script, font or image from another host, a header with the microsystem and the data period, and
a provenance footer. The notebook first goes through the privacy pass of
:mod:`qi_helpers.publish.screening`; the page is written atomically inside the site folder.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbconvert import HTMLExporter

from qi_helpers import __version__
from qi_helpers.errors import PrivacyError
from qi_helpers.io import write_text
from qi_helpers.privacy.html import clean_html, content_security_policy
from qi_helpers.privacy.names import inside
from qi_helpers.privacy.screen import IdentifierScreen
from qi_helpers.publish.images import shrink_images
from qi_helpers.publish.screening import prepare_notebook, sanitise_page, screen_page
from qi_helpers.publish.theme import TEMPLATE, report_css, templates_dir

#: Parameters never shown in a page footer (local paths say nothing to a reader).
HIDDEN_PARAMETERS = {"project_root"}


@dataclass
class Page:
    """One published report.

    Attributes
    ----------
    workbook : str
        The workbook's folder name, e.g. ``03_analyse_tests``.
    name : str
        The microsystem id for workbook 03, else the notebook's stem.
    title : str
    href : str
        Path relative to the site folder.
    status : str
        ``"ok"`` or ``"failed"``.
    redacted : int
        Identifiers removed from the page.
    bytes : int
        Size of the page.
    """

    workbook: str
    name: str
    title: str
    href: str
    status: str
    redacted: int = 0
    bytes: int = 0


def _svg_base64(svg: str) -> str:
    """An SVG output as base64, shown through ``<img>``: no script in it can run, nothing loads."""
    text = "".join(svg) if isinstance(svg, list) else str(svg)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


@functools.lru_cache(maxsize=1)
def _exporter() -> HTMLExporter:
    """The report exporter (its templates compiled once per process, not once per page)."""
    exporter = HTMLExporter(
        template_name=TEMPLATE,
        extra_template_basedirs=[str(templates_dir())],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    exporter.register_filter("qi_clean", clean_html)
    exporter.register_filter("qi_svg_base64", _svg_base64)
    return exporter


def _mark_first_error(nb: nbformat.NotebookNode) -> bool:
    """Put the ``#error`` note before the first error output; whether the notebook has one."""
    for cell in nb.cells:
        for i, output in enumerate(cell.get("outputs", [])):
            if output.get("output_type") == "error":
                note = nbformat.v4.new_output(
                    "display_data",
                    data={
                        "text/html": '<p id="error" class="qi-error-note">'
                        "The run stopped here with this error:</p>"
                    },
                )
                cell.outputs.insert(i, note)
                return True
    return False


def _shown_parameters(nb: nbformat.NotebookNode) -> dict[str, Any]:
    """The notebook's papermill parameters a footer shows (:data:`HIDDEN_PARAMETERS` left out)."""
    return {
        k: v
        for k, v in nb.metadata.get("papermill", {}).get("parameters", {}).items()
        if k not in HIDDEN_PARAMETERS
    }


def export_report(
    notebook: Path,
    html_path: Path,
    *,
    title: str,
    subtitle: str = "",
    organisation: str = "",
    home: str = "index.html",
    data_period: str = "",
    banner: str = "",
    downloads: list[dict[str, str]] | None = None,
    screen: IdentifierScreen | None = None,
    on_identifier: str = "redact",
    provenance: dict[str, Any] | None = None,
    site: Path | None = None,
) -> Page:
    """Convert one executed notebook to a report page.

    Code and prompts are hidden, warnings printed to stderr dropped, errors kept (a failed report
    shows what went wrong, at ``#error``). The notebook first goes through
    :func:`~qi_helpers.publish.screening.prepare_notebook`; HTML and Markdown outputs are
    sanitised (names that come from data cannot inject markup); the page makes no request to
    another host.

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
    data_period : str
        The period the data covers, for the header and footer.
    banner : str
        A warning shown under the header (e.g. for a failed run).
    downloads : list of dict, optional
        Files published beside the page (``href`` relative to the page, ``label``), linked
        from its header: a workbook 03 page's slides and PDF report card.
    screen : IdentifierScreen, optional
        Identifiers to remove.
    on_identifier : {"redact", "refuse"}
    provenance : dict, optional
        ``version``, ``commit``, ``inputs`` (table -> sha256) and ``generated`` for the footer.
    site : Path, optional
        The site folder: the page must lie inside it (else ``ConfigError``, nothing written).

    Returns
    -------
    Page
        With ``redacted`` and ``bytes`` filled in.
    """
    if site is not None:
        inside(Path(site), html_path)
    nb = nbformat.read(str(notebook), as_version=4)
    nb, redacted = prepare_notebook(nb, screen, on_identifier=on_identifier, where=str(notebook))
    shrink_images(nb)
    failed = _mark_first_error(nb)
    prov = {"version": __version__, "commit": "", "inputs": {}, "generated": ""}
    prov.update(provenance or {})
    css = report_css()
    resources = {
        "qi": {
            "title": title,
            "subtitle": subtitle,
            "organisation": organisation,
            "home": home,
            "data_period": data_period,
            "banner": banner,
            "downloads": list(downloads or []),
            "failed": failed,
            "version": prov["version"],
            "commit": prov["commit"],
            "inputs": prov["inputs"],
            "generated": prov["generated"],
            "parameters": _shown_parameters(nb),
            "css": css,
            "csp": content_security_policy(styles=[css]),
        }
    }
    body, _ = _exporter().from_notebook_node(nb, resources=resources)
    body, more = screen_page(sanitise_page(body), screen)
    if more and on_identifier == "refuse":
        raise PrivacyError(f"{notebook}: the page would show {more} identifier(s).")
    safe_path = inside(Path(site) if site else html_path.parent, html_path)
    write_text(safe_path, body)
    return Page("", "", title, "", "ok", redacted + more, len(body.encode("utf-8")))
