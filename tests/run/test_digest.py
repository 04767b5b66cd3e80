"""What changed since the last run: the digest's comparison, its files, and what `qi run` shows.

The comparison is checked on hand-built states (one test per kind of change, each state written
out by hand); the files on a tiny project (tests/support.py) whose fixture workbook 03 writes
one measure's verdict and icons from ``parameters/microsystems/<id>.yaml``, so a test sets the
verdict it expects to find. The real workbooks' digest is checked in test_end_to_end.py.
"""

from __future__ import annotations

import json
import os
import re
import time

import pandas as pd
import pytest
import yaml
from support import make_tiny_project, set_microsystem

from qi_helpers.cli import main
from qi_helpers.project import load_project
from qi_helpers.run import runner
from qi_helpers.run.digest import (
    DIGEST_COLUMNS,
    SNAPSHOT,
    STATE_COLUMNS,
    RunState,
    compare_states,
    current_state,
    digest_lines,
    write_digest,
)
from qi_helpers.run.tasks import TaskResult

HBA1C = "HbA1c tested"
RECALL = "Recall register"


def _state(rows, statuses=None, microsystems=None, date="2026-12-03T10:00:00Z", this_run=None):
    """A state from rows written as tuples in :data:`STATE_COLUMNS` order."""
    frame = pd.DataFrame(rows, columns=STATE_COLUMNS, dtype=object)
    ids = microsystems if microsystems is not None else list(dict.fromkeys(r[0] for r in rows))
    statuses = statuses if statuses is not None else {f"03:{ms}": "ok" for ms in ids}
    return RunState(date, frame, statuses, ids, {}, this_run or [])


def _pc1(verdict="no signal yet", variation="common_cause", assurance="inconsistent"):
    return ("NOR-PC1", "hba1c", HBA1C, RECALL, verdict, variation, assurance)


def _kinds(frame):
    return list(
        zip(frame["microsystem_id"], frame["kind"], frame["before"], frame["after"], strict=True)
    )


# ---- the comparison, on hand-built states --------------------------------------------------------
def test_a_first_run_compares_nothing():
    assert compare_states(None, _state([_pc1()])).empty


def test_the_same_state_twice_is_no_change():
    assert compare_states(_state([_pc1()]), _state([_pc1()])).empty


def test_a_verdict_that_changed_is_one_entry_in_words():
    got = compare_states(_state([_pc1()]), _state([_pc1("improved")]))
    assert list(got.columns) == DIGEST_COLUMNS
    assert _kinds(got) == [("NOR-PC1", "verdict_changed", "no signal yet", "improved")]
    row = got.iloc[0]
    assert (row["measure_id"], row["change"], row["date"]) == (
        "hba1c",
        RECALL,
        "2026-12-03T10:00:00Z",
    )
    assert row["text"] == (
        "HbA1c tested: verdict changed from 'no signal yet' to 'improved' (change: Recall register)"
    )


def test_a_first_change_after_baseline_only_is_a_verdict_change_of_that_change():
    before = _state([("NOR-PC1", "hba1c", HBA1C, None, "baseline only", "common_cause", None)])
    after = _state([("NOR-PC1", "hba1c", HBA1C, RECALL, "no signal yet", "common_cause", None)])
    got = compare_states(before, after)
    assert _kinds(got) == [("NOR-PC1", "verdict_changed", "baseline only", "no signal yet")]
    assert got.iloc[0]["change"] == RECALL


def test_a_second_change_judged_gets_its_first_verdict():
    one = _pc1()
    two = ("NOR-PC1", "hba1c", HBA1C, "Walk-in tests", "too little data", "common_cause",
           "inconsistent")  # fmt: skip
    got = compare_states(_state([one]), _state([one, two]))
    assert _kinds(got) == [("NOR-PC1", "verdict_changed", None, "too little data")]
    assert got.iloc[0]["text"].startswith("HbA1c tested: first verdict 'too little data'")


