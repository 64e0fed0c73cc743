"""`cnngrade release`: the student bundle holds stubs, notebooks and public tests, and nothing hidden or solved."""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml

from cnngrade.cli import main
from cnngrade.config import GRADERS_DIR, PROJECT_ROOT, available_exercises, load_exercise
from cnngrade.export.release import PYTHON_NEEDED, ROOT, TORCH_CPU_INDEX, WHEELS, public_source, wheel_name
from cnngrade.grading.validate import SOLUTIONS_DIR, STUBS_DIR
from tests.test_readme import doc_argv, instructor_commands


@pytest.fixture(scope="module")
def bundle_zip(tmp_path_factory):
    target = tmp_path_factory.mktemp("release") / "cnn-week.zip"
    (command,) = [c for c in instructor_commands() if c.startswith("cnngrade release")]
    assert main(doc_argv(command, **{"cnn-week.zip": str(target)})) == 0    # builds cnngrade's wheel with pip
    return target


@pytest.fixture(scope="module")
def bundle(bundle_zip):
    """The bundle's text files by name (the wheel left out)."""
    with zipfile.ZipFile(bundle_zip) as zf:
        return {name: zf.read(name).decode() for name in zf.namelist() if not name.endswith(".whl")}


@pytest.mark.slow
def test_bundle_has_every_stub_both_ways_and_a_readme(bundle):
    for stub in sorted(STUBS_DIR.glob("ex*_*.py")):
        assert bundle[f"{ROOT}/exercises/{stub.name}"] == stub.read_text()
        assert f"{ROOT}/exercises/{stub.stem}.ipynb" in bundle
    assert "cnngrade check" in bundle[f"{ROOT}/README.md"]
    assert all(name.startswith(f"{ROOT}/") for name in bundle)


@pytest.mark.slow
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


@pytest.mark.slow
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
        # The answer tests are listed (check shows them "checked at grading") but their code is not shipped.
        answers = {t.name.split("[")[0] for t in cfg.tests if t.kind == "answer"}
        assert not defined & answers, (exercise, defined & answers)
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
    from cnngrade.grading.student_check import check_folder

    for name, text in bundle.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graders = tmp_path / ROOT / "public_tests"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "ex1_output_size.py").write_text((SOLUTIONS_DIR / "ex1_output_size.py").read_text())
    solved = check_folder(tmp_path / "mine", exercises=["ex1_output_size"], graders_dir=graders)
    stub = check_folder(tmp_path / ROOT / "exercises", exercises=["ex1_output_size"], graders_dir=graders)
    public = {t.name for t in load_exercise("ex1_output_size").tests
              if t.visibility == "public" and t.kind != "answer"}   # answer tests: listed, run only at grading
    for report, earns in ((solved, True), (stub, False)):
        tests = report.exercises["ex1_output_size"].tests
        assert {t.name for t in tests if t.status != "manual"} == public
        assert all((t.score == t.max_score) is earns for t in tests if t.status != "manual")


@pytest.mark.slow
def test_bundle_ships_the_wheel_and_says_how_to_install_it(bundle_zip, bundle):
    with zipfile.ZipFile(bundle_zip) as zf:
        wheel = zf.read(f"{ROOT}/{WHEELS}/{wheel_name()}")
    with zipfile.ZipFile(__import__("io").BytesIO(wheel)) as whl:
        names = whl.namelist()
    assert "cnngrade/cli.py" in names and "cnngrade/worker/server.py" in names
    assert not [n for n in names if n.startswith(("graders/", "solutions/"))]
    readme = bundle[f"{ROOT}/README.md"]
    assert f"python -m pip install {WHEELS}/{wheel_name()}" in readme
    assert f"--index-url {TORCH_CPU_INDEX}" in readme and f"Python {PYTHON_NEEDED} or newer" in readme


def test_the_python_version_said_is_the_one_the_package_needs():
    needed = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert needed == f">={PYTHON_NEEDED}"
    assert f"Python {PYTHON_NEEDED} or newer" in (PROJECT_ROOT / "docs" / "students.md").read_text()


