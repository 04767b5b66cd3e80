"""The batch plan: which notebooks run, in which order, and which can be skipped.

The plan is a graph: workbook 01, then 02 and workbook 03 once per microsystem of the registry
(both read only 01's outputs, so they run side by side), then 04 (which reads every 03 result),
then publishing. The registry comes from 01, so when 01 must run the 03 tasks are known only after
it finishes: the plan is made in stages, and a task is decided (run or skip) only when every task
it depends on has finished, from the content its inputs have at that moment (:class:`Decider`).

A task is skipped when its fingerprint equals the one recorded at its last successful run: the
workbook's code, its parameters, ``parameters/project.yaml``, the content of every input file it
reads and the ``qi_helpers`` code (its version and a digest of its files, so that an edit without
a version bump reruns what it may change: :func:`qi_helpers.io.package_version`). Fingerprints are
kept in ``outputs/run.json``. This module reads files and hashes them; it never reads a table or
starts a kernel, so deciding that nothing needs to run takes well under a second.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qi_helpers.io import FileHashes, package_version
from qi_helpers.privacy.names import safe_filename
from qi_helpers.project import Project
from qi_helpers.run.tasks import Task, notebook_output_path, workbook_path
from qi_helpers.slices import PREPARED_UPSTREAM, slices_current
from qi_helpers.workflow import WORKBOOKS

#: Parameters that say where the project is, not what it computes: left out of fingerprints so a
#: project folder can move without rerunning everything.
LOCATION_PARAMETERS = frozenset({"project_root"})


def _digest_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def workbook_digest(path: Path) -> str:
    """A digest of what a workbook computes: its cells' types, sources and tags.

    Outputs, execution counts and other metadata are left out, so opening a workbook in JupyterLab
    and saving it (which may add outputs or widget state) does not make every report rerun.
    """
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "missing"
    cells = [
        [
            cell.get("cell_type"),
            "".join(cell.get("source", "")),
            sorted(cell.get("metadata", {}).get("tags", [])),
        ]
        for cell in nb.get("cells", [])
    ]
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name", "")
    return _digest_bytes(json.dumps([kernel, cells], sort_keys=True).encode())


def imported_modules(path: Path) -> list[str]:
    """The modules a workbook's code cells import (``import x``, ``from x.y import z``).

    Used to import them once in a warm kernel before the first notebook runs there.
    """
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found: list[str] = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell.get("source", ""))
        lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.append(node.module)
    return list(dict.fromkeys(found))


def table_sources(project: Any, names: tuple[str, ...]) -> dict[str, Path | str]:
    """The source of each configured input table: a file path, or a description of a database.

    Tables read from a database (``url:``) other than a SQLite file cannot be hashed; they are
    returned as a string starting with ``"database:"``.
    """
    sources: dict[str, Path | str] = {}
    for name in names:
        spec = project.table_spec(name)
        if spec is None:
            continue
        if "path" in spec:
            sources[name] = project.path(spec["path"])
        elif str(spec.get("url", "")).startswith("sqlite:///"):
            sources[name] = project.path(str(spec["url"]).removeprefix("sqlite:///"))
        else:
            sources[name] = f"database:{name}"
    return sources


def fingerprint(
    project: Any, task: Any, notebook: Path, hashes: FileHashes, version: str
) -> dict[str, str]:
    """What a task's result depends on, one digest per part.

    Parameters
    ----------
    project : Project
    task : Task
        The task (its workbook, name and papermill parameters).
    notebook : Path
        The workbook it executes.
    hashes : FileHashes
        The digest cache.
    version : str
        The ``qi_helpers`` version.

    Returns
    -------
    dict
        ``{part: digest}`` with parts ``workbook``, ``parameters``, ``parameters/project.yaml``,
        ``qi_helpers``, one ``table <name>`` per input table, one entry per upstream file
        under ``outputs/`` (relative path), and for workbook 03 the microsystem's parameter file.
        A table read from a database gets the value ``"volatile"``: it cannot be hashed, so the
        task always runs. A workbook that reads its inputs through slices
        (:attr:`qi_helpers.workflow.Workbook.sliced`) has no ``table`` parts while the slices
        are current: its slice files stand for them, so a change in one microsystem's rows
        reruns that microsystem only (slices that could not be prepared: the tables and
        workbook 01's outputs they would be cut from decide).
    """
    params = {k: v for k, v in task.parameters.items() if k not in LOCATION_PARAMETERS}
    parts = {
        "workbook": workbook_digest(notebook),
        "parameters": _digest_bytes(json.dumps(params, sort_keys=True, default=str).encode()),
        "parameters/project.yaml": hashes.digest(project.root / "parameters" / "project.yaml"),
        "qi_helpers": version,
    }
    workbook = WORKBOOKS.get(task.workbook)
    upstream = list(workbook.upstream) if workbook else []
    if workbook is None or not workbook.sliced or not slices_current(project):
        parts.update(input_digests(project, task, hashes))
        if workbook is not None and workbook.sliced:
            # No current slices: the task depends on what its slice would be cut from.
            upstream = list(PREPARED_UPSTREAM) + upstream
    for pattern in upstream:
        pattern = pattern.replace("{microsystem}", safe_filename(task.name or ""))
        for path in sorted(project.data_dir.glob(pattern)):
            parts[project.relative(path)] = hashes.digest(path)
    if task.workbook == "03":
        own = project.root / "parameters" / "microsystems" / f"{task.name}.yaml"
        parts[f"parameters/microsystems/{task.name}.yaml"] = hashes.digest(own)
    return parts


def input_digests(project: Any, task: Any, hashes: FileHashes) -> dict[str, str]:
    """``{"table <name>": digest}`` of the input tables a task's workbook reads.

    ``"volatile"`` for a table read from a database (it cannot be hashed).
    """
    workbook = WORKBOOKS.get(task.workbook)
    parts = {}
    for name, source in table_sources(project, workbook.inputs if workbook else ()).items():
        parts[f"table {name}"] = "volatile" if isinstance(source, str) else hashes.digest(source)
    return parts


def fingerprint_key(parts: dict[str, str]) -> str:
    """One digest for a whole fingerprint."""
    return _digest_bytes(json.dumps(parts, sort_keys=True).encode())


def table_digests(parts: dict[str, str]) -> dict[str, str]:
    """The input tables' digests in a fingerprint, ``{table: sha256}``.

    The same form as :func:`qi_helpers.publish.input_hashes` (which hashes a project's
    tables itself), recorded per task in ``outputs/run.json`` so the site can tell whether a
    report is out of date.
    """
    return {k.removeprefix("table "): v for k, v in parts.items() if k.startswith("table ")}


def task_input_hashes(parts: dict[str, str]) -> dict[str, str]:
    """What a task was made from, for its page's provenance: the input tables' digests, or
    for a task that read its slice (no table parts), the digests of the slice's files (so
    a page changes only when its own microsystem's data do)."""
    return table_digests(parts) or {k: v for k, v in parts.items() if "/slices/" in k}


def changes(old: dict[str, str] | None, new: dict[str, str]) -> list[str]:
    """Human descriptions of how a fingerprint changed, e.g. ``["data/demo/pdsa.csv changed"]``."""
    if not old:
        return ["never run successfully"]
    said = []
    for part, value in new.items():
        if value == "volatile":
            said.append(f"{part} is read from a database and cannot be checked for changes")
        elif part not in old:
            said.append(f"{part} is new" if value != "missing" else f"{part} missing")
        elif old[part] != value:
            if part == "qi_helpers":
                said.append(f"qi_helpers {old[part]} -> {value}")
            elif value == "missing":
                said.append(f"{part} removed")
            else:
                said.append(f"{part} changed")
    said += [f"{part} no longer read" for part in old if part not in new]
    return said


#: Label of the publishing step in plans and in the manifest.
PUBLISH = "publish"


class Decider:
    """Decides run or skip for a task from the manifest's history (shared by plan and run).

    Parameters
    ----------
    project : Project
    manifest : dict
        The last run's manifest (its ``history`` and ``file_hashes``).
    force : bool
        Run every task (and publish) whatever changed.
    """

    def __init__(self, project: Project, manifest: dict[str, Any], force: bool) -> None:
        self.project = project
        self.history: dict[str, Any] = dict(manifest.get("history") or {})
        self.hashes = FileHashes(manifest.get("file_hashes"))
        self.force = force
        self.version = package_version(self.hashes)

    def decide(self, task: Task) -> tuple[bool, str, dict[str, str]]:
        """``(run, reason, fingerprint parts)``."""
        parts = fingerprint(
            self.project,
            task,
            workbook_path(self.project, task.workbook),
            self.hashes,
            self.version,
        )
        if self.force:
            return True, "--force", parts
        last = self.history.get(task.label)
        said = changes(last.get("parts") if last else None, parts)
        if said:
            return True, "; ".join(said), parts
        if last.get("key") != fingerprint_key(parts):
            return True, "fingerprint changed", parts
        if not notebook_output_path(self.project, task).is_file():
            return True, "its executed notebook is missing", parts
        return False, "unchanged since its last successful run", parts

    def publish_parts(self, tasks: int, failed: int) -> dict[str, str]:
        """What the site depends on: every executed notebook, the registry, parameters (with the
        coaches' progress scores)."""
        project = self.project
        parts = {
            "qi_helpers": self.version,
            "parameters/project.yaml": self.hashes.digest(
                project.root / "parameters" / "project.yaml"
            ),
            "registry": self.hashes.digest(project.data_dir / "registry.parquet"),
            # the coaches' progress scores: the index shows them beside the computed ones
            "parameters/progress_scores.csv": self.hashes.digest(project.progress_scores_file),
            "last run": f"{tasks} notebooks, {failed} failed",
        }
        for path in sorted(project.notebooks_dir.glob("*/*.ipynb")):
            parts[project.relative(path)] = self.hashes.digest(path)
        return parts

    def decide_publish(self, tasks: int, failed: int) -> tuple[bool, str, dict[str, str]]:
        """``(run, reason, parts)`` for publishing after ``tasks`` notebooks, ``failed`` failed."""
        parts = self.publish_parts(tasks, failed)
        if self.force:
            return True, "--force", parts
        said = changes((self.history.get(PUBLISH) or {}).get("parts"), parts)
        if said:
            return True, "; ".join(said[:3]) + (" ..." if len(said) > 3 else ""), parts
        if not (self.project.site_dir / "index.html").is_file():
            return True, "the site is missing", parts
        return False, "no executed notebook changed", parts

    def checked_inputs(self) -> dict[str, str]:
        """The digest of every configured input table (``"volatile"`` for a database), of the
        parameters and the ``qi_helpers`` version: what the check of the inputs depends on."""
        tables = tuple((self.project.section("data").get("tables") or {}).keys())
        return {
            name: "volatile" if isinstance(source, str) else self.hashes.digest(source)
            for name, source in table_sources(self.project, tables).items()
        } | {
            "parameters/project.yaml": self.hashes.digest(self.project.config_file),
            "qi_helpers": self.version,  # a new version may check more
        }


def last_counts(manifest: dict[str, Any]) -> tuple[int, int]:
    """``(tasks, failed)`` of the run a manifest records."""
    tasks = manifest.get("tasks") or []
    return len(tasks), sum(t.get("status") != "ok" for t in tasks)


@dataclass
class Step:
    """One line of a plan: a task, what will happen to it and why.

    Attributes
    ----------
    label : str
        ``01``, ``02``, ``03:<microsystem id>``, ``04`` or ``publish``.
    stage : int
        1 to 4: tasks of a stage wait for those of the stages before it that they depend on.
    action : str
        ``"run"``, ``"skip"`` or ``"decide later"`` (decided when the tasks it depends on finish).
    reason : str
        Why.
    """

    label: str
    stage: int
    action: str
    reason: str


@dataclass
class Plan:
    """What ``qi run`` would do, stage by stage (see :func:`qi_helpers.run.runner.plan`)."""

    project: str
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many steps will run, be skipped, or be decided later."""
        out = {"run": 0, "skip": 0, "decide later": 0}
        for step in self.steps:
            out[step.action] = out.get(step.action, 0) + 1
        return out

    def format(self) -> str:
        """The plan as text, one stage after another, for ``qi run --dry-run``."""
        stages = {
            1: "stage 1: workbook 01 identifies the microsystems and writes the registry",
            2: "stage 2: workbook 02 and workbook 03 once per microsystem (read 01's outputs)",
            3: "stage 3: workbook 04 (reads every workbook 03 result)",
            4: "stage 4: publish the HTML site",
        }
        lines = [f"Plan for {self.project}"]
        width = max([len(s.label) for s in self.steps] + [8])
        for stage, title in stages.items():
            steps = [s for s in self.steps if s.stage == stage]
            if not steps:
                continue
            lines.append(title)
            for step in steps:
                lines.append(f"  {step.label:{width}}  {step.action:12}  {step.reason}")
        lines += self.notes
        c = self.counts()
        lines.append(
            f"{c['run']} to run, {c['skip']} to skip, {c['decide later']} decided when the tasks "
            "they depend on finish."
        )
        return "\n".join(lines)
