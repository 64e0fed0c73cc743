"""`cnngrade grade SUBMISSIONS --out DIR`: grade a whole class."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cnngrade.config import GRADERS_DIR, resolve_exercises
from cnngrade.errors import ExitCode, UsageError
from cnngrade.intake import LAYOUTS
from cnngrade.pipeline import grade_class
from cnngrade.profiles import CHOICES as PROFILE_CHOICES
from cnngrade.profiles import select_profile
from cnngrade.report.files import check_writable
from cnngrade.report.progress import Progress
from cnngrade.report.table import score_table
from cnngrade.sandbox import ISOLATIONS, isolation_warning


def add_common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--exercises", metavar="LIST", help="comma-separated exercises to grade, e.g. ex1,ex3 "
                   "(default: every exercise that has a grader)")
    p.add_argument("--jobs", "-j", type=int, default=max(1, (os.cpu_count() or 2) // 2), metavar="N",
                   help="students graded at the same time (default: half the CPU cores)")
    p.add_argument("--isolation", choices=ISOLATIONS, default=ISOLATIONS[0],
                   help="how student code is isolated: bwrap (bubblewrap sandbox, no network, sees only its own "
                   "files) or rlimits (resource limits and an unprivileged uid alone: weaker, and every report "
                   "says so) (default: %(default)s)")
    p.add_argument("--graders", type=Path, default=GRADERS_DIR, metavar="DIR", help=argparse.SUPPRESS)
    p.add_argument("--profile", choices=PROFILE_CHOICES, default="auto",
                   help="training checks: gpu (CIFAR-10, the handout's full recipe, needs CUDA and --data) or cpu "
                   "(cnngrade's generated data set, fewer epochs) (default: %(default)s, gpu where CUDA works)")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="folder holding CIFAR-10's cifar-10-batches-py for the gpu profile (default: $CNNGRADE_DATA)")


def profile_of(args: argparse.Namespace) -> dict:
    """The grading profile the options ask for, as the pipeline passes it on."""
    return select_profile(args.profile, args.data, args.isolation)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grade", help="grade a class folder of submissions",
                       description="Grade every student of SUBMISSIONS (one folder per student holding that "
                       "student's exN_*.py files; the folder's name is the student id). Writes "
                       "DIR/<student>/report.json and feedback.html, DIR/gradebook.csv and the class dashboard "
                       "DIR/index.html. Shows a progress line when stderr is a terminal.")
    p.add_argument("submissions", type=Path, metavar="SUBMISSIONS",
                   help="folder with one entry per student (a folder or .zip each), an LMS bulk download, or a .zip of either")
    p.add_argument("--layout", choices=LAYOUTS, default="auto",
                   help="how SUBMISSIONS is organised: plain student folders or a Canvas, Moodle or Gradescope "
                   "export (default: %(default)s, detected from the file names)")
    p.add_argument("--out", "-o", type=Path, required=True, metavar="DIR", help="where the reports go")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="print nothing but errors: no progress line, no score table")
    p.add_argument("--resume", action="store_true",
                   help="continue a batch that was stopped: students with a complete report.json in DIR are "
                   "not graded again; the gradebook covers every report")
    add_common_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    exercises = resolve_exercises(args.exercises, args.graders)
    check_writable(args.out)  # fail now, not after an hour of grading
    if isolation_warning(args.isolation):
        print(f"cnngrade: warning: {isolation_warning(args.isolation)}", file=sys.stderr)
    progress = Progress(enabled=False if args.quiet else None)
    try:
        reports = grade_class(args.submissions, args.out, exercises, jobs=args.jobs, graders_dir=args.graders,
                              isolation=args.isolation, layout=args.layout, on_start=progress.start,
                              on_report=progress.update, resume=args.resume, profile=profile_of(args))
    finally:
        progress.finish()
    if args.quiet:
        return ExitCode.OK
    print(score_table(reports, exercises))
    print(f"\nreports: {args.out}/<student>/report.json and feedback.html, gradebook: {args.out / 'gradebook.csv'}, "
          f"class dashboard: {args.out / 'index.html'}")
    return ExitCode.OK
