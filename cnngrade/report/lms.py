"""Grades in the formats LMSs import: Gradescope's results.json per student, Canvas's gradebook CSV and Moodle's grading worksheet per class."""
from __future__ import annotations

import csv
import dataclasses
import html
import io
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cnngrade.errors import InputError, UsageError
from cnngrade.records import StudentReport, TestResult
from cnngrade.sinks import csv_cell, csv_row, public_profile, student_id

# Hidden tests show their verdict once the instructor publishes grades; "hidden" keeps them from students for good.
HIDDEN_VISIBILITY = "after_published"
CANVAS_ASSIGNMENT = "CNN week exercises"
CANVAS_STUDENT_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
STATUS_WORDS = {"error": "Could not be graded", "timeout": "Ran out of time", "missing": "Not handed in",
                "advice": "Advice (no points)"}


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
    if test.status == "manual":
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
        entry["status"] = "passed" if test.status in ("passed", "advice") else "failed"
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


def points_text(value: float) -> str:
    """A grade as an LMS reads it: a plain decimal number, at most two decimals, never an exponent."""
    return f"{round(value, 2):.2f}".rstrip("0").rstrip(".")


def pending(report: StudentReport) -> bool:
    return report.total["manual_pending"] > 0


def _lms_id(report: StudentReport, key: str, id_map: dict[str, str]) -> str:
    """The id the LMS knows this student by: from its own download's names, else from the id map."""
    return report.info.get(key) or id_map.get(report.student, "")


def canvas_csv(reports: Iterable[StudentReport], assignment: str = CANVAS_ASSIGNMENT,
               assignment_id: str = "", *, id_map: dict[str, str] | None = None, count_pending: bool = False,
               notes: list[str] | None = None) -> str:
    """A Canvas gradebook import: student columns, then one assignment column, with a Points Possible row.

    Canvas matches rows by the ID column: the user id of its download's file names, or the id map's entry
    for students graded from plain folders; a row with neither is matched by its Student column only.
    A student with free-text answers pending review is left out (Canvas leaves a student absent from the
    file as it was) unless ``count_pending``; students of the id map with no report get 0. ``notes``
    collects what the instructor should know about the file.
    """
    reports, id_map, notes = list(reports), id_map or {}, notes if notes is not None else []
    title = f"{assignment} ({assignment_id})" if assignment_id else assignment
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(csv_row([*CANVAS_STUDENT_COLUMNS, title]))
    possible = max((r.total["max_score"] for r in reports), default=0.0)
    writer.writerow(["    Points Possible", "", "", "", "", points_text(possible)])
    held, unmatched = [], []
    for r in reports:
        if pending(r) and not count_pending:
            held.append(r.student)
            continue
        info, canvas_id = r.info, _lms_id(r, "canvas_id", id_map)
        unmatched += [] if canvas_id else [r.student]
        # Names come from the download's file names, which students choose: neutralised like every cell.
        writer.writerow([*csv_row([info.get("name") or r.student, canvas_id, info.get("sis_user_id", ""),
                                   info.get("sis_login_id", ""), info.get("section", "")]),
                         points_text(r.total["score"])])
    graded = {r.student for r in reports}
    posted = {_lms_id(r, "canvas_id", id_map) for r in reports}
    # A map entry whose id a graded student already has (from Canvas's own file names) would be a second row.
    absent = sorted(s for s in id_map if s not in graded and id_map[s] not in posted)
    for student in absent:
        writer.writerow([*csv_row([student, id_map[student], "", "", ""]), "0"])
    if not assignment_id:
        notes.append("canvas_gradebook.csv: no assignment id (--canvas-assignment 'Name (id)'): "
                      "Canvas creates a new assignment on every import")
    if held:
        notes.append(f"canvas_gradebook.csv: {len(held)} student(s) left out until their free-text answers are "
                     f"reviewed (cnngrade manual; --count-pending posts the points so far): {', '.join(held)}")
    if unmatched:
        notes.append(f"canvas_gradebook.csv: {len(unmatched)} row(s) without a Canvas id, matched by name only "
                     f"(--id-map gives ids): {', '.join(unmatched)}")
    if absent:
        notes.append(f"canvas_gradebook.csv: {len(absent)} student(s) of the id map handed in nothing, posted as 0: "
                     f"{', '.join(absent)}")
    return buf.getvalue()


