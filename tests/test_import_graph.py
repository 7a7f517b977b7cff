"""The package's modules import each other without a cycle.

Why: a cycle works or breaks depending on which module is imported first (a half-built module has
no names yet), and it hides at function level until that function runs. ``config/train.py`` and
``config/overrides.py`` once imported each other that way. The graph is read from the source with
``ast``, every import counted wherever it stands (module level, inside functions, under
``TYPE_CHECKING``); the implicit import of a module's parent packages is left out, and the
torch-free modules are imported alone in a fresh interpreter to check that order too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "empo2_lite"

def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the kit's modules it imports (``from a.b import c``: a.b.c where that is a module,
    else a.b; relative imports resolved against the importing module's package)."""
    files = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base for alias in node.names]
            graph[name] |= {target for target in targets if target in files and target != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (or a self-import), as a
    path that starts and ends at the same module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_path_through(graph, component) for component in components
            if len(component) > 1 or next(iter(component)) in graph[next(iter(component))]]


def _path_through(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A cycle inside ``component``: from its first module back to it (breadth-first, shortest)."""
    start = min(component)
    paths = {target: [start, target] for target in sorted(graph[start]) if target in component}
    queue = list(paths)
    while start not in paths:
        node = queue.pop(0)
        for target in sorted(graph[node]):
            if target in component and target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    return paths[start]


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert "empo2_lite.config.reading" in graph["empo2_lite.config.train"]           # from a.b import name
    assert "empo2_lite.config.checks" in graph["empo2_lite.algo.algorithms"]         # inside a function
    assert "empo2_lite.config.train" in graph["empo2_lite.config"]                   # a package's __init__
    assert "empo2_lite.config" not in graph["empo2_lite.config.checks"]              # no implicit parent import
    assert "empo2_lite.trainer" in graph["empo2_lite.jobs"]                          # `as trainer_class`, in a function


def test_find_cycles_reports_a_cycle_as_a_path():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_cycle():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


@pytest.mark.parametrize("module", ["empo2_lite.algo.algorithms", "empo2_lite.config.reading", "empo2_lite.config.train",
                                    "empo2_lite.config.overrides", "empo2_lite.config.presets", "empo2_lite.config"])
def test_each_torch_free_config_module_imports_first_and_alone(module):
    """A package ``__init__`` that re-enters a half-built module is the cycle the graph leaves out."""
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch imported'"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
