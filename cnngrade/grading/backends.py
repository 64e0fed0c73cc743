"""Where students are graded: one trusted grading process per student (``grade_student``), and the backends that
run it for a class (``LocalPool`` on this machine, ``cnngrade.grading.ray_backend.RayBackend`` on a Ray cluster)."""
from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime
import json
import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import cnngrade
from cnngrade.config import ExerciseConfig
from cnngrade.grading.process import Job, child_main
from cnngrade.grading.score import unavailable_result
from cnngrade.intake.collect import StudentSubmission, name_handed_in
from cnngrade.records import ExerciseResult, Status, StudentReport
from cnngrade.sandbox import cgroup_setup, cgroups, devices, nursery, reaping
from cnngrade.sandbox.launch import Limits, isolation_warning
from cnngrade.sandbox.preflight import check_isolation
from cnngrade.training import cohort_service, profiles

SLACK_SECONDS = 60.0


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def grade_student(sub: StudentSubmission, configs: dict[str, ExerciseConfig], *, graders_dir: Path,
                  isolation: str, limits: Limits, profile: profiles.Profile, public_only: bool = False,
                  cohort: dict | None = None, nursery: dict[str, str] | None = None) -> StudentReport:
    """Grade one student in a fresh trusted process; whatever fails there becomes this student's result.

    ``public_only``: run only the public tests (``configs`` should then hold only those, see run.public_part).
    ``cohort``: the batch's cohort service (``cohort_service.CohortService.endpoint``), None: train alone.
    ``nursery``: the class's nursery (``sandbox.nursery.Nursery.endpoint``), None: a sandbox started per student.
    """
    check_isolation(isolation)  # fail closed; probed once per process
    started, t0 = _now(), time.monotonic()
    results: dict[str, ExerciseResult] = {}
    present = {e: sub.module_dir(e) for e in configs if e in sub.modules}
    if present:
        results.update(_run_job(sub, {e: configs[e] for e in present}, present, graders_dir=graders_dir,
                                isolation=isolation, limits=limits, profile=profile, public_only=public_only,
                                cohort=cohort, nursery=nursery))
    for exercise, cfg in configs.items():
        if exercise in results:
            continue
        why = sub.error or sub.problems.get(exercise) or f"{exercise}.py was not found in the submission"
        # A file that is there but unusable (bad notebook, unsafe archive) is the student's error, not a gap.
        status = Status.ERROR if sub.error or exercise in sub.problems else Status.MISSING
        results[exercise] = unavailable_result(cfg, status, why)
    ordered = {e: name_handed_in(results[e], sub) for e in configs}   # a notebook's messages name the .ipynb
    return StudentReport(sub.student, ordered, profile.to_json(), cnngrade.__version__, sub.error, started,
                         round(time.monotonic() - t0, 2), dict(sub.info), list(sub.notes),
                         warning=isolation_warning(isolation))


def _run_job(sub: StudentSubmission, configs: dict[str, ExerciseConfig], module_dirs: dict[str, Path], *,
             graders_dir: Path, isolation: str, limits: Limits, profile: profiles.Profile,
             public_only: bool = False, cohort: dict | None = None,
             nursery: dict[str, str] | None = None) -> dict[str, ExerciseResult]:
    base, why = cgroup_setup.active()
    # One grading process per GPU at a time, waited for before its time starts (see docs/instructors.md); with a
    # cohort service, which does the training, as many per GPU as the cohort holds.
    slots = int(cohort.get("size", 1)) if cohort else 1
    lock = devices.acquire_device(_gpu_devices(), slots=slots) if profiles.uses_gpu(profile) else None
    grader = _grader_group(base, limits)
    job = Job({e: str(d) for e, d in module_dirs.items()}, str(graders_dir), isolation,
              {k: v for k, v in limits.__dict__.items()}, profile, public_only, base.to_dict() if base else None,
              why, grader.procs_files() if grader else [], lock.device if lock else None,
              nursery)
    budget = sum(profiles.exercise_time_limit(c, profile) for c in configs.values()) + SLACK_SECONDS
    if cohort is not None:   # waiting for the cohort's window and for groups trained ahead of this student's
        budget += cohort_service.BUDGET_SLACK
    with tempfile.TemporaryDirectory(prefix=reaping.scratch_prefix("job")) as tmp:
        spec, out, err = (os.path.join(tmp, name) for name in ("job.json", "result.json", "error.txt"))
        Path(spec).write_text(json.dumps(job.to_json()))
        # The service's authkey goes in the start arguments, not in job.json on disk.
        proc = grading_context().Process(target=child_main, args=(spec, out, err, cohort), daemon=False)
        try:
            problem = RUNNING.start(proc) or _wait_for(proc, budget, out, err, grader, limits)
        finally:
            RUNNING.discard(proc)
            if proc.pid is not None and proc.is_alive():   # interrupted while waiting: this student's grading stops
                proc.kill()
                proc.join()
            _contain_leftovers(base, grader, proc.pid, nursery["root"] if nursery else None)
            if lock is not None:
                lock.release()
        if problem:
            return {e: unavailable_result(c, Status.ERROR, problem, grader_error=True) for e, c in configs.items()}
        return {d["exercise"]: ExerciseResult.from_dict(d) for d in json.loads(Path(out).read_text())}


