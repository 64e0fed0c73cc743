"""`cnngrade manual export|import`: hand the free-text answers to course staff and merge their points back."""
from __future__ import annotations

import argparse
from pathlib import Path

from cnngrade.config import GRADERS_DIR
from cnngrade.errors import ExitCode, InputError, UsageError
from cnngrade.report.files import atomic_write, write_class_outputs, write_student_report
from cnngrade.report.manual import apply_csv, export_csv, load_reports

DEFAULT_FILE = "manual_grading.csv"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("manual", help="export free-text answers for review, import the points given",
                       description="export DIR: write DIR/manual_grading.csv (or --file), one row per student and "
                       "free-text question with the answer, the rubric and an empty points column. "
                       "import FILE --out DIR: merge the filled-in points into every report.json, results.json "
                       "and the class gradebooks in DIR. Rows with empty points stay pending.")
    p.add_argument("action", choices=["export", "import"],
                   help="export: write the answers to review; import: merge the reviewed points")
    p.add_argument("path", type=Path, metavar="DIR|FILE", help="export: the report folder; import: the filled CSV")
    p.add_argument("--out", "-o", type=Path, metavar="DIR", help="import: the report folder to update")
    p.add_argument("--file", type=Path, metavar="FILE", help=f"export: where to write (default: DIR/{DEFAULT_FILE})")
    p.add_argument("--all", action="store_true", help="export: include answers already reviewed, with their points")
    p.add_argument("--graders", type=Path, default=GRADERS_DIR, metavar="DIR", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "export":
        reports = load_reports(args.path)
        target = args.file or args.path / DEFAULT_FILE
        text = export_csv(reports, args.graders, include_reviewed=args.all)
        atomic_write(target, text)
        print(f"{text.count(chr(10)) - 1} answer(s) to review written to {target}; fill in 'points', then run "
              f"`cnngrade manual import {target} --out {args.path}`")
        return ExitCode.OK
    if args.out is None:
        raise UsageError("manual import needs --out DIR, the report folder to update")
    try:
        text = args.path.read_text(encoding="utf-8-sig")   # spreadsheets often save a byte-order mark
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {args.path}: {getattr(exc, 'strerror', None) or exc}") from None
    reports = apply_csv(load_reports(args.out), text, args.path.name)
    for report in reports:
        write_student_report(args.out, report)
    exercises = list(dict.fromkeys(e for r in reports for e in r.exercises))
    write_class_outputs(args.out, reports, exercises)
    reviewed = sum(t.reviewed for r in reports for e in r.exercises.values() for t in e.tests)
    print(f"{reviewed} reviewed answer(s) now in the reports of {args.out}")
    return ExitCode.OK
