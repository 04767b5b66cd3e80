"""The report of ``qi check``: what was learned about each table, and every problem, by table.

:class:`CheckReport` prints the problems grouped by table (``qi check``), or gives them as plain
data and JSON (``qi check --json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from qi_helpers.data.problems import Problem, render_table

__all__ = ["CheckReport", "TableInfo"]


@dataclass
class TableInfo:
    """What ``qi check`` learned about one table's source."""

    name: str
    source: str
    rows: int | None = None
    encoding: str | None = None
    required: bool = True


@dataclass
class CheckReport:
    """Every problem found in a project's inputs.

    Attributes
    ----------
    tables : dict of str to TableInfo
        The tables checked (configured or required), in checking order.
    problems : list of Problem
        Errors and warnings, in table order.
    """

    tables: dict[str, TableInfo] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """The problems that stop a run."""
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """The problems printed as warnings."""
        return [p for p in self.problems if p.level == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def by_table(self) -> dict[str, list[Problem]]:
        """The problems of each table that has some, errors first."""
        grouped: dict[str, list[Problem]] = {}
        for p in sorted(self.problems, key=lambda p: p.level != "error"):
            grouped.setdefault(p.table, []).append(p)
        return {name: grouped[name] for name in self._order(grouped)}

    def _order(self, names) -> list[str]:
        known = list(self.tables)
        return sorted(names, key=lambda n: known.index(n) if n in known else len(known))

    def source(self, name: str) -> str:
        """Where a table comes from, for the report."""
        info = self.tables.get(name)
        return info.source if info else name

    def messages(self, *, warnings: bool = False) -> list[str]:
        """One block of lines per table with errors (and warnings when asked), as printed."""
        out = []
        for name, problems in self.by_table().items():
            shown = [p for p in problems if warnings or p.level == "error"]
            if any(p.level == "error" for p in problems) or (warnings and shown):
                out.append(render_table(name, self.source(name), shown))
        return out

    def to_text(self) -> str:
        """The report ``qi check`` prints: problems grouped by table, then a summary."""
        lines = []
        grouped = self.by_table()
        for name, info in self.tables.items():
            rows = "not read"
            if info.rows is not None:
                rows = f"{info.rows:,} row{'s' if info.rows != 1 else ''}"
            enc = f", {info.encoding}" if info.encoding else ""
            levels = {p.level for p in grouped.get(name, [])}
            status = "ERROR" if "error" in levels else "warn" if levels else "ok"
            lines.append(f"{name:15} {status:5} {rows + enc:24} {info.source}")
        lines.append("")
        for block in self.messages(warnings=True):
            lines.extend([block, ""])
        n_err, n_warn = len(self.errors), len(self.warnings)
        bad = sorted({p.table for p in self.errors})
        lines.append(
            f"Checked {len(self.tables)} tables: {len(bad)} with errors"
            f"{' (' + ', '.join(bad) + ')' if bad else ''}; {n_err} error(s), {n_warn} warning(s)."
        )
        if self.problems:
            lines.append("Rows count from 1 = the first row under the header.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (for ``qi check --json``)."""
        return {
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "tables": {
                name: {
                    "source": info.source,
                    "rows": info.rows,
                    "encoding": info.encoding,
                    "required": info.required,
                    "problems": [p.to_dict() for p in self.problems if p.table == name],
                }
                for name, info in self.tables.items()
            },
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)
