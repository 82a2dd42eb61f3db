"""Imports point one way: file -> Instance -> algorithm or formulation -> Result -> store -> table.

Every import of the package, at module level or inside a function, is read
from the source; a module may import only from its own layer or a lower one,
the module graph has no cycle, the MoE² family uses nothing of the caching
family's algorithms, formulations or data model, and the installed package
never imports the benchmarks.  (``docs/architecture.md`` draws the layers.)
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "slimcaching"

#: Module-name prefix -> layer; the longest matching prefix wins.
LAYERS = {
    "slimcaching.errors": 0, "slimcaching.version": 0, "slimcaching.lazy": 0,
    "slimcaching.validation": 1, "slimcaching.fileio": 1, "slimcaching.schemas": 1,
    "slimcaching.instances": 2,
    "slimcaching.result": 3, "slimcaching.objective": 3,
    "slimcaching.solvers": 4,
    "slimcaching.formulations": 5, "slimcaching.moe2": 5,
    "slimcaching.algorithms": 6,
    "slimcaching.analysis": 7,
    "slimcaching.cli": 8, "slimcaching.moe2.cli": 8,
    "slimcaching": 9,
}


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


MODULES = _modules()


def _layer(mod: str) -> int:
    best = max((p for p in LAYERS if mod == p or mod.startswith(p + ".")), key=len)
    return LAYERS[best]


def _imports(mod: str, path: Path) -> set[str]:
    """Every ``slimcaching`` module that ``mod`` imports (submodule when the name is one)."""
    is_pkg = path.name == "__init__.py"
    here = mod.split(".") if is_pkg else mod.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
            out.update(n for n in names if n.split(".")[0] in ("slimcaching", "benchmarks"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] not in ("slimcaching", "benchmarks"):
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.add(sub if sub in MODULES else base)
    out.discard(mod)
    return out


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_no_import_from_a_higher_layer(mod):
    up = sorted(t for t in GRAPH[mod] if t.startswith("slimcaching") and _layer(t) > _layer(mod))
    assert not up, f"{mod} (layer {_layer(mod)}) imports from higher layers: {up}"


def test_module_graph_has_no_cycle():
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH.get(v, ()):
            if w not in MODULES:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(MODULES):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_moe2_uses_only_the_shared_core():
    forbidden = ("slimcaching.algorithms", "slimcaching.formulations", "slimcaching.instances",
                 "slimcaching.objective", "slimcaching.analysis")
    for mod, targets in GRAPH.items():
        if mod.startswith("slimcaching.moe2"):
            bad = sorted(t for t in targets if t.startswith(forbidden))
            assert not bad, f"{mod} imports the caching family: {bad}"


def test_formulations_import_no_algorithm_and_package_no_benchmark():
    for mod, targets in GRAPH.items():
        assert not any(t.startswith("benchmarks") for t in targets), mod
        if mod.startswith("slimcaching.formulations"):
            assert not any(t.startswith("slimcaching.algorithms") for t in targets), mod


def test_the_checker_sees_imports():
    """The scanner is not vacuous: known edges, including a function-level one, are found."""
    assert "slimcaching.formulations.solve" in GRAPH["slimcaching.algorithms.exact"]
    assert "slimcaching.algorithms.local_search.polish" in GRAPH["slimcaching.algorithms.registry"]  # inside run()
    assert _layer("slimcaching.moe2.cli") == 8 and _layer("slimcaching.moe2.milp") == 5


@pytest.mark.parametrize("argv", [["--help"], ["evaluate", "--help"], ["report", "--help"], ["moe2", "solve", "--help"]])
def test_the_command_line_starts_without_pyomo_or_pandas(argv):
    """Building the parser imports neither Pyomo (formulations, MoE² MILP) nor pandas (tables, traces):
    they cost about 0.8 CPU-s together, which every command, ``--help`` included, would pay."""
    code = ("import sys\nfrom slimcaching.cli.main import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print('LOADED=' + ','.join(m for m in ('pyomo', 'pandas', 'highspy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "LOADED=", out.stdout.strip().splitlines()[-1]


def test_lazy_package_names_resolve():
    import slimcaching.formulations as f
    import slimcaching.moe2 as m
    for pkg in (f, m):
        assert set(pkg.__all__) <= set(dir(pkg))
        for name in pkg.__all__:
            assert getattr(pkg, name) is not None
    with pytest.raises(AttributeError):
        f.no_such_name
