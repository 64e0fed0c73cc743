"""The grading pipeline, in order: collect → run (one trusted process per student, sandboxed workers) → score → report.

This is the driver (checks, resume, reports, the gradebook); where and how each student is graded is ``backends``.
"""
from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnngrade.config import GRADERS_DIR, load_exercise
from cnngrade.grading.backends import Backend, LocalPool, StudentTask, grading_context, prepared
from cnngrade.grading.process import check_graders
from cnngrade.intake.collect import StudentSubmission, collect_class
from cnngrade.records import StudentReport
from cnngrade.report.files import write_class_outputs, write_student_report
from cnngrade.sandbox import reaping
from cnngrade.sandbox.launch import ISOLATIONS, Limits, limits_for
from cnngrade.training import cohort_service, profiles


def default_profile(isolation: str) -> profiles.Profile:
    """The automatic profile: gpu (CIFAR-10 from --data/CNNGRADE_DATA) where CUDA works, else cpu."""
    return profiles.select_profile(None, None, isolation)


RESUME_KEYS = ("name", "device", "dataset", "isolation", "calibration")


def finished_report(out_dir: Path, student: str, exercises: list[str],
                    profile: profiles.Profile) -> StudentReport | None:
    """The student's report.json from an earlier run when it is complete for these exercises, else None.

    Reports are written atomically, so a batch killed mid-way leaves whole reports or none; a report from
    another profile, device, data set or isolation, or lacking an exercise asked for now, is graded again.
    """
    path = out_dir / student / "report.json"
    try:
        report = StudentReport.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    now = profile.to_json()
    if report.student != student or any(report.profile.get(k) != now.get(k) for k in RESUME_KEYS):
        return None
    if any(e not in report.exercises or not report.exercises[e].tests for e in exercises):
        return None
    if any(t.grader_error for e in exercises for t in report.exercises[e].tests):
        return None   # cnngrade, not the student, failed there (an overloaded machine, a grader bug): regrade
    return report


def grade_class(submissions: Path, out_dir: Path, exercises: list[str], *, jobs: int = 1,
                graders_dir: Path = GRADERS_DIR, isolation: str = ISOLATIONS[0], limits: Limits | None = None,
                on_report: Callable[[StudentReport], None] | None = None, layout: str = "auto",
                on_start: Callable[[int], None] | None = None, resume: bool = False,
                profile: profiles.Profile | None = None, backend: Backend | None = None,
                on_resumed: Callable[[StudentReport], None] | None = None,
                cohort: int | None = None, on_task: Callable[[str, int, str], Any] | None = None) -> list[StudentReport]:
    """Grade every student of ``submissions``; write DIR/<student>/report.json and DIR/gradebook.csv.

    ``on_start(number of students)`` is called once the class is collected, ``on_report(report)`` as each
    student finishes (both from the calling thread), e.g. to show progress; a report kept by ``resume`` goes to
    ``on_resumed`` when given, else to ``on_report``. ``resume``: students whose report.json in ``out_dir`` is
    complete are not graded again; the gradebook is rebuilt from every report. ``backend``: where students are
    graded (default: ``LocalPool(jobs)``, this machine; ``cnngrade.grading.ray_backend.RayBackend``, a Ray cluster).
    ``cohort``: members per cohort of the training checks (``cohort_service``; None: the profile's default, 16 on
    gpu, off on cpu; below 2: off); local backend only, on Ray each student's checks train in its own process.
    ``on_task(label, total, unit)`` (``Progress.task``): each cohort's epochs, shown while it trains.
    """
    backend = backend or LocalPool(jobs)
    # Unpacked archives and converted notebooks live here until grading ends.
    staging = tempfile.TemporaryDirectory(prefix=reaping.scratch_prefix("intake"))
    try:
        # A mistyped folder is reported at once; then, before any grading, a missing sandbox or an
        # inconsistent grader stops the batch instead of zeroing every student.
        students = collect_class(submissions, exercises, layout=layout, staging=Path(staging.name))
        backend.check(isolation)
        configs = {e: load_exercise(e, graders_dir) for e in exercises}
        task = StudentTask(configs, graders_dir, isolation, limits or limits_for(jobs),
                           profile or default_profile(isolation))
        with prepared(backend, task, students) as task:   # warming up while the graders are checked
            check_graders(list(configs.values()), graders_dir, grading_context())
            service = _start_cohort(task.profile, cohort, backend, on_task)
            try:
                task = dataclasses.replace(task, cohort=service.endpoint) if service else task
                return _grade_students(students, task, out_dir, backend, on_report=on_report, on_start=on_start,
                                       resume=resume, on_resumed=on_resumed)
            finally:
                if service is not None:
                    service.stop()
    finally:
        staging.cleanup()


def _start_cohort(profile: profiles.Profile, size: int | None, backend: Backend,
                  on_task: Callable[[str, int, str], Any] | None = None) -> cohort_service.CohortService | None:
    """The batch's cohort service when asked for (or the profile's default) and the students are graded here."""
    size = cohort_service.default_size(profile) if size is None else size
    if not isinstance(backend, LocalPool):
        return None
    # No more students train at once than are graded at once; on the gpu profile a cohort's grading processes share
    # the GPUs (devices.acquire_device with the cohort's size as slots per device).
    size = min(size, backend.jobs)
    return cohort_service.CohortService(size, context=grading_context(), on_task=on_task) if size >= 2 else None


def _grade_students(students: list[StudentSubmission], task: StudentTask, out_dir: Path, backend: Backend, *,
                    on_report: Callable[[StudentReport], None] | None, on_start: Callable[[int], None] | None,
                    resume: bool, on_resumed: Callable[[StudentReport], None] | None = None) -> list[StudentReport]:
    if on_start:
        on_start(len(students))
    reports: list[StudentReport] = []
    finished = {s.student: r for s in students if resume
                and (r := finished_report(out_dir, s.student, list(task.configs), task.profile)) is not None}
    for report in finished.values():
        reports.append(report)
        resumed = on_resumed or on_report
        if resumed:
            resumed(report)
    for report in backend.grade([s for s in students if s.student not in finished], task):
        write_student_report(out_dir, report)
        reports.append(report)
        if on_report:
            on_report(report)
    reports.sort(key=lambda r: r.student)
    write_class_outputs(out_dir, reports, list(task.configs))
    return reports


# What differs between two gradings of the same class by design, left out when they are compared
# (tests/test_ray.py, bench/ray_bench.py): when each report and test ran and how long it took, and the figures
# a training check measures on held-out images drawn from a secret of its grading process (training.run_secret),
# with the message that quotes them. Everything else, scores and statuses included, must be equal.
TIMING_FIELDS = ("started_at", "duration_s")
SECRET_DRAWN_METRICS = ("accuracy", "initial_accuracy", "baseline_accuracy", "seconds")


def comparable(report: dict) -> dict:
    """A report.json's content less what may differ between two gradings of the same submission."""
    report = json.loads(json.dumps(report))
    for key in TIMING_FIELDS:
        report.pop(key, None)
    for ex in report.get("exercises", {}).values():
        for test in ex["tests"]:
            test.pop("duration", None)
            if test.get("metrics", {}).get("trained_by"):   # a training check (training.record)
                test["output"] = ""
                for key in SECRET_DRAWN_METRICS:
                    test["metrics"].pop(key, None)
    return report
