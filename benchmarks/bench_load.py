"""Benchmark of loading and validating the inputs (what ``qi check`` does) from CSV and Parquet.

The large demo (about 6 million activity rows and 4.4 million measured cases) is written once as
CSV and as Parquet; then each format is read and checked in its own process (every table against
its contract, then the tables against each other) so each gets its own peak memory figure.
Prints the time and the peak resident memory (``ru_maxrss``) of each, and the ratio CSV/Parquet.
Targets: from CSV under 30 s and under 4 GB.

Run: ``.venv/bin/python benchmarks/bench_load.py [--size large] [--data DIR]`` (``--data`` reuses
a folder holding ``csv/`` and ``parquet/`` written by an earlier run). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(folder: Path, fmt: str) -> dict:
    """Load and check every table of ``folder`` (in this process); return figures."""
    from qi_helpers.data.checks import check_project
    from qi_helpers.demo.health_system import demo_table_specs
    from qi_helpers.project import Project

    config = {"data": {"tables": demo_table_specs(folder, fmt=fmt)}}
    start = time.perf_counter()
    report = check_project(Project(root=folder, config=config))
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "format": fmt,
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_gb": usage.ru_maxrss * 1024 / 1e9,  # ru_maxrss is in KiB on Linux
        "rows": {n: i.rows for n, i in report.tables.items()},
        "errors": len(report.errors),
        "warnings": len(report.warnings),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="large", choices=["small", "medium", "large"])
    parser.add_argument("--data", default="", help="folder with csv/ and parquet/ to reuse")
    parser.add_argument("--measure", nargs=2, metavar=("FOLDER", "FMT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), args.measure[1])))
        return
    with tempfile.TemporaryDirectory(prefix="bench_load_") as tmp:
        data = Path(args.data) if args.data else Path(tmp)
        if not (data / "csv" / "activities.csv").is_file():
            from qi_helpers.demo.health_system import make_demo, write_demo

            start = time.perf_counter()
            tables = make_demo(size=args.size, seed=0)
            write_demo(tables, data / "csv", fmt="csv")
            write_demo(tables, data / "parquet", fmt="parquet")
            del tables
            print(f"wrote the {args.size} demo to {data} in {time.perf_counter() - start:.0f}s")
        results = {}
        for fmt, folder in (("csv", data / "csv"), ("parquet", data / "parquet")):
            out = subprocess.run(
                [sys.executable, __file__, "--measure", str(folder), fmt],
                capture_output=True,
                text=True,
                check=True,
            )
            results[fmt] = json.loads(out.stdout.strip().splitlines()[-1])
    rows = results["csv"]["rows"]
    print(
        f"load + validate {rows['activities']:,} activities, {rows['measure_events']:,} measured "
        f"cases and 7 smaller tables ({results['csv']['errors']} errors, "
        f"{results['csv']['warnings']} warnings)"
    )
    for fmt in ("csv", "parquet"):
        r = results[fmt]
        print(
            f"  {fmt:8} {r['seconds']:6.1f} s wall, {r['cpu_seconds']:6.1f} s CPU (whole process)"
            f"   peak memory {r['peak_gb']:.2f} GB"
        )
    ratio = results["csv"]["seconds"] / results["parquet"]["seconds"]
    cpu_ratio = results["csv"]["cpu_seconds"] / results["parquet"]["cpu_seconds"]
    print(
        f"  ratio CSV/Parquet: {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU"
        "   (targets from CSV: < 30 s, < 4 GB)"
    )
    print(
        f"  load average now: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
        "(on a busy machine wall time exceeds CPU time)"
    )


if __name__ == "__main__":
    main()
