"""The report template's files: its folder, its text files and the stylesheet of a report page."""

from __future__ import annotations

from importlib import resources as importlib_resources
from pathlib import Path

from qi_helpers.identify.cards import CARD_CSS

#: The nbconvert template of pages and index: a folder under ``publish/templates``.
TEMPLATE = "qi_report"


def templates_dir() -> Path:
    """The folder of the package's nbconvert templates (``qi_helpers/publish/templates``)."""
    return Path(str(importlib_resources.files("qi_helpers.publish") / "templates"))


def template_text(name: str) -> str:
    """A file of the report template (a stylesheet or a script), as text."""
    return (templates_dir() / TEMPLATE / name).read_text(encoding="utf-8")


def report_css() -> str:
    """The one stylesheet of a report page: the template's CSS, the profile cards' CSS and the
    driver diagrams' (``drivers.css``)."""
    return (
        template_text("report.css").rstrip()
        + "\n"
        + CARD_CSS.strip()
        + "\n"
        + template_text("drivers.css").strip()
        + "\n"
    )
