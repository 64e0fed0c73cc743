"""A whole class through `cnngrade grade`: collection, report schema, gradebook, exit codes, broken students."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnngrade.cli import main
from cnngrade.config import PROJECT_ROOT, load_exercise
from cnngrade.errors import ExitCode
from cnngrade.records import STATUSES
from cnngrade.sandbox import cgroup_setup, cgroups

EX1 = "ex1_output_size"
SOLUTION = PROJECT_ROOT / "solutions" / f"{EX1}.py"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One batch: a correct student, a missing file, a syntax error, an import that raises, a stray file."""
    root = tmp_path_factory.mktemp("class")
    klass, out = root / "submissions", root / "out"
    for name in ("alice", "bob", "carol", "dave", "frank"):
        (klass / name).mkdir(parents=True)
    shutil.copy(SOLUTION, klass / "alice" / f"{EX1}.py")
    (klass / "bob" / "notes.txt").write_text("I forgot my homework")
    (klass / "carol" / f"{EX1}.py").write_text("def conv_output_size(size, kernel_size\n    return 1\n")
    (klass / "dave" / f"{EX1}.py").write_text("raise RuntimeError('my module explodes')\n")
    (klass / "frank" / "hw").mkdir()
    shutil.copy(SOLUTION, klass / "frank" / "hw" / f"{EX1}.py")      # nested one level down
    (klass / "eve.txt").write_text("not a folder")
    (klass / ".DS_Store").write_text("ignored")
    code = main(["grade", str(klass), "--out", str(out), "--exercises", "ex1", "--jobs", "2"])
    reports = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/report.json")}
    return code, out, reports


def statuses(report):
    return {t["status"] for t in report["exercises"][EX1]["tests"]}


@pytest.mark.slow
def test_batch_finishes_with_exit_zero_and_a_report_per_student(graded):
    code, out, reports = graded
    assert code == ExitCode.OK
    assert sorted(reports) == ["alice", "bob", "carol", "dave", "eve.txt", "frank"]
    assert (out / "gradebook.csv").is_file()


@pytest.mark.slow
def test_report_schema(graded):
    _, _, reports = graded
    cfg = load_exercise(EX1)
    for r in reports.values():
        assert {"student", "total", "exercises", "profile", "cnngrade_version"} <= set(r)
        assert {"device", "dataset", "name"} <= set(r["profile"])
        ex = r["exercises"][EX1]
        assert ex["max_score"] == pytest.approx(cfg.max_score) == r["total"]["max_score"]
        assert ex["score"] == pytest.approx(sum(t["score"] for t in ex["tests"]))
        for t in ex["tests"]:
            assert {"name", "score", "max_score", "status", "output"} <= set(t)
            assert t["status"] in STATUSES and 0 <= t["score"] <= t["max_score"]


@pytest.mark.slow
def test_verdicts_per_kind_of_student(graded):
    _, _, reports = graded
    assert reports["alice"]["total"]["score"] == reports["alice"]["total"]["max_score"]
    assert reports["frank"]["total"]["score"] == reports["frank"]["total"]["max_score"]
    assert statuses(reports["bob"]) == {"missing"} and reports["bob"]["total"]["score"] == 0
    for who, needle in (("carol", "SyntaxError"), ("dave", "my module explodes")):
        tests = reports[who]["exercises"][EX1]["tests"]
        assert statuses(reports[who]) == {"error"} and reports[who]["total"]["score"] == 0
        assert all(needle in t["output"] and not t["grader_error"] for t in tests)
    # An entry that is not a student's folder is that student's error, explained, not a crash of the batch.
    assert statuses(reports["eve.txt"]) == {"error"} and "not a folder" in reports["eve.txt"]["error"]


@pytest.mark.slow
def test_gradebook_matches_reports(graded):
    _, out, reports = graded
    rows = list(csv.DictReader(io.StringIO((out / "gradebook.csv").read_text())))
    assert [r["student"] for r in rows] == sorted(reports)
    for row in rows:
        r = reports[row["student"]]
        assert float(row[EX1]) == pytest.approx(r["exercises"][EX1]["score"])
        assert float(row["total"]) == pytest.approx(r["total"]["score"])
        assert float(row["max_score"]) == pytest.approx(r["total"]["max_score"])


@pytest.mark.parametrize("argv, code", [
    (["grade", "{tmp}/nope", "--out", "{tmp}/o"], ExitCode.INPUT_ERROR),
    (["grade", "{tmp}/file.txt", "--out", "{tmp}/o"], ExitCode.INPUT_ERROR),
    (["grade", "{tmp}/empty", "--out", "{tmp}/o"], ExitCode.INPUT_ERROR),
    (["grade", "{tmp}/empty", "--out", "{tmp}/o", "--exercises", "ex42"], ExitCode.USAGE_ERROR),
    (["grade", "{tmp}/empty", "--out", "{tmp}/o", "--jobs", "0"], ExitCode.USAGE_ERROR),
])
def test_bad_input_is_one_line_and_a_documented_exit_code(tmp_path, capsys, argv, code):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    got = main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err.strip()
    assert got == code
    assert err.startswith("cnngrade: error: ") and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o" / "gradebook.csv").exists()


