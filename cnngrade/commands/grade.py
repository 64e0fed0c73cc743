"""`cnngrade grade SUBMISSIONS --out DIR`: grade a whole class."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cnngrade.config import GRADERS_DIR, resolve_exercises
from cnngrade.errors import ExitCode, UsageError
from cnngrade.grading.backends import BACKENDS, Backend, LocalPool
from cnngrade.grading.pipeline import grade_class
from cnngrade.intake.layouts import LAYOUTS
from cnngrade.report import lms, lms_gradebooks
from cnngrade.report.files import check_writable
from cnngrade.report.progress import Progress
from cnngrade.report.table import score_table
from cnngrade.sandbox.launch import ISOLATIONS, isolation_warning
from cnngrade.sinks import terminal_text
from cnngrade.training.profiles import CHOICES as PROFILE_CHOICES
from cnngrade.training.profiles import Profile, select_profile, with_calibration


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
    p.add_argument("--calibration", metavar="FILE", type=Path, default=None,
                   help="training-check thresholds from `cnngrade calibrate` for this profile, in place of "
                   "grader.yaml's; every report names the file (default: grader.yaml's thresholds)")


def profile_of(args: argparse.Namespace) -> Profile:
    """The grading profile the options ask for, as the pipeline passes it on."""
    return with_calibration(select_profile(args.profile, args.data, args.isolation), args.calibration)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grade", help="grade a class folder of submissions",
                       description="Grade every student of SUBMISSIONS (one folder per student holding that "
                       "student's exN_*.py files; the folder's name is the student id). Writes "
                       "DIR/<student>/report.json and feedback.html, DIR/gradebook.csv, the LMS imports "
                       "DIR/canvas_gradebook.csv and (for Moodle) DIR/moodle_grades.csv, and the class dashboard "
                       "DIR/index.html. Shows a progress line (students/s, time left) when stderr is a terminal, "
                       "one plain line per student otherwise.")
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
    p.add_argument("--backend", choices=BACKENDS, default=BACKENDS[0],
                   help="where students are graded: local (this machine, --jobs at a time) or ray (the nodes of a "
                   "running Ray cluster, each student a task asking for the CPU share --jobs gives locally; needs "
                   "pip install 'cnngrade[ray]' and bubblewrap on every node; see docs/instructors.md) "
                   "(default: %(default)s)")
    p.add_argument("--address", metavar="ADDR", default=None,
                   help="with --backend ray: the cluster's address, host:port of its head "
                   "(default: $RAY_ADDRESS, else the cluster started on this machine with `ray start --head`)")
    p.add_argument("--cohort", type=int, default=None, metavar="N",
                   help="train the training checks of up to N students graded at once (at most --jobs) together "
                   "in one trusted cohort process of this machine, one stacked step for the networks of one "
                   "architecture (0 or 1: each alone); "
                   "local backend only (on Ray each student trains alone) (default: 16 on the gpu profile, off on "
                   "cpu, where a stacked step costs what its members' steps cost together)")
    add_lms_options(p)
    add_common_options(p)
    p.set_defaults(func=run)


def add_lms_options(p: argparse.ArgumentParser) -> None:
    """How grades go back to Canvas and Moodle; kept in DIR/lms_settings.json for `cnngrade manual import`."""
    p.add_argument("--canvas-assignment", metavar="'NAME (ID)'",
                   help="the assignment's column title in a Canvas gradebook export, e.g. 'CNN week (123456)': "
                   "canvas_gradebook.csv then updates that assignment instead of creating a new one")
    p.add_argument("--id-map", type=Path, metavar="FILE.csv",
                   help="CSV with columns student,lms_id: the Canvas user id or Moodle participant id of each "
                   "student of a folder class; listed students with no submission are posted as 0")
    p.add_argument("--moodle-worksheet", type=Path, metavar="FILE.csv",
                   help="the grading worksheet downloaded from the Moodle assignment: DIR/moodle_grades.csv is "
                   "that file with the Grade column filled in, ready for Moodle's 'Upload grading worksheet'")
    p.add_argument("--count-pending", action="store_true",
                   help="post the points so far of students whose free-text answers await review (default: leave "
                   "them out of canvas_gradebook.csv and moodle_grades.csv until reviewed)")


def backend_of(args: argparse.Namespace) -> Backend:
    """The --backend asked for; Ray is imported only when it is (cnngrade.grading.ray_backend)."""
    if args.backend == "local":
        if args.address is not None:
            raise UsageError("--address is for --backend ray")
        return LocalPool(args.jobs)
    from cnngrade.grading.ray_backend import RayBackend

    return RayBackend(args.address)


def lms_settings(args: argparse.Namespace) -> lms.LmsSettings:
    """The LMS options, checked before any grading starts."""
    settings = lms.LmsSettings(count_pending=args.count_pending)
    if args.canvas_assignment is not None:
        settings.canvas_title, settings.canvas_id = lms.parse_canvas_assignment(args.canvas_assignment)
    if args.id_map is not None:
        settings.id_map = lms.read_id_map(args.id_map)
    if args.moodle_worksheet is not None:
        settings.moodle_worksheet = lms_gradebooks.read_worksheet(args.moodle_worksheet)
        settings.worksheet_name = args.moodle_worksheet.name
    return settings


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.cohort is not None and args.cohort < 0:
        raise UsageError("--cohort must be 0 (off) or a number of students")
    exercises = resolve_exercises(args.exercises, args.graders)
    settings = lms_settings(args)
    check_writable(args.out)  # fail now, not after an hour of grading
    lms.save_settings(args.out, settings)
    if isolation_warning(args.isolation):
        print(f"cnngrade: warning: {isolation_warning(args.isolation)}", file=sys.stderr)
    backend = backend_of(args)
    progress = Progress(enabled=False if args.quiet else None)
    try:
        reports = grade_class(args.submissions, args.out, exercises, jobs=args.jobs, graders_dir=args.graders,
                              isolation=args.isolation, layout=args.layout, on_start=progress.start,
                              on_report=progress.update, resume=args.resume, profile=profile_of(args),
                              backend=backend, on_resumed=progress.resumed, cohort=args.cohort,
                              on_task=progress.task)
    finally:
        progress.finish()
        getattr(backend, "close", lambda: None)()
    if args.quiet:
        return ExitCode.OK
    print(score_table(reports, exercises))
    for note in lms_gradebooks.lms_outputs(args.out, reports)[1]:
        print(f"cnngrade: note: {terminal_text(note)}")
    print(f"\nreports: {args.out}/<student>/report.json and feedback.html, gradebook: {args.out / 'gradebook.csv'}, "
          f"class dashboard: {args.out / 'index.html'}")
    return ExitCode.OK