# -- the settings `cnngrade grade` was given, kept beside the reports ---------------------------------------
SETTINGS_FILE = "lms_settings.json"
CANVAS_FILE = "canvas_gradebook.csv"
MOODLE_FILE = "moodle_grades.csv"
NOTES_FILE = "lms_notes.txt"
ASSIGNMENT = re.compile(r"(?P<title>.*\S)\s*\((?P<id>\d+)\)")
ID_MAP_COLUMNS = ("student", "lms_id")
# What Moodle's worksheet upload (assignfeedback_offline) looks for; it refuses a file without all three.
MOODLE_ID, MOODLE_GRADE, MOODLE_MODIFIED = "Identifier", "Grade", "Last modified (grade)"


@dataclasses.dataclass
class LmsSettings:
    """How the class's grades go back: Canvas's assignment column, the id map, the pending rule, Moodle's sheet."""

    canvas_title: str = CANVAS_ASSIGNMENT
    canvas_id: str = ""
    id_map: dict[str, str] = dataclasses.field(default_factory=dict)   # student id -> LMS user id
    count_pending: bool = False
    moodle_worksheet: str = ""       # the text of the worksheet Moodle exported, kept whole
    worksheet_name: str = ""


def parse_canvas_assignment(text: str) -> tuple[str, str]:
    """'CNN week (123456)' -> ('CNN week', '123456'): the title and id of a column of Canvas's gradebook export."""
    m = ASSIGNMENT.fullmatch(text.strip())
    if not m or not text.isprintable():
        raise UsageError(f"--canvas-assignment {text!r} is not 'Name (id)': copy the assignment's column title "
                         "from a Canvas gradebook export, e.g. 'CNN week (123456)'")
    return m["title"].strip(), m["id"]


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{what} {path} is not UTF-8 text: save it as CSV UTF-8") from None


