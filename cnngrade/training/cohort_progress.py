"""The cohort service's epochs in the driver's progress line: shared cells the service writes, a driver thread reads."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol


class Task(Protocol):
    """What ``on_task`` gives back (``report.progress.Steps``): units done of ``total``, set as they end."""

    total: int
    done: int

    def set(self, done: int) -> None: ...


class EpochBoard:
    """Epochs of the cohort training now: [generation, members, epochs done, epochs total] in shared memory.

    The driver creates it and hands it to the service process alone, as a start argument: the service writes it,
    a thread of the driver reads it (``watch``) into the progress line. No grading process or worker receives it
    (it travels only in the service's start arguments; the fork server closes its copy of the descriptor once the
    service is forked, and Python's descriptors are not inherited across exec), so no student code can write what
    the line shows.
    """

    POLL = 0.5   # seconds between the driver's looks

    def __init__(self, ctx: Any):
        self._cells = ctx.Array("q", 4)

    def begin(self, members: int) -> Callable[[int, int], None]:
        """Service side: a group of ``members`` starts training; returns its ``on_epoch(done, total)``."""
        with self._cells.get_lock():
            self._cells[:] = [self._cells[0] + 1, members, 0, 0]

        def on_epoch(done: int, total: int) -> None:
            with self._cells.get_lock():
                self._cells[2:4] = [done, total]
        return on_epoch

    def finish(self) -> None:
        """Service side: the group ended (trained, refused, timed out or failed)."""
        with self._cells.get_lock():
            self._cells[2] = self._cells[3]

    def read(self) -> tuple[int, int, int, int]:
        with self._cells.get_lock():
            generation, members, done, total = self._cells[:]
        return generation, members, done, total

    def watch(self, on_task: Callable[[str, int, str], Task], interval: float | None = None) -> Watch:
        """Driver side: a thread showing every group's epochs through ``on_task`` until ``stop()``."""
        return Watch(self.read, on_task, self.POLL if interval is None else interval)


class Watch:
    """The driver's thread that turns an ``EpochBoard``'s cells into progress tasks, one per group trained."""

    def __init__(self, read: Callable[[], tuple[int, int, int, int]], on_task: Callable[[str, int, str], Task],
                 interval: float):
        self.read, self.on_task, self.interval = read, on_task, interval
        self._stop = threading.Event()
        self._seen = 0                     # the generation shown
        self._task: Task | None = None     # its task, while it is open
        self._thread = threading.Thread(target=self._run, daemon=True, name="cnngrade-cohort-progress")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.look()
        self._close()

    def look(self) -> None:
        generation, members, done, total = self.read()
        if generation != self._seen:
            self._close()                       # the group shown ended between two looks
            if total <= 0:
                return                          # begun, no epoch planned yet: open it at the next look
            self._seen = generation
            self._task = self.on_task(f"cohort training of {members} student(s)", total, "epochs")
        task = self._task
        if task is not None:
            if done != task.done or total > task.total:
                task.total = max(task.total, total)   # grows when a chunk is redone in halves
                task.set(done)
            if done >= task.total:
                self._task = None

    def _close(self) -> None:
        if self._task is not None:
            self._task.set(self._task.total)
            self._task = None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
