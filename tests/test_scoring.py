"""Fast unit tests of the core promises, with a fake worker (no sandbox, no torch in the student module).

Fail-closed scoring, the student's error told apart from the grader's, grader.yaml against the tests it
declares, and YAML mistakes refused at load with one line naming the file and the key.
"""
from __future__ import annotations

import importlib.util
import itertools
import os
import re
import textwrap
import traceback
from pathlib import Path
from typing import Any

import pytest
import yaml

from cnngrade.config import TestSpec, case_points, discover_exercises, load_exercise, resolve_exercises
from cnngrade.errors import (
    GraderConfigError,
    StudentError,
    SubmissionImportError,
    UsageError,
    WorkerCrashed,
    WorkerTimeout,
)
from cnngrade.graderkit.values import BadValue
from cnngrade.grading import plugin as pytest_plugin
from cnngrade.grading.plugin import GradingPlugin
from cnngrade.grading.process import PYTEST_ARGS, _pytest_main, check_graders
from cnngrade.grading.score import exercise_result
from cnngrade.grading.verdicts import classify
from cnngrade.records import Outcome

EXERCISE = "ex9_fake"
_modules = itertools.count()


class FakeWorker:
    """The worker's interface (client.Worker) run in this process: the "student" module is ours, so nothing
    needs a sandbox; student exceptions cross as StudentError exactly as the real worker sends them."""

    def __init__(self, module_dir: Path, module: str, **_: Any):
        self.module_dir, self.module = Path(module_dir), module
        self.proc: object | None = None
        self.fatal: BaseException | None = None
        self.generation, self.names, self.memo = 0, [], {}
        self._module: Any = None

    def request(self, op: str, payload: Any, timeout: float | None = None, name: str = "") -> Any:
        if self.fatal is not None:
            raise self.fatal
        if self.proc is None:
            self._load()
        if op == "ping":
            return None
        if op == "get":
            return self._student(lambda: getattr(self._module, name))
        if op == "call":
            target = getattr(self._module, payload["target"])
            return self._student(lambda: target(*payload["args"], **payload["kwargs"]))
        raise WorkerCrashed(f"the fake worker has no {op!r}")

    def _load(self) -> None:
        self.generation += 1
        path = self.module_dir / f"{self.module}.py"
        spec = importlib.util.spec_from_file_location(f"fake_student_{next(_modules)}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - the student's import failure, as the real worker reports it
            self.fatal = SubmissionImportError(f"{type(exc).__name__}: {exc}")
            raise self.fatal from None
        self._module, self.proc = module, object()
        self.names = [n for n in vars(module) if not n.startswith("_")]

    @staticmethod
    def _student(fn: Any) -> Any:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - whatever the student's code raised crosses as StudentError
            raise StudentError(type(exc).__name__, str(exc), "".join(traceback.format_exception(exc)),
                               [c.__name__ for c in type(exc).__mro__]) from None

    def begin_test(self) -> None:
        pass

    def take_output(self) -> str:
        return ""

    def output(self) -> str:
        return ""

    def close(self) -> None:
        self.proc = None


GRADER = '''
import pytest

from cnngrade.graderkit import expect_int, values


def test_passes(submission):
    """double(2) is 4"""
    expect_int(submission.double(2), 4, "double(2)")


def test_wrong(submission):
    expect_int(submission.double(3), 7, "double(3)")


def test_raises(submission):
    submission.crash()


def test_grader_bug(submission):
    {}["oops"]


def test_skipped(submission):
    pytest.skip("not today")


def test_malformed(submission):
    values.integer(submission.value("ANSWER"), "ANSWER")


@pytest.mark.parametrize("n", [1, 2, 3])
def test_cases(submission, n):
    expect_int(submission.double(n), 2 * n if n != 3 else 0, f"double({n})")
'''

STUDENT = '''
ANSWER = "forty-two"


def double(x):
    return 2 * x


def crash():
    raise ValueError("boom")
'''

TESTS = {
    "test_passes": {"points": 1, "kind": "behaviour", "visibility": "public"},
    "test_wrong": {"points": 1, "kind": "behaviour"},
    "test_raises": {"points": 1, "kind": "behaviour"},
    "test_grader_bug": {"points": 1, "kind": "behaviour"},
    "test_skipped": {"points": 1, "kind": "behaviour"},
    "test_malformed": {"points": 1, "kind": "answer"},
    "test_cases": {"points": 1, "kind": "behaviour", "description": "double on three inputs"},
}


def write_grader(root: Path, tests: dict | None = None, source: str = GRADER, **top: Any) -> Path:
    folder = root / "graders" / EXERCISE
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"test_{EXERCISE}.py").write_text(textwrap.dedent(source))
    settings = {"title": "Fake", "tests": TESTS if tests is None else tests, **top}
    (folder / "grader.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return folder.parent


def grade_fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, student: str = STUDENT):
    """Grade one student with the real plugin and pytest run, the fake worker standing in for the sandbox."""
    graders = write_grader(tmp_path)
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / f"{EXERCISE}.py").write_text(textwrap.dedent(student))
    monkeypatch.setattr(pytest_plugin, "Worker", FakeWorker)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    cfg = load_exercise(EXERCISE, graders)
    plugin = GradingPlugin({EXERCISE: tmp_path / "student"}, {EXERCISE: cfg})
    _pytest_main([*map(str, cfg.test_files), *PYTEST_ARGS, "--rootdir", str(graders), "-c", os.devnull], plugin)
    result = exercise_result(cfg, plugin.outcomes[EXERCISE], plugin.manual.get(EXERCISE, {}), "",
                             plugin.collected[EXERCISE])
    return {t.name: t for t in result.tests}, result


