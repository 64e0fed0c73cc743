"""Hostile submissions graded in one batch: they earn nothing they did not compute, and harm nothing.

tests/adversarial/ holds one student per file (see its README). The whole class is graded once,
through the real pipeline and the default isolation; each test then checks one promise.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import socket
import tempfile
import uuid
from pathlib import Path

import pytest

from cnngrade.config import PROJECT_ROOT
from cnngrade.grading.pipeline import grade_class
from cnngrade.records import StudentReport
from cnngrade.sandbox.client import Worker
from cnngrade.sandbox.launch import Limits
from cnngrade.sandbox.submission import Submission

EXERCISE = "ex1_output_size"
HOSTILE = Path(__file__).parent / "adversarial"
FILES = sorted(HOSTILE.glob("*.py"))
EXPECT = re.compile(r"^# expect: (zero|full)$", re.M)
LINK = re.compile(r"^# link: (\S+) -> (\S+)$", re.M)
SOLUTION = PROJECT_ROOT / "solutions" / f"{EXERCISE}.py"
GRADER_DIR = PROJECT_ROOT / "graders" / EXERCISE


@dataclasses.dataclass
class Batch:
    reports: dict[str, StudentReport]
    mark: str
    class_dir: Path
    out_dir: Path
    honest_text: str
    survivors: list[str]          # command lines carrying the mark after grading
    connections: int              # connections the listener received
    secrets: dict[str, str]       # what must appear in no report, by where it came from


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    return text


def marked_processes(mark: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if mark in cmdline:
            found.append(f"{pid}: {cmdline}")
    return found


def _first_line(path: Path) -> str:
    return next(line for line in path.read_text().splitlines() if line.strip().startswith('"""')).strip('" ')


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("adversarial")
    mark = f"cnngrade-adv-{uuid.uuid4().hex[:12]}"
    # A secret in the host's /tmp that every local user could read: only the sandbox hides it.
    canary_dir = Path(tempfile.mkdtemp(prefix="cnngrade-canary-"))
    os.chmod(canary_dir, 0o755)
    canary = canary_dir / "secret.txt"
    canary.write_text(f"{mark}-canary\n")
    os.chmod(canary, 0o644)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    class_dir, out_dir = root / "class", root / "reports"
    values = {"PROJECT": str(PROJECT_ROOT), "CLASS": str(class_dir), "OUT": str(out_dir), "CANARY": str(canary),
              "MARK": mark, "PORT": str(listener.getsockname()[1])}
    for path in FILES:
        student = class_dir / path.stem
        student.mkdir(parents=True)
        text = _fill(path.read_text(), values)
        (student / f"{EXERCISE}.py").write_text(text)
        for name, target in LINK.findall(text):
            (student / name).symlink_to(target)
    honest_text = (class_dir / "honest" / f"{EXERCISE}.py").read_text()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNGRADE_ADV_SECRET", f"{mark}-env")
        try:
            reports = grade_class(class_dir, out_dir, [EXERCISE], jobs=2)
        finally:
            survivors = marked_processes(mark)
            connections = 0
            while True:
                try:
                    listener.accept()[0].close()
                    connections += 1
                except BlockingIOError:
                    break
            listener.close()
            shutil.rmtree(canary_dir, ignore_errors=True)
    yield Batch({r.student: r for r in reports}, mark, class_dir, out_dir, honest_text, survivors, connections,
                {"canary": f"{mark}-canary", "environment": f"{mark}-env", "classmate": f"{mark}-classmate",
                 "solution": _first_line(SOLUTION), "grader": _first_line(next(GRADER_DIR.glob("test_*.py")))})
    for line in marked_processes(mark):  # never leave a test's stray process behind, even when it failed
        os.kill(int(line.split(":")[0]), 9)


def expectation(path: Path) -> str:
    found = EXPECT.findall(path.read_text())
    assert len(found) == 1, f"{path.name} needs exactly one '# expect: zero|full' line"
    return found[0]


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_earns_only_what_it_computed(batch, path):
    report = batch.reports[path.stem]
    ex = report.exercises[EXERCISE]
    auto = [t for t in ex.tests if t.status != "manual"]
    assert auto and not any(t.grader_error for t in auto), [(t.name, t.output[:300]) for t in auto if t.grader_error]
    if expectation(path) == "zero":
        assert ex.score == 0, {t.name: (t.status, t.output[:200]) for t in auto if t.score}
    else:
        assert all(t.score == t.max_score for t in auto), {t.name: t.output[:300] for t in auto if t.score < t.max_score}


@pytest.mark.slow
def test_every_student_has_a_report_and_a_gradebook_row(batch):
    assert sorted(batch.reports) == sorted(p.stem for p in FILES)
    rows = (batch.out_dir / "gradebook.csv").read_text().splitlines()[1:]
    assert sorted(r.split(",")[0] for r in rows) == sorted(p.stem for p in FILES)
    for path in FILES:
        data = json.loads((batch.out_dir / path.stem / "report.json").read_text())
        assert data["student"] == path.stem and data["exercises"][EXERCISE]["tests"], path.stem
        assert data["profile"]["isolation"] == "bwrap" and data["warning"] == ""


