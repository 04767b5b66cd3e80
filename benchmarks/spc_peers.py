"""Time the peer SPC packages on the data of :mod:`bench_spc` (run inside the peers' venv).

Not part of the project: ``bench_spc.py`` runs this script with the Python of its own virtual
environment (``benchmarks/.peers-venv``, made from ``peers-requirements.txt``), so that the
peers and their pinned dependencies never enter the project's. It prints one JSON object:
per peer and chart, the best time per call on one series and the time of the loop over every
series of the batch (the peers chart one series per call).

Usage: ``python spc_peers.py SERIES.csv BATCH_DIR REPEAT CALLS``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd


def _shewhart():
    import shewhart as sw

    return {
        "p": lambda d: sw.p_chart(d, defectives="y", size="n"),
        "u": lambda d: sw.u_chart(d, defects="y", size="n"),
        "i": lambda d: sw.imr(d, value="y"),
    }


def _abspc():
    from abspc import spc

    def chart(kind):
        def call(d):
            frame = d.rename(columns={"n": "subgroup_size"})
            res = spc.calculate_control_limits(frame, kind, value_col="y")
            return spc.detect_special_causes(res, value_col="y")

        return call

    return {"p": chart("p"), "u": chart("u"), "i": chart("XmR")}


PEERS = {"shewhart": _shewhart, "abspc": _abspc}


def best_per_call(call, frame: pd.DataFrame, repeat: int, calls: int) -> float:
    """Best over ``repeat`` rounds of the mean time of ``calls`` calls (after a warm-up).

    ``bench_spc.py`` times ``qic`` with this function too, so both sides follow one protocol.
    """
    for _ in range(max(calls // 10, 5)):
        call(frame)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(calls):
            call(frame)
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def batch_loop(call, table: pd.DataFrame) -> float:
    groups = [g.drop(columns="unit") for _, g in table.groupby("unit", sort=False)]
    t0 = time.perf_counter()
    for g in groups:
        call(g)
    return time.perf_counter() - t0


def main() -> None:
    series_csv, batch_dir, repeat, calls = sys.argv[1:5]
    out: dict[str, dict] = {}
    for name, make in PEERS.items():
        try:
            charts = make()
        except ImportError as err:
            out[name] = {"error": f"not importable: {err}"}
            continue
        result = {}
        for chart, call in charts.items():
            series = pd.read_csv(Path(series_csv.replace("{chart}", chart)), parse_dates=["week"])
            table = pd.read_csv(Path(batch_dir) / f"{chart}.csv", parse_dates=["week"])
            try:
                per_call = best_per_call(call, series, int(repeat), int(calls))
                loop = batch_loop(call, table)
            except Exception as err:  # noqa: BLE001 - a peer's failure is reported, not fatal
                result[chart] = {"error": f"{type(err).__name__}: {err}"}
                continue
            result[chart] = {"per_call": per_call, "batch_loop": loop}
        out[name] = result
    print(json.dumps(out))


if __name__ == "__main__":
    main()