# ---- fail-closed scoring, the student's error apart from the grader's (real plugin, fake worker) ----

def test_every_verdict_is_scored_fail_closed(tmp_path, monkeypatch):
    tests, result = grade_fake(tmp_path, monkeypatch)
    assert (tests["test_passes"].status, tests["test_passes"].score) == ("passed", 1)
    assert tests["test_wrong"].status == "failed" and not tests["test_wrong"].grader_error
    assert "double(3)" in tests["test_wrong"].output
    assert tests["test_raises"].status == "failed" and "Your code raised ValueError: boom" in tests["test_raises"].output
    assert tests["test_grader_bug"].status == "error" and tests["test_grader_bug"].grader_error
    assert "not the student's fault" in tests["test_grader_bug"].output
    assert tests["test_skipped"].status == "error" and tests["test_skipped"].grader_error
    # Malformed worker data is the student's failure, never a grader error.
    assert tests["test_malformed"].status == "failed" and not tests["test_malformed"].grader_error
    assert {n: t.score for n, t in tests.items() if n.startswith("test_cases")} == {
        "test_cases[1]": 0.34, "test_cases[2]": 0.33, "test_cases[3]": 0.0}
    assert result.max_score == 7 and result.score == pytest.approx(1.67)


def test_a_module_that_does_not_import_scores_nothing(tmp_path, monkeypatch):
    tests, result = grade_fake(tmp_path, monkeypatch, student="raise SystemError('no')\n")
    assert result.score == 0 and result.max_score == 7
    # Every test that needs the module fails with the student's import error; a grader bug stays the grader's.
    students = {n: t for n, t in tests.items() if n not in ("test_grader_bug", "test_skipped")}
    assert all(t.status == "error" and not t.grader_error and "SystemError: no" in t.output
               for t in students.values()), students


def test_a_declared_test_that_never_reported_scores_zero_as_a_grader_error():
    cfg = load_exercise_from({"test_a": {"points": 2}, "test_b": {"points": 1}})
    result = exercise_result(cfg, {"test_a": Outcome("passed")}, {})
    tests = {t.name: t for t in result.tests}
    assert tests["test_a"].score == 2
    assert (tests["test_b"].score, tests["test_b"].status, tests["test_b"].grader_error) == (0, "error", True)
    assert result.max_score == 3


def test_a_collected_case_that_never_reported_scores_zero():
    cfg = load_exercise_from({"test_x": {"points_per_case": 0.5, "cases": 2}})
    result = exercise_result(cfg, {"test_x[a]": Outcome("passed")}, {},
                             collected=["test_x[a]", "test_x[b]"])
    assert [(t.name, t.score, t.status) for t in result.tests] == [("test_x[a]", 0.5, "passed"),
                                                                  ("test_x[b]", 0.0, "error")]
    # Nothing collected at all (a crash before collection): the entry still scores, as one error worth its points.
    nothing = exercise_result(cfg, {}, {})
    assert [(t.name, t.max_score, t.status) for t in nothing.tests] == [("test_x", 1.0, "error")]


