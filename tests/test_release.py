"""`cnngrade release`: the student bundle holds stubs, notebooks and public tests, and nothing hidden or solved."""
from __future__ import annotations

import ast
import zipfile

import nbformat
import pytest
import yaml

from cnngrade.cli import main
from cnngrade.config import GRADERS_DIR, available_exercises, load_exercise
from cnngrade.release import ROOT, public_source
from cnngrade.validate import SOLUTIONS_DIR, STUBS_DIR


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    target = tmp_path_factory.mktemp("release") / "cnn-week.zip"
    assert main(["release", str(target)]) == 0
    with zipfile.ZipFile(target) as zf:
        return {name: zf.read(name).decode() for name in zf.namelist()}


def test_bundle_has_every_stub_both_ways_and_a_readme(bundle):
    for stub in sorted(STUBS_DIR.glob("ex*_*.py")):
        assert bundle[f"{ROOT}/exercises/{stub.name}"] == stub.read_text()
        assert f"{ROOT}/exercises/{stub.stem}.ipynb" in bundle
    assert "cnngrade check" in bundle[f"{ROOT}/README.md"]
    assert all(name.startswith(f"{ROOT}/") for name in bundle)


def test_bundle_holds_no_solution_line(bundle):
    # Lines the stubs or the graders' own code also hold may ship; every other solution line must not.
    stub_lines = {line.strip() for p in [*STUBS_DIR.glob("*.py"), *GRADERS_DIR.glob("*/*.py")]
                  for line in p.read_text().splitlines()}
    solution_lines = {line.strip() for p in SOLUTIONS_DIR.glob("*.py") for line in p.read_text().splitlines()
                      if len(line.strip()) > 20 and not line.strip().startswith(("#", "import", "from", '"""'))}
    secret = solution_lines - stub_lines
    assert len(secret) > 50   # the check below means something only if the solutions differ from the stubs
    shipped = set()
    for name, text in bundle.items():
        if name.endswith(".ipynb"):
            text = "\n".join(c.source for c in nbformat.reads(text, as_version=4).cells)
        shipped |= {line.strip() for line in text.splitlines()}
    leaked = secret & shipped
    assert not leaked, sorted(leaked)[:5]


def test_bundle_holds_only_public_tests(bundle):
    for exercise in available_exercises(GRADERS_DIR):
        cfg = load_exercise(exercise)
        public = {t.name for t in cfg.tests if t.visibility == "public"}
        hidden_functions = {t.name.split("[")[0] for t in cfg.tests} - {n.split("[")[0] for n in public}
        files = {n: t for n, t in bundle.items() if n.startswith(f"{ROOT}/public_tests/{exercise}/")}
        if not public and not cfg.manual:
            assert not files
            continue
        shipped = yaml.safe_load(files[f"{ROOT}/public_tests/{exercise}/grader.yaml"])
        assert set(shipped["tests"]) == public
        defined = {node.name for name, text in files.items() if name.endswith(".py")
                   for node in ast.parse(text).body if isinstance(node, ast.FunctionDef)}
        assert not defined & hidden_functions, (exercise, defined & hidden_functions)
        assert not any(f"def {name}(" in text for name in hidden_functions for text in files.values())


def test_public_source_drops_hidden_functions_with_their_decorators():
    source = ("import pytest\n\n\n@pytest.mark.parametrize('x', [1])\ndef test_hidden(x):\n    assert x\n\n\n"
              "def test_public():\n    pass\n")
    out = public_source(source, {"test_public"})
    assert "test_hidden" not in out and "parametrize" not in out and "def test_public" in out
    compile(out, "<test>", "exec")
    assert public_source(source, set()) is None


@pytest.mark.slow
def test_students_can_run_the_public_tests_from_the_bundle(bundle, tmp_path):
    """`cnngrade check` on the unpacked bundle: the reference earns every public point of ex1, the stub none."""
    from cnngrade.check import check_folder

    for name, text in bundle.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graders = tmp_path / ROOT / "public_tests"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "ex1_output_size.py").write_text((SOLUTIONS_DIR / "ex1_output_size.py").read_text())
    solved = check_folder(tmp_path / "mine", exercises=["ex1_output_size"], graders_dir=graders)
    stub = check_folder(tmp_path / ROOT / "exercises", exercises=["ex1_output_size"], graders_dir=graders)
    public = {t.name for t in load_exercise("ex1_output_size").tests if t.visibility == "public"}
    for report, earns in ((solved, True), (stub, False)):
        tests = report.exercises["ex1_output_size"].tests
        assert {t.name for t in tests if t.status != "manual"} == public
        assert all((t.score == t.max_score) is earns for t in tests if t.status != "manual")
