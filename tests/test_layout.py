"""The repository's layout rules (CONTRIBUTING.md): one package per node, no import circles,
``nodes/`` independent of the demo, the local platform and ``main``, short module docstrings, and
every node module's doctests run as part of the suite."""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOP_PACKAGES = ("main", "nodes", "demo", "emulator", "benchmarks", "tools", "tests")
#: Longest module docstring, in lines (issue 17: what the module is for in a few lines; the history
#: of decisions belongs in commits and docs/).
MAX_DOCSTRING_LINES = 12


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _source_files() -> list[Path]:
    files = [ROOT / "main.py"]
    for package in ("nodes", "demo", "emulator", "benchmarks", "tools", "tests"):
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def _imports(path: Path) -> set[str]:
    """Project modules ``path`` imports (at any depth of the file, lazily or not)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in TOP_PACKAGES}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in _source_files()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path):
            # "from nodes.data_split import cli" names a module; "from nodes.metrics import x" a name in one
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Elementary cycles found by depth-first search (one representative per back edge)."""
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            # a package's __init__ importing its own submodules is not a circle of concern
            if target.startswith(node + "."):
                continue
            if state.get(target) == "open":
                found.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_cycle_finder_finds_a_planted_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_anywhere():
    assert _cycles(_graph()) == []


def test_nodes_never_import_demo_emulator_or_main():
    offenders = {
        name: sorted(t for t in targets if t.split(".")[0] in ("demo", "emulator", "main"))
        for name, targets in _graph().items()
        if name.startswith("nodes")
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_the_graph_covers_benchmarks_tools_and_tests():
    graph = _graph()
    assert "main" in graph["benchmarks.bench_select"]
    assert any(name.startswith("tools.") for name in graph)
    assert "main" in graph["tests.test_manifest"]


@pytest.mark.parametrize("package", ["nodes", "emulator", "demo"])
def test_module_docstrings_are_a_few_lines(package):
    """A module docstring says what the module is for; the reasoning lives in docs/ and commits."""
    long = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False)
        lines = len(docstring.strip("\n").splitlines()) if docstring else 0
        if lines > MAX_DOCSTRING_LINES:
            long[str(path.relative_to(ROOT))] = lines
    assert long == {}, f"module docstrings over {MAX_DOCSTRING_LINES} lines: {long}"


def test_main_never_imports_demo():
    assert not [t for t in _graph()["main"] if t.split(".")[0] == "demo"]


def test_each_node_is_one_package_with_its_public_names():
    packages = sorted(p.name for p in (ROOT / "nodes").iterdir() if (p / "__init__.py").exists())
    assert {"data_split", "create_new_model", "compare_models", "common"} <= set(packages)
    loose = sorted(p.name for p in (ROOT / "nodes").glob("*.py") if p.name != "__init__.py")
    assert loose == [], "every node lives in its own package, as do the metrics (nodes/metrics/)"
    for name in packages:
        module = importlib.import_module(f"nodes.{name}")
        assert module.__doc__ and module.__doc__.strip(), f"nodes.{name} needs a docstring"


def _node_modules() -> list[str]:
    import nodes

    names = ["nodes"]
    names += [info.name for info in pkgutil.walk_packages(nodes.__path__, prefix="nodes.")]
    return sorted(names)


def test_every_node_module_is_collected_for_doctests():
    assert {"nodes.metrics", "nodes.common.dql"} <= set(_node_modules())


@pytest.mark.parametrize("module_name", _node_modules())
def test_doctests_of_node_module(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {module_name}"


def test_tests_run_with_their_own_home():
    import os
    import pwd
    import tempfile

    real_home = pwd.getpwuid(os.getuid()).pw_dir
    assert str(Path.home()) != real_home and os.path.expanduser("~") != real_home
    # the session's temporary folder is its own (removed at the end), beside the test HOME
    assert os.path.basename(tempfile.gettempdir()).startswith("active-learning-tests-tmp-")
    assert os.environ["TMPDIR"] == tempfile.gettempdir()
    assert str(Path.home()).startswith(os.path.dirname(tempfile.gettempdir()))
    assert not os.environ["DATALOOP_PATH"].startswith(real_home)
