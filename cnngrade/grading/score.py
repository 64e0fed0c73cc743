"""Turn what happened in the grader tests into points, fail closed: a test that did not run scores zero.

This is where student-controlled text enters the records, so its budgets (``sinks``) apply here, and
machine paths leave every text a student is shown.
"""
from __future__ import annotations

from cnngrade.config import ExerciseConfig, ManualSpec, TestSpec, case_points
from cnngrade.records import Answer, ExerciseResult, Outcome, Status, TestResult
from cnngrade.sinks import ANSWER_CHARS, MESSAGE_CHARS, OUTPUT_CHARS, PRINTED_CHARS, clip, scrub_paths

PENDING = "Awaiting review by course staff."
PRINTED = "printed"   # metrics key: what the student's code printed during the test (instructor's view)
NOT_READ = Answer(problem="the answer was not read (a problem in the grader); grade again", unread=True,
                  grader_error=True)
NOT_RUN = Outcome(Status.ERROR, "this test did not run (a problem in the grader)", grader_error=True)


def message(text: str) -> str:
    """A message as a student may see it: no machine paths, within its budget."""
    return clip(scrub_paths(text), MESSAGE_CHARS)


def manual_result(spec: ManualSpec, answer: Answer) -> TestResult:
    """A free-text answer: points pending, with an automatic note when it is very short or cut; no answer at all
    (None, empty, not text, not defined) is not pending: it scores 0 at once (``unanswered``).

    An answer that could not be read is an error (a grader error unless the student's module does not
    import), never an empty answer: losing a student's writing silently is the worst outcome.
    """
    text, problem = answer.text, answer.problem
    if answer.unread:
        return TestResult(name=spec.name, score=0.0, max_score=spec.points, status=Status.ERROR,
                          output=message(f"{problem}."), visibility="public", grader_error=answer.grader_error)
    if text is None or not text.strip():
        return unanswered(spec, problem or ("the value is still None" if text is None else "the text is empty"))
    notes = [PENDING]
    if len(text.strip()) < spec.min_chars:
        notes.append(f"Note: the answer is very short ({len(text.strip())} characters; "
                     f"at least {spec.min_chars} expected).")
    elif len(text) > ANSWER_CHARS:
        notes.append(f"Note: the answer is {len(text)} characters long; it was cut to {ANSWER_CHARS}.")
    return TestResult(name=spec.name, score=0.0, max_score=spec.points, status=Status.MANUAL,
                      output=message(" ".join(notes)), visibility="public", answer=clip(text, ANSWER_CHARS))


def unanswered(spec: ManualSpec, why: str) -> TestResult:
    """A free-text item with nothing to read: it earns 0 now and says so, and no points wait for a review.

    Marked ``unanswered``, so that reports still list it with the free-text answers (``TestResult.free_text``),
    not among the automatic tests.
    """
    root, _, key = spec.name.partition(".")
    where = f"{root}[{key!r}]" if key else root
    return TestResult(name=spec.name, score=0.0, max_score=spec.points, status=Status.FAILED,
                      output=message(f"No answer ({why}), so there is nothing to review: 0 of {spec.points:g} "
                                     f"point(s). Write your answer as text in {where}."),
                      visibility="public", unanswered=True)


def exercise_result(cfg: ExerciseConfig, outcomes: dict[str, Outcome], manual: dict[str, Answer],
                    student_output: str = "", collected: list[str] | None = None) -> ExerciseResult:
    """Points for every test the YAML declares, whatever ran; manual items pending.

    ``collected``: the test ids pytest collected (trusted: the grader's own parametrization), so an entry that
    covers a parametrized test scores each of its cases, and a case that was collected but never reported
    scores 0 like any test that did not run.
    """
    tests = []
    for spec in cfg.tests:
        cases = spec_cases(spec, [*(collected or []), *outcomes])
        shares = case_points(spec.points, len(cases)) if cases else [spec.points]
        for name, points in zip(cases or [spec.name], shares):
            tests.append(verdict(spec, name, points, outcomes.get(name)))
    tests += [manual_result(m, manual.get(m.name, NOT_READ)) for m in cfg.manual]
    return ExerciseResult(cfg.exercise, cfg.title, tests, clip(scrub_paths(student_output), OUTPUT_CHARS))


def spec_cases(spec: TestSpec, seen: list[str]) -> list[str]:
    """The cases (``test_x[a]``, ...) of an entry that names a parametrized test, in collection order; [] when the
    entry is a single test or nothing of it was seen (then it scores as one test, fail closed)."""
    if spec.name in seen:
        return []
    return list(dict.fromkeys(n for n in seen if n != spec.name and spec.covers(n)))


def verdict(spec: TestSpec, name: str, points: float, got: Outcome | None) -> TestResult:
    """One test's (or case's) verdict as points; one that never reported scores 0 as an error."""
    got = NOT_RUN if got is None else got
    status = got.status
    if spec.kind == "advice" and status in (Status.FAILED, Status.TIMEOUT):
        status = Status.ADVICE   # worth no points: what it saw is feedback, not a verdict
    metrics = dict(got.metrics)
    if got.printed:
        metrics[PRINTED] = clip(got.printed, PRINTED_CHARS)
    return TestResult(
        name=name, score=points if status == Status.PASSED else 0.0, max_score=points, status=status,
        output=message(got.output), visibility=spec.visibility, grader_error=got.grader_error,
        duration=float(got.duration), metrics=metrics)


def unavailable_result(cfg: ExerciseConfig, status: Status, why: str, grader_error: bool = False) -> ExerciseResult:
    """Every test and manual item of an exercise that could not be graded (missing file, failed process)."""
    why = message(why)
    tests = [TestResult(name=s.name, score=0.0, max_score=s.points, status=status, output=why,
                        visibility=s.visibility, grader_error=grader_error) for s in cfg.tests]
    tests += [TestResult(name=m.name, score=0.0, max_score=m.points, status=status, output=why, visibility="public",
                         grader_error=grader_error) for m in cfg.manual]
    return ExerciseResult(cfg.exercise, cfg.title, tests)
