"""Benchmark of :func:`qi_helpers.spc.qic.qic` on a portfolio-sized synthetic input.

500 microsystems x 5 measures x 104 weeks = 260,000 points: two p charts, two u charts and one
i chart, each one ``qic`` call facetted by microsystem, with the runs analysis. The same work is
then timed as a per-series Python loop (one ``qic`` call per microsystem and measure) on a subset
of microsystems and extrapolated to all of them.

Run: ``.venv/bin/python benchmarks/bench_spc.py [--units 500] [--weeks 104] [--loop-units 25]``.
Prints figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from qi_helpers.spc.qic import qic

MEASURES = {
    "readmissions": "p",
    "pressure_ulcers": "p",
    "falls_per_1000_bed_days": "u",
    "infections_per_1000_line_days": "u",
    "length_of_stay": "i",
}


def build(units: int, weeks: int, seed: int = 2024) -> dict[str, pd.DataFrame]:
    """One long table per measure: unit, week, y (and n for p/u charts)."""
    rng = np.random.default_rng(seed)
    week = pd.date_range("2023-01-02", periods=weeks, freq="W-MON")
    unit = np.repeat([f"MS{i:04d}" for i in range(units)], weeks)
    wk = np.tile(week, units)
    shift = np.repeat(rng.random(units) < 0.2, weeks) & np.tile(
        np.arange(weeks) >= weeks // 2, units
    )
    out = {}
    for name, chart in MEASURES.items():
        if chart == "p":
            n = rng.integers(20, 120, units * weeks)
            y = rng.binomial(n, np.where(shift, 0.08, 0.12))
        elif chart == "u":
            n = rng.uniform(200, 900, units * weeks)
            y = rng.poisson(n * np.where(shift, 0.004, 0.006))
        else:
            n = None
            y = rng.gamma(4.0, np.where(shift, 1.1, 1.3))
        d = pd.DataFrame({"unit": unit, "week": wk, "y": y})
        if n is not None:
            d["n"] = n
        out[name] = d
    return out


def run_all(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {
        name: qic(d, "week", "y", "n" if "n" in d else None, chart=MEASURES[name], facets="unit")
        for name, d in tables.items()
    }


def run_loop(tables: dict[str, pd.DataFrame], units: list[str]) -> int:
    count = 0
    for name, d in tables.items():
        groups = dict(tuple(d.groupby("unit", sort=False)))
        for u in units:
            sub = groups[u]
            qic(sub, "week", "y", "n" if "n" in sub else None, chart=MEASURES[name])
            count += 1
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=500)
    ap.add_argument("--weeks", type=int, default=104)
    ap.add_argument("--loop-units", type=int, default=25, help="units timed in the loop")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    tables = build(args.units, args.weeks)
    t_build = time.perf_counter() - t0
    points = sum(len(d) for d in tables.values())
    print(
        f"input: {args.units} units x {len(MEASURES)} measures x {args.weeks} weeks = "
        f"{points:,} points (built in {t_build:.2f} s)"
    )

    run_all(tables)  # warm-up (imports, caches)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = run_all(tables)
        times.append(time.perf_counter() - t0)
    best = min(times)
    rows = sum(len(r) for r in res.values())
    signals = sum(int(r.groupby("facet1")["runs_signal"].first().sum()) for r in res.values())
    print(
        f"vectorised: {len(MEASURES)} qic calls, {rows:,} rows, best of {args.repeat}: "
        f"{best:.3f} s (all: {', '.join(f'{t:.3f}' for t in times)})"
    )
    print(f"  series with a runs signal: {signals} of {args.units * len(MEASURES)}")

    all_units = sorted(tables[next(iter(tables))]["unit"].unique())
    k = min(args.loop_units, len(all_units))
    t0 = time.perf_counter()
    calls = run_loop(tables, all_units[:k])
    t_loop = time.perf_counter() - t0
    per_call = t_loop / calls
    extrapolated = per_call * args.units * len(MEASURES)
    print(
        f"per-series loop: timed {calls} calls ({k} of {args.units} units x {len(MEASURES)} "
        f"measures) in {t_loop:.3f} s = {per_call * 1000:.2f} ms per series; extrapolated "
        f"to all {args.units * len(MEASURES)} series: {extrapolated:.1f} s"
    )
    print(
        f"speed-up of the vectorised call over the loop: {extrapolated / best:.0f}x "
        f"(loop time extrapolated from the subset)"
    )
    print(f"target < 2 s for the whole portfolio: {'met' if best < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
