"""The package's import graph: no cycles (function-local imports included) and subpackages stacked in layers.

Each layer may import itself and the layers below it, never one above: the rule is checked by module prefix
(``jaxsym.landscape.*`` …), so a new module obeys it by the folder it is put in (docs/architecture.md).
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "jaxsym"

# bottom to top; a module belongs to the first layer whose prefix names it
LAYERS = [
    ("landscape",), ("numerics",), ("symmetry",), ("config",), ("io",), ("engine",), ("certify",), ("fixedpoints",),
    ("sweep",), ("report",), ("api", "cli", "__main__", "__init__", "examples"),
]


def modules() -> dict[str, Path]:
    """Dotted module names under jaxsym (``landscape.model``, ``config``, ``sweep`` for a package's __init__)."""
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(PKG).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → package modules it imports anywhere in its source (every ``import`` statement)."""
    mods = modules()
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
                if parts[0] != "jaxsym" or len(parts) == 1:
                    continue
                target = ".".join(parts[1:])  # the longest prefix that is a module
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != m:
                    graph[m].add(target)
    return graph


def layer_of(module: str) -> int:
    head = module.split(".")[0]
    for i, prefixes in enumerate(LAYERS):
        if head in prefixes:
            return i
    raise AssertionError(f"module jaxsym.{module} belongs to no layer: put it in a subpackage of docs/architecture.md")


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


def test_every_module_imports_only_its_layer_and_those_below():
    g = import_graph()
    bad = [f"jaxsym.{m} (layer {LAYERS[layer_of(m)][0]}) imports jaxsym.{t} (layer {LAYERS[layer_of(t)][0]})"
           for m, targets in g.items() for t in targets if layer_of(t) > layer_of(m)]
    assert not bad, "\n".join(bad)


def test_the_layer_rule_would_catch_an_upward_import():
    assert layer_of("sweep.driver") > layer_of("engine.compact") > layer_of("landscape.model")
    assert layer_of("report.figures") > layer_of("sweep.plan")


def test_no_flat_modules_but_the_top():
    """Everything but the top layer (config, api, cli) lives in a subpackage."""
    flat = {p.stem for p in PKG.glob("*.py")}
    assert flat == {"__init__", "__main__", "api", "cli", "config"}, flat


def test_pipelines_know_neither_each_other_nor_the_driver():
    g = import_graph()
    machinery = {"sweep.driver", "sweep.pipelines", "sweep.loading", "sweep.progress"}
    assert not ({"sweep.sampled"} | machinery) & reachable(g, "sweep.closed_form")
    assert not ({"sweep.closed_form"} | machinery) & reachable(g, "sweep.sampled")
    assert not ({"sweep.closed_form", "sweep.sampled"} | machinery) & reachable(g, "sweep.pipeline")


def test_load_does_not_import_the_report(tmp_path):
    """``jaxsym.load`` reads a directory without Matplotlib or the report's modules (a notebook's first cell)."""
    code = ("import sys, jaxsym\n"
            "from jaxsym.io.rundir import SweepDirError\n"
            f"try:\n    jaxsym.load({str(tmp_path)!r})\nexcept SweepDirError:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('matplotlib', 'jaxsym.report'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "jaxsym.sweep.loading" not in out and out.strip() == "[]", out


def _defined(pattern: str) -> list[str]:
    """``module: line`` for every line of the package matching the regular expression ``pattern``."""
    out = []
    for f in sorted(PKG.rglob("*.py")):
        for line in f.read_text().splitlines():
            if re.match(pattern, line):
                out.append(f"{f.relative_to(PKG)}: {line.strip()}")
    return out


@pytest.mark.parametrize("concept, pattern", [
    ("fixed-point space", r"class \w*Space\b"),
    ("restricted loss", r"def (_?\w*loss)\(z: Array, p: Array"),
    ("restricted solve", r"def solve\("),
    ("continuation", r"def trace\("),
    ("search from many starts", r"def search\("),
    ("index rule", r"INDEX_TOL = "),
    ("block spectrum", r"def components\("),
])
def test_one_implementation_per_fixed_point_concept(concept, pattern):
    """The fixed-point wing's concepts each exist once (issue 24: three space classes, three continuation
    loops, three searches, two block spectra, three index tolerances before)."""
    found = _defined(pattern)
    assert len(found) == 1, (concept, found)