class Running:
    """The grading processes this driver has started and not yet waited for, so that a batch that is stopped
    (Ctrl-C, SIGTERM) stops them at once instead of letting them, and every student still queued, run on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set[multiprocessing.process.BaseProcess] = set()
        self._stopping = False

    def start(self, proc: multiprocessing.process.BaseProcess) -> str:
        """Start ``proc``; '' when it started, the reason when the batch is being stopped (it is not started)."""
        with self._lock:
            if self._stopping:
                return "grading was interrupted before this student's grading process started"
            proc.start()
            self._procs.add(proc)
            return ""

    def discard(self, proc: multiprocessing.process.BaseProcess) -> None:
        with self._lock:
            self._procs.discard(proc)

    @contextlib.contextmanager
    def stopping(self) -> Iterator[None]:
        """While this lasts no grading process starts; those running are killed (their threads then clean up)."""
        with self._lock:
            self._stopping = True
            procs = list(self._procs)
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.kill()
        try:
            yield
        finally:
            with self._lock:
                self._stopping = False


RUNNING = Running()


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


def _contain_leftovers(base: cgroups.Base | None, grader: cgroups.Group | None, pid: int | None,
                       nursery_root: str | None = None) -> None:
    """After a grading process: empty and remove its cgroup and any worker group it could not remove itself
    (it was killed), so no process of that student outlives its grading; then remove the folders it left."""
    if grader is not None:
        grader.kill()
        grader.remove()
    if base is not None and pid is not None:
        base.sweep(lambda name: name.startswith(f"{cgroups.PREFIX}{pid}-"))
    if pid is not None:
        reaping.remove_scratch(pid, [None, nursery_root])


_DEVICES: list[str] | None = None


def _gpu_devices() -> list[str]:
    global _DEVICES
    if _DEVICES is None:
        _DEVICES = devices.visible_devices()
    return _DEVICES


_CONTEXT: multiprocessing.context.ForkServerContext | None = None
# Imported once by the fork server, so each student's grading process starts warm (about 3 s saved each).
PRELOAD = ["cnngrade.grading.process", "cnngrade.grading.plugin", "cnngrade.graderkit.equivalence", "torch",
           "hypothesis", "pytest", "numpy", "cnngrade.grading.warm"]


def grading_context() -> multiprocessing.context.ForkServerContext:
    """Trusted grading processes are forked from a server that imported the heavy modules and nothing else."""
    global _CONTEXT
    if _CONTEXT is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        _CONTEXT = ctx
    return _CONTEXT


@dataclasses.dataclass(frozen=True)
class StudentTask:
    """What grading any one student needs besides their submission: plain, picklable data, so that a backend
    can send it to another machine (``cnngrade.grading.ray_backend``)."""

    configs: dict[str, ExerciseConfig]
    graders_dir: Path
    isolation: str
    limits: Limits
    profile: profiles.Profile
    cohort: dict | None = None   # the local batch's cohort service (cohort_service), never sent to Ray
    nursery: dict[str, str] | None = None   # the local class's nursery (sandbox.nursery), never sent to Ray

    def __call__(self, sub: StudentSubmission) -> StudentReport:
        return grade_student(sub, self.configs, graders_dir=self.graders_dir, isolation=self.isolation,
                             limits=self.limits, profile=self.profile, cohort=self.cohort, nursery=self.nursery)

    def failed(self, sub: StudentSubmission, why: str) -> StudentReport:
        """The report of a student whom the backend could not grade: a grader error in every exercise, which
        ``--resume`` grades again (a lost machine, a task that kept failing)."""
        results = {e: unavailable_result(c, Status.ERROR, why, grader_error=True) for e, c in self.configs.items()}
        return StudentReport(sub.student, results, self.profile.to_json(), cnngrade.__version__, sub.error, _now(), 0.0,
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
        base, _ = cgroup_setup.active()   # found once, before any grading thread or the fork server starts (v2 may
        # move us); then what an earlier batch killed outright left on this machine is removed
        if base is not None:
            base.sweep(cgroups.maker_gone)
        reaping.sweep_orphan_scratch()

    def grade(self, students: list[StudentSubmission], task: StudentTask) -> Iterator[StudentReport]:
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.jobs)
        done = False
        try:
            futures = [pool.submit(task, s) for s in students]
            for fut in concurrent.futures.as_completed(futures):
                yield fut.result()
            done = True
        finally:
            if done:
                pool.shutdown(wait=True)
            else:
                # Interrupted (Ctrl-C, SIGTERM) or abandoned: students still queued are never started and the
                # grading processes running are killed; their threads remove the students' cgroups and folders.
                with RUNNING.stopping():
                    pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def prepared(backend: Backend, task: StudentTask, students: list[StudentSubmission]) -> Iterator[StudentTask]:
    """What grading a class here needs started before its first student, started now so that it warms up while the
    driver checks the graders: the fork server of the grading processes, and the class's nursery (torch imported
    once for every student, sandbox/nursery.py) where the students' modules import torch. Yields the task that
    uses them; a Ray backend's nodes start their own sandboxes."""
    if not isinstance(backend, LocalPool):
        yield task
        return
    grading_context()
    multiprocessing.forkserver.ensure_running()   # its preload starts now, in the background
    wanted = nursery.pays_off(path for s in students for e, path in s.modules.items() if e in task.configs)
    with nursery.for_class(task.isolation, task.limits, gpu=profiles.uses_gpu(task.profile),
                           wanted=wanted) as endpoint:
        yield dataclasses.replace(task, nursery=endpoint)
