"""Whether a report is out of date: what changed after its notebook was executed.

A report is stale when its workbook's cells changed, when an input table's content differs from
the one the run recorded, or when an upstream table under ``outputs/data/`` differs from the one
the run's fingerprint recorded (see :func:`qi_helpers.publish.run_record.recorded_parts`). A
notebook with no record (run by hand, or by an older version) is compared by modification time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat

from qi_helpers.io import FileHashes
from qi_helpers.project import Project
from qi_helpers.slices import read_record, slices_current
from qi_helpers.workflow import workbook_named, writer_of


def _sources(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """The cells of a notebook as written (papermill's injected parameters left out)."""
    return [
        (c.cell_type, c.source)
        for c in nb.cells
        if "injected-parameters" not in c.get("metadata", {}).get("tags", [])
    ]


def _upstream_label(project: Project, key: str) -> str:
    """How a stale banner names an upstream table, e.g. ``the registry (workbook 01)``."""
    path = Path(key)
    if path.name == "registry.parquet":
        return "the registry (workbook 01)"
    if path.parent.name == project.results_dir.name:
        return f"{key} (workbook 03)"
    writer = writer_of(path.stem)
    return f"{key} (workbook {writer})" if writer else key


def _upstream_change(
    project: Project, workbook: str, parts: dict[str, str], digest: Callable[[Path], str]
) -> str:
    """The first upstream table whose content differs from the recorded one (``""`` if none).

    The tables compared are those recorded in ``parts`` and those the workbook reads now
    (:attr:`qi_helpers.workflow.Workbook.upstream`): a table that appeared or disappeared counts
    as a change. ``digest`` gives a file's sha256 (as :class:`qi_helpers.io.FileHashes` does).
    """
    known = workbook_named(workbook)
    prefix = project.relative(project.data_dir) + "/"
    current = {
        project.relative(path): path
        for pattern in (known.upstream if known else ())
        if "{microsystem}" not in pattern  # one microsystem's files: those recorded, below
        for path in sorted(project.data_dir.glob(pattern))
    }
    for key in parts:
        if key.startswith(prefix) and (project.root / key).is_file():
            current.setdefault(key, project.root / key)
    keys = sorted({k for k in parts if k.startswith(prefix)} | set(current))
    for key in keys:
        now = digest(current[key]) if key in current else "missing"
        if parts.get(key, "missing") != now:
            return f"{_upstream_label(project, key)} changed after this report was made"
    return ""


def _workbook_changed(project: Project, workbook: str, executed: nbformat.NotebookNode) -> bool:
    """Whether the workbook's cells differ from those its executed notebook ran."""
    source = project.workbooks_dir / f"{workbook}.ipynb"
    if not source.is_file():
        return False
    try:
        return _sources(nbformat.read(str(source), as_version=4)) != _sources(executed)
    except (OSError, ValueError):
        return False


def _input_files(project: Project) -> list[tuple[str, Path]]:
    """The input tables read from files: ``(how a banner names it, path)``."""
    return [
        (f"input table {name}", project.path(spec["path"]))
        for name, spec in (project.section("data").get("tables") or {}).items()
        if isinstance(spec, dict) and "path" in spec
    ]


def _upstream_files(project: Project, workbook: str) -> list[tuple[str, Path]]:
    """The upstream tables compared by modification time when the run recorded no fingerprint."""
    files = []
    if workbook != "01_identify_microsystems":
        files.append(("the registry (workbook 01)", project.data_dir / "registry.parquet"))
    if workbook == "04_plan_spread":
        files.append(("the pilots (workbook 02)", project.data_dir / "pilots.parquet"))
    return files


def stale_reason(
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

    Parameters
    ----------
    project : Project
    workbook : str
        The workbook's name, e.g. ``03_analyse_tests``.
    notebook : Path
        The executed notebook.
    executed : NotebookNode
        Its content.
    recorded : dict, optional
        The input hashes the run recorded (see
        :func:`qi_helpers.publish.run_record.recorded_hashes`).
    current : dict
        The input hashes now (:func:`qi_helpers.publish.provenance.input_hashes`).
    parts : dict, optional
        The run's fingerprint (:func:`qi_helpers.publish.run_record.recorded_parts`).
    digest : callable, optional
        A file's sha256 (default: a new :class:`qi_helpers.io.FileHashes`).

    Returns
    -------
    str
        The reason, for the page's banner, or ``""``.
    """
    if _workbook_changed(project, workbook, executed):
        return "the workbook changed after this report was made"
    known = workbook_named(workbook)
    if known is not None and known.sliced and read_record(project) and not slices_current(project):
        # Its slice is cut from the tables as they were at the last run: which microsystems
        # an edit touches is known only once `qi run` prepares the slices again.
        return "the input tables changed after this report was made"
    made = notebook.stat().st_mtime
    sources: list[tuple[str, Path]] = []
    if recorded:
        changed = sorted(k for k, v in recorded.items() if k in current and current[k] != v)
        if changed:
            return f"input table {changed[0]} changed after this report was made"
    else:
        sources += _input_files(project)
    if parts:
        why = _upstream_change(project, workbook, parts, digest or FileHashes().digest)
        if why:
            return why
    else:
        sources += _upstream_files(project, workbook)
    for why, path in sources:
        if path.is_file() and path.stat().st_mtime > made + 1:
            return f"{why} changed after this report was made"
    return ""
