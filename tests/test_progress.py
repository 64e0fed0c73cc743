"""The progress display: rate and time left from measured work, kept reports, long steps, plain lines off a terminal."""
from __future__ import annotations

import io

from cnngrade import records
from cnngrade.report.progress import Progress, estimate, rate_text


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def report(student: str) -> records.StudentReport:
    test = records.TestResult("t", 1.0, 1.0, "passed")
    return records.StudentReport(student, {"ex1": records.ExerciseResult("ex1", "", [test])}, {}, "0")


def test_estimate_is_the_measured_rate_applied_to_what_is_left():
    assert estimate(0, 10, 30.0) is None            # nothing measured yet: no guess
    assert estimate(3, 0, 0.0) is None
    rate, left = estimate(4, 36, 80.0)               # 4 students in 80 s, 36 to go: 0.05/s, 720 s
    assert rate == 0.05 and left == 720.0
    assert estimate(40, 0, 800.0) == (0.05, 0.0)
    assert [rate_text(r, "students") for r in (2.0, 0.05, 1 / 7200)] == [
        "2.0 students/s", "3.0 students/min", "0.5 students/h"]


def test_kept_reports_count_as_done_but_not_in_the_rate():
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, enabled=True, clock=clock)
    progress.start(10)
    for name in "abcde":                              # --resume kept five reports at once
        progress.resumed(report(name))
    clock.now += 60
    progress.update(report("f"))                      # one graded in 60 s, four left: 4 minutes
    assert progress.line() == "grading: 6/10 students, 5 kept from an earlier run, 1.0 students/min, about 4m00s left"


def test_a_long_step_shows_its_units_rate_and_time_left_beside_the_students():
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, enabled=True, clock=clock)
    progress.start(2)
    training = progress.task("cohort training ex6", 20)
    clock.now += 10
    training.advance(5)                               # 5 epochs in 10 s, 15 to go
    shown = stream.getvalue().split("\r")[-1].strip()
    assert shown == "grading: 0/2 students | cohort training ex6: 5/20 epochs, 30.0 epochs/min, about 30s left"
    training.set(20)                                  # a finished step leaves the line
    assert stream.getvalue().split("\r")[-1].strip() == "grading: 0/2 students"


def test_steps_off_a_terminal_are_plain_lines():
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, clock=clock)          # StringIO is no terminal
    training = progress.task("cohort training", 2)
    clock.now += 4
    training.advance()
    training.advance()
    assert stream.getvalue().splitlines() == [
        "cohort training: 0/2 epochs", "cohort training: 1/2 epochs, 15.0 epochs/min, about 4s left",
        "cohort training: 2/2 epochs, done"]
