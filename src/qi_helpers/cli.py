"""The ``qi`` command: a thin layer over ``qi_helpers``.

``qi demo`` writes the demo data, ``qi check`` validates the configured inputs, ``qi run``
executes the workbooks and publishes the site, ``qi publish`` rebuilds the site, ``qi init``
scaffolds a project and ``qi lab`` starts JupyterLab on one. Every command prints what it wrote
and exits non-zero on failure.

Each command imports what it uses when it runs, so that ``qi --help``, ``qi --version`` or a
mistyped option answer at once instead of loading pandas, papermill and the publisher.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qi_helpers import __version__
from qi_helpers.errors import QIError
from qi_helpers.workflow import WORKBOOKS

if TYPE_CHECKING:
    from qi_helpers.project import Project

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def _demo(args: argparse.Namespace) -> int:
    from qi_helpers.demo.health_system import make_demo, write_demo

    start = time.perf_counter()
    tables = make_demo(size=args.size, seed=args.seed)
    paths = write_demo(tables, Path(args.out), fmt=args.format)
    _write_demo_stamp(Path(args.out), args.size, args.seed, paths)
    print(f"Demo health system ({args.size}, seed {args.seed}) written to {args.out}:")
    for path in paths:
        print(f"  {path}")
    print(f"{len(paths)} files in {time.perf_counter() - start:.1f}s")
    return 0


#: Written beside the demo data: what made it (size, seed, a digest of the generator's code) and
#: the digest of every file written, to tell untouched demo data from data someone edited.
DEMO_STAMP = ".demo.json"


def _demo_stamp(size: str, seed: int) -> dict[str, object]:
    """What the demo data made now would be: a digest of the generator's code, size and seed.

    Hashing the code (the modules of :mod:`qi_helpers.demo`), not importing it, keeps ``qi run``
    quick when nothing needs doing.
    """
    demo = Path(__file__).resolve().parent / "demo"
    digest = hashlib.sha256()
    for path in sorted(demo.glob("*.py")):
        digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes())
    return {"size": size, "seed": seed, "generator": digest.hexdigest()[:16]}


def _write_demo_stamp(out: Path, size: str, seed: int, paths: list[Path]) -> None:
    """Record what made the demo in ``out`` (written last, so a half-written demo has none)."""
    from qi_helpers.io import sha256_file, write_text

    stamp = {
        **_demo_stamp(size, seed),
        "files": {p.relative_to(out).as_posix(): sha256_file(p) for p in paths if p.is_file()},
    }
    write_text(out / DEMO_STAMP, json.dumps(stamp, indent=1, sort_keys=True))


def _stale_demo(out: Path) -> tuple[str, str, int] | None:
    """``(reason, size, seed)`` when the demo in ``out`` should be made again, else None.

    Only demo data that its stamp shows was made by another version of the generator, and that
    nobody edited since, is made again, with the size and seed it was made with (a demo written
    with ``qi demo --size medium`` stays medium). Edited or unstamped data is never overwritten.
    """
    from qi_helpers.io import sha256_file

    try:
        made = json.loads((out / DEMO_STAMP).read_text(encoding="utf-8"))
        size, seed = str(made["size"]), int(made["seed"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if made.get("generator") == _demo_stamp(size, seed)["generator"]:
        return None
    files = made.get("files") or {}
    untouched = bool(files) and all(
        (out / name).is_file() and sha256_file(out / name) == digest
        for name, digest in files.items()
    )
    if not untouched:
        return None
    return "Demo data made by another version of the demo generator", size, seed


def ensure_demo_data(project: Project, echo: Callable[..., Any] = print) -> bool:
    """Generate the demo data when the project uses it (``data.demo``) and it is missing or stale.

    Stale: made by another version of the demo generator, as ``<out>/.demo.json`` records, and
    not edited since; it is made again with the size and seed it had (an updated ``qi_helpers``
    then runs on the demo it plants, which its tests and notes describe). Demo files someone
    edited, or data without the record, are never overwritten.

    Returns True when data was generated.
    """
    demo = project.section("data").get("demo")
    if not demo:
        return False
    out = project.output_path("data.demo.out")  # refused when it leads out of the project
    size, seed = demo.get("size", "small"), int(demo.get("seed", 0))
    tables = project.section("data").get("tables") or {}
    missing = [
        n
        for n, spec in tables.items()
        if "path" in spec and not project.path(spec["path"]).is_file()
    ]
    if missing:
        reason = f"Demo data missing ({', '.join(missing)})"
    else:
        stale = _stale_demo(out)
        if stale is None:
            return False
        reason, size, seed = stale
    from qi_helpers.demo.health_system import make_demo, write_demo

    echo(f"{reason}: generating the {size} demo in {out} ...")
    paths = write_demo(make_demo(size=size, seed=seed), out)
    _write_demo_stamp(out, size, seed, paths)
    return True


def check_inputs(project: Project) -> list[str]:
    """Check every input table (:mod:`qi_helpers.data.checks`); one message per table with errors.

    Each message is the block of lines ``qi check`` prints for that table (its errors, with
    file, column, rows, how many and how to fix), so ``qi run`` stops with the same words.
    An empty list means the inputs can be used (warnings are not returned).
    """
    from qi_helpers.data.checks import check_project

    return check_project(project).messages()


def _check(args: argparse.Namespace) -> int:
    from qi_helpers.data.checks import check_project
    from qi_helpers.project import load_project

    project = load_project(args.project)
    report = check_project(project)
    print(report.to_json() if args.json else report.to_text())
    return 0 if report.ok else 1


def _init(args: argparse.Namespace) -> int:
    from qi_helpers.data.scaffold import init_project

    written = init_project(Path(args.dir), source=args.source or None, force=args.force)
    root = Path(args.dir)
    print(f"New project in {root}:")
    for path in written:
        print(f"  {path}")
    print(
        f"Next: replace the example rows in {root / 'data'} with your data (or point "
        f"{root / 'parameters' / 'project.yaml'} at your files or database), then run "
        f"`qi check --project {root}`."
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from qi_helpers.errors import InvalidInputs
    from qi_helpers.project import load_project
    from qi_helpers.run.runner import plan, run

    project = load_project(args.project)
    timeout = args.timeout if args.timeout and args.timeout > 0 else None
    if args.dry_run:
        print(
            plan(
                project, workbooks=args.workbook, microsystems=args.microsystem, force=args.force
            ).format()
        )
        return 0
    echo = (lambda *a, **k: None) if args.quiet else print
    ensure_demo_data(project, echo=echo)
    start = time.perf_counter()
    try:
        results = run(
            project,
            jobs=args.jobs,
            workbooks=args.workbook,
            microsystems=args.microsystem,
            timeout=timeout,
            echo=echo,
            force=args.force,
            cluster=args.cluster,
            scheduler=args.scheduler,
            publish=True,
            progress=not args.quiet and sys.stderr.isatty(),
            # Inputs are checked only when a notebook must run: an up-to-date run reads nothing.
            check=lambda: check_inputs(project),
        )
    except InvalidInputs as exc:
        for message in exc.problems:
            print(f"ERROR {message}\n", file=sys.stderr)
        print(
            "Inputs failed validation; nothing was run and earlier outputs are untouched.",
            file=sys.stderr,
        )
        return 1
    ran = sum(r.status == "ok" and not r.skipped for r in results)
    skipped = sum(r.skipped for r in results)
    bad = [r for r in results if r.status != "ok"]
    print(
        f"{len(results)} notebooks: {ran} ran, {skipped} up to date, "
        f"{sum(r.status == 'failed' for r in bad)} failed, "
        f"{sum(r.status == 'blocked' for r in bad)} not run after a failure "
        f"({time.perf_counter() - start:.1f}s)."
    )
    print(f"Manifest: {project.relative(project.outputs_dir / 'run.json')}")
    print(f"Site: {project.site_dir / 'index.html'}")
    _print_digest(project)
    if bad:
        width = max(len(r.label) for r in bad)
        print("\nFailures:", file=sys.stderr)
        for r in bad:
            first = r.error.splitlines()[0][:100] if r.error else r.reason
            print(f"  {r.label:{width}}  {r.status:7}  {first}", file=sys.stderr)
            if r.status == "failed" and r.output:
                print(f"  {'':{width}}           notebook: {r.output}", file=sys.stderr)
            if r.log:
                print(f"  {'':{width}}           log: {r.log}", file=sys.stderr)
    return 1 if bad else 0


def _print_digest(project: Project) -> None:
    """What changed since the previous run, in a few lines (also under ``--quiet``: a team that
    schedules ``qi run`` reads only this and the summary above it)."""
    from qi_helpers.run.digest import digest_lines, read_digest

    digest = read_digest(project)
    if digest is not None:
        print("\n".join(digest_lines(digest, where=project.relative(project.digest_file))))


def _publish(args: argparse.Namespace) -> int:
    from qi_helpers.project import load_project
    from qi_helpers.publish.site import publish_site

    project = load_project(args.project)
    report = publish_site(project, Path(args.out) if args.out else None, archive=args.zip)
    failed = [p for p in report.pages if p.status != "ok"]
    size = sum(p.bytes for p in report.pages) + report.index_bytes
    print(
        f"Published {len(report.pages)} reports and the index ({size / 1e6:.1f} MB), "
        f"{len(failed)} from failed runs; {report.redacted} identifier(s) removed."
    )
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if report.withheld:
        print(f"{len(report.withheld)} report card file(s) withheld by the privacy screen "
              "(see the notes above).", file=sys.stderr)  # fmt: skip
    if report.archive:
        print(f"Archive: {report.archive}")
    print(f"Site: {report.index}")
    return 0


def _lab(args: argparse.Namespace) -> int:
    """Make the demo data and workbook 01's outputs ready, then start JupyterLab on the project."""
    from qi_helpers.project import load_project

    project = load_project(args.project)
    ensure_demo_data(project)
    registry = project.data_dir / "registry.parquet"
    if not registry.is_file():
        print(f"{project.relative(registry)} missing: running workbook 01 first ...")
        code = main(["run", "--workbook", "01", "--quiet", "--project", str(project.root)])
        if code:
            return code
    print(f"Ready: the input tables and {project.relative(registry)} (workbook 01's registry).")
    if args.prepare_only:
        return 0
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={project.root}",
        "--LabApp.default_url=/lab/tree/workbooks",
        *args.jupyter_args,
    ]
    print("Starting JupyterLab (Ctrl+C twice to stop): jupyter lab", " ".join(command[3:]))
    return subprocess.call(command, cwd=project.root)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``qi`` command."""
    parser = argparse.ArgumentParser(
        prog="qi", description="QI workbooks for clinical microsystems: run the method end to end."
    )
    parser.add_argument("--version", action="version", version=f"qi {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_demo(sub)
    check = _add_project_command(sub, "check", _check, "validate the configured input tables")
    check.add_argument("--json", action="store_true", help="print the report as JSON (for tools)")
    _add_run_options(
        _add_project_command(sub, "run", _run, "execute the workbooks and publish the site")
    )
    _add_publish_options(
        _add_project_command(sub, "publish", _publish, "rebuild the site from executed notebooks")
    )
    _add_init(sub)
    _add_lab(sub)
    return parser


def _add_demo(sub: Subparsers) -> None:
    demo = sub.add_parser("demo", help="write the synthetic demo health system")
    demo.add_argument("--size", default="small", choices=["small", "medium", "large"])
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="data/demo", help="folder to write (default data/demo)")
    demo.add_argument("--format", default="csv", choices=["csv", "parquet"])
    demo.set_defaults(func=_demo)


def _add_project_command(
    sub: Subparsers, name: str, func: Callable[[argparse.Namespace], int], text: str
) -> argparse.ArgumentParser:
    """A command that works on a project (``--project``)."""
    cmd = sub.add_parser(name, help=text, description=text)
    cmd.add_argument("--project", default="", help="project folder (default: found from here)")
    cmd.set_defaults(func=func)
    return cmd


def _add_run_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--workbook",
        action="append",
        choices=list(WORKBOOKS),
        help="run only this workbook (repeatable)",
    )
    cmd.add_argument(
        "--microsystem",
        action="append",
        help="run workbook 03 only for this microsystem id (repeatable)",
    )
    cmd.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="notebooks at once: worker processes (default: number of CPUs)",
    )
    where = cmd.add_mutually_exclusive_group()
    where.add_argument(
        "--cluster",
        choices=["local"],
        default=None,
        help="run on a Dask LocalCluster of --jobs workers (needs the [cluster] extra)",
    )
    where.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on an existing Dask cluster, e.g. tcp://host:8786 (workers need "
        "qi_helpers and the project folder at the same path)",
    )
    cmd.add_argument(
        "--force", action="store_true", help="rerun every notebook, even if up to date"
    )
    cmd.add_argument(
        "--timeout",
        type=float,
        default=1800,
        help="seconds one notebook may take before it is stopped (default 1800; 0: none)",
    )
    cmd.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar or per-task lines (for CI); the summary and the digest of "
        "what changed since the last run are still printed",
    )
    cmd.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (what would run, what would be skipped and why) and stop",
    )


def _add_publish_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--out",
        default=None,
        help="site folder (default outputs/site): a new or empty folder, or one a "
        "site was published into before (it holds site.json); anything else is refused",
    )
    cmd.add_argument(
        "--zip",
        action="store_true",
        help="also write <site>.zip beside it for a shared drive: the site's files only",
    )


def _add_init(sub: Subparsers) -> None:
    init = sub.add_parser(
        "init",
        help="scaffold a new project for your own data",
        description="Create a project folder: parameters/project.yaml pointing at CSV templates "
        "(one per table, with the header and an example row; also in data/templates.xlsx), "
        "the four workbooks and a README that says what to fill in.",
    )
    init.add_argument("dir", help="the new project folder (created; must not hold a project)")
    init.add_argument(
        "--from",
        dest="source",
        default="",
        help="project to copy the workbooks and parameters from (default: the installed one)",
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing project")
    init.set_defaults(func=_init)


def _add_lab(sub: Subparsers) -> None:
    lab = sub.add_parser(
        "lab",
        help="start JupyterLab on the workbooks, demo data and workbook 01's outputs ready",
        description="Generate the demo data when the project uses it and it is missing, run "
        "workbook 01 when its registry of microsystems is missing (workbooks 02-04 read it), "
        "then start JupyterLab on the project. Options after `--` go to `jupyter lab`, "
        "e.g. `qi lab -- --port=8899 --no-browser`.",
    )
    lab.add_argument("--project", default="", help="project folder (default: found from here)")
    lab.add_argument(
        "--prepare-only",
        action="store_true",
        help="make the data and workbook 01's outputs ready, but do not start JupyterLab",
    )
    lab.add_argument("jupyter_args", nargs="*", help="options for `jupyter lab` (after --)")
    lab.set_defaults(func=_lab)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qi`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except QIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "interrupted: finished outputs are kept, unfinished ones were not written.",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
