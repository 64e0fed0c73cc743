"""The manual grading round trip: free-text answers out to a CSV for course staff, their points back into every report."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from cnngrade.config import GRADERS_DIR, load_exercise
from cnngrade.errors import GraderConfigError, InputError
from cnngrade.records import Status, StudentReport, TestResult
from cnngrade.sinks import csv_row, csv_value

COLUMNS = ["student", "exercise", "question", "max_points", "points", "comment", "rubric", "answer"]
REVIEWED = "Reviewed by course staff"


def load_reports(out_dir: Path) -> list[StudentReport]:
    """Every DIR/<student>/report.json, sorted by student; InputError when there is none or one is unreadable."""
    paths = sorted(out_dir.glob("*/report.json"))
    if not paths:
        raise InputError(f"{out_dir} holds no <student>/report.json: run `cnngrade grade ... --out {out_dir}` first")
    reports = []
    for path in paths:
        try:
            reports.append(StudentReport.from_dict(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path} is not a cnngrade report ({exc})") from None
    return reports


def _rubrics(reports: list[StudentReport], graders_dir: Path) -> dict[tuple[str, str], str]:
    found = {}
    for exercise in {e for r in reports for e in r.exercises}:
        try:
            cfg = load_exercise(exercise, graders_dir)
        except GraderConfigError:
            continue  # a report from an exercise whose grader is gone: no rubric, still exportable
        found.update({(exercise, m.name): m.prompt for m in cfg.manual})
    return found


def export_csv(reports: list[StudentReport], graders_dir: Path = GRADERS_DIR, *, include_reviewed: bool = False) -> str:
    """One row per student and free-text question: the answer, the rubric, and points to fill in."""
    rubrics = _rubrics(reports, graders_dir)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in reports:
        for exercise, ex in r.exercises.items():
            for t in ex.tests:
                if not t.free_text or (t.status != Status.MANUAL and not include_reviewed):
                    continue
                points = f"{t.score:g}" if t.reviewed else ""
                # Answers and ids are the students' text: a cell starting "=" must stay text in a spreadsheet.
                writer.writerow(csv_row([r.student, exercise, t.name, f"{t.max_score:g}", points,
                                         t.metrics.get("comment", ""), rubrics.get((exercise, t.name), ""), t.answer]))
    return buf.getvalue()


def _parse_points(text: str, where: str, maximum: float) -> float:
    try:
        points = float(text.replace(",", "."))
    except ValueError:
        raise InputError(f"{where}: points {text!r} is not a number") from None
    if not 0 <= points <= maximum:
        raise InputError(f"{where}: points {points:g} outside [0, {maximum:g}]")
    return points


def apply_csv(reports: list[StudentReport], text: str, source: str) -> list[StudentReport]:
    """Merge reviewed points into the reports (in memory); InputError on the first bad row, before any change."""
    by_student = {r.student: r for r in reports}
    # Cells come back as export_csv wrote them (csv_value undoes its formula escape), or as a person typed them.
    rows = [{k: csv_value(v) if isinstance(v, str) else v for k, v in row.items()}
            for row in csv.DictReader(io.StringIO(text))]
    if not rows and not text.strip():
        raise InputError(f"{source} is empty")
    missing = {"student", "exercise", "question", "points"} - set(rows[0].keys() if rows else [])
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(sorted(missing))}; "
                         "start from the file `cnngrade manual export` wrote")
    changes: dict[tuple[str, str, str], tuple[TestResult, float, str]] = {}
    for line, row in enumerate(rows, start=2):
        where = f"{source} line {line}"
        student, exercise, question = ((row.get(k) or "").strip() for k in ("student", "exercise", "question"))
        points_text = (row.get("points") or "").strip()
        if not points_text:
            continue  # not reviewed yet: stays pending
        report = by_student.get(student)
        if report is None:
            raise InputError(f"{where}: unknown student {student!r}")
        ex = report.exercises.get(exercise)
        if ex is None:
            raise InputError(f"{where}: {student} has no exercise {exercise!r}")
        test = next((t for t in ex.tests if t.name == question and t.free_text), None)
        if test is None:
            raise InputError(f"{where}: {exercise} has no free-text question {question!r}")
        key = (student, exercise, question)
        if key in changes:
            raise InputError(f"{where}: {student} {exercise} {question} is graded twice in this file")
        changes[key] = (test, _parse_points(points_text, where, test.max_score), (row.get("comment") or "").strip())
    for test, points, comment in changes.values():
        test.score = points
        test.status = Status.PASSED if points == test.max_score else Status.FAILED
        test.output = f"{REVIEWED}: {points:g} of {test.max_score:g} point(s)." + (f" {comment}" if comment else "")
        test.reviewed = True
        test.metrics = {**test.metrics, "comment": comment}
    return reports
