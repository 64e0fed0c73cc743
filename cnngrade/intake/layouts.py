"""Turn what an instructor downloads (a class folder, a zip, a Canvas, Moodle or Gradescope export) into one folder per student."""
from __future__ import annotations

import sys
from pathlib import Path

from cnngrade.config import EXERCISES
from cnngrade.errors import InputError, UsageError
from cnngrade.intake.archives import ArchiveError, safe_extract
from cnngrade.intake.entries import Entry, unpack_into, unreadable
from cnngrade.intake.lms_layouts import READERS, detect_lms
from cnngrade.sinks import student_id, terminal_text

LAYOUTS = ("auto", "folders", "canvas", "moodle", "gradescope")


def class_entries(source: Path, layout: str, staging: Path) -> list[Entry]:
    """Every student of ``source`` (a folder or a .zip of one), unpacked under ``staging`` where needed."""
    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    if not source.exists():
        raise InputError(f"submissions folder {source} does not exist")
    root = source
    if source.is_file():
        if source.suffix.lower() != ".zip":
            raise InputError(f"{source} is neither a folder nor a .zip of submissions")
        root = staging / "download"
        try:
            safe_extract(source, root)
        except ArchiveError as exc:
            raise InputError(f"cannot unpack {source.name}: {exc}") from None
        root = _single_folder(root)
    try:
        names = [p for p in root.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror}") from None
    if not names:
        raise InputError(f"{source} is empty: expected one entry per student")
    chosen = detect_layout(root) if layout == "auto" else layout
    reader = {"folders": _folders, **READERS}[chosen]
    entries = refuse_collisions(reader(root, staging / "students"))
    if not entries:
        raise InputError(f"{source}: no student submission found in the {chosen} layout")
    return sorted(entries, key=lambda e: e.student)


def refuse_collisions(entries: list[Entry]) -> list[Entry]:
    """Two entries that map to one student id (``alice.zip`` beside ``alice/``) are not graded: one report
    would overwrite the other. They become one entry in error naming both; the batch goes on."""
    by_id: dict[str, list[Entry]] = {}
    for entry in entries:
        by_id.setdefault(entry.student, []).append(entry)
    kept = []
    for sid, group in by_id.items():
        if len(group) == 1:
            kept.append(group[0])
            continue
        names = " and ".join(repr(e.source or e.student) for e in group)
        error = f"{names} both map to the student id {sid!r}; keep one of them and grade again"
        print(f"cnngrade: error: {terminal_text(error)}", file=sys.stderr)
        kept.append(Entry(sid, None, dict(group[0].info), error=error, source=names))
    return kept


def _single_folder(root: Path) -> Path:
    """A zip of a class folder usually holds that folder: step into it, unless it is one student's own files."""
    inside = [p for p in root.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    if len(inside) != 1 or not inside[0].is_dir() or detect_layout(root) != "folders":
        return root
    folder = inside[0]
    own_files = any((folder / f"{e}{suffix}").is_file() for e in EXERCISES for suffix in (".py", ".ipynb"))
    return folder if detect_layout(folder) != "folders" or not own_files else root


def detect_layout(root: Path) -> str:
    """Which LMS produced this folder, from the marks each leaves; a plain class folder otherwise."""
    return detect_lms(root) or "folders"


def _folders(root: Path, staging: Path) -> list[Entry]:
    """One entry per student: a folder of files, or a .zip of one (the student id is the name without .zip)."""
    entries = []
    paths = sorted(p for p in root.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX")
    for number, path in enumerate(paths):
        is_zip = path.suffix.lower() == ".zip" and not path.is_dir()
        entry = Entry(student_id(path.stem if is_zip else path.name), None, source=path.name)
        try:
            if is_zip and path.is_file():
                # Staged by position: two names that normalise to one id must not unpack into one folder.
                entry.path = staging / f"{number:05d}"
                unpack_into(path, entry.path, entry)
            elif path.is_dir() and not path.is_symlink():
                entry.path = path
            else:
                entry.error = f"{path.name} is not a folder or a .zip of the student's files"
        except Exception as exc:  # noqa: BLE001 - one entry's surprise is that student's error, never the batch's end
            entry.error = unreadable(path.name, exc)
        entries.append(entry)
    return entries
