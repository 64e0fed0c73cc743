"""What otter-grader's test cases call: grade the submission in front of otter with cnngrade, once, and pass or fail one test.

Otter runs a submission's notebook in a Jupyter kernel whose working folder holds that
notebook (or .py) and runs its test cases there. Each test case this module serves calls
``check(exercise, test)``: the first call grades the whole exercise through cnngrade's own
pipeline (trusted grading process, sandboxed worker), later calls read the cached verdicts,
so otter's points equal ``cnngrade grade``'s test by test.

Otter's test cases run inside the student's kernel, where student code could patch them;
the verdicts here are only as trustworthy as that kernel. `cnngrade grade` on the same
files is the authoritative grade.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from cnngrade.records import TestResult

GRADERS_FOLDER = "cnngrade_graders"   # shipped in the autograder zip, unpacked by otter under source/files
_CACHE: dict[tuple[str, str], dict[str, TestResult]] = {}


def find_submission(folder: Path, exercise: str) -> Path:
    """The file otter is grading: the one notebook in its folder, else the exercise's .py (otter allows one)."""
    notebooks = sorted(folder.glob("*.ipynb"))
    if len(notebooks) == 1:
        return notebooks[0]
    scripts = [p for p in sorted(folder.glob("*.py")) if not p.name.startswith("__")]
    named = [p for p in scripts if p.name == f"{exercise}.py"]
    if named or len(scripts) == 1:
        return (named or scripts)[0]
    raise AssertionError(f"cnngrade found no single notebook or {exercise}.py to grade in {folder}")


def graders_dir(folder: Path) -> Path:
    """The graders shipped with the autograder (outside the submission folder, which the student controls)."""
    from cnngrade.config import GRADERS_DIR

    shipped = folder.parent / "source" / "files" / GRADERS_FOLDER
    return shipped if shipped.is_dir() else GRADERS_DIR


def grade_file(path: Path, exercise: str, graders: Path) -> dict[str, TestResult]:
    """Every test of ``exercise`` for the notebook or module at ``path``, by test name."""
    from cnngrade.collect import collect_student
    from cnngrade.config import load_exercise
    from cnngrade.pipeline import default_profile, grade_student
    from cnngrade.sandbox import ISOLATIONS, Limits, check_isolation

    # The strongest isolation unless the autograder's environment says otherwise (as `cnngrade grade --isolation`).
    isolation = os.environ.get("CNNGRADE_ISOLATION", ISOLATIONS[0])
    check_isolation(isolation)
    cfg = load_exercise(exercise, graders)
    with tempfile.TemporaryDirectory(prefix="cnngrade-otter-") as tmp:
        student = Path(tmp) / "submission"
        student.mkdir()
        (student / f"{exercise}{path.suffix}").write_bytes(path.read_bytes())
        sub = collect_student(student, [exercise], Path(tmp) / "staging")
        report = grade_student(sub, {exercise: cfg}, graders_dir=graders, isolation=isolation, limits=Limits(),
                               profile=default_profile(isolation))
    return {t.name: t for t in report.exercises[exercise].tests}


def verdicts(exercise: str, folder: Path | None = None) -> dict[str, TestResult]:
    folder = folder or Path.cwd()
    path = find_submission(folder, exercise)
    key = (exercise, hashlib.sha256(path.read_bytes()).hexdigest())
    if key not in _CACHE:
        _CACHE[key] = grade_file(path, exercise, graders_dir(folder))
    return _CACHE[key]


def check(exercise: str, test: str) -> None:
    """Pass when cnngrade's test ``test`` passed for the submission otter is grading; else fail with its message."""
    result = verdicts(exercise).get(test)
    if result is None:
        raise AssertionError(f"cnngrade has no test {test!r} for {exercise}")
    if result.status != "passed":
        raise AssertionError(f"[{result.status}] {result.output}".strip())
