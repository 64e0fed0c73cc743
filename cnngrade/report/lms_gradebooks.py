"""Canvas's gradebook CSV and Moodle's grading worksheet for a class, and every LMS file of a report folder."""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from pathlib import Path

from cnngrade.errors import InputError
from cnngrade.records import StudentReport
from cnngrade.report.lms import (
    CANVAS_ASSIGNMENT,
    LmsSettings,
    known_lms_id,
    load_settings,
    member_reports,
    pending,
    points_text,
    read_text,
)
from cnngrade.sinks import csv_cell, csv_row

CANVAS_STUDENT_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_FILE = "canvas_gradebook.csv"
MOODLE_FILE = "moodle_grades.csv"
NOTES_FILE = "lms_notes.txt"
# What Moodle's worksheet upload (assignfeedback_offline) looks for; it refuses a file without all three.
MOODLE_ID, MOODLE_GRADE, MOODLE_MODIFIED = "Identifier", "Grade", "Last modified (grade)"


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
        info, canvas_id = r.info, known_lms_id(r, "canvas_id", id_map)
        unmatched += [] if canvas_id else [r.student]
        # Names come from the download's file names, which students choose: neutralised like every cell.
        writer.writerow([*csv_row([info.get("name") or r.student, canvas_id, info.get("sis_user_id", ""),
                                   info.get("sis_login_id", ""), info.get("section", "")]),
                         points_text(r.total["score"])])
    graded = {r.student for r in reports}
    posted = {known_lms_id(r, "canvas_id", id_map) for r in reports}
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


# -- Moodle's grading worksheet ---------------------------------------------------------------------------
def read_worksheet(path: Path) -> str:
    """The grading worksheet Moodle exported, whole; InputError when it lacks a column the upload needs."""
    text = read_text(path, "--moodle-worksheet")
    records = _csv_spans(text, path.name)
    header = [_cell(text, span).removeprefix("\ufeff") for span in records[0]] if records else []
    missing = [c for c in (MOODLE_ID, MOODLE_GRADE, MOODLE_MODIFIED) if c not in header]
    if missing:
        raise InputError(f"--moodle-worksheet {path.name}: no column {', '.join(repr(c) for c in missing)}; "
                         "download the grading worksheet from the assignment (Moodle in English)")
    return text


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
        pid = known_lms_id(r, "moodle_id", settings.id_map)
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
