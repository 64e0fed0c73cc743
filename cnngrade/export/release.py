"""The student bundle: stubs as .py and .ipynb, the public tests only, cnngrade's wheel and a README to install and check."""
from __future__ import annotations

import ast
import importlib.util
import io
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import yaml

import cnngrade
from cnngrade.config import GRADERS_DIR, PROJECT_ROOT, available_exercises, load_exercise
from cnngrade.errors import InputError
from cnngrade.grading.validate import STUBS_DIR
from cnngrade.intake.notebooks import EXPERIMENT_MARK
from cnngrade.intake.stub_notebooks import stub_notebook_text

ROOT = "cnn-week"
WHEELS = "wheels"
PYTHON_NEEDED = "3.11"   # pyproject's requires-python (a test keeps them equal)
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
README = """# CNN week: exercises

Eight exercises on convolutional neural networks. Each one is a Python module in
`exercises/` (the same starter code also comes as a Jupyter notebook, `.ipynb`): read its
docstrings, replace every `raise NotImplementedError` and every `None` answer, and hand in
either the `.py` or the `.ipynb` of each exercise. If you hand in both, the one you edited is
graded (edited both: the one saved last), and your report says which.

## Install (once)

You need Python {python} or newer (`python --version`; on some systems the command is
`python3`, on Windows also `py`). In this folder (`cnn-week/`), make a virtual environment,
install the CPU build of PyTorch (no GPU is needed; without the index URL, pip on Linux
downloads several GB of CUDA libraries), then cnngrade from the wheel in `{wheels}/`:

    python -m venv .venv
    source .venv/bin/activate          (Windows: .venv\\Scripts\\activate)
    python -m pip install torch torchvision --index-url {index}
    python -m pip install {wheels}/{wheel}

The same commands work on Linux, macOS and Windows (where `python` may be `py`).

## Check your work before you hand it in

`public_tests/` holds the tests you may see. From this folder, with the environment active:

    cnngrade check exercises --graders public_tests

or, for one exercise, `cnngrade check exercises --graders public_tests --exercises ex1`.
It runs your code and prints, for each public test, whether it passes and what to fix (with
the smallest input that fails). Tests that compare your `ANSWERS` with the right values say
"checked at grading": the values are not given away. Exit status 0 means every public test
passes. Passing them does not guarantee full points: hidden tests check more cases when
your work is graded, and free-text answers are read by course staff.

On Linux with bubblewrap installed your code runs in a sandbox; elsewhere (macOS, Windows)
it runs as a normal program on your machine (it is your own code), and check says so.

Notebooks work the same way: `cnngrade check exercises` checks the `.ipynb` of an exercise
when that is the file you edited (its first lines say which file of each exercise it
checked when both are there). Lines
starting with `%` or `!` (IPython magics) are not run, and neither are experiment cells:
cells whose first line is `{mark}` or that carry the cell tag `experiment`
(the training runs of ex6 and ex8 are such cells). Keep every function and answer out of them.
"""


def wheel_name() -> str:
    """The file name of cnngrade's wheel (pure Python, so fixed by the version)."""
    return f"cnngrade-{cnngrade.__version__}-py3-none-any.whl"


def readme() -> str:
    return README.format(python=PYTHON_NEEDED, wheels=WHEELS, index=TORCH_CPU_INDEX, wheel=wheel_name(),
                         mark=EXPERIMENT_MARK)


def build_wheel(dest: Path) -> Path:
    """Build cnngrade's wheel into ``dest`` with pip, from a copy of the package (the working tree stays clean).

    Only the package goes in: no graders, no solutions (they live outside cnngrade/).
    """
    with tempfile.TemporaryDirectory(prefix="cnngrade-src-") as tmp:
        src = Path(tmp)
        for name in ("pyproject.toml", "README.md"):
            shutil.copyfile(PROJECT_ROOT / name, src / name)
        shutil.copytree(PROJECT_ROOT / "cnngrade", src / "cnngrade",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        # Offline when setuptools is already here: no isolated build environment to download.
        isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w",
                               str(dest), str(src)], check=False, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
    wheel = dest / wheel_name()
    if proc.returncode != 0 or not wheel.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise InputError(f"could not build cnngrade's wheel (pip wheel exit {proc.returncode}): {tail[0]}")
    return wheel


