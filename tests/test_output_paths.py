"""Every output path set in parameters/project.yaml stays inside the project.

``spread.export``, the ``outputs`` folder and ``data.demo.out`` name files and folders the code
writes; a value that leads out of the project (``..``, an absolute path elsewhere, a symbolic
link that points out) is refused with a ConfigError naming the setting and the value, when the
project is loaded, before anything is written.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support import make_tiny_project

from qi_helpers.cli import main
from qi_helpers.errors import ConfigError
from qi_helpers.project import load_project


@pytest.fixture
def project(demo_project, tmp_path) -> Path:
    """A tiny project at ``tmp_path/work/project``; ``tmp_path/escape`` is outside it."""
    return make_tiny_project(tmp_path / "work" / "project", demo_project / "data" / "demo")


def _set(root: Path, setting: str, value) -> None:
    """Set a dotted setting in the project's parameters file."""
    path = root / "parameters" / "project.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    *parents, key = setting.split(".")
    section = config
    for name in parents:
        section = section.setdefault(name, {})
    section[key] = value
    path.write_text(yaml.safe_dump(config), encoding="utf-8")


def _escapes(tmp_path: Path) -> list[str]:
    """Values that lead out of the project at ``tmp_path/work/project``."""
    return [
        "../../../../escape/x.csv",
        "sub/../../../../../escape/x.csv",
        str(tmp_path / "escape" / "x.csv"),
        "/tmp/qi-escape-test/x.csv",
    ]


@pytest.mark.parametrize("setting", ["spread.export", "outputs", "data.demo.out"])
@pytest.mark.parametrize("which", range(4))
def test_a_setting_that_leads_out_is_refused_when_the_project_loads(
    project, tmp_path, setting, which
):
    value = _escapes(tmp_path)[which]
    _set(project, setting, value)
    with pytest.raises(ConfigError) as raised:
        load_project(project)
    message = str(raised.value)
    assert f"`{setting}: {value}`" in message and "inside the project" in message


@pytest.mark.parametrize("setting", ["spread.export", "outputs", "data.demo.out"])
def test_the_path_is_resolved_and_checked_by_one_function(project, tmp_path, setting):
    loaded = load_project(project)
    for value in _escapes(tmp_path):
        with pytest.raises(ConfigError, match=f"`{setting}: "):
            loaded.output_path(setting, value)
    inside = loaded.output_path(setting, "reports/plan.csv")
    assert project.resolve() in inside.parents


def test_spread_export_starts_in_outputs_data(project):
    loaded = load_project(project)
    assert (
        loaded.output_path("spread.export", "plan.xlsx")
        == (project / "outputs" / "data" / "plan.xlsx").resolve()
    )
    # `..` that stays inside the project is a path inside the project
    assert (
        loaded.output_path("spread.export", "../plan.csv")
        == (project / "outputs" / "plan.csv").resolve()
    )


def test_a_symbolic_link_that_points_out_is_refused(project, tmp_path):
    outside = tmp_path / "escape"
    outside.mkdir()
    data = project / "outputs" / "data"
    data.mkdir(parents=True)
    (data / "exports").symlink_to(outside, target_is_directory=True)
    _set(project, "spread.export", "exports/plan.xlsx")
    with pytest.raises(ConfigError, match="symbolic link"):
        load_project(project)
    (project / "elsewhere").symlink_to(outside, target_is_directory=True)
    _set(project, "spread.export", "plan.xlsx")
    _set(project, "outputs", "elsewhere")
    with pytest.raises(ConfigError, match="`outputs: elsewhere`"):
        load_project(project)


def test_outputs_cannot_be_the_project_folder_itself(project):
    _set(project, "outputs", ".")
    with pytest.raises(ConfigError, match="project folder itself"):
        load_project(project)


def test_qi_check_and_qi_run_stop_and_write_nothing_outside(project, tmp_path, capsys):
    _set(project, "spread.export", "../../../../escape/plan.csv")
    for command in (["check"], ["run", "--quiet"], ["publish"]):
        assert main([*command, "--project", str(project)]) == 1
        assert "spread.export" in capsys.readouterr().err
    assert not (tmp_path / "escape").exists()
    assert not (project / "outputs").exists()


def test_the_demo_is_never_written_outside(project, tmp_path, capsys):
    _set(project, "data.demo", {"size": "small", "seed": 0, "out": "../../escape/demo"})
    _set(project, "data.tables", {"staff": {"path": "data/missing.csv"}})
    assert main(["run", "--quiet", "--project", str(project)]) == 1
    assert "data.demo.out" in capsys.readouterr().err
    assert not (tmp_path / "escape").exists()


def test_workbook_04_exports_through_output_path():
    """The export cell resolves `spread.export` with the project's one function."""
    import nbformat
    from conftest import ROOT

    nb = nbformat.read(str(ROOT / "workbooks" / "04_plan_spread.ipynb"), as_version=4)
    cell = next(c.source for c in nb.cells if "export_plan(" in c.source and "print" in c.source)
    assert 'project.output_path("spread.export"' in cell
    assert "data_dir / settings" not in cell
