"""One grader toolkit: graders reach cnngrade only through ``cnngrade.graderkit``, whose every name resolves."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import cnngrade.graderkit as kit
from cnngrade.config import GRADERS_DIR, PROJECT_ROOT

# What a grader may import besides the toolkit: the standard library and the trusted side's own tools.
THIRD_PARTY = {"torch", "torchvision", "hypothesis", "pytest", "numpy", "PIL"}


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import in a file, at any depth (graders import lazily inside tests too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "." * node.level + (node.module or ""), [a.name for a in node.names]))
    return found


@pytest.mark.parametrize("path", sorted(GRADERS_DIR.glob("*/test_*.py")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_graders_import_cnngrade_only_through_the_toolkit(path):
    wrong = []
    for line, module, _ in imports(path):
        root = module.split(".")[0]
        if module == "cnngrade.graderkit" or module == "__future__":
            continue
        if root == "cnngrade" or module.startswith(".") or (
                root not in sys.stdlib_module_names and root not in THIRD_PARTY):
            wrong.append(f"line {line}: {module}")
    assert not wrong, f"{path.name} imports {wrong}; use `from cnngrade.graderkit import ...`"


def test_every_toolkit_name_resolves_and_is_written_once():
    for name in kit.__all__:
        assert getattr(kit, name) is not None, name
    assert "images" in kit.__all__ and "handle" in kit.__all__ and "answers" in kit.__all__
    with pytest.raises(AttributeError, match="has no 'nothing'"):
        kit.nothing  # noqa: B018 - the lookup is the test
    # The helpers graders share live in the toolkit, not copied into each grader.
    for path in GRADERS_DIR.glob("*/test_*.py"):
        defined = {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}
        assert not defined & {"rng", "handle", "answers"}, (path.name, defined & {"rng", "handle", "answers"})


def test_the_worker_never_imports_the_toolkit():
    # The worker's side is the student's interpreter: nothing trusted-side may be reached from it.
    for path in (PROJECT_ROOT / "cnngrade" / "worker").glob("*.py"):
        assert not any("graderkit" in module for _, module, _ in imports(path)), path.name
