"""Summary first on the index (issue 20): the organisation counted, on hand-built tables.

Each microsystem's results are tallied by its measures' latest rows (the verdict of a measure's
latest change, and its icons); the expected counts are counted by hand from the rows below. The
summary must stay light for 500 microsystems (the index of the large demo stays under 1 MB,
issue 17): its size does not grow with the number of microsystems.
"""

from __future__ import annotations

import pandas as pd
from support import copy_project_skeleton

from qi_helpers.project import load_project
from qi_helpers.publish.org_summary import microsystem_tally, organisation_summary

NA = None


def _results(rows):
    columns = ["measure_id", "change", "verdict", "variation_icon", "assurance_icon"]
    return pd.DataFrame(rows, columns=columns)


RESULTS = {
    # two changes on m1: the latest (improved) counts; m2 never tested
    "A": _results(
        [
            ("m1", "First try", "no change", "common_cause", "inconsistent"),
            ("m1", "Recall", "improved", "improvement_high", "consistent_pass"),
            ("m2", NA, "baseline only", "common_cause", NA),
        ]
    ),
    "B": _results([("m1", NA, "baseline only", "concern_low", "inconsistent")]),
    "C": _results([("m3", "Rounding", "no signal yet", NA, NA)]),
    "D": _results([]),  # no results yet
}


def _rows():
    return [
        {"id": ms, "name": f"Team {ms}", "href": f"03_analyse_tests/{ms}.html", "tally": t}
        for ms, t in ((ms, microsystem_tally(r)) for ms, r in RESULTS.items())
    ]


def _project(tmp_path):
    root = copy_project_skeleton(tmp_path / "project")
    project = load_project(root)
    project.data_dir.mkdir(parents=True)
    pd.DataFrame(
        {
            "microsystem_id": ["C", "A", "B"],
            "selected": [True, True, False],
            "pick": pd.array([2, 1, None], dtype="Int64"),
        }
    ).to_parquet(project.data_dir / "pilots.parquet")
    pd.DataFrame(
        {
            "change": ["Recall"] * 3,
            "microsystem_id": ["B", "D", "C"],
            "wave": [1, 1, 2],
            "adopter_category": ["early adopters", "early adopters", "early majority"],
            "wave_start": pd.to_datetime(["2026-01-05", "2026-01-05", "2026-03-30"]),
            "wave_end": pd.to_datetime(["2026-03-30", "2026-03-30", "2026-06-22"]),
        }
    ).to_parquet(project.data_dir / "spread_plan.parquet")
    return project


CARDS = [
    {"title": "01", "href": "01_identify_microsystems/01_identify_microsystems.html"},
    {"title": "02", "href": "02_select_pilots/02_select_pilots.html"},
    {"title": "04", "href": "04_plan_spread/04_plan_spread.html"},
]


def test_counts_by_hand(tmp_path):
    summary = organisation_summary(_project(tmp_path), _rows(), CARDS)
    assert summary.count("microsystems", "all") == 4
    assert summary.count("microsystems", "tested") == 2  # A and C
    assert summary.count("microsystems", "measures") == 4  # A m1, A m2, B m1, C m3
    verdicts = {v: summary.count("verdict", v) for v in ("improved", "baseline only")}
    assert verdicts == {"improved": 1, "baseline only": 2}
    assert summary.count("verdict", "no signal yet") == 1
    assert summary.count("verdict", "no change") == 0  # A's first try is not its latest
    assert summary.count("variation", "common_cause") == 1
    assert summary.count("variation", "improvement_high") == 1
    assert summary.count("variation", "concern_low") == 1
    assert summary.count("variation", "none") == 1  # C's m3
    assert summary.count("assurance", "consistent_pass") == 1
    assert summary.count("assurance", "inconsistent") == 1
    assert summary.count("assurance", "none") == 2
    assert summary.pilots["microsystem_id"].tolist() == ["A", "C"]  # in pick order
    assert summary.waves[["wave", "adopters"]].values.tolist() == [[1, 2], [2, 1]]
    page = summary._repr_html_()
    assert '<a href="03_analyse_tests/A.html">Team A (A)</a>' in page
    assert 'href="02_select_pilots/02_select_pilots.html"' in page
    assert 'href="04_plan_spread/04_plan_spread.html"' in page
    assert "wave 1: 2 teams from 5 Jan 2026; wave 2: 1 team from 30 Mar 2026" in page
    assert 'id="org-verdict-improved"><span class="qi-status qi-status-ok">improved</span>' in page


def test_the_summary_does_not_grow_with_the_organisation(tmp_path):
    project = _project(tmp_path)
    few = _rows()
    many = [{**few[i % 4], "id": f"X{i:03d}"} for i in range(500)]
    small = organisation_summary(project, few, CARDS)._repr_html_()
    large = organisation_summary(project, many, CARDS)._repr_html_()
    assert len(large) - len(small) < 100  # only the digits of the counts
    assert len(large) < 10_000
