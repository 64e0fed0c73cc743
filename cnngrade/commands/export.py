"""`cnngrade export otter OUT`: per exercise, an otter-grader autograder zip (for Gradescope) and the student notebook."""
from __future__ import annotations

import argparse
from pathlib import Path

from cnngrade.config import GRADERS_DIR, resolve_exercises
from cnngrade.errors import ExitCode
from cnngrade.otter_export import export_exercise


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export the exercises to otter-grader (autograder zip + student notebook)",
                       description="For each exercise, build an Otter Assign master notebook whose tests call "
                       "cnngrade's graders and run `otter assign` on it: OUT/<exercise>/autograder/autograder.zip "
                       "(upload it to Gradescope) and OUT/<exercise>/student/<exercise>.ipynb (hand it out). "
                       "Needs the otter extra: pip install 'cnngrade[otter]'.")
    p.add_argument("format", choices=["otter"], help="what to export to (otter)")
    p.add_argument("out", type=Path, metavar="OUT", help="folder for the exports")
    p.add_argument("--exercises", metavar="LIST", help="comma-separated exercises (default: every graded one)")
    p.add_argument("--requirements", type=Path, metavar="FILE",
                   help="a requirements.txt for the Gradescope image; list cnngrade (e.g. a wheel URL) in it")
    p.add_argument("--graders", type=Path, default=GRADERS_DIR, metavar="DIR", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for exercise in resolve_exercises(args.exercises, args.graders):
        paths = export_exercise(exercise, args.out, graders_dir=args.graders, requirements=args.requirements)
        print(f"{exercise}: {paths['autograder']}  {paths['student']}")
    if args.requirements is None:
        print("\nThe autograder runs cnngrade inside otter: on Gradescope, pass --requirements with a file that "
              "installs cnngrade.")
    return ExitCode.OK
