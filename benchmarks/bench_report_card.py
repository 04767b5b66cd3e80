"""Time the report card (issue 20) against the analysis it comes from, per microsystem.

For each microsystem of the demo: (a) the analysis workbook 03 runs
(``analyse_microsystem`` and its verdict table), (b) ``write_report_card`` (every chart drawn
once, the slides and the PDF written). Prints (b) per microsystem, in seconds, and the ratio
(b)/(a): what the slides and PDF add to a workbook 03 notebook. Files go to a temporary folder.

Usage::

    .venv/bin/python benchmarks/bench_report_card.py [--size small] [--limit 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=["small", "medium", "large"])
    parser.add_argument("--limit", type=int, default=20, help="microsystems timed")
    args = parser.parse_args()

    from qi_helpers.changes import (
        analyse_microsystem,
        assign_microsystems,
        measure_series,
        write_report_card,
    )
    from qi_helpers.demo.health_system import make_demo

    tables = make_demo(size=args.size, seed=0)
    micro = tables["truth_microsystems"]
    locations = micro.assign(location=micro["locations"].str.split(";")).explode("location")
    membership = {"locations": locations[["location", "microsystem_id"]].assign(share=1.0)}
    cases = assign_microsystems(tables["measure_events"], membership)
    series = measure_series(cases, tables["measures"], tables["observations"])
    ids = sorted(series["microsystem_id"].astype(str).unique())[: args.limit]
    analysis_s, card_s = [], []
    with tempfile.TemporaryDirectory() as folder:
        write_report_card(  # warm up: imports of python-pptx, fpdf2, fonts
            analyse_microsystem(cases, series, tables["measures"], tables["pdsa"],
                                microsystem_id=ids[0]), Path(folder) / "warm")  # fmt: skip
        for ms in ids:
            began = time.perf_counter()
            analysis = analyse_microsystem(
                cases, series, tables["measures"], tables["pdsa"], microsystem_id=ms
            )
            analysis.verdicts  # noqa: B018 - what write_results computes
            analysis_s.append(time.perf_counter() - began)
            began = time.perf_counter()
            write_report_card(analysis, folder)
            card_s.append(time.perf_counter() - began)
    added = statistics.median(card_s)
    base = statistics.median(analysis_s)
    print(f"{len(ids)} microsystems of the {args.size} demo")
    print(f"(a) analysis: median {base:.2f} s per microsystem")
    print(f"(b) report card (slides + PDF): median {added:.2f} s, max {max(card_s):.2f} s")
    print(f"(b)/(a) = {added / base:.2f}")


if __name__ == "__main__":
    main()
