"""Grades in the formats LMSs import: Gradescope's results.json per student and Canvas's gradebook CSV per class."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from cnngrade.records import StudentReport, TestResult

# Hidden tests show their verdict once the instructor publishes grades; "hidden" keeps them from students for good.
HIDDEN_VISIBILITY = "after_published"
CANVAS_ASSIGNMENT = "CNN week exercises"
CANVAS_STUDENT_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
STATUS_WORDS = {"error": "Could not be graded", "timeout": "Ran out of time", "missing": "Not handed in"}


def gradescope_visibility(test: TestResult, hidden: str = HIDDEN_VISIBILITY) -> str:
    return "visible" if test.visibility == "public" else hidden


def _gradescope_test(exercise: str, number: str, test: TestResult, hidden: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": f"{exercise}: {test.name}", "number": number, "score": test.score, "max_score": test.max_score,
        "output": test.output, "visibility": gradescope_visibility(test, hidden),
        "extra_data": {"cnngrade_status": test.status},
    }
    if test.status == "manual":
        entry["tags"] = ["manual"]          # pending: no status, so Gradescope shows it as neither pass nor fail
    else:
        entry["status"] = "passed" if test.status == "passed" else "failed"
        if test.status in STATUS_WORDS:
            entry["output"] = f"{STATUS_WORDS[test.status]}: {test.output}".strip()
    if test.answer:
        entry["extra_data"]["answer"] = test.answer
    return entry


def gradescope_results(report: StudentReport, hidden: str = HIDDEN_VISIBILITY) -> dict[str, Any]:
    """Gradescope's autograder results.json for one student (score is the points earned so far)."""
    if hidden not in ("hidden", "after_due_date", "after_published"):
        raise ValueError(f"hidden tests cannot be shown as {hidden!r}")
    tests = []
    for i, (name, ex) in enumerate(report.exercises.items(), start=1):
        tests += [_gradescope_test(name, f"{i}.{j}", t, hidden) for j, t in enumerate(ex.tests, start=1)]
    total = report.total
    lines = [f"Automatic points: {total['score']:g} of {total['max_score']:g}."]
    if total["manual_pending"]:
        lines.append(f"{total['manual_pending']:g} point(s) of written answers await review by course staff.")
    if report.error:
        lines.append(f"Problem with the submission: {report.error}")
    lines += report.notes
    return {"score": total["score"], "output": "\n".join(lines), "output_format": "simple_format",
            "stdout_visibility": "hidden", "tests": tests,
            "extra_data": {"student": report.student, "cnngrade_version": report.version, "profile": report.profile}}


def canvas_csv(reports: Iterable[StudentReport], assignment: str = CANVAS_ASSIGNMENT,
               assignment_id: str = "") -> str:
    """A Canvas gradebook import: student columns, then one assignment column, with a Points Possible row.

    Canvas matches rows by the ID column (the user id in its download's file names); students
    graded from plain folders have no Canvas id and are matched by name, the student id here.
    """
    reports = list(reports)
    title = f"{assignment} ({assignment_id})" if assignment_id else assignment
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*CANVAS_STUDENT_COLUMNS, title])
    possible = max((r.total["max_score"] for r in reports), default=0.0)
    writer.writerow(["    Points Possible", "", "", "", "", f"{possible:g}"])
    for r in reports:
        info = r.info
        writer.writerow([info.get("name") or r.student, info.get("canvas_id", ""), info.get("sis_user_id", ""),
                         info.get("sis_login_id", ""), info.get("section", ""), f"{r.total['score']:g}"])
    return buf.getvalue()
