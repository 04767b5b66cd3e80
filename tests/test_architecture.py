"""The package's layout keeps its promises: folders by step of the method, imports that follow the
method's order, no import cycle, small functions and modules, and a public API per subpackage.

The import graph is read from the source with :mod:`ast` (imports under ``if TYPE_CHECKING:`` are
left out, imports inside functions count), so a cycle hidden in a function is still found.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import networkx as nx
import pytest

import qi_helpers

PACKAGE = Path(qi_helpers.__file__).resolve().parent

#: The order of the method: a module may import from its own layer and the layers before it.
#: The base holds what every step needs (errors, paths and parameters, the workbook table, a
#: measure's row, files and hashes, safe figures, privacy rules, input tables).
LAYERS: dict[str, int] = {
    "": 0,  # the package itself (its __init__ and version)
    "errors": 0,
    "io": 0,
    "workflow": 0,
    "measures": 0,
    "project": 0,
    "slices": 0,
    "drawing": 0,
    "chart_display": 0,
    "notebook_display": 0,
    "readable_tables": 0,
    "table_formats": 0,
    "envfile": 0,
    "privacy": 0,
    "data": 0,
    "spc": 1,
    "identify": 2,
    "pilots": 3,
    "changes": 4,
    "spread": 5,
    "widgets": 6,
    "publish": 6,
    "run": 7,
    "demo": 8,
    "cli": 9,
}

#: What a long function or module is (function length without its docstring).
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(tree: ast.AST) -> set[str]:
    """Every ``qi_helpers`` name a module imports at run time (absolute imports only)."""
    found: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                found.add(child.module)
                found.update(f"{child.module}.{alias.name}" for alias in child.names)
            stack.append(child)
    return {name for name in found if name == "qi_helpers" or name.startswith("qi_helpers.")}


def _sources() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _graph() -> nx.DiGraph:
    modules = _sources()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for target in _imported(ast.parse(path.read_text(encoding="utf-8"))):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            own_package = name.startswith(target + ".")
            if target and target != name and not own_package and target != "qi_helpers":
                graph.add_edge(name, target)
    return graph


def _area(module: str) -> str:
    """``qi_helpers.spc.qic`` -> ``spc``; ``qi_helpers.io`` -> ``io``; the package -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_area_of_the_package_has_a_layer():
    unknown = sorted({_area(m) for m in _sources()} - set(LAYERS))
    assert not unknown, f"add these to LAYERS (and docs/architecture.md): {unknown}"


def test_no_import_cycle():
    cycles = sorted(" -> ".join(c) for c in nx.simple_cycles(_graph()))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_imports_follow_the_order_of_the_method():
    wrong = [
        f"{a} imports {b}"
        for a, b in _graph().edges
        if LAYERS[_area(b)] > LAYERS[_area(a)]
        or (LAYERS[_area(b)] == LAYERS[_area(a)] > 0 and _area(a) != _area(b))
    ]
    assert not wrong, "a step imports a later step:\n" + "\n".join(sorted(wrong))


def test_only_the_command_imports_the_demo():
    users = sorted(
        a for a, b in _graph().edges if _area(b) == "demo" and _area(a) not in ("demo", "cli")
    )
    assert not users, f"the demo is imported by {users}"


def test_no_private_name_is_imported_across_subpackages():
    wrong = []
    for name, path in _sources().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("qi_helpers"):
                for alias in node.names:
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    if private and _area(node.module) != _area(name):
                        wrong.append(f"{name} imports {node.module}.{alias.name}")
    assert not wrong, "\n".join(wrong)


def _function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function's body after its docstring (signature and docstring left out)."""
    first = node.body[0]
    value = getattr(first, "value", None)
    documented = isinstance(first, ast.Expr) and isinstance(value, ast.Constant)
    start = first.end_lineno + 1 if documented and isinstance(value.value, str) else node.lineno
    return node.end_lineno - start + 1


def test_functions_and_modules_stay_small():
    long = []
    for name, path in _sources().items():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_MODULE_LINES:
            long.append(f"module {name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if _function_lines(node) > MAX_FUNCTION_LINES:
                    long.append(f"function {name}.{node.name}: {_function_lines(node)} lines")
    assert not long, "\n".join(long)


SUBPACKAGES = sorted(
    p.parent.name for p in PACKAGE.glob("*/__init__.py") if not p.parent.name.startswith("_")
)


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_each_subpackage_states_its_public_names(name):
    package = importlib.import_module(f"qi_helpers.{name}")
    assert package.__doc__ and len(package.__doc__.split()) > 20, f"{name}: say what it owns"
    public = getattr(package, "__all__", None)
    assert public, f"qi_helpers.{name} has no __all__"
    missing = [n for n in public if not hasattr(package, n)]
    assert not missing, f"qi_helpers.{name}.__all__ names what it does not hold: {missing}"


def test_workbooks_import_only_public_names():
    """Workbooks use the subpackages' public names, ``load_project`` and their widgets."""
    import json

    root = PACKAGE.parents[1]
    wrong = []
    for notebook in sorted((root / "workbooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("qi_helpers"):
                package = importlib.import_module(node.module)
                public = set(getattr(package, "__all__", ()))
                wrong += [
                    f"{notebook.name}: {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name not in public
                ]
    assert not wrong, "not public:\n" + "\n".join(wrong)


def test_the_architecture_notes_list_every_module_and_only_those():
    """``docs/architecture.md`` stays true to the code: its module tables name exactly the
    package's modules, and every area of the package has its row in the layout table."""
    import re

    notes = (PACKAGE.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([\w/]+\.py)` \|", notes, flags=re.M))
    actual = {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py")}
    assert not actual - listed, f"modules missing from the notes: {sorted(actual - listed)}"
    assert not listed - actual, (
        f"the notes list modules that do not exist: {sorted(listed - actual)}"
    )
    areas = {area for area in LAYERS if area}
    rows = set(re.findall(r"^\| `(\w+)/?` \|", notes, flags=re.M))
    assert not areas - rows, f"areas missing from the layout table: {sorted(areas - rows)}"


def test_the_data_contracts_in_the_notes_match_the_code():
    import re

    from qi_helpers.data.contracts import CONTRACTS

    notes = (PACKAGE.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    notes = notes[notes.index("## Data contracts") :]
    for name, contract in CONTRACTS.items():
        row = re.search(rf"^\| `{name}` \|[^|]*\|([^|]*)\|([^|]*)\|", notes, flags=re.M)
        assert row, f"table {name} is missing from the data contracts"
        required, optional = (set(re.findall(r"`(\w+)`", part)) for part in row.groups())
        assert set(contract.required) <= required | optional, (name, contract.required)
        assert set(contract.optional) <= required | optional, (name, contract.optional)
