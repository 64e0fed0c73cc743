"""How grades go back to an LMS: the settings `cnngrade grade` was given, the id map, group partners' rows."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from collections.abc import Iterable
from pathlib import Path

from cnngrade.errors import InputError, UsageError
from cnngrade.records import StudentReport
from cnngrade.sinks import student_id

CANVAS_ASSIGNMENT = "CNN week exercises"

# -- the settings `cnngrade grade` was given, kept beside the reports ---------------------------------------
SETTINGS_FILE = "lms_settings.json"
ASSIGNMENT = re.compile(r"(?P<title>.*\S)\s*\((?P<id>\d+)\)")
ID_MAP_COLUMNS = ("student", "lms_id")


def points_text(value: float) -> str:
    """A grade as an LMS reads it: a plain decimal number, at most two decimals, never an exponent."""
    return f"{round(value, 2):.2f}".rstrip("0").rstrip(".")


def pending(report: StudentReport) -> bool:
    return report.total["manual_pending"] > 0


def known_lms_id(report: StudentReport, key: str, id_map: dict[str, str]) -> str:
    """The id the LMS knows this student by: from its own download's names, else from the id map."""
    return report.info.get(key) or id_map.get(report.student, "")


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


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{what} {path} is not UTF-8 text: save it as CSV UTF-8") from None


def read_id_map(path: Path) -> dict[str, str]:
    """The id map CSV: a header with 'student' and 'lms_id', then one row per student; strict, one-line errors."""
    text = read_text(path, "--id-map").removeprefix("\ufeff")
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
