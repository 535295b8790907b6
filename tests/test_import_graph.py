"""No import cycles among the package's modules, counting every import the source names.

Imports inside functions and under ``TYPE_CHECKING`` count too: a factory's lazy import of its
implementations is an edge, so an interface file that also chooses the implementation (which then
imports the interface's types) shows up here as a cycle. The graph is read from the source with
``ast`` (nothing is imported), so the test is fast and names the modules of any cycle it finds.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "neoc_assistant"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``from pkg import mod`` names ``pkg.mod``)."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    prefix = root.name
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets.add(source)
                targets.update(f"{source}.{alias.name}" for alias in node.names)
        graph[name] = {t for t in targets if t in files and t != name and t.startswith(prefix)}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 100  # the whole package was read
    assert cycles(graph) == []


def test_a_factory_in_its_interface_file_is_a_cycle(tmp_path):
    """What the test guards against, built as files: the interface chooses the implementation
    (a lazy import) and the implementation imports the interface's types."""
    pkg = tmp_path / "neoc_assistant"
    (pkg / "store").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "store" / "__init__.py").write_text("")
    (pkg / "store" / "vector_store.py").write_text(
        "class VectorHit: ...\n\ndef open_store():\n    from neoc_assistant.store.chroma import Chroma\n    return Chroma()\n")
    (pkg / "store" / "chroma.py").write_text("from .vector_store import VectorHit\n\nclass Chroma: ...\n")
    (pkg / "store" / "manifest.py").write_text("from neoc_assistant.store import vector_store\n")
    graph = import_graph(pkg)
    assert graph["neoc_assistant.store.manifest"] == {"neoc_assistant.store", "neoc_assistant.store.vector_store"}
    assert cycles(graph) == [["neoc_assistant.store.chroma", "neoc_assistant.store.vector_store"]]


def test_an_import_for_type_checking_only_is_an_edge(tmp_path):
    pkg = tmp_path / "neoc_assistant"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "engine.py").write_text("from neoc_assistant.stream import Stream\n")
    (pkg / "stream.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                   "    from neoc_assistant.engine import Engine\n")
    assert cycles(import_graph(pkg)) == [["neoc_assistant.engine", "neoc_assistant.stream"]]


def test_a_ring_of_three_is_one_cycle_and_a_chain_none():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
