"""`cnngrade calibrate --profile cpu|gpu [--seeds 0-4] [--out FILE]`: measure the training checks, suggest thresholds."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cnngrade.errors import ExitCode, UsageError
from cnngrade.training import calibrate, calibration
from cnngrade.training.profiles import NAMES, select_profile


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate", help="measure the training checks over several seeds and write thresholds for grade",
        description="Run the training checks of ex6 and ex8 the way the graders run them (the reference "
        "solutions' initial weights, the trusted trainer with the profile's recipe, a held-out draw fixed per "
        "seed) for several seeds; print each threshold's mean, spread and margin against grader.yaml, and a "
        "suggested value (" + calibration.RULE + "). Writes the suggestions, the figures, the device and the "
        "torch version as a YAML calibration file (to stdout without --out) that `cnngrade grade --calibration "
        "FILE` applies and names in every report.")
    p.add_argument("--profile", choices=NAMES, required=True,
                   help="the profile to calibrate: gpu (CIFAR-10 from --data, needs CUDA) or cpu (cnngrade's "
                   "generated data set)")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="folder holding CIFAR-10's cifar-10-batches-py for the gpu profile (default: $CNNGRADE_DATA)")
    p.add_argument("--seeds", default="0-4", metavar="SEEDS",
                   help="seeds to train with, as a range or a list: 0-4, 0,2,5 or 0-2,7 (default: %(default)s; "
                   f"at least {calibrate.MIN_SEEDS})")
    p.add_argument("--exercises", metavar="LIST", help="calibrate only these exercises, e.g. ex6 (default: every "
                   "exercise with a training check: ex6 and ex8)")
    p.add_argument("--out", "-o", type=Path, metavar="FILE",
                   help="write the calibration file here, atomically (default: print it to stdout)")
    p.add_argument("--force", action="store_true", help="replace --out FILE when it exists")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                   help="seeds trained at the same time, one process each (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads per training run (default: the CPU cores divided by --jobs)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="print no progress lines and no table; without --out, print only the file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    seeds = calibrate.parse_seeds(args.seeds)
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    threads = args.threads if args.threads is not None else max(1, (os.cpu_count() or 1) // args.jobs)
    if threads < 1:
        raise UsageError("--threads must be at least 1")
    exercises = calibrate.exercises_of(args.exercises)
    if args.out is not None:
        calibrate.check_out(args.out, args.force)   # fail now, not after the training
    profile = select_profile(args.profile, args.data)
    done = []

    def progress(result: calibration.SeedResult) -> None:
        done.append(result)
        if not args.quiet:
            print(calibration.seed_line(result, len(done), len(seeds)), file=sys.stderr, flush=True)

    if not args.quiet:
        print(f"calibrate: {len(seeds)} seeds of {', '.join(exercises)} on the {profile.name} profile "
              f"({profile.dataset}), {args.jobs} at a time, {threads} torch thread(s) each", file=sys.stderr,
              flush=True)
    result = calibrate.calibrate(profile, seeds, exercises, jobs=args.jobs, threads=threads, on_seed=progress)
    text = calibration.override_yaml(result)
    if args.out is None:
        print(text, end="")
        return ExitCode.OK
    from cnngrade.report.files import atomic_write

    atomic_write(args.out, text)
    if not args.quiet:
        print(calibration.table(result))
        print(f"\nwrote {args.out}; grade with it: cnngrade grade SUBMISSIONS --out DIR --profile {profile.name} "
              f"--calibration {args.out}")
    return ExitCode.OK