@pytest.mark.parametrize(
    ("was", "now", "kind"),
    [
        ("common_cause", "improvement_high", "new_signal"),
        (None, "concern_low", "new_signal"),
        ("improvement_high", "concern_low", "new_signal"),
        ("concern_low", "common_cause", "signal_ended"),
        ("improvement_high", None, "signal_ended"),
        (None, "common_cause", "icon_changed"),
    ],
)
def test_the_variation_icon_of_the_latest_point(was, now, kind):
    got = compare_states(_state([_pc1(variation=was)]), _state([_pc1(variation=now)]))
    assert _kinds(got) == [("NOR-PC1", kind, was, now)]


def test_a_new_signal_and_its_end_in_words():
    new = compare_states(_state([_pc1()]), _state([_pc1(variation="improvement_high")]))
    assert new.iloc[0]["text"] == (
        "HbA1c tested: new special cause (improvement, higher); was common cause variation"
    )
    ended = compare_states(_state([_pc1(variation="concern_low")]), _state([_pc1()]))
    assert ended.iloc[0]["text"] == (
        "HbA1c tested: special cause (concern, lower) ended; now common cause variation"
    )


def test_an_assurance_icon_that_changed():
    got = compare_states(_state([_pc1()]), _state([_pc1(assurance="consistent_pass")]))
    assert _kinds(got) == [("NOR-PC1", "icon_changed", "inconsistent", "consistent_pass")]
    assert "'the target will consistently be met'" in got.iloc[0]["text"]


def test_a_verdict_and_a_new_signal_of_one_measure_are_two_entries_verdict_first():
    got = compare_states(_state([_pc1()]), _state([_pc1("improved", variation="improvement_high")]))
    assert list(got["kind"]) == ["verdict_changed", "new_signal"]


def test_measures_and_microsystems_that_appear_or_go():
    ttna = ("NOR-PC1", "ttna", "TTNA", None, "baseline only", "common_cause", "consistent_fail")
    w1 = ("NOR-W1", "falls", "Falls", None, "baseline only", "common_cause", None)
    lab = ("NOR-LAB", "tat", "Turnaround", None, "baseline only", "common_cause", None)
    before = _state([_pc1(), w1])
    after = _state([ttna, lab])
    got = compare_states(before, after)
    assert _kinds(got) == [
        ("NOR-PC1", "new_measure", None, "'baseline only'"),
        ("NOR-PC1", "removed_measure", HBA1C, None),
        ("NOR-LAB", "new_microsystem", None, "new"),
        ("NOR-W1", "removed", "listed", None),
    ]


def test_failed_and_recovered_notebooks():
    rows = [_pc1(), ("NOR-W1", "falls", "Falls", None, "baseline only", "common_cause", None)]
    ok = {"01": "ok", "03:NOR-PC1": "ok", "03:NOR-W1": "failed", "04": "ok"}
    now = {"01": "ok", "03:NOR-PC1": "failed", "03:NOR-W1": "ok", "04": "blocked"}
    got = compare_states(_state(rows, ok), _state(rows, now, this_run=list(now)))
    assert _kinds(got) == [
        ("NOR-PC1", "failed", "ok", "failed"),
        ("NOR-W1", "recovered", "failed", "ok"),
    ]
    assert list(got["workbook"]) == ["03", "03"]


def test_a_failed_organisation_workbook_comes_first_and_counts_what_it_blocked():
    rows = [_pc1()]
    ok = {"01": "ok", "03:NOR-PC1": "ok"}
    now = {"01": "failed", "03:NOR-PC1": "blocked"}
    got = compare_states(_state(rows, ok), _state(rows, now, this_run=list(now)))
    assert _kinds(got) == [(None, "failed", "ok", "failed")]
    assert got.iloc[0]["workbook"] == "01"
    assert got.iloc[0]["text"] == (
        "workbook 01 (Identify microsystems) failed this run; the last good report is kept; "
        "1 notebook after it not run"
    )


def test_a_task_that_failed_in_an_earlier_run_and_did_not_run_now_is_not_reported_again():
    rows = [_pc1()]
    failed = {"03:NOR-PC1": "failed"}
    assert compare_states(_state(rows, failed), _state(rows, failed, this_run=[])).empty


# ---- the state of a run: what is read, what is kept ----------------------------------------------
@pytest.fixture
def bare(tmp_path):
    """A project folder with parameters only (no data: the digest reads only its outputs)."""
    (tmp_path / "parameters").mkdir()
    (tmp_path / "parameters" / "project.yaml").write_text(
        yaml.safe_dump({"project": {"name": "Bare"}, "outputs": "outputs"}), encoding="utf-8"
    )
    return load_project(tmp_path)


