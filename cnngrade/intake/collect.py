"""Find the students of a class folder and, for each, the file of every exercise."""
from __future__ import annotations

import dataclasses
import functools
import re
import tempfile
from pathlib import Path

from cnngrade.config import PROJECT_ROOT
from cnngrade.intake import notebooks
from cnngrade.intake.entries import unreadable
from cnngrade.intake.layouts import class_entries
from cnngrade.intake.notebooks import NotebookError, stage_notebook
from cnngrade.records import ExerciseResult
from cnngrade.sinks import scrub_paths

# The stubs as handed out: a .py or .ipynb equal to its stub is one the student did not work in.
STUBS_DIR = PROJECT_ROOT / "exercises"
# Saved closer together than this, two files count as saved at once: a zip keeps times to 2 s, and an LMS
# download copies the files one after the other.
SAME_TIME = 2.0


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
    handed_in: dict[str, str] = dataclasses.field(default_factory=dict)   # exercise -> notebook graded (its name)
    cells: dict[str, list[tuple[int, int, str]]] = dataclasses.field(default_factory=dict)   # its cells' lines

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
        if module is not None and notebook is not None:
            chosen, note = choose_form(module, notebook, exercise, path)
            sub.notes.append(note)
            module = module if chosen == module else None
        if module is None and not problem and (notebook is not None or nb_problem):
            module, problem = _stage(notebook, nb_problem, exercise, staging, sub)
        if module is not None:
            sub.modules[exercise] = module
        elif problem:
            sub.problems[exercise] = problem
    return sub


def choose_form(module: Path, notebook: Path, exercise: str, folder: Path) -> tuple[Path, str]:
    """Of an exercise handed in as both .py and .ipynb, the one the student worked in, and a note saying which.

    The one that differs from the stub; both differ: the one saved last (an archive's member times count);
    neither: the .py. A notebook that cannot be read counts as worked in (grading it says what is wrong).
    """
    py_name, nb_name = (_relative(p, folder) for p in (module, notebook))
    try:
        nb = notebooks.read_notebook(notebook)
        code = notebooks.digest(notebooks.notebook_to_source(nb))
    except Exception:  # noqa: BLE001 - unreadable or unconvertible: the student's, graded to say why
        nb, code = None, ""
    stub_py, stub_code = _stub_digests(exercise, nb.metadata.get("cnngrade", {}) if nb is not None else {})
    py_digest = _digest_of(module)
    py_edited, nb_edited = not py_digest or py_digest not in stub_py, not code or code not in stub_code
    if py_edited != nb_edited:
        chosen, other = (module, nb_name) if py_edited else (notebook, py_name)
        return chosen, f"{exercise}: graded {_relative(chosen, folder)} ({other} beside it is the untouched stub)"
    if not py_edited:
        return module, f"{exercise}: {py_name} and {nb_name} are both the untouched stub; graded {py_name}"
    py_time, nb_time = module.stat().st_mtime, notebook.stat().st_mtime
    if abs(py_time - nb_time) < SAME_TIME:
        return module, f"{exercise}: {py_name} and {nb_name} were both edited and saved at the same time; graded {py_name}"
    chosen = module if py_time > nb_time else notebook
    return chosen, (f"{exercise}: {py_name} and {nb_name} were both edited; graded {_relative(chosen, folder)}, "
                    "the one saved last")


def _stub_digests(exercise: str, meta: object) -> tuple[set[str], set[str]]:
    """Digests of the stub's .py text and of its notebook's code: from exercises/ where this checkout has it, and
    from the notebook's metadata ``meta`` (written with the stub notebook), which a student's Jupyter keeps."""
    py, code = (set(d) for d in _stub_files(exercise))
    if isinstance(meta, dict) and meta.get("exercise") == exercise:
        py.update(str(meta[k]) for k in ("stub_sha256",) if k in meta)
        code.update(str(meta[k]) for k in ("code_sha256",) if k in meta)
    return py, code


def _digest_of(module: Path) -> str:
    """The digest of a .py's text; '' (no stub's) for one too large or unreadable to be a stub."""
    try:
        if module.stat().st_size > notebooks.MAX_NOTEBOOK_BYTES:
            return ""
        return notebooks.digest(module.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return ""


@functools.cache
def _stub_files(exercise: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Digests of exercises/<exercise>.py and of the code of exercises/<exercise>.ipynb, those that exist."""
    stub, py, code = STUBS_DIR / f"{exercise}.py", [], []
    if stub.is_file():
        py.append(notebooks.digest(stub.read_text(encoding="utf-8")))
    if stub.with_suffix(".ipynb").is_file():
        try:
            code.append(notebooks.digest(notebooks.notebook_to_source(notebooks.read_notebook(stub.with_suffix(".ipynb")))))
        except NotebookError:
            pass
    return tuple(py), tuple(code)


def _relative(path: Path, folder: Path) -> str:
    return path.relative_to(folder).as_posix() if path.is_relative_to(folder) else path.name


def _stage(notebook: Path | None, problem: str, exercise: str, staging: Path | None,
           sub: StudentSubmission | None = None) -> tuple[Path | None, str]:
    """A notebook becomes a .py in a staging folder of its own, which the worker imports like any module."""
    if notebook is None:
        return None, problem
    where = Path(tempfile.mkdtemp(prefix="cnngrade-nb-")) if staging is None else \
        Path(tempfile.mkdtemp(prefix=f"{exercise}-", dir=_mkdir(staging / "notebooks")))
    name = notebook.name if sub is None else _relative(notebook, sub.path)
    if sub is not None:
        sub.handed_in[exercise] = name
    try:
        target, converted = stage_notebook(notebook, where, exercise)
    except NotebookError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a notebook nobody foresaw is this exercise's error, not the batch's
        return None, unreadable(notebook.name, exc)
    if sub is not None:
        sub.cells[exercise] = converted.cells
        if converted.experiments:
            cells = ", ".join(str(i) for i in converted.experiments)
            sub.notes.append(f"{exercise}: {name} has {len(converted.experiments)} experiment cell(s) (cell {cells}), "
                             "not run at grading")
        sub.notes += [f"{exercise}: {name} {lost} inside an experiment cell, which grading does not run; move it "
                      "to a cell of its own" for lost in converted.lost]
    return target, ""


def name_handed_in(result: ExerciseResult, sub: StudentSubmission) -> ExerciseResult:
    """Messages about a graded notebook name the notebook, not the module made from it: ``<your ex1_x.ipynb>``,
    and a traceback's line of that module as the notebook's cell and line. Changes ``result`` (an
    ExerciseResult) in place and returns it."""
    exercise = result.exercise
    name = sub.handed_in.get(exercise)
    if not name:
        return result
    cells = sub.cells.get(exercise, [])

    def cell_line(m: re.Match) -> str:
        line = int(m["line"])
        start, number, first = next(((s, n, f) for s, n, f in reversed(cells) if s <= line), (0, 0, ""))
        if not number:
            return f'File "{name}"'   # a line cnngrade added (the inert stand-in for IPython)
        return f'File "{name}", cell {number} ("{first}"), line {line - start + 1}'

    traceback_line = re.compile(r'File "[^"\n]*?\b' + re.escape(exercise) + r'\.py", line (?P<line>\d+)')
    for test in result.tests:
        text = traceback_line.sub(cell_line, test.output)
        test.output = re.sub(r"\b" + re.escape(exercise) + r"\.py\b", name, text)
    return result


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
