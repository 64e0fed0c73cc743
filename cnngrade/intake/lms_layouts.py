"""The Canvas, Moodle and Gradescope downloads: which LMS made a folder, and one entry per student from each."""
from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import yaml

from cnngrade.errors import InputError
from cnngrade.intake.entries import Entry, copy_keeping_time, module_name, unpack_into, unreadable
from cnngrade.sinks import student_id, terminal_text

# Canvas: {sortable name}_{LATE_}{user_id}_{attachment_id}_{display name}; anonymous grading drops the name.
CANVAS = re.compile(r"^(?:(?!LATE_)(?P<name>.*?)_)?(?P<late>LATE_)?(?P<user_id>\d+|anon_[A-Za-z0-9]+)_"
                    r"(?P<file_id>\d+)_(?P<filename>.+)$")
CANVAS_TEXT = re.compile(r"^(?:(?P<name>.*?)_)?(?P<late>LATE_)?(?P<user_id>\d+|anon_[A-Za-z0-9]+)_(?:text|link)\.html$")
MOODLE = re.compile(r"^(?P<name>.+)_(?P<id>\d+)_assign(?:submission|feedback)_\w+?_?$")
# Moodle with "Download submissions in folders" off: {Full Name}_{participant id}_{plugin}_{file name}, flat.
MOODLE_FLAT = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_(?P<plugin>assign(?:submission|feedback)_[a-z0-9]+)_"
                         r"(?P<filename>.+)$")
GRADESCOPE_METADATA = "submission_metadata.yml"


