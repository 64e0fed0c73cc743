"""A one-line progress display for batch grading: students done of total, failures so far, time left."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from cnngrade.records import StudentReport
from cnngrade.sinks import terminal_text

PROBLEMS = ("error", "timeout")


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


class Progress:
    """Rewrites one terminal line as reports arrive; silent unless ``enabled``.

    The estimate divides the time so far by the students done: with N workers in parallel the
    rate already includes the parallelism, so no knowledge of the pool is needed.
    """

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.clock = clock
        self.total = 0
        self.done = 0
        self.failures = 0
        self.started = clock()
        self._width = 0

    def start(self, total: int) -> None:
        self.total, self.started = total, self.clock()
        self._show()

    def update(self, report: StudentReport) -> None:
        self.done += 1
        self.failures += has_problem(report)
        self._show()

    def line(self) -> str:
        text = f"grading: {self.done}/{self.total} students"
        if self.failures:
            text += f", {self.failures} with errors or timeouts"
        elapsed = self.clock() - self.started
        if 0 < self.done < self.total:
            text += f", about {duration_text(elapsed / self.done * (self.total - self.done))} left"
        elif self.done and self.done >= self.total:
            text += f", done in {duration_text(elapsed)}"
        return text

    def _show(self) -> None:
        if not self.enabled:
            return
        text = terminal_text(self.line())   # only ever counts today; anything a student names must not act
        # Pad over the previous line: a shorter line would leave its tail on screen.
        self.stream.write("\r" + text.ljust(self._width))
        self._width = len(text)
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\n")
            self.stream.flush()
