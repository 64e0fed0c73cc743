"""`cnngrade validate`: the reference solutions must get every automatic point and the stubs none."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnngrade.commands.grade import add_common_options, profile_of
from cnngrade.config import resolve_exercises
from cnngrade.errors import ExitCode, ValidationFailed
from cnngrade.grading.validate import SOLUTIONS_DIR, STUBS_DIR, validate
from cnngrade.report.files import write_class_outputs, write_student_report
from cnngrade.report.table import score_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check the graders on the reference solutions and the stubs",
                       description="Grade solutions/ (must earn every automatic point) and exercises/ (the "
                       "stubs, must earn none). Fails with exit status 1 and a list of the disagreeing tests.")
    p.add_argument("--out", "-o", type=Path, metavar="DIR", help="also write the two reports here")
    p.add_argument("--solutions", type=Path, default=SOLUTIONS_DIR, metavar="DIR", help=argparse.SUPPRESS)
    p.add_argument("--stubs", type=Path, default=STUBS_DIR, metavar="DIR", help=argparse.SUPPRESS)
    add_common_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    exercises = resolve_exercises(args.exercises, args.graders)
    sol, stub, problems = validate(exercises, graders_dir=args.graders, isolation=args.isolation, jobs=args.jobs,
                                   solutions_dir=args.solutions, stubs_dir=args.stubs, profile=profile_of(args))
    sol.student, stub.student = "solutions", "exercises"
    print(score_table([sol, stub], exercises))
    if args.out:
        for r in (sol, stub):
            write_student_report(args.out, r)
        write_class_outputs(args.out, [sol, stub], exercises)
    if problems:
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        raise ValidationFailed(f"{len(problems)} verdict(s) disagree with the reference solutions and stubs")
    print("\nvalidate: the solutions earn every automatic point and the stubs none")
    return ExitCode.OK
