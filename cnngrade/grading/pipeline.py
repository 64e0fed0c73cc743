"""The grading pipeline, in order: collect → run (one trusted process per student, sandboxed workers) → score → report."""
from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import json
import multiprocessing
import multiprocessing.context
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import cnngrade
from cnngrade.sandbox import cgroups
from cnngrade.training import cohort_service, profiles
from cnngrade.intake.collect import StudentSubmission, collect_class, name_handed_in
from cnngrade.config import GRADERS_DIR, ExerciseConfig, load_exercise
from cnngrade.records import ExerciseResult, StudentReport
from cnngrade.report.files import write_class_outputs, write_student_report
from cnngrade.grading.process import Job, check_graders, child_main
from cnngrade.sandbox.launch import ISOLATIONS, Limits, check_isolation, isolation_warning, limits_for
from cnngrade.grading.score import unavailable_result

SLACK_SECONDS = 60.0


def default_profile(isolation: str) -> dict:
    """The automatic profile: gpu (CIFAR-10 from --data/CNNGRADE_DATA) where CUDA works, else cpu."""
    return profiles.select_profile(None, None, isolation)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def grade_student(sub: StudentSubmission, configs: dict[str, ExerciseConfig], *, graders_dir: Path,
                  isolation: str, limits: Limits, profile: dict, public_only: bool = False,
                  cohort: dict | None = None) -> StudentReport:
    """Grade one student in a fresh trusted process; whatever fails there becomes this student's result.

    ``public_only``: run only the public tests (``configs`` should then hold only those, see run.public_part).
    ``cohort``: the batch's cohort service (``cohort_service.CohortService.endpoint``), None: train alone.
    """
    check_isolation(isolation)  # fail closed; probed once per process
    started, t0 = _now(), time.monotonic()
    results: dict[str, ExerciseResult] = {}
    present = {e: sub.module_dir(e) for e in configs if e in sub.modules}
    if present:
        results.update(_run_job(sub, {e: configs[e] for e in present}, present, graders_dir=graders_dir,
                                isolation=isolation, limits=limits, profile=profile, public_only=public_only,
                                cohort=cohort))
    for exercise, cfg in configs.items():
        if exercise in results:
            continue
        why = sub.error or sub.problems.get(exercise) or f"{exercise}.py was not found in the submission"
        # A file that is there but unusable (bad notebook, unsafe archive) is the student's error, not a gap.
        status = "error" if sub.error or exercise in sub.problems else "missing"
        results[exercise] = unavailable_result(cfg, status, why)
    ordered = {e: name_handed_in(results[e], sub) for e in configs}   # a notebook's messages name the .ipynb
    return StudentReport(sub.student, ordered, profile, cnngrade.__version__, sub.error, started,
                         round(time.monotonic() - t0, 2), dict(sub.info), list(sub.notes),
                         warning=isolation_warning(isolation))


def _run_job(sub: StudentSubmission, configs: dict[str, ExerciseConfig], module_dirs: dict[str, Path], *,
             graders_dir: Path, isolation: str, limits: Limits, profile: dict,
             public_only: bool = False, cohort: dict | None = None) -> dict[str, ExerciseResult]:
    base, why = cgroups.active()
    # One grading process per GPU at a time, waited for before its time starts (see docs/instructors.md); with a
    # cohort service, which does the training, as many per GPU as the cohort holds.
    slots = int(cohort.get("size", 1)) if cohort else 1
    lock = cgroups.acquire_device(_gpu_devices(), slots=slots) if profiles.uses_gpu(profile) else None
    grader = _grader_group(base, limits)
    job = Job({e: str(d) for e, d in module_dirs.items()}, str(graders_dir), isolation,
              {k: v for k, v in limits.__dict__.items()}, profile, public_only, base.to_dict() if base else None,
              why, grader.procs_files() if grader else [], lock.device if lock else None)
    budget = sum(profiles.exercise_time_limit(c, profile) for c in configs.values()) + SLACK_SECONDS
    if cohort is not None:   # waiting for the cohort's window and for groups trained ahead of this student's
        budget += cohort_service.BUDGET_SLACK
    with tempfile.TemporaryDirectory(prefix="cnngrade-job-") as tmp:
        spec, out, err = (os.path.join(tmp, name) for name in ("job.json", "result.json", "error.txt"))
        Path(spec).write_text(json.dumps(job.__dict__))
        # The service's authkey goes in the start arguments, not in job.json on disk.
        proc = _grading_context().Process(target=child_main, args=(spec, out, err, cohort), daemon=False)
        try:
            proc.start()
            problem = _wait_for(proc, budget, out, err, grader, limits)
        finally:
            _contain_leftovers(base, grader, proc.pid)
            if lock is not None:
                lock.release()
        if problem:
            return {e: unavailable_result(c, "error", problem, grader_error=True) for e, c in configs.items()}
        return {d["exercise"]: ExerciseResult.from_dict(d) for d in json.loads(Path(out).read_text())}


