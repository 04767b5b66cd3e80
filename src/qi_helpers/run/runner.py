"""Run the collection of workbooks: 01, then 02 and 03 once per microsystem, then 04, then publish.

The plan is a graph (see :mod:`qi_helpers.run.planning`): a task starts when the tasks it depends on
have finished, and is skipped when its workbook, parameters, inputs and the ``qi_helpers`` code
are unchanged since its last successful run. Notebooks are executed with papermill's Python API
(:mod:`qi_helpers.run.execute`) inside worker processes that keep a warm kernel
(:mod:`qi_helpers.run.warm_kernel`): a local process pool, or a Dask cluster
(:mod:`qi_helpers.run.executors`). Every output is written to a temporary file and renamed; each
finished task is recorded in ``outputs/run.json`` at once (:mod:`qi_helpers.run.manifest`), so an
interrupted run resumes where it stopped. A failing notebook stops only the tasks that depend on
it; it is kept as ``<name>.failed.ipynb`` beside the last good one, which it never replaces.
A completed run writes what changed since the previous one (:mod:`qi_helpers.run.digest`).

The same workers then make the pages that changed (:mod:`qi_helpers.publish.export_jobs`). They
and their kernels die with the run however it ends, ``kill -9`` included, and a run refuses to
start while a process of an earlier one still runs (:mod:`qi_helpers.run.processes`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, wait
from pathlib import Path
from typing import Any

from qi_helpers.errors import InvalidInputs, RunError
from qi_helpers.project import Project
from qi_helpers.run.digest import write_digest
from qi_helpers.run.execute import execute_task
from qi_helpers.run.executors import Workers, open_workers
from qi_helpers.run.lock import project_lock, sweep_temporary_files
from qi_helpers.run.manifest import read_manifest, registry_ids, write_manifest
from qi_helpers.run.planning import (
    PUBLISH,
    Decider,
    Plan,
    Step,
    fingerprint_key,
    imported_modules,
    last_counts,
    task_input_hashes,
)
from qi_helpers.run.progress import Progress
from qi_helpers.run.screen_process import screen_built_ahead
from qi_helpers.run.tasks import (
    Task,
    TaskResult,
    log_path,
    make_task,
    notebook_output_path,
    wanted_workbooks,
    workbook_path,
)
from qi_helpers.run.warm_kernel import warm_up
from qi_helpers.slices import read_record, slices_current
from qi_helpers.workflow import WORKBOOKS

__all__ = ["plan", "run"]


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
    wanted = wanted_workbooks(workbooks)
    manifest = read_manifest(project)
    decider = Decider(project, manifest, force)
    result = Plan(project=str(project.root))
    will_run: set[str] = set()

    def add(task: Task, stage: int) -> None:
        upstream = [wb for wb in WORKBOOKS[task.workbook].depends_on if wb in will_run]
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
        add(make_task("01"), 1)
    if "02" in wanted:
        add(make_task("02"), 2)
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
        # Slices made before and out of date now are prepared again before 03 is decided.
        stale = "01" not in will_run and bool(read_record(project)) and not slices_current(project)
        for ms in ids:
            if stale:  # the slices are prepared again first, then each is decided by its own
                reason = "after the slices are prepared again: runs if its slice changed"
                result.steps.append(Step(f"03:{ms}", 2, "decide later", reason))
                will_run.add("03")
                continue
            add(make_task("03", ms), 2)
    if "04" in wanted:
        add(make_task("04"), 3)
    if publish:
        if will_run:
            result.steps.append(
                Step(PUBLISH, 4, "decide later", "after the notebooks: rebuilds if any changed")
            )
        else:
            run_it, reason, _ = decider.decide_publish(*last_counts(manifest))
            result.steps.append(Step(PUBLISH, 4, "run" if run_it else "skip", reason))
    return result


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
        In plan order; also written to ``outputs/run.json`` (each task as it finishes). A run
        that completes writes ``outputs/digest.json`` (:mod:`qi_helpers.run.digest`).

    Raises
    ------
    InvalidInputs
        From ``check``; nothing was run.
    RunError
        When the plan cannot be made (no registry and workbook 01 not selected).
    """
    wanted = wanted_workbooks(workbooks)
    started = time.perf_counter()
    with project_lock(project) as lock:
        sweep_temporary_files(project)
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
            try:
                session.execute()
            except BaseException as exc:
                if not isinstance(exc, InvalidInputs):  # else nothing ran: the last manifest stays
                    session.save(complete=False)
                raise
            session.save(complete=True)
            write_digest(project, session.ordered(), registry_ids=session.registry.get("ids"))
            if publish:
                session.publish()  # on the run's workers, while they are still open
        finally:
            session.close()
    return session.ordered()


