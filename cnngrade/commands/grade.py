"""`cnngrade grade SUBMISSIONS --out DIR`: grade a whole class."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from cnngrade.config import GRADERS_DIR, resolve_exercises
from cnngrade.errors import ExitCode, UsageError
from cnngrade.intake import LAYOUTS
from cnngrade.pipeline import grade_class
from cnngrade.report.table import score_table
from cnngrade.sandbox import ISOLATIONS


def add_common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--exercises", metavar="LIST", help="comma-separated exercises to grade, e.g. ex1,ex3 "
                   "(default: every exercise that has a grader)")
    p.add_argument("--jobs", "-j", type=int, default=max(1, (os.cpu_count() or 2) // 2), metavar="N",
                   help="students graded at the same time (default: half the CPU cores)")
    p.add_argument("--isolation", choices=ISOLATIONS, default=ISOLATIONS[0],
                   help="how student code is isolated (default: %(default)s)")
    p.add_argument("--graders", type=Path, default=GRADERS_DIR, metavar="DIR", help=argparse.SUPPRESS)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grade", help="grade a class folder of submissions",
                       description="Grade every student of SUBMISSIONS (one folder per student holding that "
                       "student's exN_*.py files; the folder's name is the student id). Writes "
                       "DIR/<student>/report.json and DIR/gradebook.csv.")
    p.add_argument("submissions", type=Path, metavar="SUBMISSIONS",
                   help="folder with one entry per student (a folder or .zip each), an LMS bulk download, or a .zip of either")
    p.add_argument("--layout", choices=LAYOUTS, default="auto",
                   help="how SUBMISSIONS is organised: plain student folders or a Canvas, Moodle or Gradescope "
                   "export (default: %(default)s, detected from the file names)")
    p.add_argument("--out", "-o", type=Path, required=True, metavar="DIR", help="where the reports go")
    add_common_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    exercises = resolve_exercises(args.exercises, args.graders)
    reports = grade_class(args.submissions, args.out, exercises, jobs=args.jobs, graders_dir=args.graders,
                          isolation=args.isolation, layout=args.layout)
    print(score_table(reports, exercises))
    print(f"\nreports: {args.out}/<student>/report.json, gradebook: {args.out / 'gradebook.csv'}")
    return ExitCode.OK
