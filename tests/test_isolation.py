"""Isolation modes, fail-closed start, what the sandbox shows the worker, resuming a batch, regrading twice."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from cnngrade import cli
from cnngrade.config import PROJECT_ROOT
from cnngrade.errors import ExitCode, IsolationUnavailable
from cnngrade.grading.pipeline import grade_class
from cnngrade.sandbox import bwrap, preflight
from cnngrade.sandbox import launch as sandbox
from cnngrade.sandbox.client import Worker
from cnngrade.sandbox.submission import Submission

EXERCISE = "ex1_output_size"

PROBE = '''
import os


def look():
    """What the sandbox shows: the uid, the visible top-level folders, whether the checkout is there."""
    return {"uid": os.getuid(), "root": sorted(os.listdir("/")), "checkout": os.path.exists(%(project)r),
            "tmp": sorted(os.listdir("/tmp")), "cwd": os.getcwd(), "env": sorted(os.environ),
            "status": dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines()
                           if line.startswith(("Seccomp:", "NoNewPrivs:", "CapEff:", "CapBnd:"))),
            "shm": os.access("/dev/shm", os.W_OK)}


def write(path):
    try:
        with open(path, "w") as fh:
            fh.write("x")
        return "written"
    except OSError as exc:
        return type(exc).__name__
'''


def write_probe(tmp_path: Path, extra: str = "") -> Path:
    """A student folder holding probe_mod.py: PROBE, then ``extra`` (more probes)."""
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "probe_mod.py").write_text(PROBE % {"project": str(PROJECT_ROOT)} + extra)
    return folder


@pytest.fixture
def probe_dir(tmp_path):
    return write_probe(tmp_path)


def test_bwrap_worker_sees_only_its_own_world(probe_dir):
    worker = Worker(probe_dir, "probe_mod", call_timeout=30)
    sub = Submission(worker)
    try:
        seen = sub.look()
        writes = {p: sub.write(p) for p in ("/submission/probe_mod.py", "/usr/evil", "/tmp/scratch",
                                              str(PROJECT_ROOT / "evil"))}
    finally:
        worker.close()
    assert seen["checkout"] is False and seen["cwd"] == "/tmp" and seen["tmp"] == []
    assert "work" not in seen["root"] and "etc" not in seen["root"] and "home" not in seen["root"]
    assert set(seen["env"]) - {"PWD"} == set(sandbox.worker_env("/tmp", sandbox.Limits()))  # bwrap sets PWD
    if os.getuid() == 0:
        assert seen["uid"] >= sandbox.UID_BASE
    # No capabilities, no way to regain privileges, the seccomp filter on (mode 2), a writable /dev/shm.
    assert seen["status"]["CapEff"].strip("0\t ") == "" and seen["status"]["CapBnd"].strip("0\t ") == ""
    assert seen["status"]["NoNewPrivs"].strip() == "1" and seen["status"]["Seccomp"].strip() == "2"
    assert seen["shm"] is True
    # Read-only everywhere but the private /tmp; the checkout does not exist in there at all.
    assert writes["/tmp/scratch"] == "written"
    assert writes["/submission/probe_mod.py"] in ("OSError", "PermissionError")
    assert writes["/usr/evil"] in ("OSError", "PermissionError")
    assert writes[str(PROJECT_ROOT / "evil")] == "FileNotFoundError"
    assert not (PROJECT_ROOT / "evil").exists()


@pytest.mark.slow
def test_a_worker_forked_by_the_students_zygote_keeps_every_guarantee(probe_dir):
    """The same world through the zygote: namespaces, uid, no capabilities, seccomp, read-only system, a private
    folder of its own; and the zygote (same uid, never running student code) cannot be read or traced."""
    from cnngrade.sandbox.zygote import Zygote

    (probe_dir / "probe_mod.py").write_text((probe_dir / "probe_mod.py").read_text() + ZYGOTE_PROBE)
    zygote = Zygote()
    workers = [Worker(probe_dir, "probe_mod", call_timeout=30, zygote=zygote) for _ in range(2)]
    try:
        first, second = (Submission(w) for w in workers)
        seen, other = first.look(), second.look()
        writes = {p: first.write(p) for p in ("/submission/e0/probe_mod.py", "/usr/evil", str(PROJECT_ROOT / "evil"))}
        parent = first.parent()
    finally:
        for w in workers:
            w.close()
        zygote.close()
    assert seen["checkout"] is False and seen["cwd"].startswith("/tmp/w") and seen["cwd"] != other["cwd"]
    assert "work" not in seen["root"] and "etc" not in seen["root"] and "home" not in seen["root"]
    # torch's import (in the zygote) names its compile cache, in the sandbox's /tmp
    assert set(seen["env"]) - {"PWD", "TORCHINDUCTOR_CACHE_DIR"} == set(sandbox.worker_env("/tmp", sandbox.Limits()))
    if os.getuid() == 0:
        assert seen["uid"] >= sandbox.UID_BASE
    assert seen["status"]["CapEff"].strip("0\t ") == "" and seen["status"]["CapBnd"].strip("0\t ") == ""
    assert seen["status"]["NoNewPrivs"].strip() == "1" and seen["status"]["Seccomp"].strip() == "2"
    assert set(writes.values()) <= {"OSError", "PermissionError", "FileNotFoundError"}
    assert not (PROJECT_ROOT / "evil").exists()
    assert parent == {"mem": "PermissionError", "trace": "PermissionError"}


ZYGOTE_PROBE = '''

def parent():
    """Try to read the zygote's memory and to attach to it as a tracer."""
    import ctypes

    found = {}
    try:
        with open(f"/proc/{os.getppid()}/mem", "rb") as fh:
            fh.read(1)
        found["mem"] = "read"
    except OSError as exc:
        found["mem"] = type(exc).__name__
    libc = ctypes.CDLL(None, use_errno=True)
    PTRACE_ATTACH = 16
    if libc.ptrace(PTRACE_ATTACH, os.getppid(), 0, 0) == 0:
        found["trace"] = "attached"
    else:
        found["trace"] = "PermissionError" if ctypes.get_errno() == 1 else f"errno {ctypes.get_errno()}"
    return found
