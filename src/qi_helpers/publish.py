"""Publish executed notebooks as a self-contained, offline, privacy-safe HTML site.

Each executed notebook becomes one page, converted in-process with nbconvert and the lean
``qi_report`` template: code and prompts hidden, no script, font or image from another host, a
header with the microsystem and the data period, and a provenance footer (package version, git
commit, parameters, content hashes of the input tables). Before a notebook is converted, its
outputs go through a privacy pass: identifiers of patients, encounters and (unless
``publish.show_staff``) staff, taken from the configured input tables themselves, are removed with
a visible note, and HTML that came from data is sanitised. The index page is a dashboard of every
microsystem. No wall-clock time is written unless ``publish.timestamp`` asks for it, so the same
inputs give the same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import subprocess
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

from qi_helpers.errors import ConfigError, QIError
from qi_helpers.plan import UPSTREAM_FILES, FileHashes, package_version
from qi_helpers.privacy import (
    REDACTED,
    IdentifierScreen,
    PrivacyError,
    clean_html,
    content_security_policy,
    escape,
    inside,
    read_screened_tables,
    safe_filename,
)
from qi_helpers.project import OUTPUT_WRITERS, Project
from qi_helpers.runner import FAILED_SUFFIX, WORKBOOKS

#: Human titles of the workbooks, for page headers and the index.
TITLES: dict[str, str] = {
    "01_identify_microsystems": "01 Identify microsystems",
    "02_select_pilots": "02 Select pilot microsystems",
    "03_analyse_tests": "03 Analyse tests of change",
    "04_plan_spread": "04 Plan the spread",
}

#: One line on what each organisation-level report is for (index cards).
PURPOSES: dict[str, str] = {
    "01_identify_microsystems": "The core teams, the patients they serve and their work areas.",
    "02_select_pilots": "Where to test new ideas first, and why.",
    "04_plan_spread": "Who adopts the changes that worked, in which wave.",
}

#: Parameters never shown in a page footer (local paths say nothing to a reader).
HIDDEN_PARAMETERS = {"project_root"}

#: Output types dropped before conversion: they need a kernel or a script to show anything.
DROPPED_MIMETYPES = (
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.jupyter.widget-state+json",
    "application/javascript",
    "text/javascript",
    "application/vnd.bokehjs_load.v0+json",
    "application/vnd.bokehjs_exec.v0+json",
    "application/vnd.plotly.v1+json",
)

#: Text output types screened for identifiers.
TEXT_MIMETYPES = ("text/html", "text/plain", "text/markdown", "text/latex", "image/svg+xml")


def _templates_dir() -> Path:
    return Path(str(importlib_resources.files("qi_helpers") / "templates"))


def _template_text(name: str) -> str:
    return (_templates_dir() / "qi_report" / name).read_text(encoding="utf-8")


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(text.encode("utf-8"))
    os.replace(tmp, path)


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


@dataclass
class SiteReport:
    """What :func:`publish_site` wrote."""

    index: Path
    pages: list[Page]
    index_bytes: int
    notes: list[str] = field(default_factory=list)
    archive: Path | None = None

    @property
    def redacted(self) -> int:
        """Identifiers removed over all pages."""
        return sum(p.redacted for p in self.pages)


# --- provenance -------------------------------------------------------------------------------


def git_commit(root: Path) -> str:
    """The git commit of the project folder (12 hex digits), or ``""`` outside a repository."""
    if not (root / ".git").exists():
        return ""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_hashes(project: Project) -> dict[str, str]:
    """Content hashes of the configured input tables: ``{table: sha256}``.

    Files are hashed byte for byte; a database source is described (``database: <table or
    query hash>``), since its content cannot be hashed without reading it.
    """
    hashes: dict[str, str] = {}
    for name, spec in sorted((project.section("data").get("tables") or {}).items()):
        if not isinstance(spec, dict):
            continue
        if "path" in spec:
            path = project.path(spec["path"])
            hashes[name] = _sha256(path) if path.is_file() else "missing"
        elif "url" in spec:
            what = str(spec.get("table") or spec.get("query") or "")
            hashes[name] = "database:" + hashlib.sha256(what.encode()).hexdigest()[:12]
    return hashes


def _manifest(project: Project) -> dict[str, Any]:
    path = project.outputs_dir / "run.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _recorded_hashes(manifest: dict[str, Any], workbook: str, name: str) -> dict[str, str] | None:
    """Input hashes the runner recorded for a task, when it records them."""
    for task in manifest.get("tasks", []):
        if WORKBOOKS.get(str(task.get("workbook")), task.get("workbook")) == workbook and str(
            task.get("name")
        ) == str(name):
            for key in ("input_hashes", "inputs"):
                value = task.get(key)
                if isinstance(value, dict) and value:
                    return {str(k): str(v) for k, v in value.items()}
    for key in ("input_hashes", "inputs"):
        value = manifest.get(key)
        if isinstance(value, dict) and value:
            return {str(k): str(v) for k, v in value.items()}
    return None


def _format_day(value: Any) -> str:
    ts = pd.Timestamp(value)
    return f"{ts.day} {ts:%b %Y}"


def format_period(start: Any, end: Any) -> str:
    """A data period for a page header, e.g. ``"1 Jan 2024 to 22 Dec 2025"``."""
    start = None if start is None or pd.isna(start) else start
    end = None if end is None or pd.isna(end) else end
    if start is not None and end is not None:
        return f"{_format_day(start)} to {_format_day(end)}"
    if end is not None:
        return f"to {_format_day(end)}"
    if start is not None:
        return f"from {_format_day(start)}"
    return ""


# --- the privacy pass over a notebook ----------------------------------------------------------


def _note_output(count: int) -> nbformat.NotebookNode:
    word = "identifier was" if count == 1 else "identifiers were"
    return nbformat.v4.new_output(
        "display_data",
        data={
            "text/html": (
                f'<p class="qi-privacy-note" role="note">Privacy: {count} {word} removed from '
                "the output above before publishing.</p>"
            )
        },
    )


def prepare_notebook(
    nb: nbformat.NotebookNode,
    screen: IdentifierScreen | None = None,
    *,
    on_identifier: str = "redact",
    where: str = "",
) -> tuple[nbformat.NotebookNode, int]:
    """The privacy and offline pass over an executed notebook, before it becomes a page.

    Drops warnings printed to stderr, widget views and scripts (a page needs no kernel and runs
    no script; widgets show the static output they were executed with), and removes every
    identifier ``screen`` knows from text outputs, Markdown cells, error messages and the
    recorded parameters, adding a visible note under each output it changed.

    Parameters
    ----------
    nb : NotebookNode
        Changed in place and returned.
    screen : IdentifierScreen, optional
        What to remove; None skips identifier screening.
    on_identifier : {"redact", "refuse"}
        ``refuse`` raises :class:`~qi_helpers.privacy.PrivacyError` instead of redacting.
    where : str
        The notebook's path, for messages.

    Returns
    -------
    nb : NotebookNode
    count : int
        Identifiers removed.
    """
    total = 0

    def scrub(text: str) -> tuple[str, int]:
        if screen is None or not text:
            return text, 0
        cleaned, n = screen.redact(text)
        if n and on_identifier == "refuse":
            found = sorted(set(screen.find(text)))[:3]
            raise PrivacyError(
                f"{where}: an output holds {n} identifier(s) of patients, encounters or staff "
                f"(for example {', '.join(found)}); nothing was published. Remove them from the "
                "workbook's output, or set publish.on_identifier: redact."
            )
        return cleaned, n

    for cell in nb.cells:
        if cell.cell_type in ("markdown", "raw"):
            cell.source, n = scrub(cell.source)
            total += n
            continue
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                continue
            n = 0
            if output.get("output_type") == "stream":
                output["text"], n = scrub(output.get("text", ""))
            elif output.get("output_type") == "error":
                output["evalue"], n1 = scrub(str(output.get("evalue", "")))
                lines = []
                n2 = 0
                for line in output.get("traceback", []):
                    cleaned, k = scrub(line)
                    lines.append(cleaned)
                    n2 += k
                output["traceback"] = lines
                n = n1 + n2
            elif "data" in output:
                data = output["data"]
                for mime in DROPPED_MIMETYPES:
                    data.pop(mime, None)
                if not data:
                    continue
                for mime in TEXT_MIMETYPES:
                    if mime in data:
                        value = data[mime]
                        text = "".join(value) if isinstance(value, list) else str(value)
                        data[mime], k = scrub(text)
                        n += k
            outputs.append(output)
            if n:
                outputs.append(_note_output(n))
                total += n
        cell.outputs = outputs
    nb.metadata.pop("widgets", None)
    parameters = nb.metadata.get("papermill", {}).get("parameters", {})
    for key, value in list(parameters.items()):
        if isinstance(value, str):
            parameters[key], n = scrub(value)
            total += n
    return nb, total


#: Colours kept when a chart is re-encoded as a palette PNG (charts use few colours).
PNG_COLOURS = 64


def shrink_png(data: str, colours: int = PNG_COLOURS) -> str:
    """Re-encode a base64 PNG (a chart) with a palette of ``colours``, when that is smaller.

    Charts drawn by matplotlib use a handful of colours but are saved as full-colour PNGs; a
    palette PNG of the same size in pixels is two to three times smaller, so reports stay
    light enough to open from a shared drive. Deterministic: the same image gives the same bytes.
    """
    import base64
    import io

    from PIL import Image

    raw = base64.b64decode(data)
    try:
        image = Image.open(io.BytesIO(raw))
        image.load()
    except (OSError, ValueError):
        return data
    if image.mode in ("P", "1", "L"):
        return data
    if image.mode in ("RGBA", "LA"):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
    quantised = image.convert("RGB").quantize(
        colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    out = io.BytesIO()
    quantised.save(out, format="PNG", compress_level=9)
    smaller = out.getvalue()
    return base64.b64encode(smaller).decode("ascii") if len(smaller) < len(raw) else data


def shrink_images(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Apply :func:`shrink_png` to every PNG output of a notebook (in place)."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                value = data["image/png"]
                text = "".join(value) if isinstance(value, list) else str(value)
                data["image/png"] = shrink_png(text.replace("\n", "").strip())
    return nb


#: Where the template puts the notebook's cells: everything between it and the last
#: ``</main>`` came from the notebook, and only that part is sanitised.
MAIN_OPEN = '<main class="qi-report" id="main">'


def sanitise_page(html_text: str) -> str:
    """Sanitise all that a notebook put into a page (:func:`qi_helpers.privacy.clean_html`).

    The page's head, header and footer come from the template, with every value escaped; the
    part between :data:`MAIN_OPEN` and the last ``</main>`` is the notebook's cells and goes
    through the allow-list sanitiser as a whole, whatever block of nbconvert's template made
    it (tables, Markdown, images, errors, cells of any type). The per-output ``qi_clean``
    filter already did this output by output; this pass closes anything a template block
    would let through.
    """
    head, found, rest = html_text.partition(MAIN_OPEN)
    if not found:
        raise PrivacyError("the report template lost its <main> element; nothing was published.")
    body, _, tail = rest.rpartition("</main>")
    return head + MAIN_OPEN + clean_html(body) + "</main>" + tail


# What the page-wide screen does not read as text: the template's stylesheet (colours such as
# ``#003087`` are not identifiers) and inline images (SVG ones are decoded and screened).
_NOT_TEXT = re.compile(
    r"<style\b[^>]*>.*?</style\s*>|data:(?P<mime>[A-Za-z0-9.+/-]+);base64,(?P<data>[A-Za-z0-9+/=]+)",
    re.IGNORECASE | re.DOTALL,
)


def _screen_svg(mime: str, data: str, screen: IdentifierScreen) -> tuple[str, int]:
    """Screen the text of an inline SVG image (its labels); other images are pixels."""
    import base64
    import binascii

    if mime.lower() != "image/svg+xml":
        return data, 0
    try:
        svg = base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return data, 0
    cleaned, n = screen.redact(svg)
    return (base64.b64encode(cleaned.encode("utf-8")).decode("ascii"), n) if n else (data, 0)


def _screen_page(html_text: str, screen: IdentifierScreen | None) -> tuple[str, int]:
    """Last safety net: screen a whole page's text, and the text of its inline SVG images."""
    if screen is None:
        return html_text, 0
    parts, total, last = [], 0, 0
    for m in _NOT_TEXT.finditer(html_text):
        cleaned, n = screen.redact(html_text[last : m.start()])
        parts.append(cleaned)
        total += n
        if m.group("data"):
            data, n = _screen_svg(m.group("mime"), m.group("data"), screen)
            parts.append(f"data:{m.group('mime')};base64,{data}")
            total += n
        else:
            parts.append(m.group(0))
        last = m.end()
    cleaned, n = screen.redact(html_text[last:])
    parts.append(cleaned)
    return "".join(parts), total + n


