"""One student as found in a class download, and the file steps every layout takes to make their folder."""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
from pathlib import Path

from cnngrade.config import EXERCISES
from cnngrade.intake.archives import ArchiveError, safe_extract
from cnngrade.sinks import scrub_paths

RESUBMITTED = re.compile(r"^(?P<stem>.+?)-\d+(?P<suffix>\.\w+)$")


@dataclasses.dataclass
class Entry:
    """One student as found in the download: their files' folder, who they are, and what went wrong."""

    student: str
    path: Path | None
    info: dict[str, str] = dataclasses.field(default_factory=dict)   # name, LMS ids, late marker
    error: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)
    source: str = ""    # the download's entry (file or folder name) this student came from


def unreadable(name: str, exc: Exception) -> str:
    """The one-line error of an entry that made a reading step fail in a way nobody foresaw."""
    detail = scrub_paths(str(exc).strip().splitlines()[0][:300]) if str(exc).strip() else ""
    return f"{name} could not be read ({type(exc).__name__}{': ' + detail if detail else ''})"


def unpack_into(archive: Path, target: Path, entry: Entry) -> None:
    try:
        safe_extract(archive, target)
    except ArchiveError as exc:
        entry.error = f"{archive.name} cannot be unpacked: {exc}"


def copy_keeping_time(source: Path, dest: Path) -> None:
    """Copy a handed-in file with its time (not its mode): which of a .py and an .ipynb is newer decides which is
    graded (collect.choose_form)."""
    shutil.copyfile(source, dest)
    st = source.stat()
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))


def module_name(filename: str) -> str:
    """Undo the '-1' that Canvas appends to a resubmitted file when that gives back an exercise's file name."""
    m = RESUBMITTED.match(filename)
    if m and m["stem"] in EXERCISES and m["suffix"] in (".py", ".ipynb"):
        return m["stem"] + m["suffix"]
    return filename
