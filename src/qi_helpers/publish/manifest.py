"""The site's manifest ``site.json``: every file a site wrote, and the pages it can reuse.

A folder is published into, cleaned and zipped only through its manifest: it lists each file the
site wrote with its sha256 and, for a page, the key of what it was made from (to reuse a page
whose inputs are unchanged), the identifiers removed and its size. A site of a version without
manifests is recognised by its layout and taken over once (:func:`legacy_site_files`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from qi_helpers.io import sha256_bytes, sha256_file, write_json
from qi_helpers.publish.pages import Page
from qi_helpers.workflow import notebook_names

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


def site_relpath(rel: object) -> str | None:
    """``rel`` when it is a plain relative path of a file inside a site, else None."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel or rel == SITE_MANIFEST:
        return None
    if rel.startswith("/") or any(part in ("", ".", "..") for part in rel.split("/")):
        return None
    return rel


def parse_site_manifest(text: str) -> dict[str, Any] | None:
    """A site manifest's content, or None when ``text`` is not one a site build wrote."""
    try:
        manifest = json.loads(text)
    except ValueError:
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != SITE_FORMAT:
        return None
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        site_relpath(rel) and isinstance(entry, dict) for rel, entry in files.items()
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
        None when the folder holds no manifest, or one
        :func:`~qi_helpers.publish.site.publish_site` did not write.
    """
    path = Path(site) / SITE_MANIFEST
    if path.is_symlink() or not path.is_file():
        return None
    try:
        return parse_site_manifest(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def write_site_manifest(site: Path, files: dict[str, dict[str, Any]], *, complete: bool) -> Path:
    """Write ``<site>/site.json`` atomically, files sorted; return its path."""
    manifest = {
        "format": SITE_FORMAT,
        "complete": complete,
        "files": {rel: files[rel] for rel in sorted(files)},
    }
    return write_json(Path(site) / SITE_MANIFEST, manifest, sort_keys=True)


def _legacy_cache(site: Path) -> dict[str, Any]:
    """The page cache of a site published before sites had a manifest (``{}`` if unreadable)."""
    try:
        cache = json.loads((Path(site) / PAGE_CACHE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    return cache if isinstance(cache, dict) else {}


def legacy_site_files(site: Path) -> dict[str, dict[str, Any]] | None:
    """The files of a site published before sites had a manifest, or None if ``site`` is not one.

    Such a site holds ``index.html``, the page cache and ``.html`` pages in the workbooks'
    folders, and nothing else (no link either): those files stand for its manifest, with the page
    cache's entries so that its pages can be reused.
    """
    files: dict[str, dict[str, Any]] = {}
    workbooks = notebook_names()
    for folder, dirs, names in os.walk(site):
        here = Path(folder)
        top = here == Path(site)
        for name in dirs:
            if not top or name not in workbooks or (here / name).is_symlink():
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
    for href, entry in _legacy_cache(site).items():
        if href in files and isinstance(entry, dict):
            kept = ("key", "sha256", "redacted", "bytes")
            files[href] = {k: entry[k] for k in kept if k in entry}
    return files


def page_key(notebook: Path, options: dict[str, Any], shared: str) -> str:
    """What a page's bytes depend on: the executed notebook, its header and footer, and
    ``shared`` (the code, the publish settings and the tables the identifier screen reads)."""
    content = json.dumps(
        {"notebook": sha256_file(notebook), "options": options, "shared": shared},
        sort_keys=True,
        default=str,
    )
    return sha256_bytes(content.encode("utf-8"))


def cached_page(site: Path, href: str, key: str, cache: dict[str, dict[str, Any]]) -> Page | None:
    """The page already at ``href`` when it was made from ``key`` and is unchanged since."""
    entry = cache.get(href)
    path = site / href
    if not entry or entry.get("key") != key or path.is_symlink() or not path.is_file():
        return None
    if sha256_file(path) != entry.get("sha256"):
        return None
    # No title is kept in the manifest, which is published with the site: the caller has it.
    try:
        return Page("", "", "", href, "ok", int(entry["redacted"]), int(entry["bytes"]))
    except (KeyError, TypeError, ValueError):
        return None
