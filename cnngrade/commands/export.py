"""`cnngrade export gradescope|otter OUT`: a Gradescope autograder zip, or per exercise an otter-grader export."""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from cnngrade.config import GRADERS_DIR, resolve_exercises
from cnngrade.errors import ExitCode
from cnngrade.sandbox.launch import ISOLATIONS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export the graders to Gradescope (autograder zip) or otter-grader",
                       description="gradescope: OUT/gradescope/autograder.zip, a Gradescope autograder whose "
                       "setup.sh installs the CPU build of torch and cnngrade (its wheel is in the zip) and whose "
                       "run_autograder runs `cnngrade grade` on the submission. otter: per exercise an Otter "
                       "Assign export, OUT/<exercise>/autograder/autograder.zip and the student notebook "
                       "OUT/<exercise>/student/<exercise>.ipynb, scored by cnngrade outside the notebook's kernel "
                       "(needs the otter extra: pip install -e '.[otter]').")
    p.add_argument("format", choices=["gradescope", "otter"], help="what to export to")
    p.add_argument("out", type=Path, metavar="OUT", help="folder for the exports")
    p.add_argument("--exercises", metavar="LIST", help="comma-separated exercises (default: every graded one)")
    p.add_argument("--isolation", choices=ISOLATIONS, default="rlimits",
                   help="how student code is isolated on Gradescope (default: %(default)s, with an unprivileged "
                   "uid per worker: Gradescope's container is the outer sandbox and cannot run bubblewrap)")
    p.add_argument("--wheel", type=Path, metavar="FILE",
                   help="cnngrade's wheel to ship (default: build it from this installation with pip wheel)")
    p.add_argument("--requirements", type=Path, metavar="FILE",
                   help="otter: a requirements.txt for the Gradescope image instead of the generated one")
    p.add_argument("--graders", type=Path, default=GRADERS_DIR, metavar="DIR", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    exercises = resolve_exercises(args.exercises, args.graders)
    if args.format == "gradescope":
        from cnngrade.export.gradescope import export_gradescope

        target = export_gradescope(args.out, exercises, graders_dir=args.graders, wheel=args.wheel,
                                   isolation=args.isolation)
        print(f"{target}: upload it as the assignment's autograder (Ubuntu 24.04 base image; memory: see "
              "docs/instructors.md).")
        return ExitCode.OK
    from cnngrade.export.otter import export_exercise
    from cnngrade.export.release import build_wheel

    with tempfile.TemporaryDirectory(prefix="cnngrade-wheel-") as tmp:   # one wheel for every exercise
        wheel = args.wheel or build_wheel(Path(tmp))
        for exercise in exercises:
            paths = export_exercise(exercise, args.out, graders_dir=args.graders, requirements=args.requirements,
                                    wheel=wheel, isolation=args.isolation)
            print(f"{exercise}: {paths['autograder']}  {paths['student']}")
    return ExitCode.OK
