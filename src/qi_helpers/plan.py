"""The batch plan: which notebooks run, in which order, and which can be skipped.

The plan is a graph: workbook 01, then 02 and workbook 03 once per microsystem of the registry
(both read only 01's outputs, so they run side by side), then 04 (which reads every 03 result),
then publishing. The registry comes from 01, so when 01 must run the 03 tasks are known only after
it finishes: the plan is made in stages, and a task is decided (run or skip) only when every task it
depends on has finished, from the content its inputs have at that moment.

A task is skipped when its fingerprint equals the one recorded at its last successful run: the
workbook's code, its parameters, ``parameters/project.yaml``, the content of every input file it
reads and the ``qi_helpers`` code (its version and a digest of its files, so that an edit without a
version bump reruns what it may change: :func:`package_version`). Fingerprints are kept in
``outputs/run.json``. This module
reads files and hashes them; it never imports pandas or starts a kernel, so deciding that nothing
needs to run takes well under a second.
"""

from __future__ import annotations

import ast
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Input tables (``data.tables.<name>`` in project.yaml) each workbook reads.
INPUT_TABLES: dict[str, tuple[str, ...]] = {
    "01": ("activities", "staff", "patients"),
    "02": ("measures", "measure_events", "observations", "readiness"),
    "03": ("measures", "measure_events", "observations", "pdsa", "patients"),
    "04": ("readiness", "measures", "measure_events", "observations", "adoption"),
}

#: Files under ``outputs/data/`` that each workbook reads (written by the workbooks it depends on).
UPSTREAM_FILES: dict[str, tuple[str, ...]] = {
    "01": (),
    "02": ("registry.parquet", "membership_*.parquet"),
    "03": ("registry.parquet", "membership_*.parquet"),
    # 04 also reads the staff membership (readiness by microsystem) and any profiles from 01.
    "04": (
        "registry.parquet",
        "membership_*.parquet",
        "profile*.parquet",
        "results/*.parquet",
    ),
}

#: The workbooks each workbook depends on (through the files above).
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "01": (),
    "02": ("01",),
    "03": ("01",),
    "04": ("01", "03"),
}

#: Parameters that say where the project is, not what it computes: left out of fingerprints so a
#: project folder can move without rerunning everything.
LOCATION_PARAMETERS = frozenset({"project_root"})

#: A file's cached digest is trusted only when the file was last modified at least this many
#: seconds before the digest was taken (a file rewritten within the same clock tick, with the same
#: size, would otherwise look unchanged).
_RACY_SECONDS = 2.0


def _digest_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class FileHashes:
    """Content digests of files, cached by size and modification time.

    Parameters
    ----------
    cache : dict, optional
        ``{path: [size, mtime_ns, digest]}`` as returned by :meth:`to_json` on an earlier run.
    """

    def __init__(self, cache: dict[str, list[Any]] | None = None) -> None:
        self.cache: dict[str, list[Any]] = dict(cache or {})
        self.hashed = 0  # files actually read (for tests and benchmarks)

    def digest(self, path: Path) -> str:
        """The sha256 digest of a file's content, or ``"missing"`` when it does not exist."""
        try:
            stat = path.stat()
        except OSError:
            return "missing"
        key = str(path)
        hit = self.cache.get(key)
        if hit and hit[0] == stat.st_size and hit[1] == stat.st_mtime_ns:
            return str(hit[2])
        with path.open("rb") as handle:
            # hashlib.file_digest reads in large blocks without loading the file in memory.
            # sha256, as qi_helpers.publish.input_hashes records, so the two agree.
            digest = hashlib.file_digest(handle, "sha256")
        value = digest.hexdigest()
        self.hashed += 1
        if time.time() - stat.st_mtime_ns / 1e9 > _RACY_SECONDS:
            self.cache[key] = [stat.st_size, stat.st_mtime_ns, value]
        else:
            self.cache.pop(key, None)
        return value

    def to_json(self) -> dict[str, list[Any]]:
        """The cache, for ``outputs/run.json``."""
        return dict(sorted(self.cache.items()))


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


#: Files of the package that change what a notebook computes or how its report looks.
PACKAGE_SUFFIXES = frozenset({".py", ".j2", ".css", ".js", ".json"})


def package_version(hashes: FileHashes, package_dir: Path | None = None) -> str:
    """The ``qi_helpers`` version with a digest of its code, e.g. ``0.1.0+3f2a9c0d1e4b5a6f``.

    Parameters
    ----------
    hashes : FileHashes
        Digests cached by size and modification time: rereading the package costs a ``stat``
        per file when nothing changed.
    package_dir : Path, optional
        The package folder (default: the installed ``qi_helpers``).

    Returns
    -------
    str
        The version, ``+`` and 16 hex digits of a sha256 over the relative path and content
        digest of every code, template and style file (``__pycache__`` left out). Editing the
        package without bumping its version still changes it.
    """
    from qi_helpers import __version__

    root = package_dir or Path(__file__).resolve().parent
    files = sorted(
        path
        for path in root.rglob("*")
        if path.suffix in PACKAGE_SUFFIXES and "__pycache__" not in path.parts and path.is_file()
    )
    combined = hashlib.sha256()
    for path in files:
        combined.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
        combined.update(hashes.digest(path).encode("ascii") + b"\n")
    return f"{__version__}+{combined.hexdigest()[:16]}"


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
        task always runs.
    """
    params = {k: v for k, v in task.parameters.items() if k not in LOCATION_PARAMETERS}
    parts = {
        "workbook": workbook_digest(notebook),
        "parameters": _digest_bytes(json.dumps(params, sort_keys=True, default=str).encode()),
        "parameters/project.yaml": hashes.digest(project.root / "parameters" / "project.yaml"),
        "qi_helpers": version,
    }
    for name, source in table_sources(project, INPUT_TABLES.get(task.workbook, ())).items():
        if isinstance(source, str):
            parts[f"table {name}"] = "volatile"
        else:
            parts[f"table {name}"] = hashes.digest(source)
    for pattern in UPSTREAM_FILES.get(task.workbook, ()):
        for path in sorted(project.data_dir.glob(pattern)):
            parts[project.relative(path)] = hashes.digest(path)
    if task.workbook == "03":
        own = project.root / "parameters" / "microsystems" / f"{task.name}.yaml"
        parts[f"parameters/microsystems/{task.name}.yaml"] = hashes.digest(own)
    return parts


def fingerprint_key(parts: dict[str, str]) -> str:
    """One digest for a whole fingerprint."""
    return _digest_bytes(json.dumps(parts, sort_keys=True).encode())


def input_hashes(parts: dict[str, str]) -> dict[str, str]:
    """The input tables' digests in a fingerprint, ``{table: sha256}``.

    The same form as :func:`qi_helpers.publish.input_hashes`, recorded per task in
    ``outputs/run.json`` so the site can tell whether a report is out of date.
    """
    return {k.removeprefix("table "): v for k, v in parts.items() if k.startswith("table ")}


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
    """What ``qi run`` would do, stage by stage (see :func:`qi_helpers.runner.plan`)."""

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
