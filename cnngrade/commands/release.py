"""`cnngrade release OUT.zip`: the bundle handed to students (stubs, notebooks, public tests, README)."""
from __future__ import annotations

import argparse
from pathlib import Path

from cnngrade.config import GRADERS_DIR
from cnngrade.errors import ExitCode, UsageError
from cnngrade.export.release import write_bundle


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("release", help="write the student bundle zip (stubs, notebooks, public tests)",
                       description="Write OUT.zip for students: exercises/ (every stub as .py and .ipynb), "
                       "public_tests/ (the tests marked public in each grader.yaml, hidden ones removed), wheels/ (cnngrade's "
                       "wheel, built here with pip) and a README that explains how to install it and run `cnngrade "
                       "check`. Nothing from solutions/ or the hidden tests.")
    p.add_argument("target", type=Path, metavar="OUT.zip", help="the zip to write")
    p.add_argument("--wheel", type=Path, metavar="FILE",
                   help="cnngrade's wheel to ship (default: build it from this installation with pip wheel)")
    p.add_argument("--graders", type=Path, default=GRADERS_DIR, metavar="DIR", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.target.suffix.lower() != ".zip":
        raise UsageError(f"{args.target} should end in .zip")
    names = write_bundle(args.target, wheel=args.wheel, graders_dir=args.graders)
    print(f"{args.target}: {len(names)} files (README.md, exercises/, public_tests/, wheels/)")
    return ExitCode.OK