def test_a_failed_advice_check_is_shown_and_scores_nothing():
    cfg = load_exercise_from({"test_a": {"points": 0, "kind": "advice"}})
    result = exercise_result(cfg, {"test_a": Outcome("failed", "kept a graph")}, {})
    assert [(t.status, t.score, t.max_score) for t in result.tests] == [("advice", 0, 0)]


@pytest.mark.parametrize("points, count", [(1, 3), (3, 7), (0.5, 3), (14.75, 4), (0, 2), (2, 1)])
def test_split_points_add_up_exactly(points, count):
    shares = case_points(points, count)
    assert len(shares) == count and round(sum(shares), 6) == points and max(shares) - min(shares) <= 0.0100001


@pytest.mark.parametrize("exc, status, grader_error", [
    (StudentError("ValueError", "bad", mro=["ValueError", "Exception"]), "failed", False),
    (StudentError("NotImplementedError", "", mro=["NotImplementedError"]), "failed", False),
    (AssertionError("expected 4"), "failed", False),
    (BadValue("ANSWER is a str; expected a whole number"), "failed", False),
    (WorkerTimeout("too slow"), "timeout", False),
    (WorkerCrashed("killed"), "error", False),
    (SubmissionImportError("SyntaxError"), "error", False),
    (ExceptionGroup("hypothesis", [AssertionError("shrunk")]), "failed", False),
    (KeyError("oops"), "error", True),
    (TypeError("grader typo"), "error", True),
], ids=["student-raised", "not-implemented", "assertion", "bad-value", "timeout", "crash", "import", "group",
        "grader-keyerror", "grader-typeerror"])
def test_the_students_error_is_told_apart_from_the_graders(exc, status, grader_error):
    got_status, message, got_grader_error = classify(exc)
    assert (got_status, got_grader_error) == (status, grader_error), message
    assert message


# ---- grader.yaml against the tests it declares ----

def load_exercise_from(tests: dict, root: Path | None = None, **top: Any):
    import tempfile

    root = Path(tempfile.mkdtemp()) if root is None else root
    return load_exercise(EXERCISE, write_grader(root, tests, "def test_a(submission):\n    pass\n", **top))


def test_an_entry_covers_every_case_of_a_parametrized_test(tmp_path):
    graders = write_grader(tmp_path)
    check_graders([load_exercise(EXERCISE, graders)], graders)
    per_case = {**TESTS, "test_cases": {"points_per_case": 0.5, "cases": 3}}
    graders = write_grader(tmp_path, per_case)
    cfg = load_exercise(EXERCISE, graders)
    assert cfg.max_score == 7.5
    check_graders([cfg], graders)


@pytest.mark.parametrize("tests, message", [
    ({k: v for k, v in TESTS.items() if k != "test_wrong"}, "gives no points to test(s) test_wrong"),
    ({**TESTS, "test_gone": {"points": 1}}, "lists test(s) that do not exist: test_gone"),
    ({**TESTS, "test_cases": {"points_per_case": 1, "cases": 4}}, "tests.test_cases.cases: says 4, the grader has 3"),
    ({**{k: v for k, v in TESTS.items() if k != "test_cases"}, "test_cases[1]": {"points": 1}},
     "gives no points to test(s) test_cases[2], test_cases[3]"),
], ids=["undeclared", "absent", "case-count", "missing-cases"])
def test_yaml_and_tests_that_disagree_are_refused(tmp_path, tests, message):
    graders = write_grader(tmp_path, tests)
    with pytest.raises(GraderConfigError, match=re.escape(message)) as err:
        check_graders([load_exercise(EXERCISE, graders)], graders)
    assert "grader.yaml" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_the_graders_checked_in_a_grading_process_give_the_same_answers(tmp_path):
    """`cnngrade grade` collects the graders in a child of the fork server (torch already imported there): the
    same refusals, word for word, as collecting them here, a grader that does not import included."""
    from cnngrade.grading.backends import grading_context

    def refusal(graders: Path, context: Any) -> str:
        try:
            check_graders([load_exercise(EXERCISE, graders)], graders, context)
        except GraderConfigError as exc:
            return str(exc)
        return ""

    for i, tests in enumerate(({k: v for k, v in TESTS.items() if k != "test_wrong"}, TESTS)):
        graders = write_grader(tmp_path / str(i), tests)
        here, there = refusal(graders, None), refusal(graders, grading_context())
        assert here == there and (here != "") == (i == 0), (here, there)
    # (a grader module that fails to import is checked in the child only: this process has imported one of that
    # name already, which a driver that checks its graders once never has)
    graders = write_grader(tmp_path / "broken", TESTS, "import no_such_module_here\n" + GRADER)
    assert refusal(graders, grading_context()) == (f"a grader does not import: {EXERCISE}/test_{EXERCISE}.py: "
                                                   "E   ModuleNotFoundError: No module named 'no_such_module_here'")


