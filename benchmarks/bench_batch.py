"""Time the batch run of the workbooks against the loop a user would write, side by side.

(a) baseline: for every notebook one ``papermill`` command, then one
    ``jupyter nbconvert --to html --no-input`` command, one after the other;
(b) ``qi run --jobs 2 --force``;
(c) ``qi run --jobs 2`` again with nothing changed;
(d) ``qi run --cluster local --jobs 2 --force`` (a Dask LocalCluster of 2 workers).

Targets: (a)/(b) >= 4, (b)/(c) >= 50 with (c) under 3 s, (d) within 15% of (b). With
``--medium`` it also reports notebooks per minute of ``qi run --jobs 2 --force`` on the medium
demo. Every run uses its own copy of a project in a temporary folder (never ``outputs/``).

Usage::

    .venv/bin/python benchmarks/bench_batch.py [--size small] [--jobs 2] [--skip-baseline]
                                               [--skip-dask] [--medium]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def make_project(folder: Path, size: str) -> Path:
    """A project with the committed parameters and workbooks and the demo data of ``size``."""
    from qi_helpers.demo.health_system import make_demo, write_demo

    shutil.copytree(ROOT / "parameters", folder / "parameters")
    shutil.copytree(ROOT / "workbooks", folder / "workbooks")
    write_demo(make_demo(size=size, seed=0), folder / "data" / "demo")
    config = folder / "parameters" / "project.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("size: small", f"size: {size}"), encoding="utf-8")
    return folder


def copy_project(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("outputs"))
    return target


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}")
    return seconds


def baseline(project: Path) -> tuple[float, int]:
    """(a): one papermill CLI call and one nbconvert CLI call per notebook, serially."""
    import pandas as pd

    out = project / "outputs" / "baseline"
    out.mkdir(parents=True)
    workbooks = project / "workbooks"

    def one(workbook: str, name: str, extra: list[str]) -> float:
        executed = out / f"{name}.ipynb"
        command = [str(BIN / "papermill"), str(workbooks / f"{workbook}.ipynb"), str(executed)]
        command += ["-p", "project_root", str(project), "-p", "interactive", "False", *extra]
        command += ["--cwd", str(workbooks), "--no-progress-bar"]
        seconds = timed(command, project)
        html = [str(BIN / "jupyter"), "nbconvert", "--to", "html", "--no-input", str(executed)]
        return seconds + timed(html, project)

    start = time.perf_counter()
    count = 0
    one("01_identify_microsystems", "01_identify_microsystems", [])
    one("02_select_pilots", "02_select_pilots", [])
    count += 2
    registry = pd.read_parquet(project / "outputs" / "data" / "registry.parquet")
    for ms in registry["microsystem_id"].astype(str):
        one("03_analyse_tests", ms, ["-p", "microsystem_id", ms])
        count += 1
    one("04_plan_spread", "04_plan_spread", [])
    count += 1
    return time.perf_counter() - start, count


def qi_run(project: Path, *args: str) -> float:
    return timed([str(BIN / "qi"), "run", "--project", str(project), "--quiet", *args], project)


def where_time_goes(project: Path) -> str:
    """Summed per-task timings from the task logs, and publishing, of a `qi run`."""
    prepare = execute = 0.0
    pattern = re.compile(r"timings: prepare ([0-9.]+)s .*execute ([0-9.]+)s")
    for log in (project / "outputs" / "logs").rglob("*.log"):
        for found in pattern.finditer(log.read_text(encoding="utf-8")):
            prepare += float(found.group(1))
            execute += float(found.group(2))
    manifest = json.loads((project / "outputs" / "run.json").read_text(encoding="utf-8"))
    publish = manifest.get("history", {}).get("publish", {}).get("seconds", 0.0)
    return (
        f"kernel start+reset+imports {prepare:.1f}s, notebooks' own cells {execute:.1f}s "
        f"(summed over workers), publishing {publish:.1f}s, run total {manifest['seconds']:.1f}s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=["small", "medium", "large"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--medium", action="store_true", help="also time the medium demo")
    args = parser.parse_args()
    jobs = str(args.jobs)
    with tempfile.TemporaryDirectory(prefix="qi-bench-") as tmp:
        tmp_path = Path(tmp)
        source = make_project(tmp_path / "source", args.size)
        print(f"demo {args.size}, {args.jobs} jobs, projects under {tmp_path}", flush=True)
        times: dict[str, float] = {}
        if not args.skip_baseline:
            times["a"], count = baseline(copy_project(source, tmp_path / "a"))
            print(
                f"(a) papermill + nbconvert CLI per notebook, serial: {times['a']:.1f}s "
                f"({count} notebooks)",
                flush=True,
            )
        b = copy_project(source, tmp_path / "b")
        times["b"] = qi_run(b, "--jobs", jobs, "--force")
        print(f"(b) qi run --jobs {jobs} --force: {times['b']:.1f}s", flush=True)
        print(f"    where the time goes: {where_time_goes(b)}", flush=True)
        times["c"] = qi_run(b, "--jobs", jobs)
        print(f"(c) qi run --jobs {jobs}, nothing changed: {times['c']:.2f}s", flush=True)
        if not args.skip_dask:
            d = copy_project(source, tmp_path / "d")
            times["d"] = qi_run(d, "--cluster", "local", "--jobs", jobs, "--force")
            print(
                f"(d) qi run --cluster local --jobs {jobs} --force: {times['d']:.1f}s", flush=True
            )
        print("ratios:")
        if "a" in times:
            print(f"  (a)/(b) = {times['a'] / times['b']:.2f}  (target >= 4)")
        print(f"  (b)/(c) = {times['b'] / times['c']:.1f}  (target >= 50; (c) under 3 s)")
        if "d" in times:
            print(f"  (d)/(b) = {times['d'] / times['b']:.2f}  (target <= 1.15)")
        if args.medium:
            medium = make_project(tmp_path / "medium", "medium")
            seconds = qi_run(medium, "--jobs", jobs, "--force")
            n = len(json.loads((medium / "outputs" / "run.json").read_text())["tasks"])
            print(
                f"medium demo: {n} notebooks in {seconds:.1f}s = {60 * n / seconds:.1f} "
                "notebooks per minute",
                flush=True,
            )
            print(f"    where the time goes: {where_time_goes(medium)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
