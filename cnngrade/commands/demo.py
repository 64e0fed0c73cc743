"""`cnngrade demo`: grade the reference solutions and the starter stubs as a two-student demo class."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from cnngrade.commands import grade
from cnngrade.errors import InputError
from cnngrade.grading.validate import SOLUTIONS_DIR, STUBS_DIR

MARKER = ".cnngrade-demo"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="grade a demo class (the reference solutions and the stubs)",
                       description="Copy solutions/ (student 'reference') and exercises/ (student 'stub') into "
                       "DIR/submissions, grade them like a class, and print the score table. The reports go to "
                       "DIR/reports. Needs nothing from the network.")
    p.add_argument("--out", "-o", type=Path, default=Path("cnngrade-demo"), metavar="DIR",
                   help="demo folder (default: %(default)s; recreated on each run)")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    grade.add_common_options(p)
    p.set_defaults(func=run)


def prepare(out: Path) -> Path:
    """(Re)create DIR/submissions with the two demo students; never touch a folder the demo did not make."""
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise InputError(f"{out} exists and is not a cnngrade demo folder; pick another --out")
    try:
        if out.exists():
            shutil.rmtree(out)
        klass = out / "submissions"
        for student, source in (("reference", SOLUTIONS_DIR), ("stub", STUBS_DIR)):
            (klass / student).mkdir(parents=True)
            for path in sorted(source.glob("ex*.py")):
                shutil.copy(path, klass / student / path.name)
        (out / MARKER).write_text("made by `cnngrade demo`; safe to delete\n")
    except OSError as exc:
        raise InputError(f"cannot prepare the demo folder {out}: {exc.strerror}") from None
    return klass


def run(args: argparse.Namespace) -> int:
    out = args.out
    klass = prepare(out)
    # Start from exactly what `cnngrade grade` would get for this class, so every grade option has its
    # default, then carry over the options the demo shares with grade.
    parser = argparse.ArgumentParser(prog="cnngrade")
    grade.register(parser.add_subparsers())
    grade_args = parser.parse_args(["grade", str(klass), "--out", str(out / "reports")])
    for name, value in vars(args).items():
        if name in vars(grade_args) and name not in ("func", "out", "submissions"):
            setattr(grade_args, name, value)
    return grade.run(grade_args)