def test_a_description_defaults_to_the_docstring(tmp_path):
    cfg = load_exercise(EXERCISE, write_grader(tmp_path))
    described = {t.name: t.description for t in cfg.tests}
    assert described["test_passes"] == "double(2) is 4"
    assert described["test_cases"] == "double on three inputs"
    assert described["test_wrong"] == ""


# ---- YAML validation at load: one line naming the file and the key ----

@pytest.mark.parametrize("tests, top, key", [
    ({"test_a": {"points": "1"}}, {}, "tests.test_a.points"),
    ({"test_a": {"points": -1}}, {}, "tests.test_a.points"),
    ({"test_a": {"points": 0.333}}, {}, "tests.test_a.points"),
    ({"test_a": {"points": 1, "visiblity": "public"}}, {}, "tests.test_a: unknown key(s) visiblity"),
    ({"test_a": {"points": 1, "visibility": "secret"}}, {}, "tests.test_a.visibility"),
    ({"test_a": {"points": 1, "kind": "vibes"}}, {}, "tests.test_a.kind"),
    ({"test_a": {"points": 1, "description": 3}}, {}, "tests.test_a.description"),
    ({"test_a": {}}, {}, "tests.test_a: give exactly one of points"),
    ({"test_a": {"points": 1, "points_per_case": 1}}, {}, "tests.test_a: give exactly one of points"),
    ({"test_a": {"points_per_case": 1}}, {}, "tests.test_a: points_per_case goes with cases"),
    ({"test_a": {"points_per_case": 1, "cases": 0}}, {}, "tests.test_a.cases"),
    ({"test_a": {"points": 1}, "test_a[x]": {"points": 1}}, {}, "tests.test_a: already covers test_a[x]"),
    ({"check_a": {"points": 1}}, {}, "tests.check_a: a test entry is named test_"),
    ({}, {}, "tests: declare at least one test"),
    ({"test_a": {"points": 1}}, {"title": ""}, "title: must not be empty"),
    ({"test_a": {"points": 1}}, {"max_examples": 2.5}, "max_examples: expected a whole number"),
    ({"test_a": {"points": 1}}, {"time_limit": 0}, "time_limit: expected a number >= 1"),
    ({"test_a": {"points": 1}}, {"manual": {"WHY": {"points": 1, "min_chars": -2}}}, "manual.WHY.min_chars"),
    ({"test_a": {"points": 1}}, {"manual": {"why": {"points": 1}}}, "manual.why: a free-text answer is named"),
    ({"test_a": {"points": 1}}, {"profiles": {"cpu": {"epochs": 2}}}, "profiles.cpu: missing key(s) threshold"),
    ({"test_a": {"points": 1}}, {"timelimit": 3}, "unknown key(s) timelimit"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_a_yaml_mistake_is_one_line_naming_file_and_key(tmp_path, tests, top, key):
    with pytest.raises(GraderConfigError) as err:
        load_exercise_from(tests, tmp_path, **top)
    text = str(err.value)
    assert "\n" not in text and f"{EXERCISE}/grader.yaml" in text and key in text, text


def test_exercises_are_discovered_from_grader_yaml_files(tmp_path):
    for name in ("ex10_later", "ex2_second", "ex9_fake", "notes"):
        (tmp_path / name).mkdir()
    for name in ("ex10_later", "ex2_second", "ex9_fake"):
        (tmp_path / name / "grader.yaml").write_text("title: x\n")
    assert discover_exercises(tmp_path) == ("ex2_second", "ex9_fake", "ex10_later")
    assert resolve_exercises("ex9,ex10_later", tmp_path) == ["ex9_fake", "ex10_later"]
    with pytest.raises(UsageError, match="unknown exercise 'ex3'"):
        resolve_exercises("ex3", tmp_path)


def test_a_single_test_entry_is_not_a_parametrized_one():
    spec = TestSpec("test_answer", 1)
    assert spec.covers("test_answer") and spec.covers("test_answer[a]") and not spec.covers("test_answers")
    assert not TestSpec("test_answer[a]", 1).covers("test_answer[b]")
