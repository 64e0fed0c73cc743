"""Turn what happened in the grader tests into points, fail closed: a test that did not run scores zero."""
from __future__ import annotations

from typing import Any

from cnngrade.config import ExerciseConfig, ManualSpec
from cnngrade.records import ExerciseResult, TestResult

PENDING = "Awaiting review by course staff."


def manual_result(spec: ManualSpec, answer: dict[str, Any]) -> TestResult:
    """A free-text answer: points pending, with an automatic note when it is missing or very short."""
    text, problem = answer.get("answer"), answer.get("problem", "")
    notes = [PENDING]
    if problem:
        notes.append(f"Note: {problem}.")
    elif text is None:
        notes.append("Note: no answer given yet (the value is still None).")
    elif len(text.strip()) < spec.min_chars:
        notes.append(f"Note: the answer is very short ({len(text.strip())} characters; "
                     f"at least {spec.min_chars} expected).")
    return TestResult(name=spec.name, score=0.0, max_score=spec.points, status="manual", output=" ".join(notes),
                      visibility="public", answer=text if isinstance(text, str) else "")


def exercise_result(cfg: ExerciseConfig, outcomes: dict[str, dict[str, Any]], manual: dict[str, dict[str, Any]],
                    student_output: str = "") -> ExerciseResult:
    """Points for every test the YAML declares, whatever ran; manual items pending."""
    tests = []
    for spec in cfg.tests:
        got = outcomes.get(spec.name)
        if got is None:
            got = {"status": "error", "output": "this test did not run (a problem in the grader)", "grader_error": True}
        status = got["status"]
        tests.append(TestResult(
            name=spec.name, score=spec.points if status == "passed" else 0.0, max_score=spec.points, status=status,
            output=got.get("output", ""), visibility=spec.visibility, grader_error=bool(got.get("grader_error")),
            duration=float(got.get("duration", 0.0)), metrics=dict(got.get("metrics", {}))))
    tests += [manual_result(m, manual.get(m.name, {})) for m in cfg.manual]
    return ExerciseResult(cfg.exercise, cfg.title, tests, student_output)


def unavailable_result(cfg: ExerciseConfig, status: str, why: str, grader_error: bool = False) -> ExerciseResult:
    """Every test and manual item of an exercise that could not be graded (missing file, failed process)."""
    tests = [TestResult(name=s.name, score=0.0, max_score=s.points, status=status, output=why,
                        visibility=s.visibility, grader_error=grader_error) for s in cfg.tests]
    tests += [TestResult(name=m.name, score=0.0, max_score=m.points, status=status, output=why, visibility="public",
                         grader_error=grader_error) for m in cfg.manual]
    return ExerciseResult(cfg.exercise, cfg.title, tests)
