"""The index's progress column (issue 21): each microsystem's score now, a coach's score, and its
history as a small chart with its words, on hand-built tables; light enough for 500 teams."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from support import copy_project_skeleton

from qi_helpers.project import load_project
from qi_helpers.publish.index import render_index
from qi_helpers.publish.tables import read_registry

MONTHS = pd.date_range("2024-01-01", periods=36, freq="MS")
HISTORY = [1.5] * 5 + [2.0] * 2 + [2.5] * 3 + [3.5] * 3 + [4.0] * 3 + [4.5] * 20


def _project(tmp_path, n: int, *, progress: bool = True):
    root = copy_project_skeleton(tmp_path / f"project{n}{progress}")
    project = load_project(root)
    project.data_dir.mkdir(parents=True)
    ids = [f"T{i:03d}" for i in range(n)]
    pd.DataFrame(
        {"microsystem_id": ids, "name": [f"Team {i}" for i in ids], "kind": "ward", "site": "S"}
    ).to_parquet(project.data_dir / "registry.parquet")
    if progress:
        rows = [
            {"microsystem_id": ms, "month": m, "score": s, "label": "", "evidence": ""}
            for ms in ids
            for m, s in zip(MONTHS, HISTORY if ms != ids[-1] else [1.0] * 36, strict=True)
        ]
        pd.DataFrame(rows).to_parquet(project.data_dir / "progress.parquet")
    return project


def _index(project) -> str:
    return render_index(project, [], read_registry(project))


def _row(page: str, ms: str) -> str:
    return re.search(rf"<tr[^>]*>(?:(?!</tr>).)*{ms}(?:(?!</tr>).)*</tr>", page, re.S).group(0)


def test_each_row_shows_the_score_now_its_chart_and_its_history_in_words(tmp_path):
    page = _index(_project(tmp_path, 3))
    row = _row(page, "T000")
    assert "<b>4.5</b> sustainable improvement" in row
    assert '<img class="qi-prog" src="data:image/svg+xml,%3Csvg ' in row and "<svg" not in row
    history = "1.5 Jan 2024, 2.0 Jun 2024, 2.5 Aug 2024, 3.5 Nov 2024, 4.0 Feb 2025, 4.5 May 2025"
    assert f"<small>{history}</small>" in row
    flat = _row(page, "T002")  # a score that never moved: its words, no chart
    assert "<b>1.0</b> forming<br><small>since Jan 2024</small>" in flat and "<img" not in flat
    assert 'id="progress-scale"' in page  # the scale explained, linked from the header


def test_a_coach_score_shows_beside_the_computed_one(tmp_path):
    project = _project(tmp_path, 3)
    project.progress_scores_file.write_text(
        "microsystem_id,month,score,reason,coach\nT001,2025-12,5,audit met the aim,Kim\n",
        encoding="utf-8",
    )
    page = _index(project)
    assert "coach 5.0: &lsquo;audit met the aim&rsquo;" in _row(page, "T001")
    assert "coach" not in _row(page, "T000")


def test_a_bad_coach_file_is_named_and_the_computed_scores_still_show(tmp_path):
    project = _project(tmp_path, 3)
    project.progress_scores_file.write_text(
        "microsystem_id,month,score,reason,coach\nT001,2025-12,5.5,,Kim\n", encoding="utf-8"
    )
    page = _index(project)
    assert "Coaches&#39; scores not shown" in page or "Coaches' scores not shown" in page
    assert "column score, row(s) 2" in page and "column reason, row(s) 2" in page
    assert "<b>4.5</b>" in _row(page, "T001")


@pytest.mark.parametrize("n", [100])
def test_the_progress_column_adds_a_few_hundred_bytes_per_microsystem(tmp_path, n):
    with_it = len(_index(_project(tmp_path, n)).encode())
    without = len(_index(_project(tmp_path, n, progress=False)).encode())
    few = len(_index(_project(tmp_path, 2)).encode()) - len(
        _index(_project(tmp_path, 2, progress=False)).encode()
    )
    per_microsystem = (with_it - without - few) / (n - 2)
    print(f"\nprogress column: {per_microsystem:.0f} bytes per microsystem")
    # Every team here moved six times (a chart, its alt text and its words: about 400 bytes);
    # a team whose score never moved costs about 60 (tested above), and most of a large
    # organisation's teams are there: the large demo's whole index stays under 1 MB
    # (docs/scale.md).
    assert per_microsystem < 420
