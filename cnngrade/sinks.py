"""Student-controlled text where it lands: size budgets, CSV cells, terminal lines, machine paths.

Every number that bounds what a student can put into a record lives here, so a reader finds the
whole budget in one place. The budgets apply where the text enters a record (``score.py``); the
neutralisers apply at each sink (CSV writers, the terminal, what a student sees).
"""
from __future__ import annotations

import dataclasses
import json
import re
import unicodedata
from typing import Any

ANSWER_CHARS = 20_000        # one free-text answer; a thorough one is a few hundred words
MESSAGE_CHARS = 4_000        # one test's message (it may embed values the student's code returned)
OUTPUT_CHARS = 64_000        # what the student's code printed, per exercise (the worker keeps 64 KiB at most)
PRINTED_CHARS = 16_000       # what it printed during one test (instructor's view in report.json)
REPORT_CHARS = 8_000_000     # one student's report.json as a whole, figures included
ID_CHARS = 100               # a student id (it names a folder and a CSV row)

CUT_NOTE = "[cnngrade: {cut} characters cut here; at most {limit} are kept]"


def clip(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters: its head and tail, with a note saying how much was cut."""
    if len(text) <= limit:
        return text
    note = CUT_NOTE.format(cut=len(text) - limit, limit=limit)
    keep = max(0, limit - len(note) - 2)
    head = keep * 3 // 4
    return f"{text[:head]}\n{note}\n{text[len(text) - (keep - head):] if keep > head else ''}"


# -- machine paths --------------------------------------------------------------------------------
# An absolute path of two or more parts (a URL's "//" and relative paths do not match): only its last
# part, the file name, is kept, so tracebacks still say which file and line.
_ABS_PATH = re.compile(r"(?<![\w./:~\\-])/(?:[^\s/\"'():,;<>\[\]{}|]+/)+(?P<name>[^\s/\"'():,;<>\[\]{}|]*)")


def scrub_paths(text: str) -> str:
    """``text`` without the grading machine's folders (site-packages, staging, the worker's temp dirs, /rt)."""
    return _ABS_PATH.sub(lambda m: m["name"] or "<folder>", text)


def public_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """The grading profile as a student is shown it: the data folder by its name, not its place on the machine."""
    return {k: scrub_paths(v) if isinstance(v, str) else v for k, v in profile.items()}


# -- CSV cells ------------------------------------------------------------------------------------
# A cell starting with one of these is a formula (or starts one) in common spreadsheets; "'" is escaped
# too, so that reading a cell back is exactly the inverse of writing it.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"


def csv_cell(value: Any) -> str:
    """One CSV cell that a spreadsheet shows as text: a leading formula character gets a ``'`` before it.

    A carriage return becomes a newline: writers end lines with "\n", so csv leaves a lone "\r" unquoted,
    and every reader (Python's, spreadsheets') takes it for the end of the row.
    """
    text = "" if value is None else str(value).replace("\r\n", "\n").replace("\r", "\n")
    return ESCAPE + text if text.startswith((*FORMULA_STARTS, ESCAPE)) else text


def csv_value(cell: str) -> str:
    """The value ``csv_cell`` wrote (a cell a person typed without the escape is taken as it is)."""
    if cell.startswith(ESCAPE) and cell[1:2] and cell[1:2] in (*FORMULA_STARTS, ESCAPE):
        return cell[1:]
    return cell


def csv_row(values: list[Any]) -> list[str]:
    return [csv_cell(v) for v in values]


# -- terminal -------------------------------------------------------------------------------------
def terminal_text(text: str) -> str:
    """``text`` with control and formatting characters (escape sequences, bidi overrides) shown as escapes."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))


# -- student ids ----------------------------------------------------------------------------------
_ID_CHARS = re.compile(r"[^\w.@-]")
# Files cnngrade writes beside the students' folders in the output folder: no student may be named so.
RESERVED_IDS = {"index.html", "gradebook.csv", "canvas_gradebook.csv", "manual_grading.csv", "similarity",
               "moodle_grades.csv", "lms_settings.json", "lms_notes.txt"}


def student_id(text: str) -> str:
    """A student id usable as a folder name, a CSV cell and a terminal word: NFC, no controls, no separators.

    Letters of any script stay (``José``); anything else becomes ``_``; leading dots and dashes go (a
    hidden folder, an option-like name); long ids are cut.
    """
    text = unicodedata.normalize("NFC", str(text))
    text = _ID_CHARS.sub("_", text).lstrip(".-").rstrip(".")[:ID_CHARS] or "unknown"
    return f"student-{text}" if text.lower() in RESERVED_IDS else text


# -- the whole report -----------------------------------------------------------------------------
def fit_report(report: Any, limit: int = REPORT_CHARS) -> bool:
    """Cut the largest student-controlled texts of a ``StudentReport`` until its JSON fits ``limit``.

    Per-field budgets keep an ordinary report far below the limit; this catches whatever they do not
    (many figures, many long messages). Returns True when something was cut.
    """
    cut = False
    for _ in range(64):
        if len(json.dumps(report.to_dict())) <= limit:
            return cut
        holder, key, value, figure = max(_texts(report), key=lambda f: len(f[2]), default=(None, "", "", False))
        if holder is None or len(value) < 1000:
            break
        # Half a figure is no figure: it goes whole; texts keep their head and tail.
        _put(holder, key, "" if figure else clip(value, len(value) // 2))
        cut = True
    return cut


def _texts(report: Any) -> list[tuple[Any, str, str, bool]]:
    """(holder, key, text, is a figure) for every text in the report a student's code can make long."""
    found: list[tuple[Any, str, str, bool]] = []
    for ex in report.exercises.values():
        found.append((ex, "student_output", ex.student_output, False))
        for t in ex.tests:
            found += [(t, "output", t.output, False), (t, "answer", t.answer, False)]
            for key, value in t.metrics.items():
                if isinstance(value, str):
                    found.append((t.metrics, key, value, key == "figure_png"))
                elif key == "figure_png" and isinstance(value, list):
                    found += [(value, str(i), v, True) for i, v in enumerate(value) if isinstance(v, str)]
    return found


def _put(holder: Any, key: str, value: str) -> None:
    if isinstance(holder, list):
        holder[int(key)] = value
    elif isinstance(holder, dict):
        holder[key] = value
    elif dataclasses.is_dataclass(holder):
        setattr(holder, key, value)