def _wait_for(proc: multiprocessing.process.BaseProcess, budget: float, out: str, err: str,
              grader: cgroups.Group | None, limits: Limits) -> str:
    """'' once the grading process ended well, else what went wrong (that student's grader error)."""
    proc.join(budget)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return f"the grading process ran past {budget:g} s and was stopped"
    if grader is not None and grader.out_of_memory():
        return (f"the grading process used more than its memory bound ({limits.grader_memory_bytes >> 20} MiB) "
                "and was stopped; grade this student again (cnngrade grade --resume)")
    if proc.exitcode != 0 or not os.path.exists(out):
        detail = Path(err).read_text(errors="replace")[-1500:] if os.path.exists(err) else ""
        if "MemoryError" in detail:
            detail = f"it ran out of its memory bound ({limits.grader_memory_bytes >> 20} MiB): {detail}"
        return f"the grading process failed (exit {proc.exitcode}): {detail}"
    return ""


def _grader_group(base: cgroups.Base | None, limits: Limits) -> cgroups.Group | None:
    """The grading process's own cgroup, which bounds its memory; None (it caps its address space instead)."""
    if base is None:
        return None
    try:
        return base.create(cgroups.group_name("g"), memory=limits.grader_memory_bytes)
    except cgroups.CgroupError:
        return None


def _contain_leftovers(base: cgroups.Base | None, grader: cgroups.Group | None, pid: int | None) -> None:
    """After a grading process: empty and remove its cgroup and any worker group it could not remove itself
    (it was killed), so no process of that student outlives its grading."""
    if grader is not None:
        grader.kill()
        grader.remove()
    if base is not None and pid is not None:
        base.sweep(f"{cgroups.PREFIX}{pid}-")


_DEVICES: list[str] | None = None


def _gpu_devices() -> list[str]:
    global _DEVICES
    if _DEVICES is None:
        _DEVICES = cgroups.visible_devices()
    return _DEVICES


_CONTEXT: multiprocessing.context.ForkServerContext | None = None
# Imported once by the fork server, so each student's grading process starts warm (about 3 s saved each).
PRELOAD = ["cnngrade.grading.process", "cnngrade.grading.plugin", "cnngrade.graderkit.equivalence", "torch", "hypothesis", "pytest", "numpy"]


def _grading_context() -> multiprocessing.context.ForkServerContext:
    """Trusted grading processes are forked from a server that imported the heavy modules and nothing else."""
    global _CONTEXT
    if _CONTEXT is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        _CONTEXT = ctx
    return _CONTEXT


RESUME_KEYS = ("name", "device", "dataset", "isolation", "calibration")


