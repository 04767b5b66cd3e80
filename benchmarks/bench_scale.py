"""Scale: each microsystem's work independent of the organisation's size (issue 17).

Generates the demos it needs (small: 20 microsystems, medium: about 100, large: 502 with 6.1
million activities) in a temporary folder and prints, side by side in one run:

(a) the one-microsystem rerun, ``qi run --workbook 03 --microsystem NOR-PC1 --force``, on large
    and on small, after both were prepared (target: large / small <= 1.5);
(b) a whole forced run ``qi run --jobs 2 --force`` of medium and of small (target: medium /
    small <= 5.5; linear in notebooks would be about 4.5);
(c) workbook 01 on large (``qi run --workbook 01 --force``: target under 120 s, goal 60 s, and
    under 2 GB), and the size of its published page (target under 1 MB);
(d) with ``--large-run``: the whole forced run of large with ``--jobs 2`` (target under 30
    minutes) and a rerun with nothing changed (target under 5 s); with ``--cluster`` also the
    whole large run on ``--cluster local --jobs 2`` (notebooks per minute per worker);
(e) the peak memory of any one process under ``qi run`` (a worker, its kernel, or the run
    itself), sampled every 0.2 s with psutil (target: a worker under 1.5 GB).

Usage::

    .venv/bin/python benchmarks/bench_scale.py [--large-run] [--cluster] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_batch import make_project  # noqa: E402  (the benchmarks folder is not a package)

MICROSYSTEM = "NOR-PC1"


class PeakMemory:
    """The largest resident memory of the run's own process and of each of its descendants
    (worker processes and their kernels), sampled while a command runs."""

    def __init__(self, process: psutil.Popen) -> None:
        self.process = process
        self.run_peak = 0
        self.child_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_peak = max(self.run_peak, self.process.memory_info().rss)
                for child in self.process.children(recursive=True):
                    try:
                        self.child_peak = max(self.child_peak, child.memory_info().rss)
                    except psutil.Error:
                        continue
            except psutil.Error:
                pass
            self._stop.wait(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def qi(project: Path, *args: str) -> tuple[float, PeakMemory]:
    """Run ``qi run --project <project> --quiet <args>``; its wall time and peak memory."""
    command = [str(BIN / "qi"), "run", "--project", str(project), "--quiet", *args]
    start = time.perf_counter()
    process = psutil.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    memory = PeakMemory(process)
    out, err = process.communicate()
    seconds = time.perf_counter() - start
    memory.stop()
    if process.returncode != 0:
        sys.stderr.write(out.decode()[-3000:] + err.decode()[-3000:])
        raise SystemExit(f"failed ({process.returncode}): {' '.join(command)}")
    return seconds, memory


def gb(value: int) -> str:
    return f"{value / 1e9:.2f} GB"


def notebooks(project: Path) -> int:
    manifest = json.loads((project / "outputs" / "run.json").read_text(encoding="utf-8"))
    return sum(not t.get("skipped") for t in manifest["tasks"])


def prepared(folder: Path, size: str) -> Path:
    """A demo project of ``size`` after workbook 01 and one workbook 03 run (slices made)."""
    project = make_project(folder, size)
    qi(project, "--workbook", "01")
    qi(project, "--workbook", "03", "--microsystem", MICROSYSTEM)
    return project


def one_microsystem(project: Path, repeats: int = 3) -> float:
    """The best of ``repeats`` forced reruns of one microsystem's workbook 03."""
    return min(
        qi(project, "--workbook", "03", "--microsystem", MICROSYSTEM, "--force")[0]
        for _ in range(repeats)
    )


def large_run(
    large: Path, cluster: bool, peaks: dict[str, PeakMemory], first: bool = False
) -> None:
    """(d): the whole run of ``large`` with ``--jobs 2`` (forced, or its first run), the rerun
    with nothing changed, and with ``cluster`` the forced run on a Dask LocalCluster."""
    whole_large, peaks["large run"] = qi(large, "--jobs", "2", *(() if first else ("--force",)))
    count = notebooks(large)
    nothing, _ = qi(large, "--jobs", "2")
    print(
        f"(d) whole {'first' if first else 'forced'} run of large --jobs 2: "
        f"{whole_large / 60:.1f} min ({count} notebooks, "
        f"{count / (whole_large / 60) / 2:.1f} notebooks per minute per worker); "
        f"nothing changed: {nothing:.2f}s",
        flush=True,
    )
    if cluster:
        dask_large, peaks["large run, --cluster local"] = qi(
            large, "--cluster", "local", "--jobs", "2", "--force"
        )
        print(
            f"    --cluster local --jobs 2 --force: {dask_large / 60:.1f} min, "
            f"{count / (dask_large / 60) / 2:.1f} notebooks per minute per worker",
            flush=True,
        )
    if first:
        print_peaks(peaks)


def print_peaks(peaks: dict[str, PeakMemory]) -> None:
    """(e): the peak memory of one process in each measured run."""
    print("(e) peak memory of one process:")
    for name, memory in peaks.items():
        print(
            f"    {name}: workers and kernels {gb(memory.child_peak)}, "
            f"the run itself {gb(memory.run_peak)}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large-run", action="store_true", help="(d): the whole large run")
    parser.add_argument("--cluster", action="store_true", help="(d) on a Dask LocalCluster too")
    parser.add_argument(
        "--large-only",
        action="store_true",
        help="only (d) and (e): a first whole run of a new large demo, then the reruns",
    )
    parser.add_argument("--keep", help="keep the projects in this folder (default: temporary)")
    args = parser.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="qi-scale-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        print(f"projects under {tmp}", flush=True)
        if args.large_only:
            large_run(make_project(tmp / "large", "large"), args.cluster, {}, first=True)
            return 0
        small = prepared(tmp / "small", "small")
        large = prepared(tmp / "large", "large")
        one_small, one_large = one_microsystem(small), one_microsystem(large)
        print(f"(a) one microsystem rerun: small {one_small:.1f}s, large {one_large:.1f}s")

        whole_small, mem_small = qi(small, "--jobs", "2", "--force")
        medium = make_project(tmp / "medium", "medium")
        whole_medium, mem_medium = qi(medium, "--jobs", "2", "--force")
        print(
            f"(b) whole forced run --jobs 2: small {whole_small:.1f}s ({notebooks(small)} "
            f"notebooks), medium {whole_medium:.1f}s ({notebooks(medium)} notebooks)",
            flush=True,
        )
        seconds_01, mem_01 = qi(large, "--workbook", "01", "--force")
        page = large / "outputs" / "site" / "01_identify_microsystems"
        page_bytes = sum(p.stat().st_size for p in page.glob("*.html"))
        print(
            f"(c) workbook 01 on large: {seconds_01:.1f}s, peak {gb(mem_01.child_peak)} "
            f"(kernel or worker), page {page_bytes / 1e6:.2f} MB",
            flush=True,
        )
        peaks = {"medium run": mem_medium, "workbook 01 on large": mem_01}
        if args.large_run:
            large_run(large, args.cluster, peaks)
        print_peaks(peaks)
        print("ratios:")
        print(f"  one microsystem, large / small = {one_large / one_small:.2f}  (target <= 1.5)")
        print(f"  whole run, medium / small = {whole_medium / whole_small:.2f}  (target <= 5.5)")
        print(f"  workbook 01 on large = {seconds_01:.0f}s  (target < 120 s, goal 60 s)")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