def _svg_base64(svg: str) -> str:
    """An SVG output as base64, shown through ``<img>``: no script in it can run, nothing loads."""
    import base64

    text = "".join(svg) if isinstance(svg, list) else str(svg)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def report_css() -> str:
    """The one stylesheet of a report page: the template's CSS and the profile cards' CSS."""
    from qi_helpers.profile_cards import CARD_CSS

    return _template_text("report.css").rstrip() + "\n" + CARD_CSS.strip() + "\n"


@functools.lru_cache(maxsize=1)
def _exporter() -> Any:
    """The report exporter (its templates compiled once per process, not once per page)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="qi_report",
        extra_template_basedirs=[str(_templates_dir())],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    exporter.register_filter("qi_clean", clean_html)
    exporter.register_filter("qi_svg_base64", _svg_base64)
    return exporter


# --- one report --------------------------------------------------------------------------------


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
    screen: IdentifierScreen | None = None,
    on_identifier: str = "redact",
    provenance: dict[str, Any] | None = None,
    site: Path | None = None,
) -> Page:
    """Convert one executed notebook to a report page.

    Code and prompts are hidden, warnings printed to stderr dropped, errors kept (a failed report
    shows what went wrong, at ``#error``). The notebook first goes through
    :func:`prepare_notebook`; HTML and Markdown outputs are sanitised (names that come from data
    cannot inject markup); the page makes no request to another host.

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
    from qi_helpers import __version__

    if site is not None:
        inside(Path(site), html_path)
    nb = nbformat.read(str(notebook), as_version=4)
    nb, redacted = prepare_notebook(nb, screen, on_identifier=on_identifier, where=str(notebook))
    shrink_images(nb)
    first_error = True
    for cell in nb.cells:
        for i, output in enumerate(cell.get("outputs", [])):
            if output.get("output_type") == "error" and first_error:
                cell.outputs.insert(
                    i,
                    nbformat.v4.new_output(
                        "display_data",
                        data={
                            "text/html": '<p id="error" class="qi-error-note">'
                            "The run stopped here with this error:</p>"
                        },
                    ),
                )
                first_error = False
                break
    parameters = {
        k: v
        for k, v in nb.metadata.get("papermill", {}).get("parameters", {}).items()
        if k not in HIDDEN_PARAMETERS
    }
    prov = {"version": __version__, "commit": "", "inputs": {}, "generated": ""}
    prov.update(provenance or {})
    exporter = _exporter()
    css = report_css()
    resources = {
        "qi": {
            "title": title,
            "subtitle": subtitle,
            "organisation": organisation,
            "home": home,
            "data_period": data_period,
            "banner": banner,
            "failed": not first_error,
            "version": prov["version"],
            "commit": prov["commit"],
            "inputs": prov["inputs"],
            "generated": prov["generated"],
            "parameters": parameters,
            "css": css,
            "csp": content_security_policy(styles=[css]),
        }
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    body, more = _screen_page(sanitise_page(body), screen)
    if more and on_identifier == "refuse":
        raise PrivacyError(f"{notebook}: the page would show {more} identifier(s).")
    safe_path = inside(Path(site) if site else html_path.parent, html_path)
    _write_text_atomic(safe_path, body)
    return Page("", "", title, "", "ok", redacted + more, len(body.encode("utf-8")))


# --- the site ----------------------------------------------------------------------------------


@dataclass
class _Context:
    """What every page of one build shares."""

    organisation: str
    screen: IdentifierScreen | None
    on_identifier: str
    show_staff: bool
    threshold: int
    hashes: dict[str, str]
    commit: str
    generated: str
    period_start: Any
    period_end: Any
    measures: pd.DataFrame
    adoption: pd.DataFrame
    notes: list[str]


def _read_input(project: Project, name: str, notes: list[str]) -> pd.DataFrame | None:
    from qi_helpers.sources import read_table

    spec = project.table_spec(name)
    if spec is None:
        return None
    try:
        frame, _ = read_table(spec, root=project.root, name=name)
    except QIError as exc:
        notes.append(f"input table `{name}` could not be read for screening: {exc}")
        return None
    return frame


def _context(project: Project) -> _Context:
    settings = project.section("publish")
    show_staff = bool(settings.get("show_staff", False))
    threshold = int(settings.get("small_cell_threshold", 11))
    on_identifier = str(settings.get("on_identifier", "redact"))
    if on_identifier not in ("redact", "refuse"):
        from qi_helpers.errors import ConfigError

        raise ConfigError(
            f"publish.on_identifier must be `redact` or `refuse`, found {on_identifier!r}."
        )
    notes: list[str] = []
    tables = read_screened_tables(project, notes)
    tables["measures"] = _read_input(project, "measures", notes)
    tables["adoption"] = _read_input(project, "adoption", notes)
    screen = IdentifierScreen.from_tables(tables, show_staff=show_staff)
    if tables.get("patients") is None and tables.get("activities") is None:
        notes.append("no patients or activities table: pages were screened by id shape only")
    starts, ends = [], []
    for name in ("activities", "measure_events"):
        frame = tables.get(name)
        if frame is not None and "timestamp" in frame.columns:
            ts = pd.to_datetime(frame["timestamp"], errors="coerce", format="mixed")
            if ts.notna().any():
                starts.append(ts.min())
                ends.append(ts.max())
    generated = ""
    if settings.get("timestamp"):
        generated = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
    measures = tables.get("measures")
    adoption = tables.get("adoption")
    return _Context(
        organisation=str(project.section("project").get("organisation", "")),
        screen=screen,
        on_identifier=on_identifier,
        show_staff=show_staff,
        threshold=threshold,
        hashes=input_hashes(project),
        commit=git_commit(project.root),
        generated=generated,
        period_start=min(starts) if starts else None,
        period_end=max(ends) if ends else None,
        measures=measures if measures is not None else pd.DataFrame(),
        adoption=adoption if adoption is not None else pd.DataFrame(),
        notes=notes,
    )


def _read_parquet(path: Path) -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame()
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError):
        return pd.DataFrame()


def _registry(project: Project) -> pd.DataFrame:
    frame = _read_parquet(project.data_dir / "registry.parquet")
    if frame.empty or "microsystem_id" not in frame.columns:
        return pd.DataFrame()
    frame = frame.assign(microsystem_id=frame["microsystem_id"].astype(str))
    return frame.drop_duplicates("microsystem_id").set_index("microsystem_id")


def _results(project: Project, ms_id: str) -> pd.DataFrame:
    folder = project.results_dir
    path = folder / f"{safe_filename(ms_id)}.parquet"
    try:
        path = inside(folder, path)
    except QIError:
        return pd.DataFrame()
    return _read_parquet(path)


def _sources(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [
        (c.cell_type, c.source)
        for c in nb.cells
        if "injected-parameters" not in c.get("metadata", {}).get("tags", [])
    ]


def _recorded_parts(
    project: Project, manifest: dict[str, Any], workbook: str, name: str, notebook: Path
) -> dict[str, str] | None:
    """The fingerprint the runner recorded when it made ``notebook`` (None when it recorded none).

    ``qi run`` keeps, per task, the content digests of everything the task read when it last ran
    successfully (``history`` in ``outputs/run.json``, see :func:`qi_helpers.plan.fingerprint`),
    including the upstream tables under ``outputs/data/``. A skipped task keeps the fingerprint
    of the run that made its notebook.
    """
    code = next((k for k, v in WORKBOOKS.items() if v == workbook), None)
    if code is None:
        return None
    label = f"{code}:{name}" if code == "03" else code
    entry = (manifest.get("history") or {}).get(label)
    if not isinstance(entry, dict) or not isinstance(entry.get("parts"), dict):
        return None
    output = entry.get("output")
    if output and output != project.relative(notebook):
        return None
    return {str(k): str(v) for k, v in entry["parts"].items()} or None


def _upstream_label(project: Project, key: str) -> str:
    """How a stale banner names an upstream table, e.g. ``the registry (workbook 01)``."""
    path = Path(key)
    if path.name == "registry.parquet":
        return "the registry (workbook 01)"
    if path.parent.name == project.results_dir.name:
        return f"{key} (workbook 03)"
    writer = OUTPUT_WRITERS.get(path.stem)
    return f"{key} (workbook {writer})" if writer else key


def _upstream_change(
    project: Project, workbook: str, parts: dict[str, str], digest: Callable[[Path], str]
) -> str:
    """The first upstream table whose content differs from the recorded one (``""`` if none).

    The tables compared are those recorded in ``parts`` and those the workbook reads now
    (:data:`qi_helpers.plan.UPSTREAM_FILES`): a table that appeared or disappeared counts as a
    change. ``digest`` gives a file's sha256 (as :class:`qi_helpers.plan.FileHashes` does).
    """
    code = next((k for k, v in WORKBOOKS.items() if v == workbook), "")
    prefix = project.relative(project.data_dir) + "/"
    current = {
        project.relative(path): path
        for pattern in UPSTREAM_FILES.get(code, ())
        for path in sorted(project.data_dir.glob(pattern))
    }
    keys = sorted({k for k in parts if k.startswith(prefix)} | set(current))
    for key in keys:
        now = digest(current[key]) if key in current else "missing"
        if parts.get(key, "missing") != now:
            return f"{_upstream_label(project, key)} changed after this report was made"
    return ""


def _stale(
    project: Project,
    workbook: str,
    notebook: Path,
    executed: nbformat.NotebookNode,
    recorded: dict[str, str] | None,
    current: dict[str, str],
    parts: dict[str, str] | None = None,
    digest: Callable[[Path], str] | None = None,
) -> str:
    """Why an executed notebook no longer matches what it was made from (``""`` if it does).

    Stale when the workbook's cells differ from the executed ones, when the input tables'
    content hashes differ from those the run recorded (or, when it recorded none, when an input
    file is newer than the notebook), or when an upstream table under ``outputs/data/`` differs
    in content from the one the run recorded in ``parts`` (its fingerprint). Only when no
    fingerprint was recorded (a notebook run by hand, a manifest of an older version) does a
    newer upstream file count as a change.
    """
    source = project.workbooks_dir / f"{workbook}.ipynb"
    if source.is_file():
        try:
            if _sources(nbformat.read(str(source), as_version=4)) != _sources(executed):
                return "the workbook changed after this report was made"
        except (OSError, ValueError):
            pass
    made = notebook.stat().st_mtime
    sources: list[tuple[str, Path]] = []
    if recorded:
        changed = sorted(k for k, v in recorded.items() if k in current and current[k] != v)
        if changed:
            return f"input table {changed[0]} changed after this report was made"
    else:
        for name, spec in (project.section("data").get("tables") or {}).items():
            if isinstance(spec, dict) and "path" in spec:
                sources.append((f"input table {name}", project.path(spec["path"])))
    if parts:
        why = _upstream_change(project, workbook, parts, digest or FileHashes().digest)
        if why:
            return why
    else:
        if workbook != "01_identify_microsystems":
            sources.append(("the registry (workbook 01)", project.data_dir / "registry.parquet"))
        if workbook == "04_plan_spread":
            sources.append(("the pilots (workbook 02)", project.data_dir / "pilots.parquet"))
    for why, path in sources:
        if path.is_file() and path.stat().st_mtime > made + 1:
            return f"{why} changed after this report was made"
    return ""


def _title(workbook: str, ms_id: str, registry: pd.DataFrame) -> tuple[str, str]:
    if workbook == "03_analyse_tests":
        name = ms_id
        if not registry.empty and ms_id in registry.index and "name" in registry.columns:
            name = str(registry.at[ms_id, "name"])
        return f"Tests of change: {name}", f"Microsystem {ms_id}"
    return TITLES.get(workbook, workbook), ""


# --- the site folder and its manifest ----------------------------------------------------------

#: The site's manifest, written (atomically) into the site folder: every file the site wrote,
#: with its sha256 and, for a page, what it was made from (to reuse a page whose inputs are
#: unchanged). A folder is published into, cleaned and zipped only through its manifest.
SITE_MANIFEST = "site.json"

#: What the ``format`` of a site manifest says.
SITE_FORMAT = "qi-site/1"

#: The page cache of versions that wrote no manifest: read once, to take such a site over.
PAGE_CACHE = ".pages.json"

#: Files a desktop leaves in any folder it shows (never the site's: not listed, zipped or deleted).
DESKTOP_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def _site_relpath(rel: object) -> str | None:
    """``rel`` when it is a plain relative path of a file inside a site, else None."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel or rel == SITE_MANIFEST:
        return None
    if rel.startswith("/") or any(part in ("", ".", "..") for part in rel.split("/")):
        return None
    return rel


def _parse_site_manifest(text: str) -> dict[str, Any] | None:
    """A site manifest's content, or None when ``text`` is not one :func:`publish_site` wrote."""
    try:
        manifest = json.loads(text)
    except ValueError:
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != SITE_FORMAT:
        return None
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        _site_relpath(rel) and isinstance(entry, dict) for rel, entry in files.items()
    ):
        return None
    return manifest


def read_site_manifest(site: Path) -> dict[str, Any] | None:
    """The manifest of the site published into ``site``: ``{"format", "complete", "files"}``.

    ``files`` maps each file the site wrote (a path relative to the site folder) to its
    ``sha256`` and, for pages, the key it was made from, the identifiers removed and its size
    (numbers and digests only: the manifest is published with the site). ``complete`` is
    false while a build is under way (or when one stopped half-way).

    Returns
    -------
    dict or None
        None when the folder holds no manifest, or one :func:`publish_site` did not write.
    """
    path = Path(site) / SITE_MANIFEST
    if path.is_symlink() or not path.is_file():
        return None
    try:
        return _parse_site_manifest(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def _write_site_manifest(site: Path, files: dict[str, dict[str, Any]], *, complete: bool) -> Path:
    manifest = {
        "format": SITE_FORMAT,
        "complete": complete,
        "files": {rel: files[rel] for rel in sorted(files)},
    }
    path = Path(site) / SITE_MANIFEST
    _write_text_atomic(path, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return path


def _legacy_site(site: Path) -> dict[str, dict[str, Any]] | None:
    """The files of a site published before sites had a manifest, or None if ``site`` is not one.

    Such a site holds ``index.html``, the page cache and ``.html`` pages in the workbooks'
    folders, and nothing else (no link either): those files stand for its manifest, with the page
    cache's entries so that its pages can be reused.
    """
    files: dict[str, dict[str, Any]] = {}
    for folder, dirs, names in os.walk(site):
        here = Path(folder)
        top = here == Path(site)
        for name in dirs:
            if not top or name not in WORKBOOKS.values() or (here / name).is_symlink():
                return None
        for name in sorted(set(names) - DESKTOP_FILES):
            path = here / name
            allowed = (
                name in ("index.html", PAGE_CACHE)
                if top
                else name.endswith(".html") and not name.startswith(".")
            )
            if not allowed or path.is_symlink() or not path.is_file():
                return None
            files[name if top else f"{here.name}/{name}"] = {}
    if "index.html" not in files:
        return None
    try:
        cache = json.loads((Path(site) / PAGE_CACHE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    for href, entry in cache.items() if isinstance(cache, dict) else ():
        if href in files and isinstance(entry, dict):
            kept = ("key", "sha256", "redacted", "bytes")
            files[href] = {k: entry[k] for k in kept if k in entry}
    return files


def _site_name(site: Path) -> Path:
    """The site folder as named (``--out .`` is the working folder), links not followed."""
    return Path(os.path.abspath(site))


def _site_archive(site: Path) -> Path:
    """Where the zip of a site goes by default: ``<site>.zip`` beside the site folder."""
    named = _site_name(site)
    return named.with_name(named.name + ".zip")


def _check_archive_target(site: Path, archive: Path) -> None:
    """Refuse to replace a file that is not an earlier zip of this site."""
    prefix = _site_name(site).name + "/"
    if not archive.exists() and not archive.is_symlink():
        return
    why = ""
    if archive.is_symlink() or not archive.is_file():
        why = "it is not a regular file"
    else:
        try:
            with zipfile.ZipFile(archive) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError):
            names = None
        if names is None:
            why = "it is not a zip archive"
        elif not all(n.startswith(prefix) for n in names):
            why = f"it holds files outside {prefix}, so it is not an earlier zip of this site"
    if why:
        raise ConfigError(
            f"{archive}: refusing to replace it with the site's zip: {why}. Move it away, or "
            "publish the site into another folder."
        )


def _site_folder(project: Project, site: Path, *, archive: bool) -> dict[str, dict[str, Any]]:
    """Check that ``site`` may receive the site, before anything is written; return the files
    of the site already there (``{}`` for a new or empty folder).

    A site folder is a folder that does not exist yet, an empty folder, or one that holds a
    site published before, recognised by its manifest (:data:`SITE_MANIFEST`; a site of a
    version without manifests by its layout, see :func:`_legacy_site`). The project folder, and
    any folder that is or holds the project's parameters, workbooks, executed notebooks or data
    tables, never is.

    Raises
    ------
    ConfigError
        Naming the folder and why it cannot receive the site.
    """

    def refuse(why: str) -> ConfigError:
        return ConfigError(
            f"{site}: refusing to publish the site into this folder: {why}. Nothing was "
            "written. Give a new or empty folder, or the folder of a site published before "
            f"(it holds {SITE_MANIFEST})."
        )

    real = site.resolve()
    guarded = {
        "the project folder": project.root,
        "the project's parameters": project.root / "parameters",
        "the project's workbooks": project.workbooks_dir,
        "the project's outputs": project.outputs_dir,
        "the executed notebooks": project.notebooks_dir,
        "the tables under outputs/data": project.data_dir,
    }
    for what, folder in guarded.items():
        folder = folder.resolve()
        if real == folder:
            raise refuse(f"it is {what}")
        if real in folder.parents:
            raise refuse(f"it holds {what}")
    if (site.exists() or site.is_symlink()) and not site.is_dir():
        raise refuse("it is not a folder")
    if archive:
        _check_archive_target(site, _site_archive(site))
    if not site.exists():
        return {}
    try:
        entries = sorted(p.name for p in site.iterdir() if p.name not in DESKTOP_FILES)
    except OSError as exc:
        raise refuse(f"it cannot be listed ({exc})") from exc
    if not entries:
        return {}
    manifest = read_site_manifest(site)
    if manifest is not None:
        return dict(manifest["files"])
    if SITE_MANIFEST in entries:
        raise refuse(f"its {SITE_MANIFEST} is not a site manifest written by `qi publish`")
    legacy = _legacy_site(site)
    if legacy is not None:
        return legacy
    shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
    raise refuse(f"it is not empty (it holds {shown}) and holds no site manifest {SITE_MANIFEST}")


def _clean_old_pages(site: Path, previous: dict[str, dict[str, Any]], keep: set[str]) -> list[str]:
    """Delete the files of the previous site that this build did not write again.

    Only files the previous manifest lists are ever deleted, and only regular files inside the
    site folder (never through a link); folders they leave empty go too.

    Returns
    -------
    list of str
        The files deleted, relative to the site folder.
    """
    real = site.resolve()
    removed = []
    for rel in sorted(set(previous) - keep):
        if _site_relpath(rel) is None:
            continue
        path = site / rel
        try:
            inside(real, path)
        except QIError:
            continue
        if path.is_symlink() or not path.is_file():
            continue
        path.unlink()
        removed.append(rel)
        parent = path.parent
        while parent.resolve() != real:
            try:
                parent.rmdir()  # only when empty
            except OSError:
                break
            parent = parent.parent
    return removed


def _notebooks(project: Project, workbook: str) -> list[Path]:
    """The executed notebooks of one workbook that become pages."""
    folder = project.notebooks_dir / workbook
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.glob("*.ipynb")) if not p.name.startswith(".")]


def _page_name(notebook: Path) -> tuple[bool, str, str]:
    """``(failed, stem, page file name)`` of an executed notebook."""
    failed = notebook.name.endswith(FAILED_SUFFIX)
    stem = notebook.name.removesuffix(FAILED_SUFFIX).removesuffix(".ipynb")
    return failed, stem, safe_filename(stem) + (".failed.html" if failed else ".html")


def _page_key(notebook: Path, options: dict[str, Any], shared: str) -> str:
    """What a page's bytes depend on: the executed notebook, its header and footer, and
    ``shared`` (the code, the publish settings and the tables the identifier screen reads)."""
    content = json.dumps(
        {"notebook": _sha256(notebook), "options": options, "shared": shared},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def _cached_page(site: Path, href: str, key: str, cache: dict[str, dict[str, Any]]) -> Page | None:
    """The page already at ``href`` when it was made from ``key`` and is unchanged since."""
    entry = cache.get(href)
    path = site / href
    if not entry or entry.get("key") != key or path.is_symlink() or not path.is_file():
        return None
    if _sha256(path) != entry.get("sha256"):
        return None
    # No title is kept in the manifest, which is published with the site: the caller has it.
    try:
        return Page("", "", "", href, "ok", int(entry["redacted"]), int(entry["bytes"]))
    except (KeyError, TypeError, ValueError):
        return None


def publish_site(
    project: Project, out_dir: Path | None = None, *, archive: bool = False
) -> SiteReport:
    """Publish every executed notebook under ``outputs/notebooks/`` and write the index.

    Each notebook becomes ``<site>/<workbook>/<name>.html`` (a failed run's notebook
    ``<name>.failed.html``, beside the last good report). The site's manifest,
    ``<site>/site.json`` (:data:`SITE_MANIFEST`), lists every file the site wrote with its
    sha256; pages of notebooks that no longer exist are removed, and only files the previous
    manifest lists are ever removed. Identifiers of the configured input tables are removed
    from every page (see :func:`prepare_notebook`); ``publish.on_identifier: refuse`` stops
    instead.

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

    Returns
    -------
    SiteReport
        The index, every page with its size and the identifiers removed, notes, the archive.

    Raises
    ------
    ConfigError
        When ``out_dir`` cannot receive the site (see above), naming it and why.
    PrivacyError
        With ``publish.on_identifier: refuse`` when a page would show an identifier.
    """
    site = Path(out_dir) if out_dir else project.site_dir
    # Before anything is written: is this folder empty, new, or a site we published?
    previous = _site_folder(project, site, archive=archive)
    ctx = _context(project)
    registry = _registry(project)
    manifest = _manifest(project)
    # Upstream tables do not change while publishing: each is hashed once, not once per report.
    file_hashes = FileHashes(manifest.get("file_hashes"))
    digest = functools.cache(file_hashes.digest)
    # A page is made again only when what it is made from changed (publishing is the slowest
    # step of a run that changed one microsystem). Not with a database source: the identifier
    # screen reads tables whose content cannot be hashed.
    reuse = not any(str(v).startswith("database:") for v in ctx.hashes.values())
    shared = json.dumps(
        [package_version(file_hashes), project.section("publish"), ctx.hashes, ctx.commit,
         ctx.generated, ctx.organisation],
        sort_keys=True,
        default=str,
    )  # fmt: skip
    cache = previous if reuse else {}
    planned = {
        f"{workbook}/{_page_name(notebook)[2]}"
        for workbook in WORKBOOKS.values()
        for notebook in _notebooks(project, workbook)
    }
    # Listed before any page is written, so that a build stopped half-way leaves a folder that
    # is still recognised as a site, and every file it wrote can be cleaned away later.
    site.mkdir(parents=True, exist_ok=True)
    pending = {rel: {"sha256": ""} for rel in planned | {"index.html"}}
    _write_site_manifest(site, {**pending, **previous}, complete=False)
    made: dict[str, dict[str, Any]] = {}
    pages: list[Page] = []
    stale: dict[tuple[str, str], str] = {}
    for workbook in WORKBOOKS.values():
        for notebook in _notebooks(project, workbook):
            failed, stem, page_name = _page_name(notebook)
            executed = nbformat.read(str(notebook), as_version=4)
            meta = executed.metadata.get("papermill", {})
            ms_id = str(meta.get("parameters", {}).get("microsystem_id", "") or "")
            if workbook != "03_analyse_tests":
                ms_id = ""
            name = ms_id or stem
            title, subtitle = _title(workbook, name, registry)
            end = ctx.period_end
            if workbook == "03_analyse_tests":
                results = _results(project, name)
                if "last_period" in results.columns and results["last_period"].notna().any():
                    end = pd.to_datetime(results["last_period"]).max()
            period = format_period(ctx.period_start, end)
            recorded = _recorded_hashes(manifest, workbook, stem)
            banner = ""
            if failed:
                banner = (
                    "This run FAILED: the error is shown below. The last good report is kept "
                    "and linked from the index."
                )
            else:
                parts = _recorded_parts(project, manifest, workbook, name, notebook)
                why = _stale(
                    project, workbook, notebook, executed, recorded, ctx.hashes, parts, digest
                )
                if why:
                    stale[(workbook, name)] = why
                    banner = f"This report may be out of date: {why}. Run `qi run` again."
            html_path = inside(site, site / workbook / page_name)
            href = f"{workbook}/{page_name}"
            options = {
                "title": title,
                "subtitle": subtitle,
                "period": period,
                "banner": banner,
                "inputs": recorded or ctx.hashes,
            }
            key = _page_key(notebook, options, shared)
            page = _cached_page(site, href, key, cache)
            reused = page is not None
            if page is None:
                page = export_report(
                    notebook,
                    html_path,
                    title=title,
                    subtitle=subtitle,
                    organisation=ctx.organisation,
                    home="../index.html",
                    data_period=period,
                    banner=banner,
                    screen=ctx.screen,
                    on_identifier=ctx.on_identifier,
                    provenance={
                        "commit": ctx.commit,
                        "inputs": recorded or ctx.hashes,
                        "generated": ctx.generated,
                    },
                    site=site,
                )
            made[href] = {
                "key": key,
                # a reused page was just checked against its recorded digest
                "sha256": cache[href]["sha256"] if reused else _sha256(html_path),
                "redacted": page.redacted,
                "bytes": page.bytes,
            }
            page.workbook, page.name, page.title = workbook, name, title
            page.href = f"{workbook}/{page_name}"
            page.status = "failed" if failed else "ok"
            pages.append(page)
    if not pages:
        ctx.notes.append(f"no executed notebooks under {project.notebooks_dir}: run `qi run` first")
    _clean_old_pages(site, previous, set(made) | {"index.html"})
    index_html = render_index(project, pages, registry, context=ctx, stale=stale)
    index_html, n = _screen_page(index_html, ctx.screen)
    index = inside(site, site / "index.html")
    index_bytes = index_html.encode("utf-8")
    _write_text_atomic(index, index_html)
    made["index.html"] = {"sha256": hashlib.sha256(index_bytes).hexdigest()}
    _write_site_manifest(site, made, complete=True)
    report = SiteReport(index, pages, len(index_bytes), ctx.notes)
    if n:
        ctx.notes.append(f"{n} identifier(s) removed from the index")
    if archive:
        report.archive = zip_site(site)
    return report


def build_site(project: Project, out_dir: Path | None = None) -> Path:
    """Publish the site (see :func:`publish_site`) and return the index page's path.

    Parameters
    ----------
    project : Project
    out_dir : Path, optional
        The site folder; default ``outputs/site``. New, empty, or a site published before
        (see :func:`publish_site`).

    Returns
    -------
    Path
        ``<out_dir>/index.html``.
    """
    return publish_site(project, out_dir).index


def zip_site(site: Path, archive: Path | None = None) -> Path:
    """Zip a published site for copying to a shared drive: ``<site>.zip`` by default.

    The archive holds exactly the files the site's manifest (:data:`SITE_MANIFEST`) lists, and
    the manifest, under ``<site name>/``: nothing else that may lie in the folder. Each file is
    checked against the sha256 the manifest records. Entries are sorted and dated 1 Jan 1980, so
    the same site gives the same bytes.

    Parameters
    ----------
    site : Path
        A folder :func:`publish_site` wrote.
    archive : Path, optional
        Where the zip goes; an existing file there is replaced only when it is an earlier zip of
        this site.

    Returns
    -------
    Path
        The archive.

    Raises
    ------
    ConfigError
        When the folder holds no finished site manifest, a listed file is missing, is a link or
        changed since it was published, or ``archive`` is some other file.
    """
    site = Path(site)
    real, prefix = site.resolve(), _site_name(site).name
    archive = Path(archive) if archive else _site_archive(site)
    _check_archive_target(site, archive)
    listed = site / SITE_MANIFEST
    try:
        raw = b"" if listed.is_symlink() else listed.read_bytes()
        manifest = _parse_site_manifest(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError):
        manifest = None
    if manifest is None or not manifest.get("complete"):
        raise ConfigError(
            f"{site}: no finished site to zip (no complete {SITE_MANIFEST}); publish it first "
            "with `qi publish`."
        )
    files: dict[str, dict[str, Any]] = manifest["files"]
    tmp = archive.with_name(f".{archive.name}.tmp-{os.getpid()}")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for rel in sorted([*files, SITE_MANIFEST]):
                path = site / rel
                if rel == SITE_MANIFEST:
                    data = raw
                else:
                    if path.is_symlink() or not path.is_file():
                        raise ConfigError(
                            f"{path}: listed in {SITE_MANIFEST} but missing or not a regular "
                            "file; publish the site again."
                        )
                    inside(real, path)
                    data = path.read_bytes()
                    if hashlib.sha256(data).hexdigest() != files[rel].get("sha256"):
                        raise ConfigError(
                            f"{path}: changed since the site was published (its sha256 is not "
                            f"the one {SITE_MANIFEST} records); publish the site again."
                        )
                info = zipfile.ZipInfo(f"{prefix}/{rel}", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)
        os.replace(tmp, archive)
    finally:
        tmp.unlink(missing_ok=True)
    return archive


# --- the index dashboard -----------------------------------------------------------------------

#: Making Data Count variation icons: (css class, glyph, text for screen readers).
VARIATION_BADGES: dict[str, tuple[str, str, str]] = {
    "common_cause": ("mdc-common", "~", "Common cause variation: no significant change"),
    "improvement_high": ("mdc-improve", "H", "Special cause variation: improvement (higher)"),
    "improvement_low": ("mdc-improve", "L", "Special cause variation: improvement (lower)"),
    "concern_high": ("mdc-concern", "H", "Special cause variation: concern (higher)"),
    "concern_low": ("mdc-concern", "L", "Special cause variation: concern (lower)"),
    "neutral_high": ("mdc-neutral", "H", "Special cause variation: neither better nor worse "
                     "(higher)"),
    "neutral_low": ("mdc-neutral", "L", "Special cause variation: neither better nor worse "
                    "(lower)"),
}  # fmt: skip

#: Making Data Count assurance icons.
ASSURANCE_BADGES: dict[str, tuple[str, str, str]] = {
    "consistent_pass": ("mdc-pass", "P", "Assurance: the target will consistently be met"),
    "consistent_fail": ("mdc-fail", "F", "Assurance: the target will consistently be missed"),
    "inconsistent": ("mdc-hit-miss", "?", "Assurance: the target may or may not be met"),
}


def _badge(kind: str, value: Any) -> dict[str, str]:
    table = VARIATION_BADGES if kind == "variation" else ASSURANCE_BADGES
    key = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    if key in table:
        css, glyph, text = table[key]
        return {"css": css, "glyph": glyph, "text": text, "key": key}
    text = "No variation badge" if kind == "variation" else "No assurance badge (no target)"
    return {"css": "mdc-none", "glyph": "", "text": text, "key": ""}


def _number(value: Any, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}" if abs(v) >= 1 else f"{v:.2g}"
    unit = str(unit or "")
    if unit in ("", "nan", "None"):
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def _measure_rows(results: pd.DataFrame, measures: pd.DataFrame) -> list[dict[str, Any]]:
    units = {}
    if not measures.empty and {"measure_id", "unit"} <= set(measures.columns):
        units = dict(zip(measures["measure_id"].astype(str), measures["unit"], strict=False))
    rows = []
    for _, r in results.iterrows():
        mid = str(r.get("measure_id", ""))
        rows.append(
            {
                "id": mid,
                "name": str(r.get("name", mid) or mid),
                "verdict": str(r.get("verdict", "") or ""),
                "variation": _badge("variation", r.get("variation_icon")),
                "assurance": _badge("assurance", r.get("assurance_icon")),
                "last_value": _number(r.get("last_value"), units.get(mid, "")),
            }
        )
    return rows


def _roles(project: Project, ctx: _Context) -> dict[str, list[str]]:
    roles: dict[str, list[str]] = {}
    pilots = _read_parquet(project.data_dir / "pilots.parquet")
    if {"microsystem_id", "selected"} <= set(pilots.columns):
        for ms in pilots.loc[pilots["selected"].fillna(False).astype(bool), "microsystem_id"]:
            roles.setdefault(str(ms), []).append("Pilot")
    plan = _read_parquet(project.data_dir / "spread_plan.parquet")
    if {"microsystem_id", "wave"} <= set(plan.columns):
        for ms, group in plan.groupby(plan["microsystem_id"].astype(str), sort=True):
            waves = sorted({int(w) for w in group["wave"].dropna()})
            if waves:
                label = "Adopter, wave " + ", ".join(str(w) for w in waves)
                roles.setdefault(ms, []).append(label)
    if {"microsystem_id", "change"} <= set(ctx.adoption.columns):
        adopted = ctx.adoption.groupby(ctx.adoption["microsystem_id"].astype(str))["change"]
        for ms, changes in adopted:
            n = changes.nunique()
            roles.setdefault(ms, []).append(f"Adopted {n} change{'s' if n != 1 else ''}")
    return roles


def _role_tags(roles: list[str]) -> str:
    tags = ["pilot"] if "Pilot" in roles else []
    tags += ["adopter"] if any(r.startswith("Adopt") for r in roles) else []
    return " ".join(tags) or "none"


def render_index(
    project: Project,
    pages: list[Page],
    registry: pd.DataFrame,
    *,
    context: _Context | None = None,
    stale: dict[tuple[str, str], str] | None = None,
) -> str:
    """The site's index: a dashboard of the organisation-level reports and every microsystem.

    Every microsystem in the registry (or with a report) gets a row: kind, site, pilot or
    adopter status, for each measure a Making Data Count variation and assurance badge with its
    last value, the last data period, the run status (``ok``, ``failed`` linking to the error,
    ``stale``, ``not run``) and the report link. Sorting and filtering use a small inline script;
    without it the table is a plain table. Every value from data is HTML-escaped.
    """
    import jinja2

    ctx = context or _context(project)
    stale = stale or {}
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_templates_dir() / "qi_report")),
        autoescape=True,
        keep_trailing_newline=True,
    )
    by_key: dict[tuple[str, str], dict[str, Page]] = {}
    for page in pages:
        by_key.setdefault((page.workbook, page.name), {})[page.status] = page
    org = []
    for workbook in ("01_identify_microsystems", "02_select_pilots", "04_plan_spread"):
        found = by_key.get((workbook, workbook), {})
        good, bad = found.get("ok"), found.get("failed")
        status = (
            "failed"
            if bad
            else "stale"
            if (workbook, workbook) in stale
            else ("ok" if good else "not run")
        )
        org.append(
            {
                "title": TITLES[workbook],
                "purpose": PURPOSES[workbook],
                "href": good.href if good else "",
                "error_href": f"{bad.href}#error" if bad else "",
                "status": status,
                "why": stale.get((workbook, workbook), ""),
            }
        )
    ids = list(registry.index) if not registry.empty else []
    ids += sorted({p.name for p in pages if p.workbook == "03_analyse_tests"} - set(map(str, ids)))
    roles = _roles(project, ctx)
    rows = []
    last_periods = []
    for ms_id in map(str, ids):
        info = registry.loc[ms_id] if ms_id in registry.index else pd.Series(dtype=object)
        found = by_key.get(("03_analyse_tests", ms_id), {})
        good, bad = found.get("ok"), found.get("failed")
        key = ("03_analyse_tests", ms_id)
        status = "failed" if bad else "stale" if key in stale else "ok" if good else "not run"
        results = _results(project, ms_id)
        last = None
        if "last_period" in results.columns and results["last_period"].notna().any():
            last = pd.to_datetime(results["last_period"]).max()
            last_periods.append(last)
        rows.append(
            {
                "id": ms_id,
                "name": str(info.get("name", "") or ""),
                "kind": str(info.get("kind", "") or "").replace("_", " "),
                "site": str(info.get("site", "") or ""),
                "roles": roles.get(ms_id, []),
                "role_tags": _role_tags(roles.get(ms_id, [])),
                "measures": _measure_rows(results, ctx.measures),
                "last": _format_day(last) if last is not None else "",
                "last_sort": last.strftime("%Y-%m-%d") if last is not None else "",
                "status": status,
                "why": stale.get(key, ""),
                "href": good.href if good else "",
                "error_href": f"{bad.href}#error" if bad else "",
            }
        )
    manifest = _manifest(project)
    tasks = manifest.get("tasks", [])
    summary = {
        "microsystems": len(rows),
        "pilots": sum("Pilot" in r["roles"] for r in rows),
        "adopters": sum(any(x.startswith("Adopt") for x in r["roles"]) for r in rows),
        "failed": sum(r["status"] == "failed" for r in rows + org),
        "stale": sum(r["status"] == "stale" for r in rows + org),
        "run_tasks": len(tasks),
        "run_failed": sum(t.get("status") != "ok" for t in tasks),
    }
    template = env.get_template("site_index.html.j2")
    from qi_helpers import __version__

    css = _template_text("report.css") + _template_text("dashboard.css")
    script = _template_text("dashboard.js")
    return template.render(
        organisation=ctx.organisation,
        project_name=str(project.section("project").get("name", "")),
        period=format_period(ctx.period_start, max(last_periods) if last_periods else None)
        if last_periods
        else format_period(ctx.period_start, ctx.period_end),
        org=org,
        rows=rows,
        kinds=sorted({r["kind"] for r in rows if r["kind"]}),
        sites=sorted({r["site"] for r in rows if r["site"]}),
        summary=summary,
        css=css,
        script=script,
        csp=content_security_policy(styles=[css], scripts=[script]),
        variation_legend=[(k, *v) for k, v in VARIATION_BADGES.items() if k != "neutral_low"],
        assurance_legend=[(k, *v) for k, v in ASSURANCE_BADGES.items()],
        version=__version__,
        commit=ctx.commit,
        inputs=ctx.hashes,
        generated=ctx.generated,
        redacted_mark=REDACTED,
        escape=escape,
    )
