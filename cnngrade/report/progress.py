"""Progress of batch grading and of long steps: done of total, failures so far, rate and time left.

Our own few lines rather than rich or tqdm: neither is a dependency of cnngrade (tqdm is only pulled in by other
packages), the display is one line, and a log file or CI job must get plain lines without control codes, which
this module decides for itself.
"""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from cnngrade.records import Status, StudentReport
from cnngrade.sinks import terminal_text

PROBLEMS = (Status.ERROR, Status.TIMEOUT)


def has_problem(report: StudentReport) -> bool:
    """An error or timeout anywhere in the student's report, or an unusable submission."""
    return bool(report.error) or any(t.status in PROBLEMS for e in report.exercises.values() for t in e.tests)


def duration_text(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def estimate(done: int, left: int, elapsed: float) -> tuple[float, float] | None:
    """(rate per second, seconds left) after ``done`` items in ``elapsed`` seconds with ``left`` to go, or None
    before the first item. The rate is measured, not predicted: with N students graded in parallel it already
    includes the parallelism, so nothing about the pool or the cluster is needed."""
    if done <= 0 or elapsed <= 0:
        return None
    rate = done / elapsed
    return rate, max(0, left) / rate


def rate_text(rate: float, unit: str) -> str:
    """A rate in the largest time unit that keeps it at least 1, e.g. '2.5 students/min'."""
    for per, scale in (("s", 1), ("min", 60), ("h", 3600)):
        if rate * scale >= 1 or per == "h":
            return f"{rate * scale:.1f} {unit}/{per}"
    raise AssertionError("unreachable")


class Steps:
    """A long step counted in units (a cohort training's epochs): ``advance()`` as each unit ends."""

    def __init__(self, progress: Progress, label: str, total: int, unit: str):
        self.progress, self.label, self.total, self.unit = progress, label, total, unit
        self.done = 0
        self.started = progress.clock()

    def advance(self, n: int = 1) -> None:
        self.set(self.done + n)

    def set(self, done: int) -> None:
        self.done = min(done, self.total)
        self.progress._step_changed(self)

    def line(self) -> str:
        text = f"{self.label}: {self.done}/{self.total} {self.unit}"
        guess = estimate(self.done, self.total - self.done, self.progress.clock() - self.started)
        if guess and self.done < self.total:
            text += f", {rate_text(guess[0], self.unit)}, about {duration_text(guess[1])} left"
        return text


class Progress:
    """Students graded of the class, with failures, rate and time left.

    On a terminal (or ``enabled=True``) one line is rewritten in place; elsewhere (``enabled=None`` and stderr
    is a file or pipe) one plain line is written per student and per step, with no control codes; ``enabled=False``
    is silent. Reports kept by ``--resume`` (``resumed``) count as done but not in the rate.
    """

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.stream = stream or sys.stderr
        self.enabled = True if enabled is None else enabled
        self.plain = enabled is None and not self.stream.isatty()
        self.clock = clock
        self.total = 0
        self.done = 0
        self.kept = 0
        self.failures = 0
        self.started = clock()
        self.steps: list[Steps] = []
        self._width = 0
        self._lock = threading.Lock()

    def start(self, total: int) -> None:
        self.total, self.started = total, self.clock()
        self._show()

    def update(self, report: StudentReport) -> None:
        self.done += 1
        self.failures += has_problem(report)
        self._show(f"graded {report.student}")

    def resumed(self, report: StudentReport) -> None:
        """A report kept from an earlier run: done, but no measure of how fast grading goes."""
        self.done += 1
        self.kept += 1
        self.failures += has_problem(report)
        self._show(f"kept {report.student} (graded earlier)")

    def task(self, label: str, total: int, unit: str = "epochs") -> Steps:
        """A long step to show beside the students (a cohort training's epochs); advance it as units end."""
        steps = Steps(self, label, total, unit)
        with self._lock:
            self.steps.append(steps)
        steps.set(0)
        return steps

    def line(self) -> str:
        text = f"grading: {self.done}/{self.total} students"
        if self.kept:
            text += f", {self.kept} kept from an earlier run"
        if self.failures:
            text += f", {self.failures} with errors or timeouts"
        elapsed = self.clock() - self.started
        guess = estimate(self.done - self.kept, self.total - self.done, elapsed)
        if guess and self.done < self.total:
            text += f", {rate_text(guess[0], 'students')}, about {duration_text(guess[1])} left"
        elif self.done and self.done >= self.total:
            text += f", done in {duration_text(elapsed)}"
        return text

    def _step_changed(self, steps: Steps) -> None:
        finished = steps.done >= steps.total
        if self.plain:
            self._write(steps.line() + ("" if not finished else ", done"))
        if finished:
            with self._lock:
                if steps in self.steps:
                    self.steps.remove(steps)
        self._show()

    def _show(self, event: str = "") -> None:
        if not self.enabled:
            return
        if self.plain:
            if event:
                self._write(f"{event}: {self.line()}")
            return
        with self._lock:
            text = " | ".join([self.line()] * bool(self.total) + [s.line() for s in self.steps])
            text = terminal_text(text)   # student ids and step labels must not act on the terminal
            # Pad over the previous line: a shorter line would leave its tail on screen.
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
            self.stream.flush()

    def _write(self, text: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self.stream.write(terminal_text(text) + "\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self._width and not self.plain:
            self.stream.write("\n")
            self.stream.flush()
