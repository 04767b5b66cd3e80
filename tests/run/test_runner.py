"""The runner keeps good output when a notebook fails, and normalises executed notebooks."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from qi_helpers.run.execute import execute_task
from qi_helpers.run.notebooks import normalise_notebook


def _notebook(path, source):
    nb = new_notebook()
    params = new_code_cell("x = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell(source)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(path))
    return path


def test_failing_notebook_keeps_the_last_good_output(tmp_path):
    good = _notebook(tmp_path / "good.ipynb", "print(x * 2)")
    bad = _notebook(tmp_path / "bad.ipynb", "raise ValueError('planted failure')")
    out, failed = tmp_path / "out" / "nb.ipynb", tmp_path / "out" / "nb.failed.ipynb"
    first = execute_task(str(good), str(out), str(failed), {"x": 21}, str(tmp_path), 60)
    assert first["status"] == "ok"
    before = out.read_bytes()
    assert "42" in before.decode()
    second = execute_task(str(bad), str(out), str(failed), {"x": 21}, str(tmp_path), 60)
    assert second["status"] == "failed"
    assert "planted failure" in second["error"]
    assert out.read_bytes() == before, "a failed run must not replace the good notebook"
    assert "planted failure" in failed.read_text()
    assert not list(out.parent.glob(".*")), "no temporary files left behind"


def test_reruns_give_identical_bytes(tmp_path):
    source = _notebook(tmp_path / "nb.ipynb", "print(x + 1)")
    outputs = []
    out = tmp_path / "run" / "nb.ipynb"
    for _ in range(2):
        execute_task(
            str(source),
            str(out),
            str(out.with_suffix(".failed.ipynb")),
            {"x": 1},
            str(tmp_path),
            60,
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_normalise_removes_timestamps():
    nb = new_notebook()
    nb.metadata["papermill"] = {
        "start_time": "t",
        "end_time": "t",
        "duration": 1.0,
        "parameters": {"a": 1},
    }
    cell = new_code_cell("1")
    cell.metadata["papermill"] = {"start_time": "t", "duration": 0.1, "status": "completed"}
    cell.metadata["execution"] = {"iopub.status.busy": "t"}
    nb.cells = [cell]
    out = normalise_notebook(nb)
    assert out.metadata["papermill"] == {"parameters": {"a": 1}}
    assert out.cells[0].metadata["papermill"] == {"status": "completed"}
    assert "execution" not in out.cells[0].metadata


def test_normalise_drops_widget_state_and_numbers_widget_views():
    nb = new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    cell = new_code_cell("w")
    view = "application/vnd.jupyter.widget-view+json"
    cell.outputs = [
        {"output_type": "display_data", "metadata": {}, "data": {view: {"model_id": "9f3a"}}}
    ]
    nb.cells = [cell]
    out = normalise_notebook(nb)
    assert "widgets" not in out.metadata
    assert out.cells[0].outputs[0]["data"][view]["model_id"] == "widget-0000"


def test_saving_a_workbook_with_outputs_does_not_count_as_a_change(tmp_path):
    from qi_helpers.run.planning import imported_modules, workbook_digest

    path = _notebook(tmp_path / "wb.ipynb", "import math\nfrom os import path\nprint(x)")
    before = workbook_digest(path)
    nb = nbformat.read(str(path), as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells[1].execution_count = 3
    nbformat.write(nb, str(path))
    assert workbook_digest(path) == before
    nb.cells[1].source += "\nprint(2)"
    nbformat.write(nb, str(path))
    assert workbook_digest(path) != before, "a code change is a change"
    assert imported_modules(path) == ["math", "os"]


def test_file_digests_follow_content_not_time(tmp_path):
    import os

    from qi_helpers.io import FileHashes

    path = tmp_path / "table.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    old = 1_000_000_000_000_000_000
    os.utime(path, ns=(old, old))
    hashes = FileHashes()
    first = hashes.digest(path)
    cached = FileHashes(hashes.to_json())
    assert cached.digest(path) == first and cached.hashed == 0, "unchanged files are not reread"
    path.write_text("a,b\n1,3\n", encoding="utf-8")  # same size, new content
    assert cached.digest(path) != first
    assert FileHashes().digest(tmp_path / "nope.csv") == "missing"
