"""The package's layers (../shared/DESIGN.md): each module imports only its own layer and those below.

Every import of every module under ``ntkflow/`` is read with ``ast`` — imports inside functions
included, since a deferred import is still a dependency — and resolved to a module of the
package. The test fails on an import against the layer order and on an import cycle between
modules, except for the pairs in ``ALLOWED`` (today's known debts, to be emptied by the
restructuring); an allowed pair that no longer occurs fails too, so the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "ntkflow"

#: Layers from the bottom; a module's layer is the first prefix of its dotted name listed here.
LAYERS = (
    ("_core", "_core", "_jax", "_io", "_progress", "_validate"),
    ("paper", "paper"),
    ("data", "data"),  # above paper: synthetic data is built to satisfy Assumption 2, checked
    ("nets", "nets"),
    ("bounds", "bounds"),
    ("attacks", "attacks", "kernels"),
    ("objectives", "objectives"),
    ("analysis", "analysis"),  # the landscape measures take the objectives' per-sample loss
    ("metrics", "metrics"),
    ("training", "training"),
    ("theory", "theory"),
    ("sweep", "sweep"),
    ("reporting", "reporting"),
    ("cli", "cli"),
)

#: Known debts: (importer, imported) module pairs that break the order or close a cycle today —
#: none left; the list only shrinks, so it stays empty.
ALLOWED: set[tuple[str, str]] = set()


def _layer(mod: str) -> int:
    best = None
    for rank, (_, *prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (mod == p or mod.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (rank, len(p))
    if best is None:
        raise AssertionError(f"ntkflow.{mod} is in no layer: add it to LAYERS in tests/test_layering.py")
    return best[0]


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = path
    return out


def _resolve(mod: str, is_pkg: bool, node: ast.AST, known: set[str]) -> set[str]:
    """The package modules an import node refers to ('' is ntkflow/__init__)."""
    names = set()
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.name == "ntkflow" or a.name.startswith("ntkflow."):
                names.add(a.name[len("ntkflow."):] if a.name != "ntkflow" else "")
        return names
    if node.level == 0:
        if not (node.module or "").startswith("ntkflow"):
            return names
        base = node.module[len("ntkflow."):] if node.module != "ntkflow" else ""
    else:
        pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
        pkg = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
        base = ".".join([p for p in pkg if p] + ([node.module] if node.module else []))
    for a in node.names:
        sub = f"{base}.{a.name}" if base else a.name
        names.add(sub if sub in known else base)
    return names


def _edges() -> set[tuple[str, str]]:
    mods = _modules()
    known = set(mods)
    edges = set()
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _resolve(mod, is_pkg, node, known):
                    # importing a.b runs a/__init__ first: an edge to every enclosing package
                    # that is not the importer's own (the nets ↔ bounds cycle runs through one)
                    parts = target.split(".")
                    for k in range(1, len(parts) + 1):
                        t = ".".join(parts[:k])
                        if t != mod and t in known and not (mod == t or mod.startswith(t + ".")) or t == target != mod:
                            edges.add((mod, t))
    return edges


def _against_order(edges) -> set[tuple[str, str]]:
    # the package's own __init__ files re-export their layer; ntkflow/__init__ is the public face, above all
    return {(a, b) for a, b in edges if a and b and _layer(a) < _layer(b)}


def _cycles(edges) -> set[tuple[str, str]]:
    """Edges that lie on a cycle (both ends in one strongly connected component), ignoring the
    top-level ``ntkflow/__init__`` and package __init__ re-exports of their own submodules."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        if a and b:
            graph.setdefault(a, set()).add(b)
    index, low, stack, on, comp, counter = {}, {}, [], set(), {}, [0]

    def strong(v):  # Tarjan, iterative enough for a package of this size
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            while True:
                w = stack.pop()
                on.discard(w)
                comp[w] = v
                if w == v:
                    break

    for v in list(graph):
        if v not in index:
            strong(v)
    return {(a, b) for a, bs in graph.items() for b in bs if comp.get(a) == comp.get(b)}


def test_every_module_has_a_layer():
    for mod in _modules():
        if mod:
            _layer(mod)


def test_no_import_against_the_layer_order():
    bad = _against_order(_edges()) - ALLOWED
    assert not bad, "imports against the layer order:\n" + "\n".join(
        f"  ntkflow.{a} ({LAYERS[_layer(a)][0]}) imports ntkflow.{b} ({LAYERS[_layer(b)][0]})" for a, b in sorted(bad))


def test_no_import_cycle():
    bad = _cycles(_edges()) - ALLOWED
    assert not bad, "imports on a cycle:\n" + "\n".join(f"  ntkflow.{a} -> ntkflow.{b}" for a, b in sorted(bad))


def test_allow_list_only_shrinks():
    edges = _edges()
    stale = ALLOWED - (_against_order(edges) | _cycles(edges))
    assert not stale, f"remove from ALLOWED (no longer occur): {sorted(stale)}"


@pytest.mark.parametrize("src, expect", [
    ("from ..bounds import engine", {"bounds.engine"}),
    ("from .. import fit", {"fit"}),
    ("def f():\n    from ntkflow.sweep.store import read_table", {"sweep.store"}),
])
def test_imports_are_read_inside_functions_and_relative(src, expect, tmp_path):
    known = {"bounds", "bounds.engine", "fit", "sweep", "sweep.store", "metrics"}
    found = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= _resolve("metrics", False, node, known) if not src.startswith("from ..") else \
                _resolve("objectives.methods", False, node, known)
    assert found == expect


def test_a_cycle_and_an_upward_import_are_found():
    edges = {("bounds.engine", "nets.base"), ("nets.base", "bounds.engine"), ("nets.base", "metrics")}
    assert _cycles(edges) == {("bounds.engine", "nets.base"), ("nets.base", "bounds.engine")}
    assert _against_order(edges) == {("nets.base", "bounds.engine"), ("nets.base", "metrics")}
