"""An otter-grader plugin that scores a submission with `cnngrade grade` in its own process, outside otter's kernel.

Otter runs a submission's notebook in a Jupyter kernel and runs its test cases there, so
anything the notebook does can change what those test cases report (one added cell that
patches a checker scored a stub full marks). This plugin takes the verdicts out of the kernel:

- ``before_execution`` (in otter's process, before any kernel starts): grades the submitted
  file with ``python -m cnngrade grade`` in a separate process (trusted grading process,
  sandboxed worker), then hands otter a notebook with the student's code cells removed, so no
  student code ever runs in otter's kernel (nor can it write the results file otter reads back);
- ``after_grading``: replaces every test case's result and the question's score with
  cnngrade's verdicts, test by test, so otter's points equal ``cnngrade grade``'s.

Otter keeps doing what it is good at: the student notebook, its Gradescope plumbing, results.json.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cnngrade.records import Status, StudentReport, TestResult

try:   # otter is an optional extra; without it the plugin cannot be loaded, and nothing else needs it
    from otter.plugins import AbstractOtterPlugin
except ImportError:   # pragma: no cover - exercised only without the otter extra
    AbstractOtterPlugin = object   # type: ignore[misc,assignment]

GRADERS_FOLDER = "cnngrade_graders"   # shipped in the autograder zip, unpacked by otter under source/files
PLUGIN = "cnngrade.export.otter_bridge.CnngradePlugin"
ISOLATION_ENV = "CNNGRADE_ISOLATION"  # the grading machine's override of the exported isolation
STUDENT = "submission"
GRADE_TIMEOUT_S = 2300
PASSED, FAILED = "✅ Test case passed", "❌ Test case failed"   # otter's own wording for a case's result


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


def grade_file(path: Path, exercise: str, graders: Path, isolation: str) -> list[TestResult]:
    """cnngrade's automatic verdicts for the notebook or module at ``path``, in grader.yaml's order.

    `cnngrade grade` runs in a child process: otter's own process never imports torch or the student's code.
    """
    with tempfile.TemporaryDirectory(prefix="cnngrade-otter-") as tmp:
        student = Path(tmp) / "class" / STUDENT
        student.mkdir(parents=True)
        shutil.copyfile(path, student / f"{exercise}{path.suffix}")
        out = Path(tmp) / "out"
        command = [sys.executable, "-m", "cnngrade", "grade", str(student.parent), "--out", str(out),
                   "--graders", str(graders), "--exercises", exercise, "--isolation", isolation, "--jobs", "1",
                   "--profile", "cpu", "--layout", "folders", "--quiet"]
        proc = subprocess.run(command, check=False, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=GRADE_TIMEOUT_S)
        report_path = out / STUDENT / "report.json"
        if not report_path.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"cnngrade grade exited with status {proc.returncode}: {tail[0]}")
        report = StudentReport.from_dict(json.loads(report_path.read_text(encoding="utf-8")))
    # Free-text items, answered or not, are no otter test case.
    return [t for t in report.exercises[exercise].tests if not t.free_text]


def inert(submission):
    """The submission as otter's kernel will see it: its markdown only, no code of the student's."""
    if isinstance(submission, str):   # a .py submission, which otter wraps in a one-cell notebook
        return ""
    kept = [cell for cell in submission.cells if cell.cell_type == "markdown"]
    submission.cells = kept
    return submission


def apply_verdicts(results, exercise: str, verdicts: list[TestResult] | None, problem: str = "") -> None:
    """Set otter's test cases of ``exercise`` to cnngrade's verdicts (case i is grader.yaml's test i)."""
    from otter.test_files.abstract_test import TestCaseResult

    test_file = results.results.get(exercise)
    if test_file is None:
        return
    cases = test_file.test_cases
    if verdicts is None or len(verdicts) != len(cases):
        why = problem or f"cnngrade reported {len(verdicts or [])} tests, the autograder has {len(cases)}"
        test_file.test_case_results = [TestCaseResult(tc, f"{FAILED}\nnot graded: {why}", False) for tc in cases]
        results.update_score(exercise, 0)
        return
    test_file.test_case_results = [
        TestCaseResult(tc, PASSED if t.status == Status.PASSED else f"{FAILED}\n[{t.status}] {t.output}".strip(),
                       t.status == Status.PASSED)
        for tc, t in zip(cases, verdicts)]
    results.update_score(exercise, round(sum(t.score for t in verdicts), 6))


class CnngradePlugin(AbstractOtterPlugin):
    """Configured in otter_config.json as ``{PLUGIN: {"exercise": ..., "isolation": ...}}``."""

    def __init__(self, submission_path, submission_metadata, plugin_config):
        super().__init__(submission_path, submission_metadata, plugin_config)
        self.verdicts: list[TestResult] | None = None
        self.problem = ""

    @property
    def exercise(self) -> str:
        return self.plugin_config["exercise"]

    def before_execution(self, submission):
        path = Path(self.submission_path)
        isolation = os.environ.get(ISOLATION_ENV) or self.plugin_config.get("isolation", "rlimits")
        try:
            self.verdicts = grade_file(path, self.exercise, graders_dir(path.parent), isolation)
        except Exception as exc:  # noqa: BLE001 - any failure scores 0 with its reason, never otter's own verdicts
            self.verdicts, self.problem = None, str(exc)
        return inert(submission)

    def after_grading(self, results):
        apply_verdicts(results, self.exercise, self.verdicts, self.problem)