def finished_report(out_dir: Path, student: str, exercises: list[str], profile: dict) -> StudentReport | None:
    """The student's report.json from an earlier run when it is complete for these exercises, else None.

    Reports are written atomically, so a batch killed mid-way leaves whole reports or none; a report from
    another profile, device, data set or isolation, or lacking an exercise asked for now, is graded again.
    """
    path = out_dir / student / "report.json"
    try:
        report = StudentReport.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if report.student != student or any(report.profile.get(k) != profile.get(k) for k in RESUME_KEYS):
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
                profile: dict | None = None, backend: Backend | None = None,
                on_resumed: Callable[[StudentReport], None] | None = None,
                cohort: int | None = None) -> list[StudentReport]:
    """Grade every student of ``submissions``; write DIR/<student>/report.json and DIR/gradebook.csv.

    ``on_start(number of students)`` is called once the class is collected, ``on_report(report)`` as each
    student finishes (both from the calling thread), e.g. to show progress; a report kept by ``resume`` goes to
    ``on_resumed`` when given, else to ``on_report``. ``resume``: students whose report.json in ``out_dir`` is
    complete are not graded again; the gradebook is rebuilt from every report. ``backend``: where students are
    graded (default: ``LocalPool(jobs)``, this machine; ``cnngrade.grading.ray_backend.RayBackend``, a Ray cluster).
    ``cohort``: members per cohort of the training checks (``cohort_service``; None: the profile's default, 16 on
    gpu, off on cpu; below 2: off); local backend only, on Ray each student's checks train in its own process.
    """
    backend = backend or LocalPool(jobs)
    # Unpacked archives and converted notebooks live here until grading ends.
    staging = tempfile.TemporaryDirectory(prefix="cnngrade-intake-")
    try:
        # A mistyped folder is reported at once; then, before any grading, a missing sandbox or an
        # inconsistent grader stops the batch instead of zeroing every student.
        students = collect_class(submissions, exercises, layout=layout, staging=Path(staging.name))
        backend.check(isolation)
        configs = {e: load_exercise(e, graders_dir) for e in exercises}
        check_graders(list(configs.values()), graders_dir)
        task = StudentTask(configs, graders_dir, isolation, limits or limits_for(jobs),
                           profile or default_profile(isolation))
        service = _start_cohort(task.profile, cohort, backend)
        try:
            task = dataclasses.replace(task, cohort=service.endpoint) if service else task
            return _grade_students(students, task, out_dir, backend, on_report=on_report, on_start=on_start,
                                   resume=resume, on_resumed=on_resumed)
        finally:
            if service is not None:
                service.stop()
    finally:
        staging.cleanup()


def _start_cohort(profile: dict, size: int | None, backend: Backend) -> cohort_service.CohortService | None:
    """The batch's cohort service when asked for (or the profile's default) and the students are graded here."""
    size = cohort_service.default_size(profile) if size is None else size
    if not isinstance(backend, LocalPool):
        return None
    # No more students train at once than are graded at once; on the gpu profile a cohort's grading processes share
    # the GPUs (cgroups.acquire_device with the cohort's size as slots per device).
    size = min(size, backend.jobs)
    return cohort_service.CohortService(size, context=_grading_context()) if size >= 2 else None


@dataclasses.dataclass(frozen=True)
class StudentTask:
    """What grading any one student needs besides their submission: plain, picklable data, so that a backend
    can send it to another machine (``cnngrade.grading.ray_backend``)."""

    configs: dict[str, ExerciseConfig]
    graders_dir: Path
    isolation: str
    limits: Limits
    profile: dict
    cohort: dict | None = None   # the local batch's cohort service (cohort_service), never sent to Ray

    def __call__(self, sub: StudentSubmission) -> StudentReport:
        return grade_student(sub, self.configs, graders_dir=self.graders_dir, isolation=self.isolation,
                             limits=self.limits, profile=self.profile, cohort=self.cohort)

    def failed(self, sub: StudentSubmission, why: str) -> StudentReport:
        """The report of a student whom the backend could not grade: a grader error in every exercise, which
        ``--resume`` grades again (a lost machine, a task that kept failing)."""
        results = {e: unavailable_result(c, "error", why, grader_error=True) for e, c in self.configs.items()}
        return StudentReport(sub.student, results, self.profile, cnngrade.__version__, sub.error, _now(), 0.0,
                             dict(sub.info), list(sub.notes), warning=isolation_warning(self.isolation))


BACKENDS = ("local", "ray")


class Backend(Protocol):
    """Where students are graded: the one step that maps submissions to reports. Everything around it (resume,
    writing each report, the gradebook, progress) is the driver's, the same for every backend."""

    def check(self, isolation: str) -> None:
        """Fail closed before any grading (UsageError or IsolationUnavailable) when the backend cannot grade."""

    def grade(self, students: list[StudentSubmission], task: StudentTask) -> Iterator[StudentReport]:
        """One report per student, in the order they finish; never raises for one student's failure."""


class LocalPool:
    """This machine: ``jobs`` students at once, each in its own trusted grading process."""

    def __init__(self, jobs: int = 1):
        self.jobs = max(1, jobs)

    def check(self, isolation: str) -> None:
        check_isolation(isolation)
        cgroups.active()   # found once, before any grading thread or the fork server starts (v2 may move us)

    def grade(self, students: list[StudentSubmission], task: StudentTask) -> Iterator[StudentReport]:
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = [pool.submit(task, s) for s in students]
            for fut in concurrent.futures.as_completed(futures):
                yield fut.result()


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
        if on_resumed or on_report:
            (on_resumed or on_report)(report)
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
