"""Turn what happened in the grader tests into points, fail closed: a test that did not run scores zero.

This is where student-controlled text enters the records, so its budgets (``sinks``) apply here, and
machine paths leave every text a student is shown.
"""
from __future__ import annotations

from typing import Any

from cnngrade.config import ExerciseConfig, ManualSpec
from cnngrade.records import ExerciseResult, TestResult
from cnngrade.sinks import ANSWER_CHARS, MESSAGE_CHARS, OUTPUT_CHARS, PRINTED_CHARS, clip, scrub_paths

PENDING = "Awaiting review by course staff."
PRINTED = "printed"   # metrics key: what the student's code printed during the test (instructor's view)
NOT_READ = {"answer": None, "status": "error", "grader_error": True,
            "problem": "the answer was not read (a problem in the grader); grade again"}


def message(text: str) -> str:
    """A message as a student may see it: no machine paths, within its budget."""
    return clip(scrub_paths(text), MESSAGE_CHARS)


def manual_result(spec: ManualSpec, answer: dict[str, Any]) -> TestResult:
    """A free-text answer: points pending, with an automatic note when it is missing, very short or cut.

    An answer that could not be read is an error (a grader error unless the student's module does not
    import), never an empty answer: losing a student's writing silently is the worst outcome.
    """
    text, problem = answer.get("answer"), answer.get("problem", "")
    if answer.get("status") == "error":
        return TestResult(name=spec.name, score=0.0, max_score=spec.points, status="error",
                          output=message(f"{problem}."), visibility="public",
                          grader_error=bool(answer.get("grader_error")))
    notes = [PENDING]
    if problem:
        notes.append(f"Note: {problem}.")
    elif text is None:
        notes.append("Note: no answer given yet (the value is still None).")
    elif len(text.strip()) < spec.min_chars:
        notes.append(f"Note: the answer is very short ({len(text.strip())} characters; "
                     f"at least {spec.min_chars} expected).")
    elif len(text) > ANSWER_CHARS:
        notes.append(f"Note: the answer is {len(text)} characters long; it was cut to {ANSWER_CHARS}.")
    return TestResult(name=spec.name, score=0.0, max_score=spec.points, status="manual",
                      output=message(" ".join(notes)), visibility="public",
                      answer=clip(text, ANSWER_CHARS) if isinstance(text, str) else "")


def exercise_result(cfg: ExerciseConfig, outcomes: dict[str, dict[str, Any]], manual: dict[str, dict[str, Any]],
                    student_output: str = "") -> ExerciseResult:
    """Points for every test the YAML declares, whatever ran; manual items pending."""
    tests = []
    for spec in cfg.tests:
        got = outcomes.get(spec.name)
        if got is None:
            got = {"status": "error", "output": "this test did not run (a problem in the grader)", "grader_error": True}
        status = got["status"]
        if spec.kind == "advice" and status in ("failed", "timeout"):
            status = "advice"   # worth no points: what it saw is feedback, not a verdict
        metrics = dict(got.get("metrics", {}))
        if got.get("printed"):
            metrics[PRINTED] = clip(str(got["printed"]), PRINTED_CHARS)
        tests.append(TestResult(
            name=spec.name, score=spec.points if status == "passed" else 0.0, max_score=spec.points, status=status,
            output=message(str(got.get("output", ""))), visibility=spec.visibility,
            grader_error=bool(got.get("grader_error")), duration=float(got.get("duration", 0.0)), metrics=metrics))
    tests += [manual_result(m, manual.get(m.name, NOT_READ)) for m in cfg.manual]
    return ExerciseResult(cfg.exercise, cfg.title, tests, clip(scrub_paths(student_output), OUTPUT_CHARS))


def unavailable_result(cfg: ExerciseConfig, status: str, why: str, grader_error: bool = False) -> ExerciseResult:
    """Every test and manual item of an exercise that could not be graded (missing file, failed process)."""
    why = message(why)
    tests = [TestResult(name=s.name, score=0.0, max_score=s.points, status=status, output=why,
                        visibility=s.visibility, grader_error=grader_error) for s in cfg.tests]
    tests += [TestResult(name=m.name, score=0.0, max_score=m.points, status=status, output=why, visibility="public",
                         grader_error=grader_error) for m in cfg.manual]
    return ExerciseResult(cfg.exercise, cfg.title, tests)