def public_yaml(cfg_path: Path) -> str:
    """A grader.yaml with the hidden tests (and the YAML's comments, which may describe them) left out."""
    data = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    data["tests"] = {name: spec for name, spec in data["tests"].items() if spec.get("visibility") == "public"}
    return yaml.safe_dump(data, sort_keys=False)


def public_source(source: str, public: set[str]) -> str | None:
    """The test file without its hidden test functions; None when no public test is left in it."""
    tree = ast.parse(source)
    lines = source.splitlines()
    drop: list[tuple[int, int]] = []
    kept = 0
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            if node.name in public:
                kept += 1
                continue
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            drop.append((start - 1, node.end_lineno or node.lineno))
    if not kept:
        return None
    for start, end in reversed(drop):
        del lines[start:end]
    return re.sub(r"\n{4,}", "\n\n\n", "\n".join(lines)).rstrip() + "\n"


def bundle_files(*, graders_dir: Path = GRADERS_DIR, stubs_dir: Path = STUBS_DIR) -> dict[str, str]:
    """Every file of the bundle, by path inside the zip."""
    files = {f"{ROOT}/README.md": readme()}
    stubs = sorted(stubs_dir.glob("ex*_*.py"))
    if not stubs:
        raise InputError(f"{stubs_dir} holds no exN_*.py stub")
    for stub in stubs:
        source = stub.read_text(encoding="utf-8")
        files[f"{ROOT}/exercises/{stub.name}"] = source
        files[f"{ROOT}/exercises/{stub.stem}.ipynb"] = stub_notebook_text(stub, graders_dir)
    for exercise in available_exercises(graders_dir):
        cfg = load_exercise(exercise, graders_dir)
        public = {t.name.split("[")[0] for t in cfg.tests if t.visibility == "public"}
        # Answer tests stay listed in grader.yaml (check shows them as checked at grading) but their code, which
        # computes the expected values, stays out.
        kinds: dict[str, set[str]] = {}
        for t in cfg.tests:
            kinds.setdefault(t.name.split("[")[0], set()).add(t.kind)
        public -= {function for function, kind in kinds.items() if kind == {"answer"}}
        sources = {p.name: public_source(p.read_text(encoding="utf-8"), public) for p in cfg.test_files}
        tests = {name: text for name, text in sources.items() if text is not None}
        if not tests and not cfg.manual:
            continue
        files[f"{ROOT}/public_tests/{exercise}/grader.yaml"] = public_yaml(cfg.directory / "grader.yaml")
        if not tests:
            # cnngrade needs a test file per exercise; this one only says that every test is hidden.
            tests = {f"test_{exercise}.py": '"""Every automatic test of this exercise is hidden."""\n'}
        for name, text in tests.items():
            files[f"{ROOT}/public_tests/{exercise}/{name}"] = text
    return files


def write_bundle(target: Path, *, wheel: Path | None = None, **dirs: Path) -> list[str]:
    """Write the bundle zip (deterministic: sorted names, fixed dates) with cnngrade's wheel (built unless
    ``wheel`` is given); returns the names written."""
    files: dict[str, str | bytes] = dict(bundle_files(**dirs))
    with tempfile.TemporaryDirectory(prefix="cnngrade-wheel-") as tmp:
        wheel = wheel or build_wheel(Path(tmp))
        if wheel.name != wheel_name():   # the README names the file students install
            raise InputError(f"{wheel} is not {wheel_name()}, the wheel of this cnngrade version")
        try:
            files[f"{ROOT}/{WHEELS}/{wheel_name()}"] = wheel.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {wheel}: {exc.strerror}") from None
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[name], compress_type=zipfile.ZIP_DEFLATED)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(buf.getvalue())
    except OSError as exc:
        raise InputError(f"cannot write {target}: {exc.strerror}") from None
    return sorted(files)
