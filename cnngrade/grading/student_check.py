"""`cnngrade check` for students: run the public tests on one's own files and say plainly what to fix.

It goes through the same sandboxed worker and scoring as grading, with the hidden tests left
out (``run.public_part``), so it needs only the public tests: the grader.yaml files and test
files of a student bundle, with or without the hidden tests in them. No GPU, no data download.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import yaml

from cnngrade.config import GRADERS_DIR, available_exercises, load_exercise
from cnngrade.errors import InputError, IsolationUnavailable, UsageError
from cnngrade.grading.process import public_part
from cnngrade.intake.collect import collect_student
from cnngrade.records import ExerciseResult, Status, StudentReport
from cnngrade.report.html import split_counterexample
from cnngrade.sandbox.launch import ISOLATIONS, Limits, limits_for
from cnngrade.sandbox.preflight import check_isolation
from cnngrade.training.profiles import select_profile

MESSAGE_LINES = 8
AT_GRADING = "checked at grading"
# Where check keeps the answer tests it did not run, in the report's profile (a check report is never saved).
AT_GRADING_KEY = "checked_at_grading"
NO_SANDBOX_NOTE = ("note: bubblewrap is not available here, so your code runs without a sandbox, as you (fine for "
                   "your own code; grading runs it in one)")
WINDOWS_MESSAGE = ("cnngrade check runs your code in a separate worker process, which needs Linux or macOS: on "
                   "Windows, run the same commands in WSL (wsl --install, then Python and cnngrade inside Ubuntu)")
STATUS_WORDS: dict[str, str] = {Status.PASSED: "ok", Status.FAILED: "FAILED", Status.ERROR: "ERROR",
                                 Status.TIMEOUT: "TIMEOUT", Status.MISSING: "MISSING", Status.MANUAL: "review",
                                 Status.ADVICE: "advice"}


def check_folder(path: Path, *, exercises: list[str] | None = None, graders_dir: Path = GRADERS_DIR,
                 isolation: str | None = None, limits: Limits | None = None) -> StudentReport:
    """Run the public tests of ``exercises`` (default: every exercise whose file is in ``path``).

    ``isolation`` None: the strongest that works on this machine (see ``best_isolation``).
    """
    from cnngrade.grading.backends import grade_student

    refuse_windows()
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if not path.is_dir():
        raise InputError(f"{path} is not a folder; give the folder that holds your exN_*.py files")
    known = available_exercises(graders_dir)
    if not known:
        raise UsageError(f"no public tests found in {graders_dir}; reinstall the student bundle")
    with tempfile.TemporaryDirectory(prefix="cnngrade-check-") as staging:   # notebooks become .py here
        sub = collect_student(path, exercises or known, staging=Path(staging))
        chosen = exercises or [e for e in known if e in sub.modules or e in sub.problems]
        if not chosen:
            raise InputError(f"no exercise file in {path.resolve()}: expected files named like "
                             f"{known[0]}.py or .ipynb (cd into your exercise folder, or give its path)")
        # The grading process reads the graders from disk: it gets a copy whose YAML lists no answer test.
        public_graders = Path(staging) / "graders"
        answers = {e: stage_without_answers(graders_dir / e, public_graders / e) for e in chosen}
        configs = {e: public_part(load_exercise(e, public_graders)) for e in chosen}
        isolation = isolation or best_isolation()
        # Always the cpu profile: a student's machine may have a GPU but no CIFAR-10, and check needs neither.
        report = grade_student(sub, configs, graders_dir=public_graders, isolation=isolation,
                               limits=limits or limits_for(1), profile=select_profile("cpu", None, isolation),
                               public_only=True)
    report.student = str(path.resolve())
    report.profile = {**report.profile, "tests": "public only",
                      AT_GRADING_KEY: {e: a for e, a in answers.items() if a}}
    return report


def refuse_windows() -> None:
    """One line instead of a traceback: the worker protocol needs inheritable pipes, select() on them, rlimits."""
    if os.name == "nt":
        raise UsageError(WINDOWS_MESSAGE)


def stage_without_answers(source: Path, target: Path) -> list[list]:
    """Copy one exercise's graders to ``target`` with its answer tests left out of grader.yaml; returns them
    as [name, points].

    An answer test compares a value the student wrote down (ANSWERS) with the right one: run here,
    its message (or only its pass/fail) would give the value away, so check lists it unrun. Its
    function, if the file has it, is deselected like a hidden test's.
    """
    answers = [[t.name, t.points] for t in load_exercise(source.name, source.parent).tests if t.kind == "answer"]
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    data = yaml.safe_load((source / "grader.yaml").read_text(encoding="utf-8"))
    data["tests"] = {name: spec for name, spec in data["tests"].items()
                     if (spec or {}).get("kind", "behaviour") != "answer"}
    (target / "grader.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return answers


def best_isolation() -> str:
    """The first isolation in ISOLATIONS that can start a worker here.

    Grading insists on the sandbox it was asked for; a student checking their own code on their
    own laptop (often without bubblewrap) is better served by a weaker one than by no check at all:
    without root, rlimits runs their code as themselves, with resource limits and no sandbox.
    """
    refuse_windows()
    problems = []
    for isolation in ISOLATIONS:
        try:
            check_isolation(isolation)
            return isolation
        except IsolationUnavailable as exc:
            problems.append(str(exc))
    raise IsolationUnavailable(f"no way to run your code here: {problems[-1]}")


def _short(exercise: str) -> str:
    return exercise.split("_")[0]


def counterexample_line(example: str) -> str:
    """'Falsifying example: test_x(\n    size=1,\n    seed=0,\n)\nDraw 1: 3' -> 'size=1, seed=0; Draw 1: 3'."""
    inner = example.splitlines()
    end = next((i for i, ln in enumerate(inner) if ln.strip() == ")"), len(inner))
    args = " ".join(ln.strip() for ln in inner[1:end]).rstrip(",") if end > 1 else inner[0]
    extra = [ln.strip() for ln in inner[end + 1:] if ln.strip()]
    return "; ".join([args, *extra])


def _message_lines(text: str) -> list[str]:
    message, example = split_counterexample(text)
    lines = [ln for ln in message.splitlines() if ln.strip()]
    if example and not message.startswith("Not implemented yet"):   # any input fails a stub
        lines.append("smallest failing input found: " + counterexample_line(example))
    lines = [ln.rstrip() for ln in lines]
    if len(lines) > MESSAGE_LINES:
        lines = lines[:MESSAGE_LINES] + ["... (the whole message: run with --full)"]
    return lines


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return out


def check_text(report: StudentReport, *, full: bool = False) -> str:
    """The terminal report: a table of every public test, then what to fix with the first lines of each message."""
    rows = [["exercise", "test", "status", "points"]]
    failing: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}   # tests failing with the same message are told once
    manual: list[str] = []
    for ex in report.exercises.values():
        for t in ex.tests:
            if t.status == Status.MANUAL:
                note = t.output.replace("Awaiting review by course staff.", "").strip() or "answered"
                manual.append(f"  {_short(ex.exercise)}  {t.name} ({t.max_score:g} pt): {note}")
                continue
            rows.append([_short(ex.exercise), t.name, STATUS_WORDS.get(t.status, t.status),
                         f"{t.score:g}/{t.max_score:g}"])
            if t.status != Status.PASSED:
                body = tuple(t.output.strip().splitlines() if full else _message_lines(t.output))
                failing.setdefault((_short(ex.exercise), t.status, body), []).append(t.name)
    for exercise, answers in report.profile.get(AT_GRADING_KEY, {}).items():
        rows += [[_short(exercise), name, AT_GRADING, f"-/{points:g}"] for name, points in answers]
    fixes: list[str] = []
    for (exercise, status, body), names in failing.items():
        which = ", ".join(names) if len(names) <= 3 else f"{', '.join(names[:2])} and {len(names) - 2} more tests"
        fixes.append(f"\n{exercise} {which}  [{STATUS_WORDS.get(status, status)}]")
        fixes += [f"    {ln}" for ln in body or ["(no message)"]]
    lines = [f"cnngrade check: the public tests on {report.student}", ""]
    # Which of .py and .ipynb was checked, experiment cells left out: what a notebook student must know first.
    lines += [f"note: {n}" for n in report.notes] + ([""] if report.notes else [])
    lines += _table(rows) if len(rows) > 1 else ["(these exercises have no public tests)"]
    if fixes:
        lines += ["", "What to fix:", *fixes]
    if manual:
        lines += ["", "Free-text answers (marked by course staff after the deadline):", *manual]
    lines += ["", summary(report)]
    return "\n".join(lines)


def summary(report: StudentReport) -> str:
    auto = [t for ex in report.exercises.values() for t in ex.tests if t.status != Status.MANUAL]
    failed = sum(t.status != Status.PASSED for t in auto)
    score = sum(t.score for t in auto)
    top = sum(t.max_score for t in auto)
    verdict = "all public tests pass" if not failed else f"{failed} of {len(auto)} public test(s) to fix"
    text = (f"{verdict} ({score:g} of {top:g} public points). Hidden tests run when your work is graded, "
            f"so passing these is necessary but not sufficient.")
    answers = [a for group in report.profile.get(AT_GRADING_KEY, {}).values() for a in group]
    if answers:
        text += (f" {len(answers)} answer(s) in ANSWERS ({sum(p for _, p in answers):g} points) are {AT_GRADING}: "
                 "their values are not shown here.")
    return text


def failed_tests(results: dict[str, ExerciseResult]) -> int:
    return sum(t.status not in (Status.PASSED, Status.MANUAL) for ex in results.values() for t in ex.tests)
