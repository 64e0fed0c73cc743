"""`cnngrade export otter` end to end: the real `otter run` scores what `cnngrade grade` scores, whatever the kernel does."""
from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from cnngrade.cli import main
from cnngrade.config import load_exercise
from cnngrade.export.otter import case_function_name, master_notebook, otter_command
from cnngrade.export.release import wheel_name
from cnngrade.grading.pipeline import grade_class
from cnngrade.grading.validate import SOLUTIONS_DIR, STUBS_DIR
from cnngrade.intake.notebooks import notebook_to_source, read_notebook
from tests.test_readme import doc_argv, instructor_commands

if not os.environ.get("CI"):   # CI installs the dev extra, so there a missing otter is a failure, not a skip
    pytest.importorskip("otter", reason="otter-grader is an optional extra: pip install -e '.[otter]'")

EXERCISES = ["ex1_output_size"]
# The cell that once scored a stub full marks, when otter's test cases called cnngrade inside the kernel.
TAMPER = "import cnngrade.export.otter_bridge as b; b.check = lambda *a, **k: None"
CASE = re.compile(r"^\s*(?P<question>\S+) - (?P<number>\d+) result:\n\s*(?P<mark>✅|❌)", re.MULTILINE)


def test_master_notebook_keeps_the_solution_out_of_the_prompt():
    cfg = load_exercise(EXERCISES[0])
    nb = master_notebook(cfg, (STUBS_DIR / f"{cfg.exercise}.py").read_text(),
                         (SOLUTIONS_DIR / f"{cfg.exercise}.py").read_text())
    raw = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "raw"]
    assert raw == ["# ASSIGNMENT CONFIG", "# BEGIN QUESTION", "# BEGIN PROMPT", "# END PROMPT", "# BEGIN SOLUTION",
                   "# END SOLUTION", "# BEGIN TESTS", "# END TESTS", "# END QUESTION"]
    tests = [c.source for c in nb.cells if c.cell_type == "code" and "BEGIN TEST CONFIG" in c.source]
    assert len(tests) == len(cfg.tests)
    for spec, source in zip(cfg.tests, tests):
        assert f"def {case_function_name(spec.name)}():" in source and f"points: {spec.points}" in source
        assert f"hidden: {str(spec.visibility != 'public').lower()}" in source
        assert "raise AssertionError" in source       # the kernel never passes a case: the plugin decides
    (config,) = [c.source for c in nb.cells if c.cell_type == "raw" and "ASSIGNMENT CONFIG" in c.source]
    assert "cnngrade.export.otter_bridge.CnngradePlugin" in config


def test_the_plugin_runs_no_student_code_in_the_kernel():
    from cnngrade.export.otter_bridge import inert

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# q"), nbformat.v4.new_code_cell(TAMPER)])
    assert [c.cell_type for c in inert(nb).cells] == ["markdown"]
    assert inert("print('hi')") == ""


def isolation_here() -> str:
    """The export ships rlimits; where this machine's Python is unreadable to the sandbox uid, bwrap stands in."""
    from cnngrade.errors import IsolationUnavailable
    from cnngrade.sandbox.preflight import check_isolation

    try:
        check_isolation("rlimits")
        return "rlimits"
    except IsolationUnavailable:
        return "bwrap"


def otter_run(autograder: Path, notebook: Path, out: Path) -> dict:
    out.mkdir(parents=True)
    env = {**os.environ, "CNNGRADE_ISOLATION": isolation_here()}
    proc = subprocess.run([*otter_command(), "run", "-a", str(autograder), "-o", str(out), str(notebook)],
                          check=False, capture_output=True, text=True, timeout=900, cwd=out, env=env)
    assert (out / "results.json").is_file(), proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads((out / "results.json").read_text())


def otter_cases(results: dict, exercise: str, count: int) -> tuple[float, list[bool]]:
    """The question's score and, in test order, whether each of its ``count`` otter test cases passed."""
    (question,) = [t for t in results["tests"] if t["name"] == exercise]
    if f"{exercise} results: All test cases passed!" in question["output"]:
        return question["score"], [True] * count   # otter lists the cases only when one fails
    marks = sorted((int(m["number"]), m["mark"] == "✅") for m in CASE.finditer(question["output"])
                   if m["question"] == exercise)
    return question["score"], [ok for _, ok in marks]


@pytest.mark.slow
def test_otter_run_matches_cnngrade_grade(tmp_path):
    wheel = tmp_path / wheel_name()
    wheel.write_bytes(b"shipped in the zip, installed only by Gradescope's setup.sh")
    (command,) = [c for c in instructor_commands() if c.startswith("cnngrade export otter")]
    assert main([*doc_argv(command, OUT=str(tmp_path / "otter")), "--exercises", ",".join(EXERCISES),
                 "--wheel", str(wheel)]) == 0
    exports = {e: {"autograder": tmp_path / "otter" / e / "autograder" / "autograder.zip",
                   "student": tmp_path / "otter" / e / "student" / f"{e}.ipynb",
                   "reference": tmp_path / "otter" / e / "autograder" / f"{e}.ipynb"} for e in EXERCISES}
    # The student's copy holds the stub, never the reference solution.
    for exercise, paths in exports.items():
        student = notebook_to_source(read_notebook(paths["student"]))
        assert "NotImplementedError" in student
        solution_lines = {line.strip() for line in (SOLUTIONS_DIR / f"{exercise}.py").read_text().splitlines()
                          if len(line.strip()) > 25} - {line.strip() for line in
                                                         (STUBS_DIR / f"{exercise}.py").read_text().splitlines()}
        assert not [line for line in solution_lines if line in student]
        assert nbformat.read(paths["student"], as_version=4).metadata["otter"]["assignment_name"] == exercise

    # The same notebooks per exercise, graded by otter (through the zip) and by cnngrade grade: the reference, the
    # stub, and the stub with a cell that patches cnngrade's otter bridge.
    klass = tmp_path / "class"
    runs = {}
    for exercise, paths in exports.items():
        tampered = nbformat.read(paths["student"], as_version=4)
        tampered.cells.insert(0, nbformat.v4.new_code_cell(TAMPER))
        nbformat.write(tampered, tmp_path / f"{exercise}-tampered.ipynb")
        for who, notebook in (("reference", paths["reference"]), ("stub", paths["student"]),
                              ("tampered", tmp_path / f"{exercise}-tampered.ipynb")):
            (klass / who).mkdir(parents=True, exist_ok=True)
            shutil.copy(notebook, klass / who / f"{exercise}.ipynb")
            runs[(exercise, who)] = (paths["autograder"], klass / who / f"{exercise}.ipynb",
                                     tmp_path / "runs" / f"{exercise}-{who}")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = {key: pool.submit(otter_run, *args) for key, args in runs.items()}
        reports = {r.student: r for r in grade_class(klass, tmp_path / "reports", EXERCISES, jobs=1,
                                                     isolation=isolation_here())}
        otter = {key: fut.result() for key, fut in futures.items()}

    for (exercise, who), results in otter.items():
        ours = [t for t in reports[who].exercises[exercise].tests if t.status != "manual"]
        score, cases = otter_cases(results, exercise, len(ours))
        assert cases == [t.status == "passed" for t in ours], (exercise, who)
        assert score == pytest.approx(sum(t.score for t in ours))
        expected = sum(t.max_score for t in ours) if who == "reference" else 0
        assert score == pytest.approx(expected), (exercise, who, results)
        # The visible summary of the public cases says what cnngrade says, not "All test cases passed!".
        public = results["tests"][0]
        assert public["name"] == "Public Tests" and public["status"] == ("passed" if who == "reference" else "failed")
