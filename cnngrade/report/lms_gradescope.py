"""Gradescope's autograder results.json for one student: a test per graded item, pending reviews as information."""
from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cnngrade.records import Status, StudentReport, TestResult
from cnngrade.sinks import public_profile

# Hidden tests show their verdict once the instructor publishes grades; "hidden" keeps them from students for good.
HIDDEN_VISIBILITY = "after_published"
STATUS_WORDS: dict[str, str] = {Status.ERROR: "Could not be graded", Status.TIMEOUT: "Ran out of time",
                                 Status.MISSING: "Not handed in", Status.ADVICE: "Advice (no points)"}


def gradescope_visibility(test: TestResult, hidden: str = HIDDEN_VISIBILITY) -> str:
    return "visible" if test.visibility == "public" else hidden


def test_descriptions(exercises: Iterable[str], graders_dir: Path | None = None) -> dict[tuple[str, str], str]:
    """grader.yaml's description of every test, by (exercise, test); an exercise without a grader adds none."""
    from cnngrade.config import GRADERS_DIR, load_exercise
    from cnngrade.errors import GraderConfigError

    found: dict[tuple[str, str], str] = {}
    for exercise in exercises:
        try:
            cfg = load_exercise(exercise, graders_dir or GRADERS_DIR)
        except GraderConfigError:
            continue
        found.update({(exercise, t.name): t.description for t in cfg.tests if t.description})
    return found


def _test_title(exercise: str, test: TestResult, descriptions: dict[tuple[str, str], str]) -> str:
    """The description, else the pytest id; a parametrized instance (test_answer[a]) keeps its parameter."""
    described = descriptions.get((exercise, test.name))
    if described:
        return f"{exercise}: {described}"
    function, bracket, param = test.name.partition("[")
    described = descriptions.get((exercise, function)) if bracket else ""
    return f"{exercise}: {described} [{param}" if described else f"{exercise}: {test.name}"


def _gradescope_test(exercise: str, number: str, test: TestResult, hidden: str,
                     descriptions: dict[tuple[str, str], str]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": _test_title(exercise, test, descriptions), "number": number, "output": test.output,
        "visibility": gradescope_visibility(test, hidden),
        "extra_data": {"cnngrade_status": test.status, "test": test.name},
    }
    if test.status == Status.MANUAL:
        # Pending review. Gradescope's spec has only passed/failed statuses and treats a test without a score as
        # informational: no score, max_score or status, so it is neither failed nor counted; the points it is
        # worth are in its name and output, and the top-level score is what has been earned so far.
        entry["name"] += f" (pending review, {test.max_score:g} pt)"
        entry["output"] = (f"Pending review by course staff: worth {test.max_score:g} point(s), not yet counted. "
                           f"{test.output}").strip()
        entry["tags"] = ["manual", "pending"]
        entry["extra_data"]["max_score"] = test.max_score
    else:
        entry.update(score=test.score, max_score=test.max_score)
        # An advice item is worth 0 points either way: Gradescope shows it as passed, with the advice as output.
        entry["status"] = "passed" if test.status in (Status.PASSED, Status.ADVICE) else "failed"   # Gradescope's words
        if test.status in STATUS_WORDS:
            entry["output"] = f"{STATUS_WORDS[test.status]}: {test.output}".strip()
    if test.answer:
        entry["extra_data"]["answer"] = test.answer
    return entry


def gradescope_results(report: StudentReport, hidden: str = HIDDEN_VISIBILITY,
                       descriptions: dict[tuple[str, str], str] | None = None) -> dict[str, Any]:
    """Gradescope's autograder results.json for one student (score is the points earned so far).

    Test names are grader.yaml's descriptions (``descriptions``, default: read from the installed graders),
    falling back to the pytest id; public tests are visible at once, hidden ones as ``hidden`` says.
    """
    if hidden not in ("hidden", "after_due_date", "after_published"):
        raise ValueError(f"hidden tests cannot be shown as {hidden!r}")
    if descriptions is None:
        descriptions = test_descriptions(report.exercises)
    tests = []
    for i, (name, ex) in enumerate(report.exercises.items(), start=1):
        tests += [_gradescope_test(name, f"{i}.{j}", t, hidden, descriptions) for j, t in enumerate(ex.tests, start=1)]
    total = report.total
    lines = [f"Points so far: {total['score']:g} of {total['max_score'] - total['manual_pending']:g}."]
    if total["manual_pending"]:
        lines.append(f"{total['manual_pending']:g} point(s) of written answers await review by course staff "
                     "and are not counted yet.")
    if report.error:
        lines.append(f"Problem with the submission: {report.error}")
    lines += report.notes
    # simple_format is rendered as HTML with newlines as line breaks: every line is escaped (a file name or a
    # note may hold markup the student chose).
    return {"score": total["score"], "execution_time": round(float(report.duration_s or 0.0), 3),
            "output": "\n".join(html.escape(line) for line in lines), "output_format": "simple_format",
            "test_name_format": "text", "test_output_format": "text",
            "stdout_visibility": "hidden", "tests": tests,
            "extra_data": {"student": report.student, "cnngrade_version": report.version,
                           "profile": public_profile(report.profile)}}
