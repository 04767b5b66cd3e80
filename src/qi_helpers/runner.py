"""Run the collection of workbooks: 01, then 02 and 03 once per microsystem, then 04, then publish.

The plan is a graph (see :mod:`qi_helpers.plan`): a task starts when the tasks it depends on have
finished, and is skipped when its workbook, parameters, inputs and the ``qi_helpers`` code are
unchanged since its last successful run. Notebooks are executed with papermill's Python API inside
worker processes that keep a warm kernel (:mod:`qi_helpers.executors`): a local process pool, or a
Dask cluster. Every output is written to a temporary file and renamed; each finished task is
recorded in ``outputs/run.json`` at once, so an interrupted run resumes where it stopped. A failing
notebook stops only the tasks that depend on it; it is kept as ``<name>.failed.ipynb`` beside the
last good one, which it never replaces.

Workers and kernels die with the run however it ends, ``kill -9`` included, and a run refuses to
start while a process of an earlier one still runs (:class:`ProcessesStillRunning`): see
:mod:`qi_helpers._processes` and :func:`_project_lock`.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qi_helpers import _processes
from qi_helpers.errors import QIError
from qi_helpers.executors import execute_task, normalise_notebook, open_workers, warm_up
from qi_helpers.plan import (
    DEPENDS_ON,
    FileHashes,
    Plan,
    Step,
    changes,
    fingerprint,
    fingerprint_key,
    imported_modules,
    input_hashes,
    package_version,
)
from qi_helpers.privacy import inside, safe_filename
from qi_helpers.project import Project

__all__ = [
    "FAILED_SUFFIX",
    "WORKBOOKS",
    "InvalidInputs",
    "ProcessesStillRunning",
    "RunError",
    "Task",
    "TaskResult",
    "execute_task",
    "normalise_notebook",
    "notebook_output_path",
    "plan",
    "registry_ids",
    "run",
    "write_manifest",
]

#: The workbooks of the method, in the order they run.
WORKBOOKS: dict[str, str] = {
    "01": "01_identify_microsystems",
    "02": "02_select_pilots",
    "03": "03_analyse_tests",
    "04": "04_plan_spread",
}

#: Notebook output kept for a failed task, next to (never over) the last good one.
FAILED_SUFFIX = ".failed.ipynb"

#: The manifest of runs, under ``outputs/``.
MANIFEST = "run.json"

#: Label of the publishing step in plans and in the manifest.
PUBLISH = "publish"

#: The project lock under ``outputs/``: locked while a ``qi run`` runs, and the record of its
#: processes (``qi run``, its workers and their kernels; one JSON object a line).
RUN_LOCK = ".run.lock"


class RunError(QIError):
    """One or more workbooks failed, or the run could not start."""


class ProcessesStillRunning(RunError):
    """Processes of an earlier ``qi run`` of this project still run; this run did not start.

    They could still write the outputs this run would write. They are named by pid, with how to
    stop them.

    Attributes
    ----------
    pids : list of int
        The processes still running.
    """

    def __init__(self, lock: Path, processes: list[_processes.RecordedProcess]) -> None:
        self.pids = [p.pid for p in processes]
        pids = " ".join(str(pid) for pid in self.pids)
        super().__init__(
            f"{lock}: {len(processes)} process(es) of an earlier `qi run` of this project are "
            "still running and may still write its outputs: "
            + "; ".join(p.describe() for p in processes)
            + f". Stop them with `kill {pids}` (then `kill -9 {pids}` if they are still "
            "there), and run `qi run` again."
        )


class InvalidInputs(RunError):
    """The input tables failed validation; nothing was run.

    Attributes
    ----------
    problems : list of str
        One message per table with a problem.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            f"{len(problems)} input table(s) failed validation; nothing was run:\n"
            + "\n".join(problems)
        )
        self.problems = problems


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
        ``{table: sha256}`` of the input tables it read (as :func:`qi_helpers.publish.input_hashes`
        computes them), so the site can tell when a report is out of date.
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


def notebook_output_path(project: Project, task: Task, *, failed: bool = False) -> Path:
    """Where a task's executed notebook goes: ``outputs/notebooks/<workbook>/<name>.ipynb``."""
    folder = project.notebooks_dir / WORKBOOKS[task.workbook]
    stem = safe_filename(task.name)
    path = folder / (stem + (FAILED_SUFFIX if failed else ".ipynb"))
    return inside(project.notebooks_dir, path)


