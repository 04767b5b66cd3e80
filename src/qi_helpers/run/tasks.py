"""The tasks of a run: what one is, what became of it, and where its files go.

A task is one notebook execution: a workbook of :data:`qi_helpers.workflow.WORKBOOKS`, once for
the organisation or (workbook 03) once per microsystem. Its executed notebook goes to
``outputs/notebooks/<workbook>/<name>.ipynb`` and its log to ``outputs/logs/<workbook>/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qi_helpers.errors import RunError
from qi_helpers.privacy.names import inside, safe_filename
from qi_helpers.project import Project
from qi_helpers.workflow import FAILED_SUFFIX, WORKBOOKS


@dataclass
class Task:
    """One notebook execution.

    Attributes
    ----------
    workbook : str
        ``"01"`` to ``"04"``.
    name : str
        The executed notebook's file stem (the workbook's name, or the microsystem id for 03).
    parameters : dict
        papermill parameters.
    """

    workbook: str
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """A short label for progress and logs, e.g. ``03:NOR-PC1`` (``01`` for workbook 01)."""
        return f"{self.workbook}:{self.name}" if self.workbook == "03" else self.workbook


@dataclass
class TaskResult:
    """What happened to one task.

    Attributes
    ----------
    workbook, name : str
        The task.
    status : str
        ``"ok"`` (ran, or skipped because up to date), ``"failed"``, or ``"blocked"`` (not run
        because a task it depends on failed).
    output : str
        The executed notebook (``.failed.ipynb`` for a failure), relative to the project.
    seconds : float
        Time taken (0 when skipped or blocked).
    error : str
        The error, for a failure.
    skipped : bool
        True when the task was up to date and not run.
    reason : str
        Why it ran, was skipped or blocked.
    log : str
        The task's log under ``outputs/logs/`` (relative to the project), when it ran.
    input_hashes : dict
        ``{table: sha256}`` of the input tables it read (as
        :func:`qi_helpers.publish.input_hashes` computes them), so the site can tell when a
        report is out of date.
    """

    workbook: str
    name: str
    status: str
    output: str
    seconds: float
    error: str = ""
    skipped: bool = False
    reason: str = ""
    log: str = ""
    input_hashes: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """As :attr:`Task.label`."""
        return f"{self.workbook}:{self.name}" if self.workbook == "03" else self.workbook


def make_task(workbook: str, name: str | None = None) -> Task:
    """The task of a workbook; for workbook 03, of the microsystem ``name``."""
    if workbook == "03":
        return Task("03", str(name), {"microsystem_id": str(name)})
    return Task(workbook, WORKBOOKS[workbook].name)


def wanted_workbooks(workbooks: list[str] | None) -> list[str]:
    """The workbooks asked for (default all), in run order.

    Raises
    ------
    RunError
        When one is not a workbook of the method.
    """
    wanted = list(dict.fromkeys(workbooks or WORKBOOKS))
    unknown = set(wanted) - set(WORKBOOKS)
    if unknown:
        raise RunError(f"unknown workbook(s) {sorted(unknown)}; choose from {list(WORKBOOKS)}.")
    return [wb for wb in WORKBOOKS if wb in wanted]


def workbook_path(project: Project, workbook: str) -> Path:
    """The workbook a task executes: ``workbooks/<name>.ipynb``."""
    return project.workbooks_dir / WORKBOOKS[workbook].notebook


def notebook_output_path(project: Project, task: Task, *, failed: bool = False) -> Path:
    """Where a task's executed notebook goes: ``outputs/notebooks/<workbook>/<name>.ipynb``."""
    folder = project.notebooks_dir / WORKBOOKS[task.workbook].name
    stem = safe_filename(task.name)
    path = folder / (stem + (FAILED_SUFFIX if failed else ".ipynb"))
    return inside(project.notebooks_dir, path)


def log_path(project: Project, task: Task) -> Path:
    """Where a task's log goes: ``outputs/logs/<workbook>/<name>.log``."""
    logs = project.outputs_dir / "logs"
    name = WORKBOOKS[task.workbook].name
    return inside(logs, logs / name / f"{safe_filename(task.name)}.log")