def test_resume_regrades_a_report_from_another_profile(tmp_path):
    from cnngrade.grading.pipeline import finished_report
    from cnngrade.records import ExerciseResult, StudentReport, TestResult
    from cnngrade.report.files import write_student_report
    from cnngrade.training.profiles import Profile

    cpu = Profile("cpu", "cpu", "synthetic", None, "bwrap")
    tests = [TestResult("test_a", 1.0, 1.0, "passed")]
    write_student_report(tmp_path, StudentReport("amy", {EX1: ExerciseResult(EX1, "t", tests)}, cpu.to_json(), "0"))
    assert finished_report(tmp_path, "amy", [EX1], cpu) is not None
    assert finished_report(tmp_path, "amy", [EX1], dataclasses.replace(cpu, name="gpu", device="cuda")) is None
    assert finished_report(tmp_path, "amy", [EX1], dataclasses.replace(cpu, isolation="rlimits")) is None
    assert finished_report(tmp_path, "amy", [EX1, "ex3_receptive_fields"], cpu) is None


@pytest.mark.slow
def test_demo_grades_the_reference_and_the_stub(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path / "demo"), "--exercises", "ex1", "--jobs", "2"])
    table = capsys.readouterr().out
    assert code == ExitCode.OK
    reports = {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "demo" / "reports").glob("*/report.json")}
    assert sorted(reports) == ["reference", "stub"]
    assert reports["reference"]["total"]["score"] == reports["reference"]["total"]["max_score"] > 0
    assert reports["stub"]["total"]["score"] == 0
    assert "reference" in table and "stub" in table
    # A second run replaces the demo folder; a folder the demo did not make is refused.
    assert main(["demo", "--out", str(tmp_path / "demo"), "--exercises", "ex1", "--quiet"]) == ExitCode.OK
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    assert main(["demo", "--out", str(tmp_path / "mine"), "--exercises", "ex1"]) == ExitCode.INPUT_ERROR
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_score_table_shows_pending_review_apart():
    from cnngrade.records import ExerciseResult, StudentReport, TestResult
    from cnngrade.report.table import score_table

    tests = [TestResult("test_a", 1.0, 1.0, "passed"), TestResult("TEXT", 0.0, 2.0, "manual")]
    report = StudentReport("amy", {EX1: ExerciseResult(EX1, "t", tests)}, {}, "0")
    head, _, row = score_table([report], [EX1]).splitlines()
    assert "pending review" in head
    assert row.split()[1:4] == ["1/3", "1/3", "2"]


SLEEPER = "import time\n\ndef conv_output_size(size, kernel_size, padding=0, stride=1):\n    time.sleep(60)\n"


def batch_processes() -> set[int]:
    """Processes a batch runs: the driver, the fork server and its grading processes, sandboxes, zygotes, nurseries."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if int(pid) != os.getpid() and (b"cnngrade" in cmdline or b"forkserver" in cmdline):
            found.add(int(pid))
    return found


def made_groups() -> set[str]:
    base, _ = cgroup_setup.active()
    return set(cgroups.stale_groups(base)) if base is not None else set()


@pytest.mark.slow
@pytest.mark.parametrize("stop, code, said", [("ctrl-c", ExitCode.INTERRUPTED, "interrupted"),
                                              ("sigterm", ExitCode.TERMINATED, "terminated")])
def test_a_stopped_batch_ends_at_once_and_leaves_nothing_behind(tmp_path, stop, code, said):
    """Ctrl-C (SIGINT to the terminal's process group) or SIGTERM (to the driver) while students are being graded:
    the command ends within seconds, queued students are never started, and no process, cgroup or temporary
    folder of the batch is left (the grading processes are killed; their folders and groups removed)."""
    klass, out, scratch = tmp_path / "class", tmp_path / "out", tmp_path / "tmp"
    for i in range(6):   # each would take about a minute: every call of the grader times out
        (klass / f"s{i}").mkdir(parents=True)
        (klass / f"s{i}" / f"{EX1}.py").write_text(SLEEPER)
    scratch.mkdir()
    for folder in (tmp_path, scratch):
        folder.chmod(0o711)
    groups, processes = made_groups(), batch_processes()
    driver = subprocess.Popen([sys.executable, "-m", "cnngrade", "grade", str(klass), "--out", str(out), "--exercises",
                               "ex1", "--jobs", "2"], env={**os.environ, "TMPDIR": str(scratch)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not list(scratch.glob("cnngrade-worker-*")):   # a grading process has started a worker
            assert driver.poll() is None and time.monotonic() < deadline, "the batch never started a worker"
            time.sleep(0.2)
        time.sleep(1.0)
        if stop == "ctrl-c":
            os.killpg(driver.pid, signal.SIGINT)
        else:
            driver.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        _, err = driver.communicate(timeout=60)
        ended = time.monotonic() - sent
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    assert driver.returncode == code and f"cnngrade: {said}" in err.decode(), (driver.returncode, err[-500:])
    assert ended < 10, f"the batch took {ended:.1f} s to stop"
    deadline = time.monotonic() + 20   # the fork server and the nursery notice the driver's end on their own
    while (batch_processes() - processes or list(scratch.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not batch_processes() - processes
    assert not list(scratch.iterdir()), sorted(p.name for p in scratch.iterdir())
    assert made_groups() <= groups
    assert not list(out.glob("*/report.json"))   # nobody finished: nobody has a (wrong) report