'''


def test_gpu_nodes_only_with_the_gpu_flag(tmp_path):
    plain = sandbox.worker_command(tmp_path, "m", 3, 4, str(tmp_path))
    gpu = sandbox.worker_command(tmp_path, "m", 3, 4, str(tmp_path), gpu=True)
    assert not any(a.startswith("/dev/nvidia") for a in plain.argv)
    nodes = sorted(str(p) for p in Path("/dev").glob("nvidia*"))
    assert [a for a in gpu.argv if a.startswith("/dev/nvidia")] == [n for n in nodes for _ in (0, 1)]


def test_missing_bubblewrap_refuses_to_grade_in_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "class" / "s").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "solutions" / f"{EXERCISE}.py", tmp_path / "class" / "s")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))   # no bwrap to be found
    code = cli.main(["grade", str(tmp_path / "class"), "--out", str(tmp_path / "out"), "--exercises", EXERCISE])
    err = capsys.readouterr().err.strip()
    assert code == ExitCode.ISOLATION_UNAVAILABLE
    assert err.startswith("cnngrade: error: bubblewrap") and "\n" not in err and "apt-get install bubblewrap" in err
    assert not (tmp_path / "out" / "s").exists()


def test_rlimits_mode_runs_unprivileged_or_refuses_in_one_line(probe_dir):
    try:
        preflight.check_isolation("rlimits")
    except IsolationUnavailable as exc:
        # As root with Python under a folder other users cannot enter (this machine): refused, and why.
        assert os.getuid() == 0 and "\n" not in str(exc) and "--isolation bwrap" in str(exc)
        return
    worker = Worker(probe_dir, "probe_mod", isolation="rlimits", call_timeout=30)
    try:
        seen = Submission(worker).look()
    finally:
        worker.close()
    assert os.getuid() != 0 or seen["uid"] >= sandbox.UID_BASE
    assert sandbox.isolation_warning("rlimits")


def test_rlimits_is_loud(tmp_path, capsys):
    (tmp_path / "class" / "s").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "solutions" / f"{EXERCISE}.py", tmp_path / "class" / "s")
    code = cli.main(["grade", str(tmp_path / "class"), "--out", str(tmp_path / "out"), "--exercises", EXERCISE,
                     "--isolation", "rlimits", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == f"cnngrade: warning: {sandbox.isolation_warning('rlimits')}"
    if code == ExitCode.ISOLATION_UNAVAILABLE:   # see test_rlimits_mode_runs_unprivileged_or_refuses_in_one_line
        assert len(err) == 2 and err[1].startswith("cnngrade: error: with --isolation rlimits")
        return
    assert code == ExitCode.OK
    report = json.loads((tmp_path / "out" / "s" / "report.json").read_text())
    assert report["profile"]["isolation"] == "rlimits" and report["warning"] == sandbox.isolation_warning("rlimits")


def _class(root: Path) -> Path:
    klass = root / "class"
    for student, source in (("a_solution", PROJECT_ROOT / "solutions"), ("b_stub", PROJECT_ROOT / "exercises")):
        (klass / student).mkdir(parents=True)
        shutil.copy(source / f"{EXERCISE}.py", klass / student)
    (klass / "c_broken").mkdir()
    (klass / "c_broken" / f"{EXERCISE}.py").write_text("def conv_output_size(:\n")
    return klass


def _without_timing(report: dict) -> dict:
    report = json.loads(json.dumps(report))
    report.pop("started_at"), report.pop("duration_s")
    for ex in report["exercises"].values():
        for test in ex["tests"]:
            test.pop("duration")
    return report


@pytest.mark.slow
def test_regrading_is_identical_and_resume_keeps_finished_reports(tmp_path):
    klass = _class(tmp_path)
    first = {r.student: r.to_dict() for r in grade_class(klass, tmp_path / "one", [EXERCISE], jobs=2)}
    second = {r.student: r.to_dict() for r in grade_class(klass, tmp_path / "two", [EXERCISE], jobs=2)}
    assert first["a_solution"]["total"]["score"] == first["a_solution"]["total"]["max_score"] > 0
    for student in first:
        assert _without_timing(first[student]) == _without_timing(second[student]), student

    # A batch killed mid-way: one report never written, one cut short (as a non-atomic writer would leave it),
    # one complete (tagged, so we can tell it was kept rather than graded again).
    out = tmp_path / "two"
    (out / "b_stub" / "report.json").unlink()
    broken = out / "c_broken" / "report.json"
    broken.write_text(broken.read_text()[:200])
    kept = json.loads((out / "a_solution" / "report.json").read_text())
    kept["duration_s"] = 12345.0
    (out / "a_solution" / "report.json").write_text(json.dumps(kept))
    (out / "gradebook.csv").unlink()

    resumed = {r.student: r.to_dict() for r in grade_class(klass, out, [EXERCISE], jobs=2, resume=True)}
    assert resumed["a_solution"]["duration_s"] == 12345.0
    for student in ("b_stub", "c_broken"):
        on_disk = json.loads((out / student / "report.json").read_text())
        assert _without_timing(on_disk) == _without_timing(first[student]), student
    rows = (out / "gradebook.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["a_solution", "b_stub", "c_broken"]


def test_a_worker_python_that_cannot_start_is_named_with_what_is_missing():
    module = preflight._missing_inside("ModuleNotFoundError: No module named 'numpy.core'")
    assert "cannot import numpy.core" in module and "install numpy in" in module
    assert all(p in module for p in bwrap.python_paths())
    interpreter = preflight._missing_inside("bwrap: execvp /opt/py/bin/python3: No such file or directory")
    assert "interpreter" in interpreter and os.path.realpath(sys.executable) in interpreter
