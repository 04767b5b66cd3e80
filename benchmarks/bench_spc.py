"""Benchmark of :func:`qi_helpers.spc.qic.qic` against its peers, side by side in one run.

1. **Per call**: one 104-week series per call (p, u and i charts with the runs analysis), as
   every slider move in JupyterLab and every loop that charts one series at a time pays it:
   best time per call of ``qic`` and of each peer SPC package.
2. **Batch**: 500 microsystems x 104 weeks per chart type: one ``qic`` call facetted by
   microsystem against each peer's loop over the 500 series (the peers chart one series per
   call), and ``qic``'s own per-series loop on a subset, extrapolated.

The peers (``peers-requirements.txt``: shewhart, abspc) are installed into the benchmark's own
virtual environment, ``benchmarks/.peers-venv`` (made with uv on first use), never into the
project's, and timed there by ``spc_peers.py`` on the same data, between two timings of
``qic``. Ratios are project / peer: below 1 the project is faster.

Run: ``.venv/bin/python benchmarks/bench_spc.py [--units 500] [--weeks 104] [--no-peers]``.
Prints figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from spc_peers import best_per_call  # one timing protocol for qic and the peers

from qi_helpers.spc.qic import qic

HERE = Path(__file__).resolve().parent
PEERS_VENV = HERE / ".peers-venv"
PEERS_REQUIREMENTS = HERE / "peers-requirements.txt"

MEASURES = {
    "readmissions": "p",
    "pressure_ulcers": "p",
    "falls_per_1000_bed_days": "u",
    "infections_per_1000_line_days": "u",
    "length_of_stay": "i",
}
#: The measure timed for each chart type.
BY_CHART = {"p": "readmissions", "u": "falls_per_1000_bed_days", "i": "length_of_stay"}


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


def _call(chart: str):
    def call(d: pd.DataFrame) -> pd.DataFrame:
        return qic(d, "week", "y", "n" if "n" in d else None, chart=chart)

    return call


def time_project(series, tables, repeat: int, calls: int) -> dict[str, dict[str, float]]:
    """Per call and batch times of ``qic`` for each chart type."""
    out = {}
    for chart, name in BY_CHART.items():
        table = tables[name]
        facetted = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            qic(table, "week", "y", "n" if "n" in table else None, chart=chart, facets="unit")
            facetted.append(time.perf_counter() - t0)
        out[chart] = {
            "per_call": best_per_call(_call(chart), series[chart], repeat, calls),
            "batch": min(facetted),
        }
    return out


def peers_python() -> Path | None:
    """The Python of the peers' venv, made on first use; None when it cannot be made."""
    python = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / ".installed"
    if stamp.exists() and stamp.stat().st_mtime >= PEERS_REQUIREMENTS.stat().st_mtime:
        return python
    uv = Path(sys.executable).with_name("uv")
    try:
        subprocess.run([str(uv), "venv", "-q", "-p", sys.executable, str(PEERS_VENV)], check=True)
        subprocess.run(
            [str(uv), "pip", "install", "-q", "--python", str(python)]
            + ["-r", str(PEERS_REQUIREMENTS), "pandas", "numpy"],
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"peers: could not make {PEERS_VENV} ({err}); peers not timed")
        return None
    stamp.touch()
    return python


def time_peers(python: Path, series, tables, repeat: int, calls: int) -> dict:
    """Run ``spc_peers.py`` in the peers' venv on the same data (as CSV files)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for chart, name in BY_CHART.items():
            series[chart].to_csv(folder / f"series_{chart}.csv", index=False)
            tables[name].to_csv(folder / f"{chart}.csv", index=False)
        done = subprocess.run(
            [str(python), str(HERE / "spc_peers.py"), str(folder / "series_{chart}.csv")]
            + [str(folder), str(repeat), str(calls)],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(done.stdout)


def report(project: dict, peers: dict, units: int) -> None:
    """One line per chart type: per call and batch, project / fastest peer."""
    print()
    print(f"{'chart':5} {'qic per call':>13} {'fastest peer':>22} {'ratio':>6}   "
          f"{'qic batch':>9} {'peer loop':>20} {'ratio':>6}")  # fmt: skip
    for chart, mine in project.items():
        timed = {
            name: res[chart]
            for name, res in peers.items()
            if isinstance(res.get(chart), dict) and "per_call" in res[chart]
        }
        line = f"{chart:5} {mine['per_call'] * 1e3:10.2f} ms"
        if timed:
            fast = min(timed, key=lambda n: timed[n]["per_call"])
            loop = min(timed, key=lambda n: timed[n]["batch_loop"])
            pc, bl = timed[fast]["per_call"], timed[loop]["batch_loop"]
            line += f" {pc * 1e3:10.2f} ms {fast:>8} {mine['per_call'] / pc:6.2f}"
            line += f"   {mine['batch']:7.3f} s {bl:8.3f} s {loop:>9} {mine['batch'] / bl:6.3f}"
        else:
            line += f" {'(no peer)':>22} {'':6}   {mine['batch']:7.3f} s"
        print(line)
    for name, res in peers.items():
        for chart, value in res.items() if isinstance(res, dict) else []:
            if isinstance(value, dict) and "error" in value:
                print(f"  {name} {chart}: {value['error']}")
        if "error" in res:
            print(f"  {name}: {res['error']}")
    print(f"(batch: {units} series of one chart type; the peers loop over them, qic facets)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=500)
    ap.add_argument("--weeks", type=int, default=104)
    ap.add_argument("--loop-units", type=int, default=25, help="units timed in qic's loop")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--calls", type=int, default=300, help="calls per round, per call timing")
    ap.add_argument("--no-peers", action="store_true", help="time the project only")
    args = ap.parse_args()

    tables = build(args.units, args.weeks)
    first = tables[next(iter(tables))]["unit"].iloc[0]
    series = {
        chart: tables[name][tables[name]["unit"] == first]
        .drop(columns="unit")
        .reset_index(drop=True)
        for chart, name in BY_CHART.items()
    }
    points = sum(len(d) for d in tables.values())
    print(f"input: {args.units} units x {len(MEASURES)} measures x {args.weeks} weeks = "
          f"{points:,} points; per call: one {args.weeks}-week series")  # fmt: skip

    project = time_project(series, tables, args.repeat, args.calls)
    peers: dict = {}
    python = None if args.no_peers else peers_python()
    if python is not None:
        peers = time_peers(python, series, tables, args.repeat, args.calls)
        again = time_project(series, tables, args.repeat, args.calls)  # peers ran in between
        for chart, res in again.items():
            for key, value in res.items():
                project[chart][key] = min(project[chart][key], value)
    report(project, peers, args.units)

    run_all(tables)  # the whole portfolio, as workbook 03 and the batch runner call it
    t0 = time.perf_counter()
    res = run_all(tables)
    best = time.perf_counter() - t0
    rows = sum(len(r) for r in res.values())
    all_units = sorted(tables[next(iter(tables))]["unit"].unique())
    k = min(args.loop_units, len(all_units))
    t0 = time.perf_counter()
    calls = run_loop(tables, all_units[:k])
    per_series = (time.perf_counter() - t0) / calls
    print(
        f"portfolio: {len(MEASURES)} facetted qic calls, {rows:,} rows: {best:.3f} s; "
        f"qic one series at a time (splitting the table included): "
        f"{per_series * 1e3:.2f} ms per series, extrapolated "
        f"{per_series * args.units * len(MEASURES):.1f} s"
    )


if __name__ == "__main__":
    main()