def detect_lms(root: Path) -> str:
    """Which LMS produced this folder, from the marks each leaves; "" when none did."""
    if (root / GRADESCOPE_METADATA).is_file():
        return "gradescope"
    items = [p for p in root.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    dirs = [p for p in items if p.is_dir()]
    files = [p for p in items if p.is_file()]
    if dirs and sum(bool(MOODLE.match(d.name)) for d in dirs) > len(dirs) / 2:
        return "moodle"
    if files and sum(bool(MOODLE_FLAT.match(f.name)) for f in files) > len(files) / 2:
        return "moodle"
    if files and sum(bool(CANVAS.match(f.name) or CANVAS_TEXT.match(f.name)) for f in files) > len(files) / 2:
        return "canvas"
    return ""


def _canvas(root: Path, staging: Path) -> list[Entry]:
    """Flat files named by Canvas, grouped by the student's Canvas user id (or anonymous id)."""
    by_id: dict[str, Entry] = {}
    chosen: dict[tuple[str, str], int] = {}   # (student, file name) -> attachment id kept
    for path in sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")):
        m = CANVAS.match(path.name)
        if not m:
            text = CANVAS_TEXT.match(path.name)
            if text:
                _canvas_entry(by_id, text, staging).info.setdefault("text_entry", "yes")
            else:
                print(f"cnngrade: note: {terminal_text(path.name)} does not look like a Canvas submission file; "
                      "skipped")
            continue
        entry = _canvas_entry(by_id, m, staging)
        try:
            _canvas_file(path, m, entry, chosen)
        except Exception as exc:  # noqa: BLE001 - one file's surprise is that student's error, never the batch's end
            entry.error = entry.error or unreadable(path.name, exc)
    for entry in by_id.values():
        # A text or URL entry alone still makes a student: an empty folder, every exercise missing, a row in the
        # gradebooks; the text itself is not graded.
        if entry.info.pop("text_entry", "") and entry.path is not None and not entry.path.exists():
            entry.path.mkdir(parents=True)
            entry.notes.append("handed in a text or URL entry on Canvas and no files; that entry is not graded")
    return list(by_id.values())


def _canvas_entry(by_id: dict[str, Entry], m: re.Match, staging: Path) -> Entry:
    """The entry of the Canvas user this file name belongs to, made on its first file."""
    uid = student_id(m["user_id"])
    return by_id.setdefault(uid, Entry(uid, staging / uid, {"canvas_id": "" if uid.startswith("anon_") else uid,
                                                             "name": m["name"] or ""}, source=uid))


def _canvas_file(path: Path, m: re.Match, entry: Entry, chosen: dict[tuple[str, str], int]) -> None:
    """Copy (or unpack) one Canvas file into its student's folder; of a file handed in twice, the later one."""
    assert entry.path is not None
    if m["late"]:
        entry.info["late"] = "yes"
    entry.path.mkdir(parents=True, exist_ok=True)
    name, file_id = module_name(m["filename"]), int(m["file_id"])
    if name.lower().endswith(".zip"):
        unpack_into(path, entry.path, entry)
        return
    previous = chosen.get((entry.student, name))
    if previous is not None:
        entry.notes.append(f"{name} was handed in twice; graded the later upload (file {max(previous, file_id)})")
        if previous > file_id:
            return
    chosen[(entry.student, name)] = file_id
    copy_keeping_time(path, entry.path / name)


def _moodle(root: Path, staging: Path) -> list[Entry]:
    """Moodle's 'Full Name_12345_assignsubmission_file_' folders, one or more per participant, or the same
    names as prefixes of flat files ('download submissions in folders' off)."""
    by_id: dict[str, Entry] = {}
    for item in sorted(p for p in root.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"):
        m = (MOODLE if item.is_dir() else MOODLE_FLAT).match(item.name)
        if not m or item.is_symlink():
            continue
        uid = student_id(m["id"])
        entry = by_id.setdefault(uid, Entry(uid, staging / uid, {"moodle_id": m["id"], "name": m["name"]}, source=uid))
        try:
            if item.is_dir():
                _moodle_folder(item, entry)
            else:
                _moodle_file(item, m, entry)
        except Exception as exc:  # noqa: BLE001 - one folder's surprise is that student's error, never the batch's end
            entry.error = entry.error or unreadable(item.name, exc)
    return list(by_id.values())


def _moodle_file(path: Path, m: re.Match, entry: Entry) -> None:
    """One file of the flat download: only the file-submission plugin's files are the student's work."""
    assert entry.path is not None
    entry.path.mkdir(parents=True, exist_ok=True)
    if m["plugin"] != "assignsubmission_file":
        return   # online text, comments, feedback files: not code
    name = Path(m["filename"]).name
    if name.lower().endswith(".zip"):
        unpack_into(path, entry.path, entry)
    else:
        copy_keeping_time(path, entry.path / module_name(name))


def _moodle_folder(folder: Path, entry: Entry) -> None:
    assert entry.path is not None
    entry.path.mkdir(parents=True, exist_ok=True)
    for item in sorted(folder.iterdir()):
        if item.is_symlink():
            continue
        entry.path.mkdir(parents=True, exist_ok=True)   # a failed unpack removes the folder
        if item.is_file() and item.suffix.lower() == ".zip":
            unpack_into(item, entry.path, entry)
        elif item.is_file():
            copy_keeping_time(item, entry.path / module_name(item.name))
        elif item.is_dir():
            shutil.copytree(item, entry.path / item.name, symlinks=True, dirs_exist_ok=True)


def _gradescope(root: Path, staging: Path) -> list[Entry]:
    """Gradescope's export: submission_<id>/ folders, and submission_metadata.yml naming their submitters."""
    try:
        meta = yaml.safe_load((root / GRADESCOPE_METADATA).read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{root / GRADESCOPE_METADATA} cannot be read: {str(exc).splitlines()[0]}") from None
    if not isinstance(meta, dict):
        raise InputError(f"{root / GRADESCOPE_METADATA}: expected a mapping of submission folders")
    entries = []
    folders = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("submission_"))
    for number, folder in enumerate(folders):
        try:
            entries.append(_gradescope_entry(folder, meta.get(folder.name), staging / f"{number:05d}"))
        except Exception as exc:  # noqa: BLE001 - one folder's surprise is that student's error, never the batch's end
            entries.append(Entry(student_id(folder.name), None, error=unreadable(folder.name, exc), source=folder.name))
    return entries


def _gradescope_member(submitter: dict) -> dict[str, str]:
    """A group partner: the student id it is known by (the same rule as the submitter's), name, email, sid."""
    sid, email = str(submitter.get(":sid") or ""), str(submitter.get(":email") or "")
    return {"student": student_id(sid or email.split("@")[0] or "unknown"), "name": str(submitter.get(":name") or ""),
            "email": email, "sid": sid}


def _gradescope_entry(folder: Path, record: object, staging: Path) -> Entry:
    record = record if isinstance(record, dict) else {}
    submitters = record.get(":submitters") or [{}]
    submitters = submitters if isinstance(submitters, list) else [{}]
    first = submitters[0] if isinstance(submitters[0], dict) else {}
    sid, email = str(first.get(":sid") or ""), str(first.get(":email") or "")
    student = sid or email.split("@")[0] or folder.name
    entry = Entry(student_id(student), folder, {"name": str(first.get(":name") or ""), "email": email, "sid": sid,
                                                "gradescope_submission": folder.name.removeprefix("submission_")},
                  source=folder.name)
    if len(submitters) > 1:
        partners = [_gradescope_member(s) for s in submitters[1:] if isinstance(s, dict)]
        others = ", ".join(p["name"] or p["student"] for p in partners)
        entry.notes.append(f"group submission, also by {others}; each of them gets this score in the gradebooks")
        # Rows for the partners are made where the gradebooks are written (report/lms.py), from this report:
        # a later manual review changes the whole group's score at once.
        entry.info["group_members"] = json.dumps(partners)
    zips = list(folder.glob("*.zip"))
    if zips and not any(folder.glob("*.py")) and not any(folder.glob("*.ipynb")):
        entry.path = staging
        unpack_into(zips[0], entry.path, entry)
    return entry


# The reader of each LMS layout: (the download's folder, where to stage students' files) -> one entry per student.
READERS: dict[str, Callable[[Path, Path], list[Entry]]] = {
    "canvas": _canvas, "moodle": _moodle, "gradescope": _gradescope}
