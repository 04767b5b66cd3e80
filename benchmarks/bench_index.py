"""The index page in headless Chromium: time to interactive and to filter (issue 17).

Opens a published site's ``index.html`` offline (every request outside ``file://`` blocked) at
1280 x 900, five times, and prints the medians of:

- DOMContentLoaded and load (the Navigation Timing entry);
- time to interactive: the later of DOMContentLoaded and the end of the last long task (a task of
  50 ms or more on the main thread, from a ``longtask`` PerformanceObserver started before the
  page's own script), after 2 s of quiet; the simplified definition of Lighthouse's TTI;
- the time the filters take to show a search result, a kind filter and a column sort (from the
  event to the next painted frame).

Usage::

    .venv/bin/python benchmarks/bench_index.py SITE_FOLDER   # e.g. outputs/site

``bench_scale.py --keep DIR`` leaves the large demo's site in ``DIR/large/outputs/site``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  (the tests' browser settings)

OBSERVE_LONG_TASKS = """
window.__qiLongTasks = [];
new PerformanceObserver(function (list) {
  list.getEntries().forEach(function (e) { window.__qiLongTasks.push(e.startTime + e.duration); });
}).observe({type: "longtask", buffered: true});
"""

# Time from an action to the frame painted after it (two animation frames: the first runs before
# the paint that shows the change, the second after it).
TIMED_ACTION = """
async (action) => {
  const start = performance.now();
  action === "search" ? (() => {
      const box = document.getElementById("qi-search");
      box.value = "PC1"; box.dispatchEvent(new Event("input"));
    })()
  : action === "kind" ? (() => {
      const kind = document.getElementById("qi-kind");
      kind.value = kind.options[kind.options.length - 1].value;
      kind.dispatchEvent(new Event("change"));
    })()
  : document.querySelector("#qi-ms-table thead th:nth-child(3) button").click();
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return performance.now() - start;
}
"""

RESET = """
() => {
  const box = document.getElementById("qi-search");
  box.value = ""; box.dispatchEvent(new Event("input"));
  const kind = document.getElementById("qi-kind");
  kind.value = ""; kind.dispatchEvent(new Event("change"));
}
"""


def measure(browser, index: Path) -> dict[str, float]:
    """One opening of ``index``: the timings in milliseconds."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.route(
        "**/*", lambda r: r.continue_() if r.request.url.startswith("file://") else r.abort()
    )
    context.add_init_script(OBSERVE_LONG_TASKS)
    page = context.new_page()
    page.goto(index.as_uri(), wait_until="load")
    page.wait_for_timeout(2000)
    nav = page.evaluate("() => performance.getEntriesByType('navigation')[0].toJSON()")
    long_tasks = page.evaluate("() => window.__qiLongTasks")
    dcl = nav["domContentLoadedEventEnd"]
    timings = {
        "DOMContentLoaded": dcl,
        "load": nav["loadEventEnd"],
        "interactive": max([dcl, *long_tasks]),
        "rows": page.locator("#qi-ms-table tbody tr").count(),
    }
    for action in ("search", "kind", "sort"):
        timings[action] = page.evaluate(TIMED_ACTION, action)
        page.evaluate(RESET)
    context.close()
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="a published site folder (with index.html)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    index = args.site.resolve() / "index.html"
    if not index.is_file():
        raise SystemExit(f"{index}: not found; run `qi run` first")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        runs = [measure(browser, index) for _ in range(args.repeat)]
        browser.close()
    size = index.stat().st_size
    print(f"{index}: {size / 1e6:.2f} MB, {int(runs[0]['rows'])} microsystems")
    print(f"median of {args.repeat} openings at 1280 x 900 (ms):")
    for key in ("DOMContentLoaded", "load", "interactive", "search", "kind", "sort"):
        values = [r[key] for r in runs]
        print(f"  {key:17s} {statistics.median(values):8.1f}   (min {min(values):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
