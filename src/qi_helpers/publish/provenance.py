"""What a page's header and footer say about where it came from.

The git commit of the project folder, the content hashes of the input tables and the period the
data covers, each written so that the same inputs give the same text.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from qi_helpers.io import sha256_bytes, sha256_file
from qi_helpers.project import Project


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
            hashes[name] = sha256_file(path) if path.is_file() else "missing"
        elif "url" in spec:
            what = str(spec.get("table") or spec.get("query") or "")
            hashes[name] = "database:" + sha256_bytes(what.encode())[:12]
    return hashes


def format_day(value: Any) -> str:
    """A day as a page shows it, e.g. ``"1 Jan 2024"``."""
    ts = pd.Timestamp(value)
    return f"{ts.day} {ts:%b %Y}"


def format_period(start: Any, end: Any) -> str:
    """A data period for a page header, e.g. ``"1 Jan 2024 to 22 Dec 2025"``."""
    start = None if start is None or pd.isna(start) else start
    end = None if end is None or pd.isna(end) else end
    if start is not None and end is not None:
        return f"{format_day(start)} to {format_day(end)}"
    if end is not None:
        return f"to {format_day(end)}"
    if start is not None:
        return f"from {format_day(start)}"
    return ""
