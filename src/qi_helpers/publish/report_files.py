"""The report cards' slides and PDFs on the site: screened like a page, listed, linked.

Workbook 03 writes each microsystem's report card under ``outputs/report_cards/``
(:func:`qi_helpers.changes.report_card.write_report_card`): ``<id>.pptx`` and ``<id>.pdf``.
Publishing puts each beside the microsystem's page, ``<site>/03_analyse_tests/<id>.pptx`` and
``.pdf``, linked from the page's header and from the microsystem's row on the index, listed in
the site's manifest and so in its zip.

The same privacy screen as the pages reads every word of each file before it is published: the
text of the slides (titles, text boxes, table cells, speaker notes, the charts' alternative
text) and of the PDF's pages (read back with pypdf), and both files' properties. A file cannot
be redacted the way a page is, so a file in which the screen finds an identifier is not
published: the build notes it (``qi run`` and ``qi publish`` print it) and the page and index
do not link it; with ``publish.on_identifier: refuse`` publishing stops, as for a page. A file
whose bytes and screen did not change since the last build is reused without being read again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qi_helpers.changes.report_card import REPORT_CARD_SUFFIXES
from qi_helpers.errors import PrivacyError
from qi_helpers.io import sha256_bytes, sha256_file, write_bytes
from qi_helpers.privacy.names import inside
from qi_helpers.privacy.screen import IdentifierScreen

__all__ = [
    "REPORT_WORKBOOK",
    "Download",
    "planned_report_files",
    "publish_report_files",
    "report_file_text",
    "report_identifiers",
]

#: The workbook whose pages the report cards sit beside.
REPORT_WORKBOOK = "03_analyse_tests"


@dataclass(frozen=True)
class Download:
    """A report card's file on the site.

    Attributes
    ----------
    href : str
        Relative to the site folder, e.g. ``03_analyse_tests/NOR-PC1.pptx``.
    file : str
        Relative to the page beside it, e.g. ``NOR-PC1.pptx``.
    label : str
        What the page's link says, e.g. ``Slides (PowerPoint)``.
    short : str
        What the index's link says: ``Slides`` or ``PDF``.
    """

    href: str
    file: str
    label: str
    short: str


#: The text properties of a slide deck (python-pptx's names).
_PROPERTIES = (
    "title",
    "subject",
    "author",
    "keywords",
    "comments",
    "category",
    "last_modified_by",
    "identifier",
    "content_status",
    "language",
    "version",
)


def _pptx_text(path: Path) -> str:
    """Every text of a slide deck: titles, text boxes, tables, notes, alt texts, properties."""
    from pptx import Presentation

    prs = Presentation(str(path))
    texts: list[str] = []
    props = prs.core_properties
    for name in _PROPERTIES:
        texts.append(str(getattr(props, name, "") or ""))
    for slide in prs.slides:
        parts = [slide]
        if slide.has_notes_slide:
            parts.append(slide.notes_slide)
        for part in parts:
            element = part.element
            texts += [str(t.text or "") for t in element.xpath(".//a:t")]
            for shape in element.xpath(".//p:cNvPr"):
                texts += [shape.get("name", ""), shape.get("descr", ""), shape.get("title", "")]
    return "\n".join(texts)


def _pdf_text(path: Path) -> str:
    """Every page's text of a PDF, read back (pypdf), and its document properties."""
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    texts = [str(v) for v in (reader.metadata or {}).values()]
    texts += [page.extract_text() or "" for page in reader.pages]
    return "\n".join(texts)


def report_file_text(path: str | Path) -> str:
    """The text of a report card's file (``.pptx`` or ``.pdf``), as a reader could copy it.

    Raises
    ------
    ValueError
        For any other kind of file.
    """
    path = Path(path)
    if path.suffix == ".pptx":
        return _pptx_text(path)
    if path.suffix == ".pdf":
        return _pdf_text(path)
    raise ValueError(f"{path}: not a report card file (.pptx or .pdf)")