def read_id_map(path: Path) -> dict[str, str]:
    """The id map CSV: a header with 'student' and 'lms_id', then one row per student; strict, one-line errors."""
    text = _read_text(path, "--id-map").removeprefix("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if not all(c in header for c in ID_MAP_COLUMNS):
        raise InputError(f"--id-map {path.name}: the first line must name the columns student,lms_id "
                         f"(found {','.join(header) or 'nothing'})")
    at = [header.index(c) for c in ID_MAP_COLUMNS]
    found: dict[str, str] = {}
    owners: dict[str, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        student, lms_id = (row[i].strip() if i < len(row) else "" for i in at)
        where = f"--id-map {path.name} line {line}"
        if not student or not re.fullmatch(r"\d+", lms_id):
            raise InputError(f"{where}: expected a student id and a numeric LMS id, got {student!r}, {lms_id!r}")
        student = student_id(student)
        if student in found:
            raise InputError(f"{where}: student {student!r} is listed twice")
        if lms_id in owners:
            raise InputError(f"{where}: LMS id {lms_id} is given to both {owners[lms_id]!r} and {student!r}")
        found[student], owners[lms_id] = lms_id, student
    if not found:
        raise InputError(f"--id-map {path.name} lists no student")
    return found


def read_worksheet(path: Path) -> str:
    """The grading worksheet Moodle exported, whole; InputError when it lacks a column the upload needs."""
    text = _read_text(path, "--moodle-worksheet")
    records = _csv_spans(text, path.name)
    header = [_cell(text, span).removeprefix("\ufeff") for span in records[0]] if records else []
    missing = [c for c in (MOODLE_ID, MOODLE_GRADE, MOODLE_MODIFIED) if c not in header]
    if missing:
        raise InputError(f"--moodle-worksheet {path.name}: no column {', '.join(repr(c) for c in missing)}; "
                         "download the grading worksheet from the assignment (Moodle in English)")
    return text


def save_settings(out_dir: Path, settings: LmsSettings) -> None:
    from cnngrade.report.files import atomic_write  # files.py imports this module

    atomic_write(out_dir / SETTINGS_FILE, json.dumps(dataclasses.asdict(settings), indent=2) + "\n")


def load_settings(out_dir: Path) -> LmsSettings:
    """The settings of the last `cnngrade grade` into ``out_dir``; the defaults when there are none."""
    try:
        data = json.loads((out_dir / SETTINGS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return LmsSettings()
    except (OSError, ValueError) as exc:
        raise InputError(f"{out_dir / SETTINGS_FILE} cannot be read ({exc}); grade again to rewrite it") from None
    known = {f.name for f in dataclasses.fields(LmsSettings)}
    return LmsSettings(**{k: v for k, v in data.items() if k in known})


# -- group partners ---------------------------------------------------------------------------------------
def member_reports(reports: Iterable[StudentReport]) -> list[StudentReport]:
    """Every report, then one per group partner of a Gradescope group submission, with the group's tests.

    A partner who also has a report of their own keeps that one.
    """
    reports = list(reports)
    seen = {r.student for r in reports}
    rows = list(reports)
    for r in reports:
        for member in _members(r):
            if member["student"] in seen:
                continue
            seen.add(member["student"])
            info = {k: member[k] for k in ("name", "email", "sid") if member.get(k)}
            info["group_of"] = r.student
            rows.append(dataclasses.replace(r, student=member["student"], info=info, notes=[]))
    return rows


def _members(report: StudentReport) -> list[dict[str, str]]:
    try:
        members = json.loads(report.info.get("group_members") or "[]")
    except ValueError:
        return []
    return [m for m in members if isinstance(m, dict) and isinstance(m.get("student"), str) and m["student"]
            and all(isinstance(v, str) for v in m.values())] if isinstance(members, list) else []


# -- Moodle's grading worksheet ---------------------------------------------------------------------------
def _csv_spans(text: str, source: str) -> list[list[tuple[int, int]]]:
    """Every record of ``text`` as the (start, end) of each of its cells, quotes included.

    Spans let one cell be replaced with every other byte of the file kept; the cells they give are checked
    against Python's csv reader, so a file the two read differently is refused rather than damaged.
    """
    records: list[list[tuple[int, int]]] = []
    cells: list[tuple[int, int]] = []
    start, quoted, i, n = 0, False, 0, len(text)
    while i < n:
        c = text[i]
        if quoted:
            if c == '"' and text[i + 1:i + 2] == '"':
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"' and i == start:
            quoted = True
        elif c == ",":
            cells.append((start, i))
            start = i + 1
        elif c in "\r\n":
            cells.append((start, i))
            records.append(cells)
            cells = []
            i += 1 if c == "\r" and text[i + 1:i + 2] == "\n" else 0
            start = i + 1
        i += 1
    if start < n or cells:
        cells.append((start, n))
        records.append(cells)
    records = [r for r in records if r != [(r[0][0], r[0][0])]]   # blank lines
    ours = [[_cell(text, span) for span in r] for r in records]
    if quoted or ours != [row for row in csv.reader(io.StringIO(text, newline="")) if row]:
        raise InputError(f"--moodle-worksheet {source} is not a CSV file cnngrade can fill in safely")
    return records


def _cell(text: str, span: tuple[int, int]) -> str:
    raw = text[span[0]:span[1]]
    return raw[1:-1].replace('""', '"') if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw


def moodle_worksheet(reports: Iterable[StudentReport], settings: LmsSettings, notes: list[str]) -> str:
    """The worksheet Moodle exported with the Grade of every graded participant filled in, every other
    byte as it was; without one, a worksheet holding only what Moodle's upload reads."""
    grades, held = _moodle_grades(reports, settings)
    if held:
        notes.append(f"{MOODLE_FILE}: {len(held)} student(s) left out until their free-text answers are reviewed "
                     f"(cnngrade manual; --count-pending posts the points so far): {', '.join(held)}")
    if not settings.moodle_worksheet:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([MOODLE_ID, "Full name", MOODLE_GRADE, MOODLE_MODIFIED])
        for pid, (name, grade) in sorted(grades.items(), key=lambda kv: int(kv[0])):
            writer.writerow([f"Participant {pid}", csv_cell(name), grade, ""])
        return buf.getvalue()
    return _fill_worksheet(settings.moodle_worksheet, grades, settings.worksheet_name, notes)


def _moodle_grades(reports: Iterable[StudentReport], settings: LmsSettings) -> tuple[dict[str, tuple[str, str]],
                                                                                     list[str]]:
    """Participant id -> (name, grade) of every student Moodle can take a grade for, and those held back."""
    grades: dict[str, tuple[str, str]] = {}
    held = []
    reports = list(reports)
    for r in reports:
        pid = _lms_id(r, "moodle_id", settings.id_map)
        if pid and pending(r) and not settings.count_pending:
            held.append(r.student)
        elif pid:
            grades[pid] = (r.info.get("name") or r.student, points_text(r.total["score"]))
    graded = {r.student for r in reports}
    grades.update({pid: (s, "0") for s, pid in settings.id_map.items() if s not in graded})
    return grades, held


def _fill_worksheet(text: str, grades: dict[str, tuple[str, str]], source: str, notes: list[str]) -> str:
    records = _csv_spans(text, source)
    header = [_cell(text, span).removeprefix("\ufeff") for span in records[0]]
    at_id, at_grade = header.index(MOODLE_ID), header.index(MOODLE_GRADE)
    at_max = header.index("Maximum Grade") if "Maximum Grade" in header else None
    edits: list[tuple[tuple[int, int], str]] = []
    filled, over = set(), []
    for record in records[1:]:
        if len(record) <= max(at_id, at_grade):
            continue
        m = re.search(r"(\d+)\s*$", _cell(text, record[at_id]))
        if not m or m[1] not in grades:
            continue
        grade = grades[m[1]][1]
        filled.add(m[1])
        maximum = _cell(text, record[at_max]).replace(",", ".") if at_max is not None and at_max < len(record) else ""
        if re.fullmatch(r"\d+(\.\d*)?", maximum) and float(grade) > float(maximum):
            over.append(grades[m[1]][0])
        quoted = text[record[at_grade][0]:record[at_grade][0] + 1] == '"'
        edits.append((record[at_grade], f'"{grade}"' if quoted else grade))
    for (start, end), value in sorted(edits, reverse=True):
        text = text[:start] + value + text[end:]
    missing = sorted(grades[p][0] for p in grades if p not in filled)
    if missing:
        notes.append(f"{MOODLE_FILE}: not in the worksheet {source}, so not filled in: {', '.join(missing)}")
    if over:
        notes.append(f"{MOODLE_FILE}: grade above the worksheet's Maximum Grade for {', '.join(over)}: "
                     "set the Moodle assignment's maximum to cnngrade's")
    return text


# -- every LMS file of a report folder --------------------------------------------------------------------
def lms_outputs(out_dir: Path, reports: Iterable[StudentReport]) -> tuple[dict[str, str], list[str]]:
    """The LMS files of ``out_dir`` (name -> text) as its settings say, and the notes about them."""
    settings = load_settings(out_dir)
    rows = member_reports(reports)
    notes: list[str] = []
    # Notes about the Canvas file only where Canvas is in use: a plain folder class graded for gradebook.csv
    # would read them as noise.
    canvas_used = bool(settings.canvas_id or settings.id_map or any(r.info.get("canvas_id") for r in rows))
    files = {CANVAS_FILE: canvas_csv(rows, settings.canvas_title, settings.canvas_id, id_map=settings.id_map,
                                     count_pending=settings.count_pending, notes=notes if canvas_used else [])}
    if settings.moodle_worksheet or any(r.info.get("moodle_id") for r in rows):
        files[MOODLE_FILE] = moodle_worksheet(rows, settings, notes)
    files[NOTES_FILE] = "".join(f"{line}\n" for line in notes)
    return files, notes
