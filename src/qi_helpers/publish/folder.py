"""Which folder may receive a site, and removing the files an earlier build left there.

A site folder is a folder that does not exist yet, an empty folder, or one that holds a site
published before, recognised by its manifest (:data:`~qi_helpers.publish.manifest.SITE_MANIFEST`).
The project folder, and any folder that is or holds the project's parameters, workbooks,
executed notebooks or data tables, never is. Only files a previous manifest lists are ever
deleted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qi_helpers.errors import ConfigError, QIError
from qi_helpers.privacy.names import inside
from qi_helpers.project import Project
from qi_helpers.publish.archive import check_archive_target, site_archive
from qi_helpers.publish.manifest import (
    DESKTOP_FILES,
    SITE_MANIFEST,
    legacy_site_files,
    read_site_manifest,
    site_relpath,
)


def _refusal(site: Path, why: str) -> ConfigError:
    """The error that names ``site`` and why it cannot receive the site."""
    return ConfigError(
        f"{site}: refusing to publish the site into this folder: {why}. Nothing was "
        "written. Give a new or empty folder, or the folder of a site published before "
        f"(it holds {SITE_MANIFEST})."
    )


def _check_not_project(project: Project, site: Path) -> None:
    """Refuse a folder that is, or holds, the project or a folder of its inputs and outputs."""
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
            raise _refusal(site, f"it is {what}")
        if real in folder.parents:
            raise _refusal(site, f"it holds {what}")


def _existing_site(site: Path, entries: list[str]) -> dict[str, dict[str, Any]]:
    """The files of the site already in a folder that is not empty (else the refusal)."""
    manifest = read_site_manifest(site)
    if manifest is not None:
        return dict(manifest["files"])
    if SITE_MANIFEST in entries:
        raise _refusal(site, f"its {SITE_MANIFEST} is not a site manifest written by `qi publish`")
    legacy = legacy_site_files(site)
    if legacy is not None:
        return legacy
    shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
    raise _refusal(
        site, f"it is not empty (it holds {shown}) and holds no site manifest {SITE_MANIFEST}"
    )


def site_folder(project: Project, site: Path, *, archive: bool) -> dict[str, dict[str, Any]]:
    """Check that ``site`` may receive the site, before anything is written; return the files
    of the site already there (``{}`` for a new or empty folder).

    A site folder is a folder that does not exist yet, an empty folder, or one that holds a
    site published before, recognised by its manifest (a site of a version without manifests
    by its layout, see :func:`~qi_helpers.publish.manifest.legacy_site_files`). The project
    folder, and any folder that is or holds the project's parameters, workbooks, executed
    notebooks or data tables, never is. With ``archive``, the zip's place is checked too
    (:func:`~qi_helpers.publish.archive.check_archive_target`).

    Raises
    ------
    ConfigError
        Naming the folder and why it cannot receive the site.
    """
    _check_not_project(project, site)
    if (site.exists() or site.is_symlink()) and not site.is_dir():
        raise _refusal(site, "it is not a folder")
    if archive:
        check_archive_target(site, site_archive(site))
    if not site.exists():
        return {}
    try:
        entries = sorted(p.name for p in site.iterdir() if p.name not in DESKTOP_FILES)
    except OSError as exc:
        raise _refusal(site, f"it cannot be listed ({exc})") from exc
    if not entries:
        return {}
    return _existing_site(site, entries)


def clean_old_pages(site: Path, previous: dict[str, dict[str, Any]], keep: set[str]) -> list[str]:
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
        if site_relpath(rel) is None:
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
