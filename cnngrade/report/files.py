"""Write report.json + feedback.html per student and gradebook.csv + index.html per class, atomically."""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from cnngrade.errors import InputError
from cnngrade.records import Status, StudentReport
from cnngrade.report.dashboard import class_page
from cnngrade.report.html import student_page
from cnngrade.report.lms import member_reports
from cnngrade.report.lms_gradebooks import lms_outputs
from cnngrade.report.lms_gradescope import gradescope_results
from cnngrade.sinks import csv_row, fit_report


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader never sees half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            # mkstemp makes the file 0600; give it the mode an ordinary write would (umask applies).
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from None


def check_writable(out_dir: Path) -> None:
    """Raise InputError now if reports cannot be written under ``out_dir``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file, not a folder")
    atomic_write(out_dir / ".cnngrade-write-test", "")
    (out_dir / ".cnngrade-write-test").unlink()


def write_student_report(out_dir: Path, report: StudentReport) -> Path:
    if fit_report(report):
        report.notes.append("Some very long texts of this report were cut to keep it within its size budget.")
    path = out_dir / report.student / "report.json"
    atomic_write(path, json.dumps(report.to_dict(), indent=2, sort_keys=False) + "\n")
    atomic_write(path.with_name("feedback.html"), student_page(report))
    atomic_write(path.with_name("results.json"), json.dumps(gradescope_results(report), indent=2) + "\n")
    return path


def gradebook_csv(reports: Iterable[StudentReport], exercises: list[str]) -> str:
    """One row per student: points per exercise, total, maximum, points awaiting manual review, problems."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", *exercises, "total", "max_score", "manual_pending", "problems"])
    for r in reports:
        problems = sorted({t.status for e in r.exercises.values() for t in e.tests}
                          & {Status.ERROR, Status.TIMEOUT, Status.MISSING})
        total = r.total
        # Every cell neutralised: a student id is a folder name the student chose.
        writer.writerow(csv_row([r.student, *(_num(r.exercises[e].score) if e in r.exercises else ""
                                              for e in exercises),
                                 _num(total["score"]), _num(total["max_score"]), _num(total["manual_pending"]),
                                 ";".join(problems)]))
    return buf.getvalue()


def _num(value: float) -> str:
    return f"{value:g}"


def write_class_outputs(out_dir: Path, reports: list[StudentReport], exercises: list[str]) -> None:
    # Group partners of a Gradescope submission get the group's row in every gradebook (report/lms.py).
    atomic_write(out_dir / "gradebook.csv", gradebook_csv(member_reports(reports), exercises))
    for name, text in lms_outputs(out_dir, reports)[0].items():   # Canvas, Moodle: as `grade` was told
        atomic_write(out_dir / name, text)
    from cnngrade.report.similarity_page import load_summary  # it writes through this module: imported late

    # The dashboard keeps its link to `cnngrade similarity`'s pages when a later grade redraws it.
    atomic_write(out_dir / "index.html", class_page(reports, exercises, similarity=load_summary(out_dir)))