def _write_results(project, ms, verdict):
    project.results_dir.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(
        [{"microsystem_id": ms, "measure_id": "hba1c", "name": HBA1C, "change": RECALL,
          "verdict": verdict, "variation_icon": "common_cause", "assurance_icon": pd.NA,
          "last_value": 80.0}]
    )  # fmt: skip
    frame.to_parquet(project.results_dir / f"{ms}.parquet")


def _ok(ms, status="ok"):
    return TaskResult("03", ms, status, "", 0.0)


def test_a_failed_microsystem_keeps_the_rows_of_its_last_good_run(bare):
    _write_results(bare, "A", "no signal yet")
    _write_results(bare, "B", "no signal yet")
    first = write_digest(
        bare, [_ok("A"), _ok("B")], registry_ids=["A", "B"], now="2026-12-01T09:00:00Z"
    )
    assert first["first_run"] is True and first["entries"] == []
    assert first["previous_date"] is None
    # A's notebook fails after writing a half-made results file: B's verdict changes.
    _write_results(bare, "A", "worsened")
    _write_results(bare, "B", "improved")
    digest = write_digest(
        bare, [_ok("A", "failed"), _ok("B")], registry_ids=["A", "B"], now="2026-12-02T09:00:00Z"
    )
    assert digest["previous_date"] == "2026-12-01T09:00:00Z"
    assert [(e["microsystem_id"], e["kind"], e["after"]) for e in digest["entries"]] == [
        ("A", "failed", "failed"),
        ("B", "verdict_changed", "improved"),
    ]
    snapshot = json.loads((bare.outputs_dir / SNAPSHOT).read_text())
    verdicts = {r[0]: r[4] for r in snapshot["rows"]}
    assert verdicts == {"A": "no signal yet", "B": "improved"}, "A keeps its last good verdict"
    # A runs again: recovered, and its verdict compared with its last good run.
    _write_results(bare, "A", "worsened")
    digest = write_digest(
        bare, [_ok("A"), _ok("B")], registry_ids=["A", "B"], now="2026-12-03T09:00:00Z"
    )
    assert [
        (e["microsystem_id"], e["kind"], e["before"], e["after"]) for e in digest["entries"]
    ] == [
        ("A", "recovered", "failed", "ok"),
        ("A", "verdict_changed", "no signal yet", "worsened"),
    ]
    assert json.loads(bare.digest_file.read_text()) == digest


def test_an_unchanged_results_file_is_not_read_again(bare):
    _write_results(bare, "A", "no signal yet")
    write_digest(bare, [_ok("A")], registry_ids=["A"], now="2026-12-01T09:00:00Z")
    previous = json.loads((bare.outputs_dir / SNAPSHOT).read_text())
    # The snapshot's rows are what the next run keeps for A; edit them to see they are used.
    previous["rows"][0][4] = "kept from the snapshot"
    (bare.outputs_dir / SNAPSHOT).write_text(json.dumps(previous))
    from qi_helpers.run.digest import read_snapshot

    state = current_state(
        bare, [_ok("A")], previous=read_snapshot(bare), registry_ids=["A"], date="x"
    )
    assert list(state.rows["verdict"]) == ["kept from the snapshot"]
    _write_results(bare, "A", "improved")  # a new file: read
    state = current_state(
        bare, [_ok("A")], previous=read_snapshot(bare), registry_ids=["A"], date="x"
    )
    assert list(state.rows["verdict"]) == ["improved"]


def test_the_printed_digest():
    first = {"first_run": True, "entries": []}
    assert digest_lines(first)[0].startswith("First run: nothing to compare with yet")
    none = {"first_run": False, "previous_date": "2026-12-01T09:05:00Z", "entries": []}
    assert digest_lines(none) == ["No changes since 2026-12-01 09:05 UTC (outputs/digest.json)."]
    entries = [{"microsystem_id": f"MS-{i}", "text": "X: verdict changed"} for i in range(12)]
    entries.insert(0, {"microsystem_id": None, "text": "workbook 01 (Identify) failed"})
    lines = digest_lines({"previous_date": "2026-12-01T09:05:00Z", "entries": entries}, limit=3)
    assert lines == [
        "13 changes since 2026-12-01 09:05 UTC (outputs/digest.json):",
        "  Organisation: workbook 01 (Identify) failed",
        "  MS-0 X: verdict changed",
        "  MS-1 X: verdict changed",
        "  ... and 10 more in outputs/digest.json",
    ]


