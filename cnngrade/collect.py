"""Find the students of a class folder and, for each, the file of every exercise."""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from cnngrade.intake import class_entries, unreadable
from cnngrade.notebooks import NotebookError, stage_notebook
from cnngrade.sinks import scrub_paths


@dataclasses.dataclass
class StudentSubmission:
    """One student's entry: where each exercise module lives, and any problem with the entry itself."""

    student: str
    path: Path
    modules: dict[str, Path] = dataclasses.field(default_factory=dict)   # exercise -> file
    problems: dict[str, str] = dataclasses.field(default_factory=dict)   # exercise -> why it is unusable
    error: str = ""                                                       # the whole entry is unusable
    info: dict[str, str] = dataclasses.field(default_factory=dict)        # name and LMS ids, when known
    notes: list[str] = dataclasses.field(default_factory=list)            # what the instructor should know

    def module_dir(self, exercise: str) -> Path:
        return self.modules[exercise].parent


def find_module(folder: Path, exercise: str, suffix: str = ".py") -> tuple[Path | None, str]:
    """The student's ``<exercise>.py``: at the top of the folder, or the only one further down."""
    top = folder / f"{exercise}{suffix}"
    if top.is_file() and not top.is_symlink():
        return top, ""
    found = sorted(p for p in folder.rglob(f"{exercise}{suffix}")
                   if p.is_file() and not p.is_symlink() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if len(found) > 1:
        listed = ", ".join(str(p.relative_to(folder)) for p in found)
        return None, f"several files named {exercise}{suffix} ({listed}); keep only one"
    return (found[0], "") if found else (None, "")


def collect_student(path: Path, exercises: list[str], staging: Path | None = None) -> StudentSubmission:
    sub = StudentSubmission(student=path.name, path=path)
    if not path.is_dir():
        sub.error = f"{path.name} is not a folder of .py files"
        return sub
    for exercise in exercises:
        module, problem = find_module(path, exercise)
        notebook, nb_problem = find_module(path, exercise, ".ipynb")
        if module is None and not problem and (notebook is not None or nb_problem):
            module, problem = _stage(notebook, nb_problem, exercise, staging)
        elif module is not None and notebook is not None:
            sub.notes.append(f"{exercise}: both .py and .ipynb handed in; graded the .py")
        if module is not None:
            sub.modules[exercise] = module
        elif problem:
            sub.problems[exercise] = problem
    return sub


def _stage(notebook: Path | None, problem: str, exercise: str, staging: Path | None) -> tuple[Path | None, str]:
    """A notebook becomes a .py in a staging folder of its own, which the worker imports like any module."""
    if notebook is None:
        return None, problem
    where = Path(tempfile.mkdtemp(prefix="cnngrade-nb-")) if staging is None else \
        Path(tempfile.mkdtemp(prefix=f"{exercise}-", dir=_mkdir(staging / "notebooks")))
    try:
        return stage_notebook(notebook, where, exercise), ""
    except NotebookError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a notebook nobody foresaw is this exercise's error, not the batch's
        return None, unreadable(notebook.name, exc)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def collect_class(submissions: Path, exercises: list[str], *, layout: str = "auto",
                  staging: Path | None = None) -> list[StudentSubmission]:
    """One record per student of the class folder, .zip or LMS export (intake.py), sorted by student id."""
    staging = staging or Path(tempfile.mkdtemp(prefix="cnngrade-intake-"))
    students = []
    for entry in class_entries(submissions, layout, staging):
        if entry.path is None or entry.error:
            # The error is shown to the student: no folder of the grading machine in it.
            sub = StudentSubmission(student=entry.student, path=entry.path or submissions,
                                    error=scrub_paths(entry.error) or f"{entry.student} has no files")
        else:
            try:
                sub = collect_student(entry.path, exercises, staging)
            except Exception as exc:  # noqa: BLE001 - one student's surprise is their error, never the batch's end
                sub = StudentSubmission(student=entry.student, path=entry.path,
                                        error=unreadable(entry.source or entry.student, exc))
            sub.student = entry.student
        sub.info, sub.notes = entry.info, entry.notes + sub.notes
        students.append(sub)
    return students
