"""The progress of a run: a bar with done, skipped, failed and time left, or plain lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tqdm import tqdm

from qi_helpers.run.tasks import TaskResult


class Progress:
    """A progress bar with done, skipped, failed and time left (tqdm), or nothing when quiet.

    Parameters
    ----------
    enabled : bool
        Show the bar; when False, lines go to the run's ``echo`` instead.
    workers : int
        How many notebooks run at once.
    """

    def __init__(self, enabled: bool, workers: int) -> None:
        self.enabled = enabled
        self.workers = max(1, workers)
        self.bar = None
        self.counts = {"ran": 0, "skipped": 0, "failed": 0}
        if enabled:
            self.bar = tqdm(
                total=0,
                unit="nb",
                bar_format="{desc}{bar:20} {n_fmt}/{total_fmt} [{elapsed}]{postfix}",
                dynamic_ncols=True,
                leave=True,
            )

    def grow(self, n: int) -> None:
        """``n`` more tasks to do."""
        if self.bar is not None and n:
            self.bar.total += n
            self.bar.refresh()

    def write(self, line: str, echo: Callable[..., Any]) -> None:
        """Print a line above the bar (or through ``echo`` without one)."""
        if self.bar is not None:
            self.bar.write(line)
        else:
            echo(line)

    def done(self, result: TaskResult, left_seconds: float) -> None:
        """Count a finished task and show the time left."""
        key = "skipped" if result.skipped else ("ran" if result.status == "ok" else "failed")
        self.counts[key] += 1
        if self.bar is not None:
            c = self.counts
            left = f"~{int(left_seconds // 60)}m{int(left_seconds % 60):02d}s left"
            self.bar.set_postfix_str(
                f"{c['ran']} done, {c['skipped']} skipped, {c['failed']} failed, {left}",
                refresh=False,
            )
            self.bar.update(1)

    def close(self) -> None:
        """Close the bar (again: nothing)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
