"""The index's "Changed since" panel on hand-built digests: a few changes listed one by one, many
of one kind folded into one line with their links, so the first whole run of an organisation of
500 microsystems does not add 500 list items to the index."""

from __future__ import annotations

import json
import re

import jinja2
import pandas as pd
from support import copy_project_skeleton

from qi_helpers.project import load_project
from qi_helpers.publish.digest_panel import GROUPED, SHOWN, digest_panel
from qi_helpers.publish.index import TEMPLATE, render_index
from qi_helpers.publish.tables import read_registry
from qi_helpers.publish.theme import templates_dir


def _project(tmp_path, entries: list[dict]):
    project = load_project(copy_project_skeleton(tmp_path / "project"))
    project.data_dir.mkdir(parents=True)
    ids = sorted({e["microsystem_id"] for e in entries if e.get("microsystem_id")})
    pd.DataFrame({"microsystem_id": ids, "name": ids, "kind": "ward", "site": "S"}).to_parquet(
        project.data_dir / "registry.parquet"
    )
    digest = {"date": "2026-12-04T17:00:00", "previous_date": "2026-12-03T09:00:00",
              "entries": entries}  # fmt: skip
    project.digest_file.write_text(json.dumps(digest), encoding="utf-8")
    return project


def _new(ms: str) -> dict:
    return {"microsystem_id": ms, "workbook": "03", "kind": "new_microsystem",
            "text": "new microsystem: first results, 3 measures"}  # fmt: skip


def _verdict(ms: str) -> dict:
    return {"microsystem_id": ms, "workbook": "03", "kind": "verdict_changed",
            "text": "Falls: verdict no signal yet -> improved"}  # fmt: skip


def test_many_changes_of_one_kind_are_one_line_and_the_others_stay_whole(tmp_path):
    entries = [_verdict(f"V{i}") for i in range(3)] + [_new(f"N{i:03d}") for i in range(60)]
    entries += [_verdict(f"W{i}") for i in range(2)]
    project = _project(tmp_path, entries)
    panel = digest_panel(project, [{"id": e["microsystem_id"], "href": ""} for e in entries], [])
    assert panel["count"] == 65 and len(panel["shown"]) == SHOWN
    group = [c for c in panel["more"] if c.get("links")]
    assert (
        len(group) == 1
        and group[0]["count"] == 60 - (SHOWN - 3)
        and group[0]["kind"] == ("new_microsystem")
    )
    singles = [c for c in panel["more"] if not c.get("links")]
    assert [c["who"] for c in singles] == ["W0", "W1"]  # 2 of a kind: listed as they are
    page = render_index(project, [], read_registry(project))
    assert "55 more changes" in page
    line = re.search(r"<li[^>]*>53 new microsystems with their first results: (.*?)</li>", page)
    assert line and line.group(1).startswith("N007, N008") and line.group(1).endswith("N059")


def test_a_few_changes_of_a_kind_are_listed_one_by_one(tmp_path):
    entries = [_new(f"N{i:03d}") for i in range(SHOWN + GROUPED)]
    project = _project(tmp_path, entries)
    panel = digest_panel(project, [], [])
    assert len(panel["more"]) == GROUPED and not any(c.get("links") for c in panel["more"])


def test_the_panel_of_500_new_microsystems_stays_small(tmp_path):
    entries = [_new(f"MS-{i:04d}") for i in range(500)]
    project = _project(tmp_path, entries)
    rows = [{"id": e["microsystem_id"], "href": f"03_analyse_tests/{e['microsystem_id']}.html"}
            for e in entries]  # fmt: skip
    panel = digest_panel(project, rows, [])
    folder = templates_dir() / TEMPLATE
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), autoescape=True)
    html = env.get_template("digest_panel.html.j2").render(changes=panel)
    assert html.count("<li") == SHOWN + 1 and html.count('<a href="03_analyse_tests/') == 500
    assert len(html.encode()) < 60 * 500  # each folded change is about its link only