class _Session:
    """One run: the graph, the executor (opened only when a notebook must run), the manifest."""

    def __init__(self, project: Project, **options: Any) -> None:
        self.project = project
        self.o = options
        self.echo: Callable[..., Any] = options["echo"]
        self.manifest = read_manifest(project)
        self.decider = Decider(project, self.manifest, options["force"])
        self.results: dict[str, TaskResult] = {}
        self.order: list[str] = []
        self.pending: dict[str, tuple[Task, set[str]]] = {}
        self.expanded = "03" not in options["wanted"]
        self.stack = contextlib.ExitStack()
        self.workers: Workers | None = None
        self.checked = False
        self.registry: dict[str, Any] = dict(self.manifest.get("registry") or {})
        self.checked_inputs: dict[str, str] = dict(self.manifest.get("checked_inputs") or {})
        self.progress = Progress(options["progress"], options["jobs"] or os.cpu_count() or 1)
        self.preload = sorted(
            {m for wb in WORKBOOKS for m in imported_modules(workbook_path(project, wb))}
        )
        wanted = options["wanted"]
        for wb in ("01", "02", "04"):
            if wb in wanted:
                deps = {d for d in WORKBOOKS[wb].depends_on if d in wanted}
                self._add(make_task(wb), {"03*" if d == "03" else d for d in deps})
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
        self._prepare()
        deps = {"01"} if "01" in self.o["wanted"] else set()
        ids = self.o["microsystems"] or registry_ids(self.project, self.manifest)
        known = set(registry_ids(self.project, self.manifest)) if self.o["microsystems"] else None
        for ms in dict.fromkeys(str(i) for i in ids):
            task = make_task("03", ms)
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

    def _prepare(self) -> None:
        """Prepare the slices workbook 03 reads, once, before its tasks are decided.

        Quick when they are current (sizes and times compared, no table read). When preparing
        fails (workbook 01's outputs incomplete, an input that breaks its contract), the slices
        are not current, so each workbook 03 task is decided by the whole input tables (see
        :func:`qi_helpers.run.planning.fingerprint`) and its notebook reports the error.
        """
        if slices_current(self.project):
            return
        # The analysis stack is imported only when the slices must be made again.
        from qi_helpers.changes.prepare import prepare_slices

        try:
            done = prepare_slices(self.project)
        except Exception as exc:  # noqa: BLE001 - reported on each workbook 03 task
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            self.progress.write(f"  note    slices not prepared: {first[:200]}", self.echo)
            return
        self.progress.write(f"  ok      {done.summary()}", self.echo)

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
                "checked_inputs": self.checked_inputs,
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
    def _open_workers(self) -> Workers:
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
            # ... and a child process builds the identifier screen (its memory is given back).
            note = lambda line: self.progress.write(line, self.echo)  # noqa: E731
            with screen_built_ahead(self.project, record=self.o["record"], note=note):
                check = self.o["check"]
                if check is not None and not self.checked:
                    self.checked = True
                    # Inputs unchanged since they passed are not read again (a minute on large).
                    now = self.decider.checked_inputs()
                    if "volatile" in now.values() or now != self.checked_inputs:
                        problems = check()
                        if problems:
                            raise InvalidInputs(problems)  # workers stopped; nothing ran
                        self.checked_inputs = now
        return self.workers

    def _submit(self, task: Task) -> Future:
        project = self.project
        source = workbook_path(project, task.workbook)
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
                        input_hashes=task_input_hashes(parts),
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
            # Once 01 is done the slices are prepared and 03's tasks added, before 02 is decided:
            # 02 reads the organisation's series beside the slices instead of every event.
            if not self.expanded and self._state("01") == "done":
                self._expand()
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
                            input_hashes=task_input_hashes(parts),
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
        self.progress.close()  # the bar of the notebooks, before the lines of publishing
        index = self.project.site_dir / "index.html"
        if not run_it:
            self.echo(f"Site up to date ({reason}): {self.project.relative(index)}")
            return index
        # The publisher loads the whole reporting stack (matplotlib, jinja2, nh3): only a run
        # that publishes pays for it, so deciding that nothing needs to run stays fast.
        from qi_helpers.publish.site import publish_site

        began = time.perf_counter()
        pool, count = (self.workers.executor, self.workers.count) if self.workers else (None, 1)
        report = publish_site(self.project, executor=pool, workers=count)
        # a slide deck or PDF the privacy screen kept back is said even in a quiet run
        sys.stderr.writelines(f"  privacy: {message}\n" for message in report.withheld)
        seconds = round(time.perf_counter() - began, 2)
        self.decider.history[PUBLISH] = {"key": fingerprint_key(parts), "parts": parts,
                                         "seconds": seconds}  # fmt: skip
        self.save(complete=True)
        self.echo(f"Published in {seconds:.1f}s: {self.project.relative(report.index)}")
        return report.index