def students_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", (PROJECT_ROOT / "docs" / "students.md").read_text(), re.DOTALL)


# Runs docs/students.md's commands as written, with stand-ins for what needs the network: the new environment
# sees this machine's packages (--system-site-packages, so torch is not downloaded again; the environment's own
# old setuptools seed is removed, since torch wants a newer one that pip, offline, could not fetch) and the CPU
# torch line is only shown.
SHELL_PRELUDE = """
python() {
    if [ "$1 $2" = "-m venv" ]; then
        command python -m venv --system-site-packages "${@:3}" && "${@: -1}/bin/python" -m pip uninstall -qy setuptools
    elif [[ "$*" == *download.pytorch.org* ]]; then echo "not run here: python $*"
    else command python "$@"; fi
}
"""
STEP = re.compile(r"^\+ (.*?)\n(.*?)^RC=(\d+)$", re.DOTALL | re.MULTILINE)


@pytest.mark.slow
def test_students_install_the_wheel_and_check_with_the_documented_commands(bundle_zip, bundle):
    """docs/students.md, step by step, in a fresh virtual environment holding the bundle's wheel."""
    setup, checks = students_blocks()
    assert f"--index-url {TORCH_CPU_INDEX}" in setup and f"{WHEELS}/{wheel_name()}" in setup
    for line in setup.splitlines()[1:]:   # the README gives the same commands
        assert line.split("#")[0].strip() in bundle[f"{ROOT}/README.md"]
    # Not under /tmp: the sandbox shows the worker a private /tmp, which would hide this environment.
    work = Path(tempfile.mkdtemp(prefix="cnngrade-student-", dir="/var/tmp"))
    try:
        with zipfile.ZipFile(bundle_zip) as zf:
            zf.extractall(work)
        mine = work / ROOT / "mine"
        mine.mkdir()
        shutil.copy(SOLUTIONS_DIR / "ex1_output_size.py", mine)
        commands = [line.split("#")[0].strip() for line in setup.splitlines()]
        commands += [line.split("#")[0].strip() for line in checks.splitlines()]
        commands.append("cnngrade check mine --graders public_tests")
        script = SHELL_PRELUDE + "\n".join(
            f"echo '+ {c}'; {c}; echo \"RC=$?\"" for c in commands if c)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
        env.update(PIP_NO_INDEX="1", PATH=f"{Path(sys.executable).parent}:{env['PATH']}")
        proc = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True,
                              timeout=1800, check=False)
        out = proc.stdout
        steps = {command: (text, int(rc)) for command, text, rc in STEP.findall(out)}
        assert len(steps) == len([c for c in commands if c]), out[-3000:] + proc.stderr[-3000:]
        for command, (text, rc) in steps.items():
            if command.startswith("cnngrade check mine"):
                assert rc == 0 and "all public tests pass" in text, text
            elif command.startswith("cnngrade check"):
                assert rc == 1 and "public test(s) to fix" in text, (command, text)   # the untouched stubs
            else:
                assert rc == 0, (command, text, proc.stderr[-3000:])
        installed = subprocess.run([str(work / ROOT / ".venv" / "bin" / "python"), "-c",
                                    "import cnngrade; print(cnngrade.__file__)"], capture_output=True, text=True,
                                   check=False, cwd=work)   # not this checkout's folder, which -c would put first
        assert str(work / ROOT / ".venv") in installed.stdout     # the wheel's copy, not this checkout
        stub = steps["cnngrade check exercises --graders public_tests --exercises ex1"][0]
        answer_rows = [line for line in stub.splitlines() if line.startswith("ex1 ") and "test_answer" in line]
        assert answer_rows and all("checked at grading" in line for line in answer_rows)
        assert "expected the int" not in stub and "test_answer" not in stub.partition("What to fix")[2]
    finally:
        shutil.rmtree(work, ignore_errors=True)
