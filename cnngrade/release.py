"""The student bundle: stubs as .py and .ipynb, the public tests only, and a README on running `cnngrade check`."""
from __future__ import annotations

import ast
import io
import re
import zipfile
from pathlib import Path

import yaml

from cnngrade.config import GRADERS_DIR, available_exercises, load_exercise
from cnngrade.errors import InputError
from cnngrade.notebooks import notebook_text
from cnngrade.validate import STUBS_DIR

ROOT = "cnn-week"
README = """# CNN week: exercises

Eight exercises on convolutional neural networks. Each one is a Python module in
`exercises/` (the same starter code also comes as a Jupyter notebook, `.ipynb`): read its
docstrings, replace every `raise NotImplementedError` and every `None` answer, and hand in
either the `.py` or the `.ipynb` of each exercise (if you hand in both, the `.py` is graded).

## Check your work before you hand it in

`public_tests/` holds the tests you may see. With cnngrade installed as your course
explains (`pip install cnngrade`), run from this folder:

    cnngrade check exercises --graders public_tests

or, for one exercise, `cnngrade check exercises --graders public_tests --exercises ex1`.
It runs your code in a sandbox and prints, for each public test, whether it passes and
what to fix (with the smallest input that fails). Exit status 0 means every public test
passes. Passing them does not guarantee full points: hidden tests check more cases when
your work is graded, and free-text answers are read by course staff.

Notebooks work the same way: `cnngrade check` grades `exN_*.ipynb` when there is no
`exN_*.py` next to it. Lines starting with `%` or `!` (IPython magics) are not run.
"""


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
            drop.append((start - 1, node.end_lineno))
    if not kept:
        return None
    for start, end in reversed(drop):
        del lines[start:end]
    return re.sub(r"\n{4,}", "\n\n\n", "\n".join(lines)).rstrip() + "\n"


def bundle_files(*, graders_dir: Path = GRADERS_DIR, stubs_dir: Path = STUBS_DIR) -> dict[str, str]:
    """Every file of the bundle, by path inside the zip."""
    files = {f"{ROOT}/README.md": README}
    stubs = sorted(stubs_dir.glob("ex*_*.py"))
    if not stubs:
        raise InputError(f"{stubs_dir} holds no exN_*.py stub")
    for stub in stubs:
        source = stub.read_text(encoding="utf-8")
        files[f"{ROOT}/exercises/{stub.name}"] = source
        files[f"{ROOT}/exercises/{stub.stem}.ipynb"] = notebook_text(source)
    for exercise in available_exercises(graders_dir):
        cfg = load_exercise(exercise, graders_dir)
        public = {t.name.split("[")[0] for t in cfg.tests if t.visibility == "public"}
        tests = {p.name: public_source(p.read_text(encoding="utf-8"), public) for p in cfg.test_files}
        tests = {name: text for name, text in tests.items() if text is not None}
        if not tests and not cfg.manual:
            continue
        files[f"{ROOT}/public_tests/{exercise}/grader.yaml"] = public_yaml(cfg.directory / "grader.yaml")
        if not tests:
            # cnngrade needs a test file per exercise; this one only says that every test is hidden.
            tests = {f"test_{exercise}.py": '"""Every automatic test of this exercise is hidden."""\n'}
        for name, text in tests.items():
            files[f"{ROOT}/public_tests/{exercise}/{name}"] = text
    return files


def write_bundle(target: Path, **dirs: Path) -> list[str]:
    """Write the bundle zip (deterministic: sorted names, fixed dates); returns the names written."""
    files = bundle_files(**dirs)
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