def report_identifiers(path: str | Path, screen: IdentifierScreen | None) -> list[str]:
    """The identifiers ``screen`` finds in a report card's file (``[]``: safe to publish)."""
    if screen is None:
        return []
    text = report_file_text(path)
    found = screen.find(text)
    if not found and Path(path).suffix == ".pdf":
        # A word too long for a table cell is broken across lines, and read back so: the
        # PDF's text is screened again with its lines joined.
        found = screen.find(re.sub(r"\s*\n\s*", "", text))
    return found


def _source(project: Any, stem: str, suffix: str) -> Path:
    return Path(project.report_cards_dir) / f"{stem}{suffix}"


def planned_report_files(project: Any, stem: str) -> list[str]:
    """The site paths a build may write for one workbook 03 page (its report card's files)."""
    return [
        f"{REPORT_WORKBOOK}/{stem}{suffix}"
        for suffix in REPORT_CARD_SUFFIXES
        if _source(project, stem, suffix).is_file()
    ]


def _key(build: Any, source: Path) -> str:
    content = {"source": build.digest(source), "shared": build.shared}
    return sha256_bytes(json.dumps(content, sort_keys=True, default=str).encode("utf-8"))


def _reusable(build: Any, href: str, key: str) -> dict[str, Any] | None:
    """The manifest entry of the file already published at ``href`` from the same ``key``."""
    entry = build.cache.get(href)
    path = build.site / href
    if not entry or entry.get("key") != key or path.is_symlink() or not path.is_file():
        return None
    return entry if sha256_file(path) == entry.get("sha256") else None


def _withhold(build: Any, href: str, why: str) -> None:
    """Record a file that is not published, and why; stop under ``on_identifier: refuse``."""
    message = f"{href}: not published: {why}"
    if build.ctx.on_identifier == "refuse":
        raise PrivacyError(f"{message}; nothing more was published.")
    build.withheld.append(message)
    build.ctx.notes.append(message)


def _publish_one(build: Any, source: Path, href: str) -> bool:
    """Screen one file and copy it into the site (or reuse it); whether it is published."""
    key = _key(build, source)
    entry = _reusable(build, href, key)
    if entry is None:
        try:
            found = report_identifiers(source, build.ctx.screen)
        except Exception as exc:  # noqa: BLE001 - a file that cannot be read is not published
            _withhold(build, href, f"its text could not be read to screen it ({exc})")
            return False
        if found:
            why = (
                f"its text holds {len(found)} identifier(s) of patients, encounters or staff; "
                "rerun workbook 03 with the project's screen"
            )
            _withhold(build, href, why)
            return False
        data = source.read_bytes()
        target = inside(build.site, build.site / href)
        write_bytes(target, data)
        entry = {"key": key, "sha256": sha256_bytes(data), "bytes": len(data)}
    build.made[href] = {k: entry[k] for k in ("key", "sha256", "bytes") if k in entry}
    return True


def publish_report_files(build: Any, stem: str) -> list[Download]:
    """Publish one microsystem's report card beside its page, after the privacy screen.

    Parameters
    ----------
    build : qi_helpers.publish.site.SiteBuild
        The build under way (its project, site, screen, cache and manifest).
    stem : str
        The page's file name without ``.html``: the microsystem's safe file name, which is also
        the report card's (``outputs/report_cards/<stem>.pptx``).

    Returns
    -------
    list of Download
        The files published (none when workbook 03 wrote none, or the screen withheld them).

    Raises
    ------
    PrivacyError
        Under ``publish.on_identifier: refuse``, when a file holds an identifier.
    """
    published = []
    for suffix, label in REPORT_CARD_SUFFIXES.items():
        source = _source(build.project, stem, suffix)
        if source.is_symlink() or not source.is_file():
            continue
        href = f"{REPORT_WORKBOOK}/{stem}{suffix}"
        if _publish_one(build, source, href):
            short = "Slides" if suffix == ".pptx" else "PDF"
            published.append(Download(href, f"{stem}{suffix}", label, short))
    return published
