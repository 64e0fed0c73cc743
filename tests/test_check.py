"""`cnngrade check`: public tests only, from a bundle without the hidden tests, with a table that says what to fix."""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from cnngrade.cli import main
from cnngrade.config import load_exercise
from cnngrade.errors import UsageError
from cnngrade.grading.process import public_part
from cnngrade.grading.student_check import check_folder, check_text, counterexample_line
from cnngrade.grading.validate import STUBS_DIR
from tests.harness import SUBMISSIONS

EXERCISE = "ex1_output_size"


def student_folder(tmp_path: Path, variant: str) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    shutil.copy(SUBMISSIONS / EXERCISE / f"{variant}.py", folder / f"{EXERCISE}.py")
    return folder


def test_public_part_keeps_public_tests_and_free_text():
    cfg = load_exercise(EXERCISE)
    public = public_part(cfg)
    assert [t.name for t in public.tests] == [t.name for t in cfg.tests if t.visibility == "public"]
    assert 0 < len(public.tests) < len(cfg.tests)
    assert public.manual == cfg.manual


@pytest.mark.slow
def test_hidden_tests_in_the_file_do_not_run(tmp_path):
    """A grader whose YAML declares a hidden test: check runs the public one and never calls the hidden one."""
    marker = tmp_path / "hidden-test-ran"
    graders = tmp_path / "graders" / EXERCISE
    graders.mkdir(parents=True)
    (graders / "grader.yaml").write_text(yaml.safe_dump({"title": "t", "tests": {
        "test_public": {"points": 1, "visibility": "public"}, "test_hidden": {"points": 1}}}))
    (graders / f"test_{EXERCISE}.py").write_text(textwrap.dedent(f"""
        from pathlib import Path

        def test_public(submission):
            assert submission.conv_output_size(5, 3) == 3

        def test_hidden(submission):
            Path({str(marker)!r}).write_text("ran")
        """))
    report = check_folder(student_folder(tmp_path, "good_loop"), graders_dir=tmp_path / "graders")
    tests = report.exercises[EXERCISE].tests
    assert [(t.name, t.status) for t in tests] == [("test_public", "passed")]
    assert report.profile["name"] == "cpu"   # even where CUDA works: check needs no GPU and no CIFAR-10
    assert not marker.exists()


@pytest.mark.slow
def test_check_from_the_student_bundle(tmp_path, capsys):
    """The public tests of `cnngrade release` are all check needs; hidden tests are nowhere in them."""
    from cnngrade.export.release import ROOT, bundle_files

    prefix = f"{ROOT}/public_tests/{EXERCISE}/"
    for name, text in bundle_files().items():
        if name.startswith(prefix):
            (tmp_path / "public_tests" / EXERCISE).mkdir(parents=True, exist_ok=True)
            (tmp_path / "public_tests" / EXERCISE / name[len(prefix):]).write_text(text)
    bundle = tmp_path / "public_tests"
    settings = yaml.safe_load((bundle / EXERCISE / "grader.yaml").read_text())
    public = [t.name for t in load_exercise(EXERCISE).tests if t.visibility == "public"]
    assert list(settings["tests"]) == public
    folder = student_folder(tmp_path, "bad_round_up")

    assert main(["check", str(folder), "--graders", str(bundle)]) == 1
    out = capsys.readouterr().out
    table = out[: out.index("What to fix")]
    assert [name for name in public if name in table] == public
    assert "test_invalid_arguments_raise" not in out      # hidden in the real grader
    fixes = out[out.index("What to fix"):]
    assert "ex1 test_matches_conv2d  [FAILED]" in fixes
    assert "smallest failing input found: size=" in fixes
    assert "public test(s) to fix" in out