@pytest.mark.slow
def test_nothing_secret_reaches_a_report(batch):
    text = "\n".join(p.read_text(errors="replace") for p in batch.out_dir.rglob("*") if p.is_file())
    leaked = {where: secret for where, secret in batch.secrets.items() if secret in text}
    assert not leaked, leaked
    # The honest student's own report holds no secret either; the hostile ones did try to print them.
    assert "STOLEN" in batch.reports["read_solutions"].exercises[EXERCISE].student_output


@pytest.mark.slow
def test_nothing_outside_the_sandbox_was_written(batch):
    assert (batch.class_dir / "honest" / f"{EXERCISE}.py").read_text() == batch.honest_text
    everywhere = [PROJECT_ROOT / "solutions", GRADER_DIR, batch.class_dir, batch.out_dir, Path("/tmp")]
    planted = [str(p) for d in everywhere for p in d.glob(f"*{batch.mark}*")]
    planted += [str(p) for p in batch.class_dir.rglob(f"*{batch.mark}*")]
    assert not planted, planted
    forged = json.loads((batch.out_dir / "forge_report" / "report.json").read_text())
    assert forged["total"]["score"] == 0 and forged["exercises"][EXERCISE]["tests"]
    assert sorted(p.name for p in batch.out_dir.iterdir() if p.is_file()) <= ["gradebook.csv", "index.html"]


@pytest.mark.slow
def test_no_process_outlives_grading(batch):
    assert batch.survivors == []


@pytest.mark.slow
def test_no_network(batch):
    assert batch.connections == 0
    output = batch.reports["network_connect"].exercises[EXERCISE].student_output
    assert "no network to 127.0.0.1" in output and "connected to" not in output


@pytest.mark.slow
def test_no_privilege_inside(batch):
    output = batch.reports["privilege_escape"].exercises[EXERCISE].student_output
    uid = re.search(r"uid (\d+) euid (\d+)", output)
    assert uid and uid.group(1) != "0" and uid.group(2) != "0", output
    assert "'setuid0': 'None'" not in output and "'chroot': 'None'" not in output
    assert "'unshare_user': '0'" not in output   # no user namespace of its own (the seccomp filter)


@pytest.mark.slow
def test_output_flood_is_capped(batch):
    ex = batch.reports["huge_output"].exercises[EXERCISE]
    assert len(ex.student_output) <= Limits().output_bytes + 100
    assert ex.score == 0


@pytest.mark.slow
def test_bombs_are_stopped_by_their_own_limits(batch):
    # Import-time bombs cost one call timeout (plus start-up), not the exercise's whole budget.
    for name in ("fork_bomb", "memory_bomb", "cpu_busy", "ignore_signals", "huge_output"):
        assert batch.reports[name].duration_s < 60, (name, batch.reports[name].duration_s)


def test_worker_sees_none_of_the_graders_environment(tmp_path, monkeypatch):
    secret = f"cnngrade-secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("CNNGRADE_ADV_SECRET", secret)
    shutil.copy(HOSTILE / "env_leak.py", tmp_path / f"{EXERCISE}.py")
    worker = Worker(tmp_path, EXERCISE, call_timeout=30)
    try:
        seen = Submission(worker).value("ANSWERS")["a"]
    finally:
        worker.close()
    assert "OMP_NUM_THREADS" in seen    # it did read its environment ...
    assert secret not in seen and "CNNGRADE_ADV_SECRET" not in seen   # ... which holds nothing of ours


SABOTEUR = '''
"""Breaks torch for its whole interpreter at import, then kills its worker at every call."""
import ctypes
import os

import torch
import torch.nn.functional as F

torch.Tensor.__add__ = lambda self, other: torch.zeros(1)
F.conv2d = F.max_pool2d = F.avg_pool2d = lambda *args, **kwargs: torch.zeros(1)
torch.nn.Conv2d.forward = lambda self, x: torch.zeros(1)
torch.manual_seed = lambda seed: None


def conv_output_size(size, kernel_size, padding=0, stride=1):
    if size % 2:
        ctypes.string_at(0)   # a segfault
    os._exit(1)


ANSWERS = {"a": 24, "b": 64, "c": 63, "d": 112}
'''


@pytest.mark.slow
def test_a_crashing_saboteur_in_ex1_costs_nothing_in_ex2_and_ex3(tmp_path):
    """One student, three exercises, one grading (one zygote): ex1 monkeypatches torch and crashes its worker,
    ex2 and ex3 (the reference solutions) still earn every automatic point."""
    student = tmp_path / "class" / "saboteur"
    student.mkdir(parents=True)
    (student / f"{EXERCISE}.py").write_text(SABOTEUR)
    for exercise in ("ex2_feature_maps", "ex3_receptive_fields"):
        shutil.copy(PROJECT_ROOT / "solutions" / f"{exercise}.py", student / f"{exercise}.py")
    exercises = [EXERCISE, "ex2_feature_maps", "ex3_receptive_fields"]
    report = grade_class(tmp_path / "class", tmp_path / "out", exercises, jobs=1)[0]
    ex1 = report.exercises[EXERCISE]
    assert ex1.score < ex1.max_score and any("worker" in t.output for t in ex1.tests)
    for exercise in exercises[1:]:
        tests = report.exercises[exercise].tests
        assert tests and all(t.status in ("passed", "manual") for t in tests), \
            [(t.name, t.status, t.output[:200]) for t in tests]
        assert sum(t.score for t in tests if t.status == "passed") > 0
