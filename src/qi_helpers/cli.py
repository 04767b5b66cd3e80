"""The ``qi`` command: a thin layer over ``qi_helpers``.

``qi demo`` writes the demo data, ``qi check`` validates the configured inputs, ``qi run``
executes the workbooks and publishes the site, ``qi publish`` rebuilds the site. Every command
prints what it wrote and exits non-zero on failure.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from qi_helpers.errors import QIError


def _demo(args: argparse.Namespace) -> int:
    from qi_helpers.datasets import make_demo, write_demo

    start = time.perf_counter()
    tables = make_demo(size=args.size, seed=args.seed)
    paths = write_demo(tables, Path(args.out), fmt=args.format)
    print(f"Demo health system ({args.size}, seed {args.seed}) written to {args.out}:")
    for path in paths:
        print(f"  {path}")
    print(f"{len(paths)} files in {time.perf_counter() - start:.1f}s")
    return 0


def ensure_demo_data(project, echo=print) -> bool:
    """Generate the demo data when the project uses it (``data.demo``) and it is missing.

    Returns True when data was generated.
    """
    from qi_helpers.datasets import make_demo, write_demo

    demo = project.section("data").get("demo")
    if not demo:
        return False
    tables = project.section("data").get("tables") or {}
    missing = [
        n
        for n, spec in tables.items()
        if "path" in spec and not project.path(spec["path"]).is_file()
    ]
    if not missing:
        return False
    out = project.path(demo.get("out", "data/demo"))
    size, seed = demo.get("size", "small"), int(demo.get("seed", 0))
    echo(f"Demo data missing ({', '.join(missing)}): generating the {size} demo in {out} ...")
    write_demo(make_demo(size=size, seed=seed), out)
    return True


def check_inputs(project) -> list[str]:
    """Validate every configured table; return one message per table with a problem."""
    problems = []
    for name in sorted(project.section("data").get("tables") or {}):
        try:
            project.load_table(name)
        except QIError as exc:
            problems.append(str(exc))
    return problems


def _check(args: argparse.Namespace) -> int:
    from qi_helpers.project import load_project

    project = load_project(args.project)
    problems = check_inputs(project)
    for message in problems:
        print(f"ERROR {message}\n")
    tables = sorted(project.section("data").get("tables") or {})
    print(f"Checked {len(tables)} tables: {len(problems)} with errors.")
    return 1 if problems else 0


def _run(args: argparse.Namespace) -> int:
    from qi_helpers.project import load_project
    from qi_helpers.publish import build_site
    from qi_helpers.runner import run

    project = load_project(args.project)
    echo = (lambda *a, **k: None) if args.quiet else print
    ensure_demo_data(project, echo=echo)
    problems = check_inputs(project)
    if problems:
        for message in problems:
            print(f"ERROR {message}\n", file=sys.stderr)
        print(
            "Inputs failed validation; nothing was run and earlier outputs are untouched.",
            file=sys.stderr,
        )
        return 1
    start = time.perf_counter()
    echo(f"Running workbooks with {args.jobs or 'all'} worker(s) ...")
    results = run(
        project,
        jobs=args.jobs,
        workbooks=args.workbook,
        microsystems=args.microsystem,
        timeout=args.timeout,
        echo=echo,
    )
    index = build_site(project)
    failed = [r for r in results if r.status != "ok"]
    print(f"{len(results)} notebooks in {time.perf_counter() - start:.1f}s, {len(failed)} failed.")
    print(f"Manifest: {project.outputs_dir / 'run.json'}")
    print(f"Site: {index}")
    for r in failed:
        print(
            f"FAILED {r.workbook}:{r.name}: {r.error.splitlines()[0] if r.error else ''}",
            file=sys.stderr,
        )
    return 1 if failed else 0


def _publish(args: argparse.Namespace) -> int:
    from qi_helpers.project import load_project
    from qi_helpers.publish import build_site

    project = load_project(args.project)
    index = build_site(project, Path(args.out) if args.out else None)
    print(f"Site: {index}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``qi`` command."""
    parser = argparse.ArgumentParser(
        prog="qi", description="QI workbooks for clinical microsystems: run the method end to end."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="write the synthetic demo health system")
    demo.add_argument("--size", default="small", choices=["small", "medium", "large"])
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="data/demo", help="folder to write (default data/demo)")
    demo.add_argument("--format", default="csv", choices=["csv", "parquet"])
    demo.set_defaults(func=_demo)

    for name, func, text in [
        ("check", _check, "validate the configured input tables"),
        ("run", _run, "execute the workbooks and publish the site"),
        ("publish", _publish, "rebuild the site from executed notebooks"),
    ]:
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("--project", default="", help="project folder (default: found from here)")
        cmd.set_defaults(func=func)
        if name == "run":
            cmd.add_argument(
                "--workbook",
                action="append",
                choices=["01", "02", "03", "04"],
                help="run only this workbook (repeatable)",
            )
            cmd.add_argument(
                "--microsystem",
                action="append",
                help="run workbook 03 only for this microsystem id (repeatable)",
            )
            cmd.add_argument(
                "--jobs", type=int, default=None, help="worker processes (default: number of CPUs)"
            )
            cmd.add_argument(
                "--timeout",
                type=float,
                default=1800,
                help="seconds a single cell may run (default 1800)",
            )
            cmd.add_argument("--quiet", action="store_true", help="print only the summary")
        if name == "publish":
            cmd.add_argument("--out", default=None, help="site folder (default outputs/site)")
    return parser


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
