"""Whose fault a worker's timeout is: the student's, or a machine too busy to give the worker a CPU.

A worker that ran out of time while it got almost no CPU, its threads waiting to run, was starved by the
machine: that is a grader error (``cnngrade grade --resume`` grades it again), never the student's timeout.
"""
from __future__ import annotations

import dataclasses
import time

from cnngrade.errors import SubmissionFault, WorkerTimeout
from cnngrade.records import Status
from cnngrade.sandbox.cgroups import Group, read_file

OVERLOADED = "the machine was overloaded"
MIN_CPU_SHARE = 0.25   # of one core over the timed-out call: less, while it waited to run, is the machine's doing
MIN_WAITING = 0.5      # share of a short look at the end that its threads spent runnable, waiting for a CPU
LOOK_SECONDS = 0.5


class MachineOverloaded(SubmissionFault):
    """A worker ran out of time because the machine gave it no CPU: not the student's timeout.

    A SubmissionFault only so that every grader that handles worker failures handles it too; its test is
    recorded with status error and flagged as a grader error (grading.process.flag_overloaded), which
    ``cnngrade grade --resume`` grades again.
    """

    status = Status.ERROR


@dataclasses.dataclass(frozen=True)
class Sample:
    """The clock and the worker's CPU time at one moment (taken at every request: one file read)."""

    wall: float
    cpu: float | None


def overloaded(wall: float, cpu: float | None, waiting: float | None) -> bool:
    """Whether a worker that ran out of time in ``wall`` seconds was starved by the machine, not slow itself.

    It got under a quarter of one core (``cpu`` seconds) and its threads, looked at as it timed out, spent at
    least half the time runnable but waiting for a CPU (``waiting``): it had work to do and the CPU went to
    others. A worker that sleeps or blocks waits for nothing and keeps its timeout; so does one without these
    numbers (no cgroup).
    """
    if wall <= 0 or cpu is None or waiting is None:
        return False
    return cpu < MIN_CPU_SHARE * wall and waiting >= MIN_WAITING


def sample(group: Group | None) -> Sample:
    return Sample(time.monotonic(), group.cpu_seconds() if group is not None else None)


def waiting(group: Group | None, seconds: float = LOOK_SECONDS) -> float | None:
    """The share of the next ``seconds`` the group's threads spend runnable but waiting for a CPU (summed)."""
    if group is None:
        return None
    before, start = _waits(group), time.monotonic()
    time.sleep(seconds)
    after, span = _waits(group), time.monotonic() - start
    return sum(after[t] - before[t] for t in after.keys() & before.keys()) / span


def _waits(group: Group) -> dict[int, float]:
    return {tid: _schedstat(tid)[1] for tid in group.tasks()}


def _schedstat(tid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds waiting for one) of a thread, from /proc/<tid>/schedstat."""
    try:
        on_cpu, waited = read_file(f"/proc/{tid}/schedstat").split()[:2]
        return int(on_cpu) / 1e9, int(waited) / 1e9
    except (OSError, ValueError):
        return 0.0, 0.0


def judge_timeout(exc: WorkerTimeout, before: Sample, group: Group | None) -> SubmissionFault:
    """The student's timeout, with the CPU time the worker got beside the wall time; or, when the worker got
    almost no CPU and its threads wait to run, the machine's overload (a grader error, regraded by --resume)."""
    after = sample(group)
    if before.cpu is None or after.cpu is None:
        return exc
    wall, cpu = after.wall - before.wall, after.cpu - before.cpu
    usage = f"the worker got {cpu:.1f} s of CPU time in {wall:.1f} s"
    starved = waiting(group) if cpu < MIN_CPU_SHARE * wall else 0.0
    if overloaded(wall, cpu, starved):
        return MachineOverloaded(
            f"{OVERLOADED}: {exc}, but {usage}, and its threads were waiting for a CPU {starved:.0%} of the "
            "time. This is not the student's timeout; grade again on a less busy machine (cnngrade grade "
            "--resume regrades it) or with fewer --jobs")
    return WorkerTimeout(f"{exc} ({usage})")