def log_path(project: Project, task: Task) -> Path:
    """Where a task's log goes: ``outputs/logs/<workbook>/<name>.log``."""
    logs = project.outputs_dir / "logs"
    return inside(logs, logs / WORKBOOKS[task.workbook] / f"{safe_filename(task.name)}.log")


def _workbook(project: Project, workbook: str) -> Path:
    return project.workbooks_dir / f"{WORKBOOKS[workbook]}.ipynb"


def _make_task(workbook: str, name: str | None = None) -> Task:
    if workbook == "03":
        return Task("03", str(name), {"microsystem_id": str(name)})
    return Task(workbook, WORKBOOKS[workbook])


# --------------------------------------------------------------------------------------------
# The manifest, outputs/run.json
# --------------------------------------------------------------------------------------------
def read_manifest(project: Project) -> dict[str, Any]:
    """The last run's manifest (empty when there is none or it cannot be read)."""
    path = project.outputs_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(json.dumps(payload, indent=1) + "\n")
            handle.flush()
            os.fsync(handle.fileno())  # the record must survive a power loss
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_manifest(
    project: Project,
    results: list[TaskResult],
    *,
    seconds: float,
    history: dict[str, Any] | None = None,
    complete: bool = True,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``outputs/run.json`` atomically.

    Parameters
    ----------
    project : Project
    results : list of TaskResult
        This run's tasks so far, in plan order.
    seconds : float
        Time since the run started.
    history : dict, optional
        ``{label: {"key", "parts", "output", "seconds"}}``: the fingerprint of each task's last
        successful run (what makes the next run incremental).
    complete : bool
        False while the run is going on (or when it was interrupted).
    extra : dict, optional
        Further entries (the file digest cache, the cached registry ids).

    Returns
    -------
    Path
        The manifest.
    """
    from qi_helpers import __version__

    payload: dict[str, Any] = {
        "qi_helpers_version": __version__,
        "complete": complete,
        "seconds": round(seconds, 1),
        "tasks": [asdict(r) | {"seconds": round(r.seconds, 2)} for r in results],
        "history": history or {},
    }
    payload.update(extra or {})
    path = project.outputs_dir / MANIFEST
    _write_json_atomic(path, payload)
    return path


def registry_ids(project: Project, manifest: dict[str, Any] | None = None) -> list[str]:
    """The microsystem ids in ``outputs/data/registry.parquet`` (written by workbook 01).

    Parameters
    ----------
    project : Project
    manifest : dict, optional
        A manifest whose cached ids are used when the registry's digest matches (so that deciding
        that nothing needs to run does not read Parquet).
    """
    path = project.data_dir / "registry.parquet"
    if not path.is_file():
        raise RunError(f"{path}: not found; workbook 01 must run first (`qi run --workbook 01`).")
    if manifest is not None:
        cached = manifest.get("registry") or {}
        digest = FileHashes(manifest.get("file_hashes")).digest(path)
        if cached.get("digest") == digest:
            return [str(i) for i in cached.get("ids", [])]
    import pandas as pd

    return pd.read_parquet(path, columns=["microsystem_id"])["microsystem_id"].astype(str).tolist()


# --------------------------------------------------------------------------------------------
# Deciding
# --------------------------------------------------------------------------------------------
class _Decider:
    """Decides run or skip for a task from the manifest's history (shared by plan and run)."""

    def __init__(self, project: Project, manifest: dict[str, Any], force: bool) -> None:
        self.project = project
        self.history: dict[str, Any] = dict(manifest.get("history") or {})
        self.hashes = FileHashes(manifest.get("file_hashes"))
        self.force = force
        self.version = package_version(self.hashes)

    def decide(self, task: Task) -> tuple[bool, str, dict[str, str]]:
        """``(run, reason, fingerprint parts)``."""
        parts = fingerprint(
            self.project, task, _workbook(self.project, task.workbook), self.hashes, self.version
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
        """What the site depends on: every executed notebook, the registry, parameters."""
        project = self.project
        parts = {
            "qi_helpers": self.version,
            "parameters/project.yaml": self.hashes.digest(
                project.root / "parameters" / "project.yaml"
            ),
            "registry": self.hashes.digest(project.data_dir / "registry.parquet"),
            "last run": f"{tasks} notebooks, {failed} failed",
        }
        for path in sorted(project.notebooks_dir.glob("*/*.ipynb")):
            parts[project.relative(path)] = self.hashes.digest(path)
        return parts

    def decide_publish(self, tasks: int, failed: int) -> tuple[bool, str, dict[str, str]]:
        parts = self.publish_parts(tasks, failed)
        if self.force:
            return True, "--force", parts
        said = changes((self.history.get(PUBLISH) or {}).get("parts"), parts)
        if said:
            return True, "; ".join(said[:3]) + (" ..." if len(said) > 3 else ""), parts
        if not (self.project.site_dir / "index.html").is_file():
            return True, "the site is missing", parts
        return False, "no executed notebook changed", parts


def _wanted(workbooks: list[str] | None) -> list[str]:
    wanted = list(dict.fromkeys(workbooks or WORKBOOKS))
    unknown = set(wanted) - set(WORKBOOKS)
    if unknown:
        raise RunError(f"unknown workbook(s) {sorted(unknown)}; choose from {list(WORKBOOKS)}.")
    return [wb for wb in WORKBOOKS if wb in wanted]


def plan(
    project: Project,
    *,
    workbooks: list[str] | None = None,
    microsystems: list[str] | None = None,
    force: bool = False,
    publish: bool = True,
) -> Plan:
    """What :func:`run` would do, without running anything (``qi run --dry-run``).

    A task whose inputs include outputs of a task that will run is shown as ``decide later``: it
    is decided when that task finishes, from what it wrote. When workbook 01 will run, the list
    of workbook 03 tasks comes from the registry it writes, so it is known only after 01; the plan
    then lists the microsystems of the current registry and says so.

    Returns
    -------
    Plan
    """
    wanted = _wanted(workbooks)
    manifest = read_manifest(project)
    decider = _Decider(project, manifest, force)
    result = Plan(project=str(project.root))
    will_run: set[str] = set()

    def add(task: Task, stage: int) -> None:
        upstream = [wb for wb in DEPENDS_ON[task.workbook] if wb in will_run]
        if upstream:
            names = " and ".join("03 tasks" if wb == "03" else wb for wb in upstream)
            result.steps.append(
                Step(
                    task.label,
                    stage,
                    "decide later",
                    f"after {names}: runs if what they write changed (or its own inputs changed)",
                )
            )
            will_run.add(task.workbook)
            return
        run_it, reason, _ = decider.decide(task)
        result.steps.append(Step(task.label, stage, "run" if run_it else "skip", reason))
        if run_it:
            will_run.add(task.workbook)

    if "01" in wanted:
        add(_make_task("01"), 1)
    if "02" in wanted:
        add(_make_task("02"), 2)
    if "03" in wanted:
        registry = project.data_dir / "registry.parquet"
        ids = list(microsystems or [])
        if not ids and registry.is_file():
            ids = registry_ids(project, manifest)
        if "01" in will_run:
            known = f"the current registry lists {len(ids)}" if ids else "no registry yet"
            result.notes.append(
                "Workbook 01 will run and rewrite the registry, so the workbook 03 tasks are "
                f"known only after it finishes ({known}; listed above as they stand now)."
            )
        elif not ids:
            raise RunError(
                f"{registry}: not found; workbook 01 must run first (`qi run --workbook 01`)."
            )
        for ms in ids:
            add(_make_task("03", ms), 2)
    if "04" in wanted:
        add(_make_task("04"), 3)
    if publish:
        if will_run:
            result.steps.append(
                Step(PUBLISH, 4, "decide later", "after the notebooks: rebuilds if any changed")
            )
        else:
            run_it, reason, _ = decider.decide_publish(*_last_counts(manifest))
            result.steps.append(Step(PUBLISH, 4, "run" if run_it else "skip", reason))
    return result


def _last_counts(manifest: dict[str, Any]) -> tuple[int, int]:
    tasks = manifest.get("tasks") or []
    return len(tasks), sum(t.get("status") != "ok" for t in tasks)


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------
#: The role of the ``qi run`` process itself in the record.
_RUN_ROLE = "qi run"


@contextlib.contextmanager
def _project_lock(project: Project) -> Iterator[Path]:
    """One ``qi run`` at a time per project, and none while a process of an earlier one runs.

    The lock (``outputs/.run.lock``, locked with ``flock``) is released by the system when
    ``qi run`` dies, but its workers and kernels might not have died with it (they should: see
    :mod:`qi_helpers._processes`). So the file is also the run's record of processes: ``qi run``
    writes itself there, its workers and kernels add themselves, and the next run refuses to
    start while any of them still runs. Entries whose process has gone, or whose pid now belongs
    to another process (another start time), are stale and ignored. When the run ends, only
    entries still running stay.

    Yields
    ------
    Path
        The lock file, to hand to the workers.

    Raises
    ------
    RunError
        Another ``qi run`` holds the lock (its pid is named when known).
    ProcessesStillRunning
        Workers or kernels of an earlier run still run.
    """
    project.outputs_dir.mkdir(parents=True, exist_ok=True)
    path = project.outputs_dir / RUN_LOCK
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; runs are not guarded
        yield path
        return
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.seek(0)
            others = [p for p in _processes.live_processes(handle.read()) if p.role == _RUN_ROLE]
            who = f" (PID {', '.join(str(p.pid) for p in others)})" if others else ""
            raise RunError(
                f"{path}: another `qi run`{who} is running on this project; wait for it to finish."
            ) from exc
        try:
            handle.seek(0)
            left = _processes.live_processes(handle.read(), exclude=os.getpid())
            if left:
                raise ProcessesStillRunning(path, left)
            _rewrite(handle, [_processes.describe_process(_RUN_ROLE)])
            yield path
        finally:
            # Workers were shut down and waited for; whatever still runs stays on record.
            with contextlib.suppress(OSError):
                handle.seek(0)
                still = _processes.live_processes(handle.read(), exclude=os.getpid())
                _rewrite(handle, still)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _rewrite(handle: Any, entries: list[_processes.RecordedProcess]) -> None:
    """Replace the record's content (workers append with O_APPEND, so the offset is theirs)."""
    handle.seek(0)
    handle.truncate()
    handle.write("".join(_processes.entry_line(e) for e in entries))
    handle.flush()


def _sweep_temporary_files(project: Project) -> int:
    """Remove temporary files an interrupted run left behind (they are hidden and never read)."""
    removed = 0
    for folder in (project.notebooks_dir, project.outputs_dir / "logs"):
        if not folder.is_dir():
            continue
        for path in folder.rglob(".*"):
            if path.is_file() and (path.name.startswith(".running-") or ".tmp-" in path.name):
                path.unlink(missing_ok=True)
                removed += 1
    for path in project.outputs_dir.glob(f".{MANIFEST}.tmp-*"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


class _Progress:
    """A progress bar with done, skipped, failed and time left (tqdm), or nothing when quiet."""

    def __init__(self, enabled: bool, workers: int) -> None:
        self.enabled = enabled
        self.workers = max(1, workers)
        self.bar = None
        self.counts = {"ran": 0, "skipped": 0, "failed": 0}
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=0,
                unit="nb",
                bar_format="{desc}{bar:20} {n_fmt}/{total_fmt} [{elapsed}]{postfix}",
                dynamic_ncols=True,
                leave=True,
            )

    def grow(self, n: int) -> None:
        if self.bar is not None and n:
            self.bar.total += n
            self.bar.refresh()

    def write(self, line: str, echo: Callable[..., Any]) -> None:
        if self.bar is not None:
            self.bar.write(line)
        else:
            echo(line)

    def done(self, result: TaskResult, left_seconds: float) -> None:
        key = "skipped" if result.skipped else ("ran" if result.status == "ok" else "failed")
        self.counts[key] += 1
        if self.bar is not None:
            c = self.counts
            left = f"~{int(left_seconds // 60)}m{int(left_seconds % 60):02d}s left"
            self.bar.set_postfix_str(
                f"{c['ran']} done, {c['skipped']} skipped, {c['failed']} failed, {left}",
                refresh=False,
            )
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(
    project: Project,
    *,
    jobs: int | None = None,
    workbooks: list[str] | None = None,
    microsystems: list[str] | None = None,
    timeout: float | None = 1800,
    echo: Callable[..., Any] = print,
    force: bool = False,
    cluster: str | None = None,
    scheduler: str | None = None,
    publish: bool = False,
    progress: bool = False,
    check: Callable[[], list[str]] | None = None,
) -> list[TaskResult]:
    """Execute the plan: 01, then 02 and 03 for every microsystem in the registry, then 04.

    Parameters
    ----------
    project : Project
    jobs : int, optional
        Notebooks at once (worker processes); default the number of CPUs.
    workbooks : list of str, optional
        Run only these workbooks (``"01"`` ... ``"04"``); default all.
    microsystems : list of str, optional
        Run workbook 03 only for these microsystem ids; default every registry row.
    timeout : float, optional
        Seconds a single notebook may take (None: no limit).
    echo : callable
        Where progress lines go (``print`` by default; a no-op for quiet runs).
    force : bool
        Run every task even when it is up to date.
    cluster : {"local"}, optional
        Run on a Dask ``LocalCluster`` of ``jobs`` workers instead of the local process pool.
    scheduler : str, optional
        Run on an existing Dask cluster (``tcp://host:8786``).
    publish : bool
        Rebuild the HTML site afterwards (skipped when no executed notebook changed).
    progress : bool
        Show a progress bar (done, skipped, failed, time left).
    check : callable, optional
        Called once before the first notebook runs (never when everything is up to date); a
        non-empty list of problems stops the run with :class:`InvalidInputs`.

    Returns
    -------
    list of TaskResult
        In plan order; also written to ``outputs/run.json`` (each task as it finishes).

    Raises
    ------
    InvalidInputs
        From ``check``; nothing was run.
    RunError
        When the plan cannot be made (no registry and workbook 01 not selected).
    """
    wanted = _wanted(workbooks)
    started = time.perf_counter()
    with _project_lock(project) as lock:
        _sweep_temporary_files(project)
        session = _Session(
            project,
            wanted=wanted,
            microsystems=microsystems,
            timeout=timeout,
            echo=echo,
            force=force,
            jobs=jobs,
            cluster=cluster,
            scheduler=scheduler,
            progress=progress,
            check=check,
            started=started,
            record=lock,
        )
        try:
            session.execute()
        except InvalidInputs:
            raise  # nothing ran: the manifest of the last run stays as it was
        except BaseException:
            session.save(complete=False)
            raise
        finally:
            session.close()
        session.save(complete=True)
        if publish:
            session.publish()
    return session.ordered()


class _Session:
    """One run: the graph, the executor (opened only when a notebook must run), the manifest."""

    def __init__(self, project: Project, **options: Any) -> None:
        self.project = project
        self.o = options
        self.echo: Callable[..., Any] = options["echo"]
        self.manifest = read_manifest(project)
        self.decider = _Decider(project, self.manifest, options["force"])
        self.results: dict[str, TaskResult] = {}
        self.order: list[str] = []
        self.pending: dict[str, tuple[Task, set[str]]] = {}
        self.expanded = "03" not in options["wanted"]
        self.stack = contextlib.ExitStack()
        self.workers = None
        self.checked = False
        self.registry: dict[str, Any] = dict(self.manifest.get("registry") or {})
        self.progress = _Progress(options["progress"], options["jobs"] or os.cpu_count() or 1)
        self.preload = sorted(
            {m for wb in WORKBOOKS for m in imported_modules(_workbook(project, wb))}
        )
        wanted = options["wanted"]
        for wb in ("01", "02", "04"):
            if wb in wanted:
                deps = {d for d in DEPENDS_ON[wb] if d in wanted}
                self._add(_make_task(wb), {"03*" if d == "03" else d for d in deps})
        if "01" not in wanted:
            self._expand()

    # --- graph --------------------------------------------------------------------------------
    def _add(self, task: Task, deps: set[str]) -> None:
        self.pending[task.label] = (task, deps)
        self.order.append(task.label)
        self.progress.grow(1)

    def _expand(self) -> None:
        """Add workbook 03 tasks once the registry is final (01 done, skipped or not selected)."""
        if self.expanded:
            return
        self.expanded = True
        deps = {"01"} if "01" in self.o["wanted"] else set()
        ids = self.o["microsystems"] or registry_ids(self.project, self.manifest)
        known = set(registry_ids(self.project, self.manifest)) if self.o["microsystems"] else None
        for ms in dict.fromkeys(str(i) for i in ids):
            task = _make_task("03", ms)
            if known is not None and ms not in known:
                self._add(task, set())
                self._record(
                    TaskResult(
                        "03",
                        ms,
                        "failed",
                        "",
                        0.0,
                        error=f"microsystem {ms!r} is not in the registry "
                        f"({self.project.relative(self.project.data_dir / 'registry.parquet')}); "
                        "check the id against the registry written by workbook 01.",
                        reason="unknown microsystem",
                    )
                )
                continue
            self._add(task, deps)
        self._remember_registry()

    def _remember_registry(self) -> None:
        path = self.project.data_dir / "registry.parquet"
        if path.is_file():
            digest = self.decider.hashes.digest(path)
            if self.registry.get("digest") != digest:
                ids = registry_ids(self.project)
                self.registry = {"digest": digest, "ids": ids}

    def _state(self, dep: str) -> str:
        """``done``, ``bad`` (failed or blocked) or ``wait``."""
        if dep == "03*":
            if not self.expanded:
                return "bad" if self._state("01") == "bad" else "wait"
            states = {self._state(label) for label in self.order if label.startswith("03:")}
            return "wait" if "wait" in states else ("bad" if "bad" in states else "done")
        result = self.results.get(dep)
        if result is None:
            return "wait"
        return "done" if result.status == "ok" else "bad"

    # --- recording ----------------------------------------------------------------------------
    def ordered(self) -> list[TaskResult]:
        """This run's results in plan order: 01, 02, 03 by microsystem as listed, 04."""
        labels = sorted(self.order, key=lambda label: (label[:2], self.order.index(label)))
        return [self.results[label] for label in labels if label in self.results]

    def save(self, complete: bool) -> None:
        write_manifest(
            self.project,
            self.ordered(),
            seconds=time.perf_counter() - self.o["started"],
            history=self.decider.history,
            complete=complete,
            extra={
                "registry": self.registry,
                "file_hashes": self.decider.hashes.to_json(),
            },
        )

    def _left_seconds(self) -> float:
        ran = [r.seconds for r in self.results.values() if not r.skipped and r.seconds]
        default = sum(ran) / len(ran) if ran else 15.0
        todo = [label for label in self.order if label not in self.results]
        expected = sum(
            (self.decider.history.get(label) or {}).get("seconds", default) for label in todo
        )
        return expected / (self.workers.count if self.workers else 1)

    def _record(self, result: TaskResult, parts: dict[str, str] | None = None) -> None:
        label = result.label
        self.results[label] = result
        if result.status == "ok" and not result.skipped and parts is not None:
            self.decider.history[label] = {
                "key": fingerprint_key(parts),
                "parts": parts,
                "output": result.output,
                "seconds": round(result.seconds, 2),
            }
        elif result.status == "failed":
            # A failed run leaves the outputs of the last success in place, but they no longer
            # match: forget the success so the task runs next time whatever changed.
            self.decider.history.pop(label, None)
        if label == "01" and result.status == "ok":
            self._remember_registry()
        self.progress.done(result, self._left_seconds())
        if not result.skipped:
            mark = {"ok": "ok", "failed": "FAILED", "blocked": "blocked"}[result.status]
            line = f"  {mark:7} {label:28} {result.seconds:6.1f}s  {result.output or result.reason}"
            self.progress.write(line, self.echo)
            if result.error:
                self.progress.write(f"          {result.error.splitlines()[0][:200]}", self.echo)
        if not result.skipped and result.status != "blocked":
            self.save(complete=False)  # each finished task is on disk at once: runs resume

    # --- executing ----------------------------------------------------------------------------
    def _open_workers(self):
        if self.workers is None:
            self.workers = self.stack.enter_context(
                open_workers(
                    self.o["jobs"],
                    cluster=self.o["cluster"],
                    scheduler=self.o["scheduler"],
                    record=self.o["record"],
                )
            )
            self.progress.workers = self.workers.count
            self.progress.write(f"Running on {self.workers.description}.", self.echo)
            # Workers start their kernels and import while this process checks the inputs.
            cwd = str(self.project.workbooks_dir)
            for _ in range(min(self.workers.count, len(self.pending) + 1)):
                self.workers.executor.submit(warm_up, cwd, self.preload)
            check = self.o["check"]
            if check is not None and not self.checked:
                self.checked = True
                problems = check()
                if problems:
                    raise InvalidInputs(problems)  # the workers are stopped; nothing ran
        return self.workers

    def _submit(self, task: Task) -> Future:
        project = self.project
        source = _workbook(project, task.workbook)
        if not source.is_file():
            raise RunError(f"{source}: workbook not found; restore it from version control.")
        # interactive=False: widgets show their static result, so reports need no kernel.
        params = {"project_root": str(project.root), "interactive": False, **task.parameters}
        args = (
            execute_task,
            str(source),
            str(notebook_output_path(project, task)),
            str(notebook_output_path(project, task, failed=True)),
            params,
            str(project.workbooks_dir),
            self.o["timeout"],
        )
        options = {
            "warm": True,
            "preload": self.preload,
            "log_path": str(log_path(project, task)),
            "label": task.label,
        }
        try:
            return self._open_workers().executor.submit(*args, **options)
        except BrokenExecutor:
            # A worker process died (e.g. killed for memory): start a new pool and go on.
            self.progress.write("  a worker process stopped; starting new workers", self.echo)
            self.workers = None
            self.stack.close()
            self.stack = contextlib.ExitStack()
            return self._open_workers().executor.submit(*args, **options)

    def execute(self) -> None:
        running: dict[Future, tuple[Task, dict[str, str], str]] = {}
        try:
            while True:
                self._schedule(running)
                if not running:
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    task, parts, reason = running.pop(future)
                    try:
                        outcome = future.result()
                    except Exception as exc:  # noqa: BLE001 - the worker, not the notebook, failed
                        outcome = {
                            "status": "failed",
                            "output": "",
                            "seconds": 0.0,
                            "error": f"the worker running this notebook stopped: "
                            f"{type(exc).__name__}: {exc}",
                        }
                    result = TaskResult(
                        task.workbook,
                        task.name,
                        outcome["status"],
                        self.project.relative(outcome["output"]) if outcome["output"] else "",
                        outcome["seconds"],
                        error=outcome["error"],
                        reason=reason,
                        log=self.project.relative(log_path(self.project, task)),
                        input_hashes=input_hashes(parts),
                    )
                    self._record(result, parts)
        except BaseException:
            if self.workers is not None:
                self.workers.abort()
            raise

    def _schedule(self, running: dict[Future, tuple[Task, dict[str, str], str]]) -> None:
        progressed = True
        while progressed:
            progressed = False
            if not self.expanded and self._state("01") != "wait":
                if self._state("01") == "done":
                    self._expand()
                    progressed = True
            for label in list(self.pending):
                task, deps = self.pending[label]
                states = {self._state(d) for d in deps}
                if "wait" in states:
                    continue
                del self.pending[label]
                progressed = True
                if label in self.results:  # recorded already (unknown microsystem)
                    continue
                if "bad" in states:
                    failed = sorted(
                        d if d != "03*" else "03" for d in deps if self._state(d) == "bad"
                    )
                    self._record(
                        TaskResult(
                            task.workbook,
                            task.name,
                            "blocked",
                            "",
                            0.0,
                            reason=f"not run: {', '.join(failed)} failed",
                        )
                    )
                    continue
                run_it, reason, parts = self.decider.decide(task)
                if not run_it:
                    output = self.project.relative(notebook_output_path(self.project, task))
                    self._record(
                        TaskResult(
                            task.workbook,
                            task.name,
                            "ok",
                            output,
                            0.0,
                            skipped=True,
                            reason=reason,
                            input_hashes=input_hashes(parts),
                        )
                    )
                    continue
                running[self._submit(task)] = (task, parts, reason)
        if not self.expanded and self._state("01") == "bad":
            self.expanded = True
            self.echo("  blocked 03 (every microsystem): workbook 01 failed")

    def close(self) -> None:
        self.progress.close()
        self.stack.close()

    # --- publishing ---------------------------------------------------------------------------
    def publish(self) -> Path | None:
        ordered = self.ordered()
        counts = (len(ordered), sum(r.status != "ok" for r in ordered))
        run_it, reason, parts = self.decider.decide_publish(*counts)
        index = self.project.site_dir / "index.html"
        if not run_it:
            self.echo(f"Site up to date ({reason}): {self.project.relative(index)}")
            return index
        from qi_helpers.publish import build_site

        began = time.perf_counter()
        index = build_site(self.project)
        self.decider.history[PUBLISH] = {
            "key": fingerprint_key(parts),
            "parts": parts,
            "seconds": round(time.perf_counter() - began, 2),
        }
        self.save(complete=True)
        self.echo(
            f"Published in {time.perf_counter() - began:.1f}s: {self.project.relative(index)}"
        )
        return index