def test_counterexample_line():
    example = "Falsifying example: test_x(\n    mode='RGB',\n    seed=0,\n)\nDraw 1 (format): 'PNG'"
    assert counterexample_line(example) == "mode='RGB', seed=0; Draw 1 (format): 'PNG'"
    assert counterexample_line("Falsifying example: test_x(size=1)") == "Falsifying example: test_x(size=1)"


def test_check_text_lists_every_failure_and_pending_text(tmp_path):
    from cnngrade.records import ExerciseResult, StudentReport, TestResult

    stub = "Not implemented yet: your code raises NotImplementedError."
    tests = [TestResult("test_ok", 1, 1, "passed"), TestResult("test_bad", 0, 2, "failed", "line 1\n" * 20),
             TestResult("test_a", 0, 1, "failed", stub), TestResult("test_b", 0, 1, "failed", stub),
             TestResult("EXPL", 0, 1, "manual", "Awaiting review by course staff. Note: no answer given yet.")]
    report = StudentReport("me", {EXERCISE: ExerciseResult(EXERCISE, "t", tests)}, {}, "0")
    short, full = check_text(report), check_text(report, full=True)
    assert "ex1 test_bad  [FAILED]" in short and "test_ok" in short.split("What to fix")[0]
    assert short.count("line 1") < 20 and full.count("line 1") == 20 and "--full" in short
    assert "EXPL (1 pt): Note: no answer given yet." in short
    assert "ex1 test_a, test_b  [FAILED]" in short and short.count(stub) == 1
    assert "3 of 4 public test(s) to fix (1 of 5 public points)" in short


def a_file(folder: Path) -> Path:
    (folder / "notes.txt").write_text("")
    return folder / "notes.txt"


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "nope", "does not exist"),
    (a_file, "is not a folder"),
    (lambda p: p, "no exercise file in"),
])
def test_check_errors_are_one_line(tmp_path, capsys, make, message):
    assert main(["check", str(make(tmp_path))]) == 3
    err = capsys.readouterr().err
    assert err.startswith("cnngrade: error: ") and message in err and err.count("\n") == 1


@pytest.mark.slow
def test_answer_tests_are_listed_not_run(tmp_path):
    """A stub's empty ANSWERS: check neither runs the answer tests nor prints their expected values."""
    folder = tmp_path / "work"
    folder.mkdir()
    shutil.copy(STUBS_DIR / f"{EXERCISE}.py", folder)
    report = check_folder(folder)
    answers = [t.name for t in load_exercise(EXERCISE).tests if t.kind == "answer"]
    assert answers and not {t.name for t in report.exercises[EXERCISE].tests} & set(answers)
    text = check_text(report)
    for name in answers:
        (row,) = [line for line in text.splitlines() if line.startswith("ex1 ") and f" {name} " in line]
        assert "checked at grading" in row
    assert "expected" not in text and "their values are not shown" in text


def test_check_refuses_windows_in_one_line(monkeypatch, capsys):
    import cnngrade.grading.student_check

    monkeypatch.setattr(cnngrade.grading.student_check.os, "name", "nt")
    with pytest.raises(UsageError, match="WSL"):
        cnngrade.grading.student_check.refuse_windows()


def test_check_imports_without_unix_only_modules():
    """Windows has no resource or fcntl: importing what `cnngrade check` needs must not fail on them."""
    code = ("import sys; sys.modules['resource'] = None; sys.modules['fcntl'] = None; "
            "import cnngrade.commands.check, cnngrade.grading.student_check; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_check_says_in_one_line_when_there_is_no_sandbox(monkeypatch, capsys, tmp_path):
    import cnngrade.commands.check as command
    from cnngrade.records import StudentReport

    seen = {}
    monkeypatch.setattr(command, "best_isolation", lambda: "rlimits")
    monkeypatch.setattr(command, "check_folder", lambda path, **kw: seen.update(kw) or StudentReport("me", {}, {}, "0"))
    assert main(["check", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert seen["isolation"] == "rlimits" and err.count("\n") == 1 and "without a sandbox" in err
