"""Find the students of a class folder and, for each, the file of every exercise."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from cnngrade.errors import InputError


@dataclasses.dataclass
class StudentSubmission:
    """One student's entry: where each exercise module lives, and any problem with the entry itself."""

    student: str
    path: Path
    modules: dict[str, Path] = dataclasses.field(default_factory=dict)   # exercise -> file
    problems: dict[str, str] = dataclasses.field(default_factory=dict)   # exercise -> why it is unusable
    error: str = ""                                                       # the whole entry is unusable

    def module_dir(self, exercise: str) -> Path:
        return self.modules[exercise].parent


def find_module(folder: Path, exercise: str) -> tuple[Path | None, str]:
    """The student's ``<exercise>.py``: at the top of the folder, or the only one further down."""
    top = folder / f"{exercise}.py"
    if top.is_file() and not top.is_symlink():
        return top, ""
    found = sorted(p for p in folder.rglob(f"{exercise}.py")
                   if p.is_file() and not p.is_symlink() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if len(found) > 1:
        listed = ", ".join(str(p.relative_to(folder)) for p in found)
        return None, f"several files named {exercise}.py ({listed}); keep only one"
    return (found[0], "") if found else (None, "")


def collect_student(path: Path, exercises: list[str]) -> StudentSubmission:
    sub = StudentSubmission(student=path.name, path=path)
    if not path.is_dir():
        sub.error = f"{path.name} is not a folder of .py files"
        return sub
    for exercise in exercises:
        module, problem = find_module(path, exercise)
        if module is not None:
            sub.modules[exercise] = module
        elif problem:
            sub.problems[exercise] = problem
    return sub


def collect_class(submissions: Path, exercises: list[str]) -> list[StudentSubmission]:
    """One record per entry of the class folder (hidden entries skipped), sorted by student id."""
    if not submissions.exists():
        raise InputError(f"submissions folder {submissions} does not exist")
    if not submissions.is_dir():
        raise InputError(f"{submissions} is not a folder (expected one entry per student)")
    try:
        entries = sorted(p for p in submissions.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise InputError(f"cannot read {submissions}: {exc.strerror}") from None
    if not entries:
        raise InputError(f"{submissions} is empty: expected one folder per student")
    return [collect_student(p, exercises) for p in entries]
