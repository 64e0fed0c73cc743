"""The command line: complete help, one-line errors a user can act on, and the batch progress line."""
from __future__ import annotations

import argparse
import io
import subprocess
import sys

import pytest

from cnngrade import records
from cnngrade.cli import COMMANDS, build_parser, main
from cnngrade.errors import ExitCode
from cnngrade.report.progress import Progress, duration_text


def subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_top_level_help_lists_every_command_with_a_summary(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        line = next((ln for ln in out.splitlines() if ln.strip().startswith(name)), None)
        assert line is not None, f"{name} missing from cnngrade --help"
    assert "exit status" in out
    epilog = " ".join(out[out.index("exit status"):].split())
    assert [code for code in ExitCode if f" {int(code)} " not in epilog] == []   # every code is explained


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_of_every_command_is_explained(name):
    parser = subparsers()[name]
    assert parser.description and len(parser.description) > 30, f"{name} has no description"
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        assert action.help, f"cnngrade {name}: {'/'.join(action.option_strings) or action.dest} has no help"


def grade_error(args: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(args)
    except SystemExit as exc:   # argparse's own errors leave through exit()
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.err


def assert_one_line(err: str, *words: str) -> None:
    assert err.startswith("cnngrade: error: "), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err


@pytest.mark.slow   # the isolation probe and grader check come first
def test_nonexistent_folder(tmp_path, capsys):
    code, err = grade_error(["grade", str(tmp_path / "nope"), "--out", str(tmp_path / "out"),
                             "--exercises", "ex1"], capsys)
    assert code == 3
    assert_one_line(err, "does not exist")


@pytest.mark.slow   # the isolation probe and grader check come first
def test_a_file_instead_of_a_folder(tmp_path, capsys):
    (tmp_path / "class.txt").write_text("alice\n")
    code, err = grade_error(["grade", str(tmp_path / "class.txt"), "--out", str(tmp_path / "out"),
                             "--exercises", "ex1"], capsys)
    assert code == 3
    assert_one_line(err, "class.txt")


@pytest.mark.slow   # the isolation probe and grader check come first
def test_unwritable_out(tmp_path, capsys):
    (tmp_path / "class" / "alice").mkdir(parents=True)
    (tmp_path / "taken").write_text("")
    code, err = grade_error(["grade", str(tmp_path / "class"), "--out", str(tmp_path / "taken" / "out"),
                             "--exercises", "ex1"], capsys)
    assert code == 3
    assert_one_line(err, "cannot write")
    code, err = grade_error(["grade", str(tmp_path / "class"), "--out", str(tmp_path / "taken"),
                             "--exercises", "ex1"], capsys)
    assert code == 3
    assert_one_line(err, "is a file, not a folder")


@pytest.mark.parametrize("args, words", [
    (["--jobs", "0"], ["--jobs must be at least 1"]),
    (["--jobs", "many"], ["invalid int value", "cnngrade grade --help"]),
    (["--exercises", "ex9"], ["unknown exercise 'ex9'", "ex1"]),
    (["--isolation", "docker"], ["invalid choice"]),
])
def test_bad_arguments(tmp_path, capsys, args, words):
    code, err = grade_error(["grade", str(tmp_path), "--out", str(tmp_path / "out"), *args], capsys)
    assert code == 2
    assert_one_line(err, *words)


def test_unknown_command_and_missing_argument(capsys):
    code, err = grade_error(["regrade"], capsys)
    assert code == 2
    assert_one_line(err, "invalid choice", "regrade")
    code, err = grade_error(["grade", "somewhere"], capsys)
    assert code == 2
    assert_one_line(err, "--out")


@pytest.mark.slow
def test_the_installed_entry_point_prints_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cnngrade", "check", str(tmp_path / "missing")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 3 and proc.stdout == ""
    assert_one_line(proc.stderr, "does not exist")


def report(student: str, status: str) -> records.StudentReport:
    test = records.TestResult("t", 1.0 if status == "passed" else 0.0, 1.0, status)
    return records.StudentReport(student, {"ex1": records.ExerciseResult("ex1", "", [test])}, {}, "0")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_counts_failures_and_estimates_time_left():
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress(stream, enabled=True, clock=clock)
    progress.start(4)
    clock.now += 30
    progress.update(report("a", "passed"))
    assert progress.line() == f"grading: 1/4 students, 2.0 students/min, about {duration_text(30 * 3)} left"
    clock.now += 10
    progress.update(report("b", "timeout"))
    assert progress.line() == (f"grading: 2/4 students, 1 with errors or timeouts, 3.0 students/min, "
                               f"about {duration_text(20 * 2)} left")
    progress.update(report("c", "error"))
    progress.update(report("d", "failed"))   # a wrong answer is not a failure of the run
    progress.finish()
    shown = stream.getvalue()
    assert shown.count("\r") == 5 and shown.endswith("\n")
    assert "4/4 students, 2 with errors or timeouts, done in 40s" in shown


def test_progress_off_a_terminal_is_one_plain_line_per_student():
    stream, clock = io.StringIO(), FakeClock()   # isatty() is False, as for a log file or a pipe
    progress = Progress(stream, clock=clock)
    progress.start(2)
    clock.now += 5
    progress.update(report("a\x1b[2J", "passed"))   # a student id cannot act on the terminal
    clock.now += 5
    progress.update(report("b", "passed"))
    progress.finish()
    lines = stream.getvalue().splitlines()
    assert lines == ["graded a\\x1b[2J: grading: 1/2 students, 12.0 students/min, about 5s left",
                     "graded b: grading: 2/2 students, done in 10s"]
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()
    quiet = io.StringIO()
    Progress(quiet, enabled=False).update(report("a", "passed"))
    assert quiet.getvalue() == ""


def test_duration_text():
    assert [duration_text(s) for s in (0, 59.4, 61, 3599, 3600 * 2 + 60 * 5)] == ["0s", "59s", "1m01s", "59m59s",
                                                                                  "2h05m"]
