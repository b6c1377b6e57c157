"""The package's import graph: no cycles (function-local imports included) and the layering of docs/architecture.md."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "jaxsym"


def import_graph() -> dict[str, set[str]]:
    """Module → package modules it imports anywhere in its source (every ``import`` statement)."""
    mods = {p.stem: p for p in PKG.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "jaxsym" and len(parts) > 1 and parts[1] in mods and parts[1] != m:
                    graph[m].add(parts[1])
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for w in graph[todo.pop()]:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_layering():
    """Each pipeline imports neither the other nor the driver; the interface imports no implementation; the
    landscape and the symmetry core import nothing of the sweep machinery."""
    g = import_graph()
    assert not {"empirical", "sweep", "pipelines"} & reachable(g, "closed_form")
    assert not {"closed_form", "sweep", "pipelines"} & reachable(g, "empirical")
    assert not {"closed_form", "empirical", "sweep", "pipelines"} & reachable(g, "pipeline")
    machinery = {"sweep", "pipelines", "pipeline", "closed_form", "empirical", "plan", "rundir", "report", "cli"}
    for low in ("model", "activations", "distributions", "networks", "symmetry", "naming", "orbits", "spectra",
                "solvers", "config"):
        assert not machinery & reachable(g, low), low
