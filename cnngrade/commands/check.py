"""`cnngrade check [PATH]`: students run the public tests on their own exercise files."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnngrade.config import GRADERS_DIR, resolve_exercises
from cnngrade.errors import ExitCode
from cnngrade.grading.student_check import NO_SANDBOX_NOTE, best_isolation, check_folder, check_text, failed_tests
from cnngrade.sandbox.launch import ISOLATIONS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check", help="students: run the public tests on your own exercise files",
        description="Run the public tests on your exercise files (exN_*.py) in PATH and print what to fix. "
        "Uses only the public tests that come with the exercises; no GPU and no internet needed. The hidden "
        "tests run only when your work is graded.",
        epilog="exit status: 0 every public test passes, 1 a public test failed, 2 bad arguments, "
        "3 PATH has no exercise file.")
    p.add_argument("path", nargs="?", type=Path, default=Path("."), metavar="PATH",
                   help="folder with your exN_*.py files (default: the current folder)")
    p.add_argument("--exercises", metavar="LIST",
                   help="comma-separated exercises to check, e.g. ex1,ex3 (default: every exercise file in PATH)")
    p.add_argument("--full", action="store_true", help="print whole messages, not only their first lines")
    p.add_argument("--isolation", choices=ISOLATIONS,
                   help="how your code is isolated while it runs (default: the strongest that works here)")
    p.add_argument("--graders", type=Path, default=GRADERS_DIR, metavar="DIR",
                   help="folder with the public tests (default: the ones installed with cnngrade)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    exercises = resolve_exercises(args.exercises, args.graders) if args.exercises else None
    isolation = args.isolation or best_isolation()
    if isolation != ISOLATIONS[0] and args.isolation is None:
        print(NO_SANDBOX_NOTE, file=sys.stderr)
    report = check_folder(args.path, exercises=exercises, graders_dir=args.graders, isolation=isolation)
    print(check_text(report, full=args.full))
    # Exit 1 when something is left to fix, so a script (or a pre-submit hook) can stop there.
    return ExitCode.VALIDATION_FAILED if failed_tests(report.exercises) else ExitCode.OK
