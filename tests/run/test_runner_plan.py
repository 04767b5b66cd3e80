"""`qi run` plans in stages, skips what is up to date and reruns only what a change touches."""

from __future__ import annotations

import json
import shutil

import pytest
from support import make_tiny_project, set_microsystem

from qi_helpers.cli import main
from qi_helpers.project import load_project
from qi_helpers.run import runner


@pytest.fixture(scope="module")
def first_run(demo_project, tmp_path_factory):
    """A tiny project after one full run (01, 02, 03 x 3, 04, publish)."""
    root = make_tiny_project(
        tmp_path_factory.mktemp("plan") / "base", demo_project / "data" / "demo"
    )
    results = runner.run(load_project(root), jobs=2, publish=True, echo=lambda *a: None)
    assert [r.status for r in results] == ["ok"] * 6
    return root


@pytest.fixture
def project(first_run, tmp_path):
    """A copy of the project after its first run (same files, same times)."""
    root = tmp_path / "project"
    shutil.copytree(first_run, root)
    return root


def _ran(results):
    return {r.label for r in results if r.status == "ok" and not r.skipped}


def _no_workers(*args, **kwargs):
    raise AssertionError("no worker (and so no kernel) may start when nothing needs to run")


def test_dry_run_before_any_run_plans_in_stages_and_writes_nothing(demo_project, tmp_path, capsys):
    root = make_tiny_project(tmp_path / "fresh", demo_project / "data" / "demo")
    assert main(["run", "--project", str(root), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "stage 1" in out and "01" in out and "never run successfully" in out
    assert "decide later" in out
    assert "known only after it finishes" in out
    assert not (root / "outputs").exists(), "a dry run writes nothing"


def test_first_run_records_every_task_with_its_inputs(first_run):
    manifest = json.loads((first_run / "outputs" / "run.json").read_text())
    assert manifest["complete"] is True
    assert [t["workbook"] for t in manifest["tasks"]] == ["01", "02", "03", "03", "03", "04"]
    three = [t for t in manifest["tasks"] if t["workbook"] == "03"][0]
    assert set(three["input_hashes"]) == {
        "measures",
        "measure_events",
        "observations",
        "pdsa",
        "patients",
        "drivers",
        "readiness",  # the organisation's assessment by characteristic, made beside the slices
    }
    assert (first_run / three["log"]).is_file()
    assert (first_run / "outputs" / "site" / "index.html").is_file()


def test_rerun_with_nothing_changed_skips_everything_without_a_kernel(project, monkeypatch):
    index = project / "outputs" / "site" / "index.html"
    before = index.stat().st_mtime_ns
    monkeypatch.setattr(runner, "open_workers", _no_workers)
    results = runner.run(load_project(project), jobs=2, publish=True, echo=lambda *a: None)
    assert len(results) == 6
    assert all(r.skipped and r.status == "ok" for r in results)
    assert index.stat().st_mtime_ns == before, "an up-to-date site is not rebuilt"
    plan = runner.plan(load_project(project))
    assert plan.counts() == {"run": 0, "skip": 7, "decide later": 0}


def test_changing_one_microsystem_reruns_only_its_workbook_03_and_what_depends_on_it(project):
    p = load_project(project)
    ids = runner.registry_ids(p)
    set_microsystem(project, ids[1], scale=2)
    steps = {s.label: s for s in runner.plan(p).steps}
    assert steps[f"03:{ids[1]}"].action == "run"
    assert f"parameters/microsystems/{ids[1]}.yaml" in steps[f"03:{ids[1]}"].reason
    assert steps["04"].action == "decide later"
    assert {steps[k].action for k in ("01", "02", f"03:{ids[0]}", f"03:{ids[2]}")} == {"skip"}

    results = runner.run(p, jobs=2, publish=True, echo=lambda *a: None)
    assert _ran(results) == {f"03:{ids[1]}", "04"}
    manifest = json.loads((project / "outputs" / "run.json").read_text())
    assert manifest["history"]["publish"]["parts"], "the site was rebuilt after the change"


def test_changing_an_input_table_reruns_the_workbooks_that_read_it(project):
    adoption = project / "data" / "adoption.csv"
    adoption.write_text(adoption.read_text() + "\n", encoding="utf-8")  # only 04 reads it
    results = runner.run(load_project(project), jobs=1, echo=lambda *a: None)
    assert _ran(results) == {"04"}
    assert "table adoption changed" in {r.label: r.reason for r in results}["04"]


def test_force_reruns_everything_and_a_selection_runs_only_what_is_named(project):
    p = load_project(project)
    plan = runner.plan(p, force=True)
    assert plan.counts()["skip"] == 0
    ids = runner.registry_ids(p)
    results = runner.run(
        p, workbooks=["03"], microsystems=[ids[0], "NO-SUCH"], force=True, echo=lambda *a: None
    )
    assert _ran(results) == {f"03:{ids[0]}"}
    unknown = {r.label: r for r in results}["03:NO-SUCH"]
    assert unknown.status == "failed" and "not in the registry" in unknown.error


@pytest.mark.parametrize("workbook", ["01", "02", "03", "04"])
def test_the_plan_fingerprints_every_input_table_its_workbook_loads(workbook):
    # A table a workbook reads but the plan does not hash would not rerun it (or mark its report
    # out of date) when that table changes.
    import re

    import nbformat
    from conftest import ROOT

    from qi_helpers.workflow import WORKBOOKS

    (path,) = (ROOT / "workbooks").glob(f"{workbook}_*.ipynb")
    code = "\n".join(
        c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"
    )
    if WORKBOOKS[workbook].sliced:
        # It reads its slice; the slices are cut from its input tables (issue 17).
        import inspect

        from qi_helpers.changes.prepare import _load_inputs
        from qi_helpers.slices import PREPARED_INPUTS

        assert "load_slice(" in code and "load_table" not in code
        assert set(PREPARED_INPUTS) == set(WORKBOOKS[workbook].inputs)
        assert set(re.findall(r'"([a-z_]+)"', inspect.getsource(_load_inputs))) >= set(
            PREPARED_INPUTS
        )
        return
    loaded = set()
    for call in re.findall(r"load_tables?\(([^)]*)\)", code):
        loaded |= set(re.findall(r'"([a-z_]+)"', call.split("required=")[0]))
    if "organisation_measure_series(" in code:  # the events, or the series cut from them
        loaded |= {"measures", "measure_events"}
    assert loaded, path.name
    assert loaded == set(WORKBOOKS[workbook].inputs)


def test_package_version_follows_the_code_not_only_the_version_string(tmp_path):
    from pathlib import Path

    import qi_helpers
    from qi_helpers.io import FileHashes, package_version

    copy = tmp_path / "qi_helpers"
    shutil.copytree(
        Path(qi_helpers.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__")
    )
    hashes = FileHashes()
    first = package_version(hashes, copy)
    assert first.startswith(qi_helpers.__version__ + "+")
    assert package_version(FileHashes(), copy) == first, "same code, same fingerprint"
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "x.cpython.pyc").write_bytes(b"compiled")
    assert package_version(FileHashes(), copy) == first, "compiled files do not count"
    spc = copy / "spc" / "qic.py"
    spc.write_text(spc.read_text(encoding="utf-8") + "\n# an edit\n", encoding="utf-8")
    assert package_version(FileHashes(), copy) != first
    css = copy / "publish" / "templates" / "qi_report" / "report.css"
    before = package_version(FileHashes(), copy)
    css.write_text(css.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert package_version(FileHashes(), copy) != before, "a template edit changes the reports"


def test_an_edit_to_qi_helpers_reruns_everything_and_says_why(project, monkeypatch):
    from qi_helpers.run import planning as plan_module

    current = plan_module.package_version(plan_module.FileHashes())
    edited = current.split("+")[0] + "+0123456789abcdef"
    monkeypatch.setattr(plan_module, "package_version", lambda hashes: edited)
    steps = runner.plan(load_project(project)).steps
    first = [s for s in steps if s.label == "01"][0]
    assert first.action == "run"
    assert f"qi_helpers {current} -> {edited}" in first.reason
