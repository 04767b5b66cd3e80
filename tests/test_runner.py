"""The runner keeps good output when a notebook fails, and normalises executed notebooks."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from qi_helpers.runner import execute_task, normalise_notebook


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
