"""The package's import rules, read from the source: the sandboxed worker imports nothing outside itself, nothing
imports a layer above its own, and no module-level import cycle exists anywhere in cnngrade."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import cnngrade

PACKAGE = Path(cnngrade.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, *, top_level_only: bool) -> set[str]:
    """cnngrade modules ``path`` imports (relative imports resolved); only statements run at import time when
    ``top_level_only`` (imports inside functions are taken when called, so they form no cycle)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[:len(base) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)   # `from pkg import module`
    return {name for name in found if name == "cnngrade" or name.startswith("cnngrade.")}


def sources() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


# Layers from the bottom up; a module may import its own layer and those below, never one above (lazy imports
# inside functions included). The stages run intake -> sandbox/worker -> grading -> report; report sits below
# grading only because the pipeline writes reports with it.
LAYERS = [
    {"cnngrade", "errors", "config", "records", "sinks", "worker", "data"},
    {"intake", "sandbox"},
    {"graderkit", "training"},
    {"report"},
    {"grading"},
    {"export"},
    {"commands", "cli", "__main__"},
]


def layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else "cnngrade"
    for rank, names in enumerate(LAYERS):
        if part in names:
            return rank
    raise AssertionError(f"{module} belongs to no layer: add cnngrade/{part} to LAYERS in tests/test_layers.py")


def upward_imports() -> list[str]:
    modules = sources()
    return [f"{name} imports {target}" for name, path in sorted(modules.items())
            for target in sorted(imported(path, top_level_only=False))
            if target in modules and layer(target) > layer(name)]


def test_nothing_imports_a_layer_above_its_own():
    assert not upward_imports(), "\n".join(upward_imports())


def test_the_layer_rule_sees_an_upward_import(tmp_path, monkeypatch):
    pkg = tmp_path / "cnngrade"
    (pkg / "intake").mkdir(parents=True)
    (pkg / "grading").mkdir()
    for init in (pkg / "__init__.py", pkg / "intake" / "__init__.py", pkg / "grading" / "__init__.py"):
        init.write_text("")
    (pkg / "grading" / "pipeline.py").write_text("")
    (pkg / "intake" / "collect.py").write_text("def f():\n    from cnngrade.grading import pipeline\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    assert "cnngrade.intake.collect imports cnngrade.grading.pipeline" in upward_imports()


def test_the_worker_imports_nothing_outside_itself():
    """Only cnngrade/worker/ is mounted in the sandbox: anything else it imported would not be there."""
    for path in (PACKAGE / "worker").glob("*.py"):
        outside = {m for m in imported(path, top_level_only=False) if not m.startswith("cnngrade.worker")}
        assert not outside, f"{path.name} imports {sorted(outside)}"


def test_no_module_level_import_cycle():
    modules = sources()
    graph = {name: {m for m in imported(path, top_level_only=True) if m in modules and m != name}
             for name, path in modules.items()}
    state: dict[str, int] = {}   # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_the_cycle_finder_sees_a_cycle(tmp_path, monkeypatch):
    """The rule above can fail: two modules importing each other at load are reported."""
    pkg = tmp_path / "cnngrade"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from cnngrade import b\n")
    (pkg / "b.py").write_text("from . import a\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    try:
        test_no_module_level_import_cycle()
    except AssertionError as exc:
        assert "cnngrade.a -> cnngrade.b -> cnngrade.a" in str(exc)
    else:
        raise AssertionError("the cycle between a and b was not found")
