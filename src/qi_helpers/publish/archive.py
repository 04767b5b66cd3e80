"""The site as one zip for a shared drive: the files its manifest lists, the same bytes each time.

An existing file is replaced only when it is an earlier zip of the same site (checked before a
build writes anything, see :func:`check_archive_target`).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

from qi_helpers.errors import ConfigError
from qi_helpers.io import atomic_write, sha256_bytes
from qi_helpers.privacy.names import inside
from qi_helpers.publish.manifest import SITE_MANIFEST, parse_site_manifest


def site_name(site: Path) -> Path:
    """The site folder as named (``--out .`` is the working folder), links not followed."""
    return Path(os.path.abspath(site))


def site_archive(site: Path) -> Path:
    """Where the zip of a site goes by default: ``<site>.zip`` beside the site folder."""
    named = site_name(site)
    return named.with_name(named.name + ".zip")


def check_archive_target(site: Path, archive: Path) -> None:
    """Refuse to replace a file that is not an earlier zip of this site.

    Raises
    ------
    ConfigError
        When ``archive`` exists and is a link, not a regular file, not a zip, or a zip that
        holds files outside ``<site name>/``.
    """
    prefix = site_name(site).name + "/"
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


def _finished_manifest(site: Path) -> tuple[bytes, dict[str, Any]]:
    """The bytes and content of the site's manifest, when it lists a finished site."""
    listed = site / SITE_MANIFEST
    try:
        raw = b"" if listed.is_symlink() else listed.read_bytes()
        manifest = parse_site_manifest(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError):
        manifest = None
    if manifest is None or not manifest.get("complete"):
        raise ConfigError(
            f"{site}: no finished site to zip (no complete {SITE_MANIFEST}); publish it first "
            "with `qi publish`."
        )
    return raw, manifest


def _published_bytes(site: Path, real: Path, rel: str, entry: dict[str, Any]) -> bytes:
    """The content of a file the manifest lists, checked against the sha256 it records."""
    path = site / rel
    if path.is_symlink() or not path.is_file():
        raise ConfigError(
            f"{path}: listed in {SITE_MANIFEST} but missing or not a regular "
            "file; publish the site again."
        )
    inside(real, path)
    data = path.read_bytes()
    if sha256_bytes(data) != entry.get("sha256"):
        raise ConfigError(
            f"{path}: changed since the site was published (its sha256 is not "
            f"the one {SITE_MANIFEST} records); publish the site again."
        )
    return data


def zip_site(site: Path, archive: Path | None = None) -> Path:
    """Zip a published site for copying to a shared drive: ``<site>.zip`` by default.

    The archive holds exactly the files the site's manifest (:data:`SITE_MANIFEST`) lists, and
    the manifest, under ``<site name>/``: nothing else that may lie in the folder. Each file is
    checked against the sha256 the manifest records. Entries are sorted and dated 1 Jan 1980, so
    the same site gives the same bytes.

    Parameters
    ----------
    site : Path
        A folder :func:`~qi_helpers.publish.site.publish_site` wrote.
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
    real, prefix = site.resolve(), site_name(site).name
    archive = Path(archive) if archive else site_archive(site)
    check_archive_target(site, archive)
    raw, manifest = _finished_manifest(site)
    files: dict[str, dict[str, Any]] = manifest["files"]

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for rel in sorted([*files, SITE_MANIFEST]):
                data = (
                    raw if rel == SITE_MANIFEST else _published_bytes(site, real, rel, files[rel])
                )
                info = zipfile.ZipInfo(f"{prefix}/{rel}", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)

    return atomic_write(archive, write)
