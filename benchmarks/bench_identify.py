"""Benchmark of :func:`qi_helpers.identify.identify` (and the 5 Ps profiles) on the demo.

On the large demo (~500 microsystems, ~4,000 staff, ~6 million activities) it prints:

- the wall time and the peak memory of ``identify`` (resident set size sampled every 20 ms
  while it runs, and the process's maximum), against the targets of 60 s and 4 GB;
- the time per million activities;
- how well the planted teams are recovered (adjusted Rand index, number of microsystems), with
  the refinement and with plain Louvain (the resolution limit);
- the time of :func:`qi_helpers.identify.profiles.profile`;
- a baseline in the same process: the staff projection (shared patients of every pair of staff)
  computed with a Python dict of pairs, against the sparse matrix product ``B @ B.T`` that
  ``identify`` uses, on the first ``--subset`` activities, with the ratio.

Run: ``.venv/bin/python benchmarks/bench_identify.py [--size large] [--seed 0] [--subset 300000]
[--no-profile]``. Prints figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import resource
import threading
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import pandas as pd
import yaml

from qi_helpers.demo.health_system import make_demo
from qi_helpers.identify import (
    adjusted_rand_index,
    encode,
    identify,
    kept_ties,
    main_microsystem,
)

ROOT = Path(__file__).resolve().parents[1]


def _rss() -> int:
    """Resident set size of this process, in bytes (Linux)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


class PeakRSS:
    """Sample the resident set size in a thread while the block runs."""

    def __enter__(self) -> PeakRSS:
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def naive_projection(acts: pd.DataFrame, min_shared: int) -> dict[tuple[str, str], int]:
    """Shared patients of every pair of staff with a dict of pairs (the baseline)."""
    staff_of: dict[str, set[str]] = defaultdict(set)
    for patient, member in zip(acts["patient_id"], acts["staff_id"], strict=True):
        staff_of[patient].add(member)
    shared: dict[tuple[str, str], int] = defaultdict(int)
    for members in staff_of.values():
        for a, b in combinations(sorted(members), 2):
            shared[(a, b)] += 1
    return {pair: n for pair, n in shared.items() if n >= min_shared}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="large", choices=["small", "medium", "large"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subset", type=int, default=300_000)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()

    config = yaml.safe_load((ROOT / "parameters" / "project.yaml").read_text(encoding="utf-8"))
    settings = config["identify"]
    start = time.perf_counter()
    tables = make_demo(args.size, seed=args.seed)
    acts, staff = tables["activities"], tables["staff"]
    truth = tables["truth_membership"]
    planted = truth[truth["main"]].set_index("staff_id")["microsystem_id"]
    n_planted = len(tables["truth_microsystems"])
    millions = len(acts) / 1e6
    print(
        f"demo {args.size}: {len(acts):,} activities, {len(staff):,} staff, {n_planted} planted "
        f"microsystems (generated in {time.perf_counter() - start:.1f} s)"
    )

    identify(acts.iloc[:20_000], staff, **settings)  # warm up: imports, first calls
    with PeakRSS() as memory:
        start = time.perf_counter()
        result = identify(acts, staff, **settings)
        elapsed = time.perf_counter() - start
    ari = adjusted_rand_index(main_microsystem(result.staff), planted)
    actions = result.merges["action"].value_counts()
    print(
        f"identify: {elapsed:.1f} s ({elapsed / millions:.2f} s per million activities); "
        f"{len(result.registry)} microsystems, adjusted Rand index {ari:.3f}; "
        f"{actions.get('split', 0)} splits, {actions.get('merge', 0)} merges"
    )
    peak_gb = memory.peak / 1e9
    max_rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    print(
        f"memory: {memory.start / 1e9:.2f} GB resident before, peak {peak_gb:.2f} GB during "
        f"identify (+{(memory.peak - memory.start) / 1e9:.2f} GB); process maximum "
        f"{max_rss_gb:.2f} GB (including the demo's generation)"
    )
    verdict = "met" if elapsed < 60 and peak_gb < 4 else "NOT met"
    print(f"target (< 60 s and < 4 GB on 2 cores): {verdict}")

    start = time.perf_counter()
    plain = identify(acts, staff, **{**settings, "refine": False})
    plain_time = time.perf_counter() - start
    plain_ari = adjusted_rand_index(main_microsystem(plain.staff), planted)
    print(
        f"plain Louvain (refine=False): {plain_time:.1f} s, {len(plain.registry)} microsystems, "
        f"adjusted Rand index {plain_ari:.3f}"
    )

    if not args.no_profile:
        from qi_helpers.identify.profiles import profile

        start = time.perf_counter()
        profile(result, acts, staff, tables["patients"])
        print(f"profile (5 Ps): {time.perf_counter() - start:.1f} s")

    subset = acts.iloc[: args.subset]
    start = time.perf_counter()
    naive = naive_projection(subset, settings["min_shared_patients"])
    naive_time = time.perf_counter() - start
    start = time.perf_counter()
    encoded = encode(subset)
    ties = kept_ties(encoded, settings["min_shared_patients"])
    sparse_time = time.perf_counter() - start
    n_sparse = int(ties.nnz // 2)
    agree = "same ties" if n_sparse == len(naive) else f"DIFFERENT ({n_sparse} vs {len(naive)})"
    print(
        f"projection of {len(subset):,} activities: dict of pairs {naive_time:.2f} s, sparse "
        f"B @ B.T (with encoding) {sparse_time:.2f} s, ratio {naive_time / sparse_time:.1f}x; "
        f"{agree}"
    )
    print(f"kept ties in the staff network: {len(result.ties):,}")


if __name__ == "__main__":
    main()
