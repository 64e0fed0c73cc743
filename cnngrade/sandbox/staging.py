"""The files a worker sees: a private copy of the student's folder, regular files only, readable by its uid alone."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

MAX_STAGED_FILES = 2000
MAX_STAGED_BYTES = 64 << 20


def stage_submission(source: Path, dest: Path, uid: int | None) -> str:
    """Copy the student's module folder to ``dest``, readable by ``uid`` alone; '' or why it cannot be used.

    A copy, not the original: the original may sit under a folder the sandbox uid cannot enter (a 0700
    temporary folder), and the copy holds only regular files, so a planted symlink cannot make root read
    another file on the student's behalf. Hidden entries (.git, editor files) are left out.
    """
    count, size = 0, 0
    for root, dirs, files in os.walk(source, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not os.path.islink(os.path.join(root, d)))
        target = dest / os.path.relpath(root, source)
        target.mkdir(parents=True, exist_ok=True)
        restrict(target, uid, 0o750)
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.startswith(".") or os.path.islink(path) or not os.path.isfile(path):
                continue
            count, size = count + 1, size + os.path.getsize(path)
            if count > MAX_STAGED_FILES or size > MAX_STAGED_BYTES:
                return (f"the submission folder holds more than {MAX_STAGED_FILES} files or "
                        f"{MAX_STAGED_BYTES >> 20} MiB; hand in only your exercise files")
            try:
                shutil.copyfile(path, target / name, follow_symlinks=False)
            except OSError as exc:   # a file the grader may not read is the submission's problem, said plainly
                return f"cannot read {os.path.relpath(path, source)} of the submission ({exc.strerror})"
            restrict(target / name, uid, 0o640)
    return ""


def restrict(path: Path, uid: int | None, mode: int) -> None:
    """Give ``path`` to root with ``mode``, its group the sandbox uid's (when there is one: we run as root)."""
    if uid is not None:  # root-owned, readable through the group that only the sandbox uid has
        os.chown(path, 0, uid)
        os.chmod(path, mode)