# ---- `qi run` on a tiny project -----------------------------------------------------------------
@pytest.fixture
def tiny(demo_project, tmp_path):
    return make_tiny_project(tmp_path / "project", demo_project / "data" / "demo", units=2)


def _panel(index: str) -> str:
    match = re.search(r'<section class="qi-changes".*?</section>', index, re.S)
    return match.group(0) if match else ""


def _wait_for_the_workers_to_end(root, seconds=60.0):
    """The workers of an interrupted run end a moment after it; the next run waits for them."""
    from qi_helpers.run.processes import live_processes

    record = root / "outputs" / ".run.lock"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and live_processes(
        record.read_text(encoding="utf-8"), exclude=os.getpid()
    ):
        time.sleep(0.2)


def test_a_failed_or_interrupted_run_never_destroys_the_previous_snapshot(tiny, capsys):
    """The first run says so; an interrupted run (any exception) leaves the snapshot;
    a run whose notebook fails completes, reports it and keeps that microsystem's last good
    verdict; the index lists the changes with links, and `qi run --quiet` prints them."""
    assert main(["run", "--project", str(tiny), "--jobs", "1", "--quiet"]) == 0
    assert "First run: nothing to compare with yet" in capsys.readouterr().out
    index = tiny / "outputs" / "site" / "index.html"
    assert _panel(index.read_text(encoding="utf-8")) == "", "no change: no panel"
    first = json.loads((tiny / "outputs" / "digest.json").read_text())
    assert (first["first_run"], first["entries"]) == (True, [])
    p = load_project(tiny)
    ids = runner.registry_ids(p)
    snapshot = tiny / "outputs" / SNAPSHOT
    kept = snapshot.read_bytes()

    def interrupt(line, *a, **k):
        if "03:" in str(line):
            raise KeyboardInterrupt

    set_microsystem(tiny, ids[0], verdict="improved")  # 03 of ids[0] must run again
    with pytest.raises(KeyboardInterrupt):  # once 03 of ids[0] finished, before the others
        runner.run(p, jobs=1, echo=interrupt)
    assert snapshot.read_bytes() == kept, "an interrupted run leaves the snapshot as it was"
    _wait_for_the_workers_to_end(tiny)

    # A run whose notebook fails completes: the failure is in the digest, and the microsystem
    # keeps its last good verdict in the snapshot. ids[0] ran in the interrupted run and is
    # skipped now: its new verdict is found all the same (its results file changed).
    set_microsystem(tiny, ids[1], verdict="worsened", fail=True)
    assert main(["run", "--project", str(tiny), "--jobs", "1", "--quiet"]) == 1
    out = capsys.readouterr().out
    digest = json.loads(p.digest_file.read_text())
    assert digest["previous_date"] == first["date"]
    kinds = [(e["microsystem_id"], e["kind"], e["before"], e["after"]) for e in digest["entries"]]
    assert kinds == [
        (ids[0], "verdict_changed", "no signal yet", "improved"),
        (ids[1], "failed", "ok", "failed"),
    ]
    rows = {r[0]: r[4] for r in json.loads(snapshot.read_text())["rows"]}
    assert rows == {ids[0]: "improved", ids[1]: "no signal yet"}

    assert re.search(r"^2 changes since \d{4}-\d\d-\d\d \d\d:\d\d UTC", out, re.M), out
    line = f"  {ids[0]} Measure one: verdict changed from 'no signal yet' to 'improved'"
    assert line in out.splitlines()
    panel = _panel(index.read_text(encoding="utf-8"))
    assert panel.count("<li") == 2
    assert f'<a href="03_analyse_tests/{ids[0]}.html">{ids[0]}</a>' in panel
    assert "verdict changed from &#39;no signal yet&#39; to &#39;improved&#39;" in panel
    assert f'<a href="03_analyse_tests/{ids[1]}.failed.html#error">{ids[1]}</a>' in panel
