"""Containment by cgroups: a group per worker (v2 and v1), CPU share, one memory limit, fair timeouts, GPU locks."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from cnngrade import cli
from cnngrade.config import PROJECT_ROOT
from cnngrade.errors import WorkerCrashed, WorkerTimeout
from cnngrade.grading import pipeline
from cnngrade.grading.process import flag_overloaded
from cnngrade.grading.verdicts import classify
from cnngrade.records import ExerciseResult, Outcome, StudentReport
from cnngrade.records import TestResult as Verdict
from cnngrade.sandbox import bwrap, cgroup_setup, cgroups, overload
from cnngrade.sandbox import launch as sandbox
from cnngrade.sandbox.client import Worker
from cnngrade.sandbox.devices import acquire_device
from cnngrade.sandbox.overload import MachineOverloaded
from cnngrade.sandbox.submission import Submission
from cnngrade.training.profiles import Profile

EXERCISE = "ex1_output_size"
HOG = PROJECT_ROOT / "tests" / "adversarial" / "cpu_setsid_hog.py"
BASE, WHY = cgroup_setup.detect()
needs_cgroups = pytest.mark.skipif(BASE is None, reason=f"no usable cgroups here: {WHY}")

MODULE = '''
import os, time


def spin(children, seconds):
    """Busy children, each in a session of its own; returns at once, they keep running."""
    for _ in range(children):
        if os.fork() == 0:
            os.setsid()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                pass
            os._exit(0)
    return children


def fill_tmp(megabytes):
    """Files in the private tmpfs mounts, 32 MiB each (the file size limit is 64 MiB)."""
    block = b"x" * (1 << 20)
    written = 0
    for i in range(megabytes // 32):
        try:
            with open(f"/{'tmp' if i % 2 else 'dev/shm'}/fill{i}", "wb") as fh:
                for _ in range(32):
                    fh.write(block)
                    written += 1
        except OSError:
            break
    return written


def hog(children, megabytes):
    """Children that each hold ``megabytes`` of touched memory, and wait for them."""
    pids = []
    for _ in range(children):
        pid = os.fork()
        if pid == 0:
            os.setsid()
            held = b"y" * (megabytes << 20)
            time.sleep(5)
            os._exit(len(held) & 1)
        pids.append(pid)
    ended = [os.waitpid(p, 0)[1] for p in pids]
    return ended


def wait(seconds):
    time.sleep(seconds)
'''


@pytest.fixture
def module_dir(tmp_path):
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "cg_mod.py").write_text(MODULE)
    return folder


# -- the fake unified (v2) hierarchy ----------------------------------------------------------------------------
def _fake_v2(root: Path, controllers: str = "cpu io memory pids") -> tuple[str, str]:
    """A folder laid out as the kernel shows a cgroup2 mount, and the /proc files that point at it."""
    top = root / "unified"
    top.mkdir()
    (top / "cgroup.controllers").write_text(controllers + "\n")
    (top / "cgroup.subtree_control").write_text("\n")
    (top / "cgroup.procs").write_text("")
    mountinfo, member = root / "mountinfo", root / "cgroup"
    mountinfo.write_text(f"41 31 0:38 / {top} rw,relatime - cgroup2 cgroup2 rw\n")
    member.write_text("0::/\n")
    return str(mountinfo), str(member)


def test_v2_groups_are_made_limited_killed_and_removed(tmp_path, monkeypatch):
    base, why = cgroup_setup.detect(*_fake_v2(tmp_path), probe=False)
    top = tmp_path / "unified"
    assert why == "" and base == cgroups.Base(2, {"": str(top)})
    assert set((top / "cgroup.subtree_control").read_text().replace("+", " ").split()) >= {"cpu", "memory", "pids"}

    group = base.create("cnngrade-1-w0", cores=2, memory=512 << 20, pids=72)
    folder = top / "cnngrade-1-w0"
    assert (folder / "cpu.max").read_text() == f"200000 {cgroups.PERIOD_US}"
    assert (folder / "memory.max").read_text() == str(512 << 20)
    assert (folder / "memory.swap.max").read_text() == "0"      # no swap: all it holds counts
    assert (folder / "pids.max").read_text() == "72"
    assert group.procs_files() == [str(folder / "cgroup.procs")]

    # What the kernel keeps there: CPU time in microseconds, the OOM kills, the threads, the peak.
    (folder / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n")
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (folder / "memory.peak").write_text(str(500 << 20))
    (folder / "cgroup.threads").write_text("")
    assert group.cpu_seconds() == 1.5 and group.out_of_memory() and group.memory_peak() == 500 << 20
    assert group.tasks() == [] and overload.waiting(group, 0.01) == 0

    (folder / "cgroup.procs").write_text("")   # the kernel empties the group once cgroup.kill is written
    assert group.kill() is True
    assert (folder / "cgroup.kill").read_text() == "1"
    monkeypatch.setattr(cgroups, "_rmdir", shutil.rmtree)   # a real cgroup folder goes with its files
    group.remove()
    assert not folder.exists() and cgroups.stale_groups(base) == []


def test_v2_without_the_controllers_says_which_are_missing(tmp_path):
    base, why = cgroup_setup.detect(*_fake_v2(tmp_path, controllers="cpu io"), probe=False)
    assert base is None and "memory, pids" in why and "cgroup v2" in why


def test_v2_moves_cnngrade_to_a_leaf_when_its_group_holds_processes(tmp_path, monkeypatch):
    """A v2 group with processes cannot give its children controllers: cnngrade (alone there) moves down first."""
    paths = _fake_v2(tmp_path)
    top = tmp_path / "unified"
    (top / "cgroup.procs").write_text(f"{os.getpid()}\n")
    real_write, busy = cgroups.write_file, []

    def kernel_write(path, value):
        if path.endswith("subtree_control") and not busy:
            busy.append(path)
            raise OSError(16, "Device or resource busy")   # EBUSY, as the kernel answers
        real_write(path, value)

    monkeypatch.setattr(cgroups, "write_file", kernel_write)
    base, why = cgroup_setup.detect(*paths, probe=False)
    assert why == "" and base is not None
    leaf = top / "cnngrade-main"
    assert (leaf / "cgroup.procs").read_text() == str(os.getpid())
    assert "+memory" in (top / "cgroup.subtree_control").read_text()


def test_v2_refuses_when_others_share_the_group(tmp_path, monkeypatch):
    paths = _fake_v2(tmp_path)
    (tmp_path / "unified" / "cgroup.procs").write_text("1\n")   # init: not ours to move

    def busy(path, value):
        raise OSError(16, "Device or resource busy")

    monkeypatch.setattr(cgroups, "write_file", busy)
    base, why = cgroup_setup.detect(*paths, probe=False)
    assert base is None and "other than cnngrade's" in why


def test_v1_hierarchies_are_found_below_our_own_groups(tmp_path):
    mounts = []
    for i, (name, options) in enumerate([("cpu,cpuacct", "rw,cpu,cpuacct"), ("memory", "rw,memory"),
                                         ("pids", "rw,pids"), ("freezer", "rw,freezer")]):
        (tmp_path / name / "batch" / "me").mkdir(parents=True)
        mounts.append(f"{32 + i} 31 0:{29 + i} / {tmp_path / name} rw,relatime - cgroup cgroup {options}")
    mounts.append(f"41 31 0:38 / {tmp_path / 'unified'} rw,relatime - cgroup2 cgroup2 rw")
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("\n")   # an empty v2 hierarchy, as on this machine
    (tmp_path / "mountinfo").write_text("\n".join(mounts) + "\n")
    (tmp_path / "cgroup").write_text("4:memory:/batch/me\n3:cpu,cpuacct:/batch/me\n2:pids:/\n1:freezer:/\n0::/\n")
    base, why = cgroup_setup.detect(str(tmp_path / "mountinfo"), str(tmp_path / "cgroup"), probe=False)
    assert why == "" and base is not None and base.version == 1
    assert base.folders == {"cpu": str(tmp_path / "cpu,cpuacct" / "batch" / "me"),
                            "cpuacct": str(tmp_path / "cpu,cpuacct" / "batch" / "me"),
                            "memory": str(tmp_path / "memory" / "batch" / "me"),
                            "pids": str(tmp_path / "pids"), "freezer": str(tmp_path / "freezer")}
    group = base.create("cnngrade-1-w0", cores=1, memory=1 << 30, pids=72)
    cpu = tmp_path / "cpu,cpuacct" / "batch" / "me" / "cnngrade-1-w0"
    assert (cpu / "cpu.cfs_quota_us").read_text() == "100000" and (cpu / "cpu.cfs_period_us").read_text() == "100000"
    memory = tmp_path / "memory" / "batch" / "me" / "cnngrade-1-w0"
    assert (memory / "memory.limit_in_bytes").read_text() == (memory / "memory.memsw.limit_in_bytes").read_text()
    assert len(group.procs_files()) == 4   # cpu and cpuacct share one folder


@pytest.mark.slow
def test_without_cgroups_the_cli_and_every_report_say_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cgroup_setup, "_ACTIVE", (None, "no cgroup hierarchy is mounted"))
    (tmp_path / "class" / "s").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "solutions" / f"{EXERCISE}.py", tmp_path / "class" / "s")
    code = cli.main(["grade", str(tmp_path / "class"), "--out", str(tmp_path / "out"), "--exercises", EXERCISE,
                     "--quiet", "--jobs", "1", "--profile", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    warning = sandbox.isolation_warning("bwrap")
    assert warning.startswith("NO CGROUPS: no cgroup hierarchy is mounted") and "Delegate=yes" in warning
    assert code == 0 and err[0] == f"cnngrade: warning: {warning}"
    report = json.loads((tmp_path / "out" / "s" / "report.json").read_text())
    assert report["warning"] == warning and report["total"]["score"] == report["total"]["max_score"]


# -- real groups on this machine ---------------------------------------------------------------------------------
@pytest.mark.slow
@needs_cgroups
def test_a_setsid_swarm_is_held_to_its_share_and_killed_on_close(module_dir):
    worker = Worker(module_dir, "cg_mod", limits=sandbox.Limits(threads=1), call_timeout=30)
    try:
        Submission(worker).spin(12, 120)
        group = worker._group
        assert group is not None and group.exists()
        start, cpu0 = time.monotonic(), group.cpu_seconds()
        time.sleep(3)
        used = (group.cpu_seconds() - cpu0) / (time.monotonic() - start)
        pids = group.pids()
        assert len(pids) >= 12
        assert used <= 1.3, f"12 busy processes got {used:.2f} cores under a quota of 1"
        assert _quota(group) == 1.0   # (whether it is reached depends on what else this machine runs)
    finally:
        worker.close()
    assert not group.exists()
    assert not [p for p in pids if _alive(p)]


@pytest.mark.slow
@needs_cgroups
def test_a_zygote_child_is_held_and_killed_in_its_own_group(module_dir):
    """Exercises forked by one student's zygote: each in a group of its own; a timeout there kills its swarm,
    not the zygote nor the student's other exercise."""
    from cnngrade.sandbox.zygote import Zygote

    zygote = Zygote(limits=sandbox.Limits(threads=1))
    busy = Worker(module_dir, "cg_mod", limits=sandbox.Limits(threads=1), call_timeout=2, zygote=zygote)
    calm = Worker(module_dir, "cg_mod", call_timeout=30, zygote=zygote)
    try:
        Submission(calm).wait(0)
        Submission(busy).spin(6, 120)
        group, calm_pid = busy._group, calm.proc.pid
        assert group is not None and group is not calm._group and group is not zygote._group
        pids = group.pids()
        assert len(pids) >= 7 and calm_pid not in pids and zygote.proc.pid not in pids
        assert calm_pid in calm._group.pids()
        with pytest.raises((WorkerTimeout, MachineOverloaded)):   # its own swarm starves it: either verdict
            Submission(busy).wait(30)
        assert not [p for p in pids if _alive(p)]             # the swarm went with its worker
        assert zygote.alive() and _alive(calm_pid)
        Submission(calm).wait(0)                                # the other exercise serves on, same process
        assert calm.proc.pid == calm_pid and zygote.starts == 1
    finally:
        busy.close()
        calm.close()
        zygote.close()
    assert not group.exists()


def _quota(group: cgroups.Group) -> float:
    if group.base.version == 2:
        quota, period = Path(group._path("cpu", "cpu.max")).read_text().split()
    else:
        quota, period = (Path(group._path("cpu", f"cpu.cfs_{f}_us")).read_text() for f in ("quota", "period"))
    return int(quota) / int(period)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@needs_cgroups
def test_tmpfs_pages_count_against_the_memory_limit(module_dir):
    worker = Worker(module_dir, "cg_mod", call_timeout=30)
    try:
        written = Submission(worker).fill_tmp(192)
        assert written == 192
        assert worker._group.memory_peak() >= 192 << 20
    finally:
        worker.close()


@pytest.mark.slow
@needs_cgroups
def test_processes_and_tmpfs_together_are_held_to_one_limit(module_dir):
    limit = 512 << 20
    worker = Worker(module_dir, "cg_mod", limits=sandbox.Limits(ram_bytes=limit), call_timeout=60)
    sub = Submission(worker)
    try:
        assert sub.fill_tmp(128) == 128            # 128 MiB of tmpfs, then 4 x 200 MiB of processes
        try:
            ended = sub.hog(4, 200)
            assert any(status != 0 for status in ended), ended   # some child was killed
        except WorkerCrashed as exc:             # or the worker itself, which says why
            assert "memory limit of 512 MiB" in str(exc)
        group = worker._group
        assert group.out_of_memory()
        assert group.memory_peak() <= limit
    finally:
        worker.close()


@pytest.mark.slow
@needs_cgroups
def test_a_sleeping_worker_keeps_its_timeout_and_its_cpu_time_is_shown(module_dir):
    worker = Worker(module_dir, "cg_mod", call_timeout=2)
    try:
        with pytest.raises(WorkerTimeout, match=r"no answer within 2 s \(the worker got 0\.\d s of CPU time in 2"):
            Submission(worker).wait(30)
    finally:
        worker.close()


@pytest.mark.slow
@needs_cgroups
def test_one_group_per_worker_and_none_left_after_a_class(tmp_path):
    """The CPU hog of tests/adversarial beside an honest classmate, two at a time: the classmate's score is whole."""
    mark = f"cnngrade-hog-{uuid.uuid4().hex[:10]}"
    klass = tmp_path / "class"
    for student, text in (("honest", (PROJECT_ROOT / "solutions" / f"{EXERCISE}.py").read_text()),
                          ("hog", HOG.read_text().replace("@@MARK@@", mark))):
        (klass / student).mkdir(parents=True)
        (klass / student / f"{EXERCISE}.py").write_text(text)
    reports = {r.student: r for r in pipeline.grade_class(klass, tmp_path / "out", [EXERCISE], jobs=2)}
    honest = reports["honest"].exercises[EXERCISE]
    assert honest.score == honest.max_score > 0, [(t.name, t.status, t.output[:200]) for t in honest.tests]
    assert reports["hog"].exercises[EXERCISE].score == 0
    survivors = [p for p in os.listdir("/proc") if p.isdigit() and mark.encode() in _cmdline(p)]
    assert survivors == []


@pytest.mark.slow
@needs_cgroups
def test_what_a_batch_killed_outright_left_is_removed_by_the_next(tmp_path, monkeypatch):
    """A driver or grading process killed with SIGKILL leaves its groups (a student's process still inside) and its
    folders; the next batch's start removes those whose maker has ended, and nothing of a running one."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    dead, live = ended.pid, os.getpid()
    orphan = BASE.create(f"{cgroups.PREFIX}{dead}-w0", cores=1, memory=64 << 20, pids=8)
    kept = BASE.create(cgroups.group_name("w"), cores=1, memory=64 << 20, pids=8)
    leftover = subprocess.Popen(["sleep", "60"])
    for path in orphan.procs_files():
        Path(path).write_text(str(leftover.pid))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    folders = {name: tmp_path / name for name in (f"cnngrade-worker-{dead}-a1", f"cnngrade-student-{dead}-b2",
                                                   f"cnngrade-job-{dead}-d4", f"cnngrade-class-{dead}-e5",
                                                   f"cnngrade-worker-{live}-c3", "cnngrade-worker-oldname")}
    for folder in folders.values():
        (folder / "home").mkdir(parents=True)
    try:
        from cnngrade.grading.backends import LocalPool

        LocalPool(1).check("bwrap")
        assert leftover.wait(timeout=10) == -9 and not orphan.exists() and kept.exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == [f"cnngrade-worker-{live}-c3", "cnngrade-worker-oldname"]
    finally:
        for group in (orphan, kept):
            group.kill()
            group.remove()
        leftover.kill()
        leftover.wait()


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


# -- fair time ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("wall, cpu, waiting, verdict", [
    (30.0, 0.4, 0.95, True),     # runnable all along, given almost nothing: the machine's fault
    (30.0, 7.4, 0.6, True),      # just under a quarter of one core
    (30.0, 7.6, 0.6, False),     # a quarter of a core or more: slow, but served
    (30.0, 0.4, 0.3, False),     # mostly asleep or blocked when it timed out
    (30.0, 29.5, 0.02, False),   # an endless loop that had the CPU
    (30.0, 0.0, 0.0, False),     # asleep: it waits for nothing
    (30.0, 0.5, None, False),    # no numbers (no cgroup): the timeout stays the student's
    (30.0, None, 0.9, False),
])
def test_overloaded_needs_little_cpu_and_a_long_wait(wall, cpu, waiting, verdict):
    assert overload.overloaded(wall, cpu, waiting) is verdict


def _starve(monkeypatch, cpu_got: float, waiting: float) -> None:
    """Fake counters: a 30 s call during which the worker got ``cpu_got`` seconds of CPU."""
    samples = iter([overload.Sample(100.0, 5.0), overload.Sample(130.0, 5.0 + cpu_got)])
    monkeypatch.setattr(overload, "sample", lambda group: next(samples))
    monkeypatch.setattr(overload, "waiting", lambda group: waiting)


def test_a_starved_timeout_is_a_grader_error(module_dir, monkeypatch):
    worker = Worker(module_dir, "cg_mod", call_timeout=30)
    _starve(monkeypatch, 0.3, 0.9)
    judged = worker._judge_timeout(WorkerTimeout("no answer within 30 s"), overload.sample(None))
    assert isinstance(judged, MachineOverloaded)
    assert "0.3 s of CPU time in 30.0 s" in str(judged) and "90% of the time" in str(judged)
    assert "--resume" in str(judged)
    status, message, grader_error = classify(judged)
    assert status == "error" and message.startswith("the machine was overloaded: no answer within 30 s")
    outcomes = {EXERCISE: {"test_a": Outcome(status, message, grader_error),
                           "test_b": Outcome("error", "importing x.py raised ...")}}
    flag_overloaded(outcomes)
    assert outcomes[EXERCISE]["test_a"].grader_error and not outcomes[EXERCISE]["test_b"].grader_error

    _starve(monkeypatch, 29.0, 0.0)   # it had the CPU: its own timeout, with the CPU time beside the wall time
    judged = worker._judge_timeout(WorkerTimeout("no answer within 30 s"), overload.sample(None))
    assert isinstance(judged, WorkerTimeout) and "29.0 s of CPU time in 30.0 s" in str(judged)
    assert classify(judged)[::2] == ("timeout", False)


def test_after_a_starved_call_the_rest_of_the_exercise_fails_at_once(module_dir, monkeypatch):
    worker = Worker(module_dir, "cg_mod", call_timeout=30)
    _starve(monkeypatch, 0.3, 0.9)

    def starved(frame, deadline):
        raise WorkerTimeout("no answer within 30 s")

    monkeypatch.setattr(worker, "_exchange", starved)
    with pytest.raises(MachineOverloaded):
        worker.request("load", None)
    worker.begin_test()
    with pytest.raises(MachineOverloaded, match="the machine was overloaded"):   # no new start, no new wait
        worker.request("get", None, name="ANSWERS")
    assert worker.proc is None


@pytest.mark.slow
@needs_cgroups
def test_a_busy_worker_is_seen_waiting_and_a_sleeping_one_is_not(module_dir):
    worker = Worker(module_dir, "cg_mod", limits=sandbox.Limits(threads=1), call_timeout=30)
    try:
        sub = Submission(worker)
        sub.ensure_loaded()
        assert overload.waiting(worker._group, 0.3) < 0.2          # idle between calls: waits for nothing
        sub.spin(6, 30)                                          # six busy processes on a quota of one core
        assert overload.waiting(worker._group, 0.5) >= overload.MIN_WAITING
    finally:
        worker.close()


def test_resume_regrades_reports_with_a_grader_error(tmp_path):
    profile = Profile("cpu", "cpu", "d", None, "bwrap")

    def write(grader_error: bool) -> None:
        test = Verdict("test_a", 0.0, 1.0, "error" if grader_error else "timeout", grader_error=grader_error)
        report = StudentReport("s", {EXERCISE: ExerciseResult(EXERCISE, "t", [test])}, profile.to_json(), "1")
        (tmp_path / "s").mkdir(exist_ok=True)
        (tmp_path / "s" / "report.json").write_text(json.dumps(report.to_dict()))

    write(grader_error=True)
    assert pipeline.finished_report(tmp_path, "s", [EXERCISE], profile) is None
    write(grader_error=False)   # the student's own timeout is a finished result
    assert pipeline.finished_report(tmp_path, "s", [EXERCISE], profile) is not None


# -- the trusted grading process ---------------------------------------------------------------------------------
def test_a_grading_process_without_a_cgroup_caps_its_address_space():
    code = ("import resource; from cnngrade.sandbox import memory; memory.bound_memory_without_cgroup(256 << 20)\n"
            "try:\n    b = bytearray(1 << 30)\nexcept MemoryError:\n    print('bounded')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.stdout.strip() == "bounded", out.stderr


@pytest.mark.slow
def test_a_grading_process_past_its_memory_bound_is_that_students_grader_error(tmp_path):
    (tmp_path / "class" / "s").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "solutions" / f"{EXERCISE}.py", tmp_path / "class" / "s")
    limits = sandbox.Limits(grader_memory_bytes=12 << 20)   # far less than pytest and hypothesis need (26 MiB)
    report = pipeline.grade_class(tmp_path / "class", tmp_path / "out", [EXERCISE], jobs=1, limits=limits)[0]
    tests = report.exercises[EXERCISE].tests
    assert tests and all(t.status == "error" and t.grader_error for t in tests)
    assert "memory bound (12 MiB)" in tests[0].output, tests[0].output[:500]
    assert (tmp_path / "out" / "s" / "report.json").exists()


# -- one grading process per GPU ---------------------------------------------------------------------------------
def test_each_gpu_is_held_by_one_job_at_a_time(tmp_path):
    devices = ["0", "1"]          # a fake machine with two GPUs
    held, overlaps, lock = {}, [], threading.Lock()

    def job(n: int) -> None:
        device = acquire_device(devices, folder=str(tmp_path), poll=0.01)
        with lock:
            if device.device in held:
                overlaps.append((n, device.device))
            held[device.device] = n
        time.sleep(0.05)
        with lock:
            del held[device.device]
        device.release()

    threads = [threading.Thread(target=job, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == [] and held == {}


def test_a_cohort_batch_shares_each_gpu_among_its_slots(tmp_path):
    """With a cohort service training, up to ``slots`` grading processes hold one GPU, spread over the GPUs first."""
    held = [acquire_device(["0", "1"], folder=str(tmp_path), slots=2, timeout=1) for _ in range(4)]
    assert sorted(d.device for d in held) == ["0", "0", "1", "1"] and [d.device for d in held[:2]] == ["0", "1"]
    with pytest.raises(TimeoutError):
        acquire_device(["0", "1"], folder=str(tmp_path), slots=2, timeout=0.3)
    held.pop().release()
    again = acquire_device(["0", "1"], folder=str(tmp_path), slots=2, timeout=1)
    for device in [*held, again]:
        device.release()


def test_a_gpu_held_by_another_process_is_waited_for(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys, time; from cnngrade.sandbox import devices\n"
         f"d = devices.acquire_device(['0'], folder={str(tmp_path)!r}); print(d.device, flush=True); time.sleep(30)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "0"
        with pytest.raises(TimeoutError):
            acquire_device(["0"], folder=str(tmp_path), timeout=0.3)
        other = acquire_device(["0", "1"], folder=str(tmp_path), timeout=1)
        assert other.device == "1"
        other.release()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    acquire_device(["0"], folder=str(tmp_path), timeout=5).release()   # freed when its holder died


def test_a_gpu_worker_sees_only_the_device_its_grading_process_holds(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    gpu = sandbox.worker_command(tmp_path, "m", 3, 4, str(tmp_path), gpu=True)
    plain = sandbox.worker_command(tmp_path, "m", 3, 4, str(tmp_path))
    assert gpu.argv[gpu.argv.index("CUDA_VISIBLE_DEVICES") + 1] == "1"
    assert "CUDA_VISIBLE_DEVICES" not in plain.argv


# -- a Python under /tmp -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_virtual_environment_under_tmp_grades_in_the_sandbox(tmp_path):
    venv = Path("/tmp/cnngrade-venv-test")
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                       check=True, timeout=120)
    (tmp_path / "class" / "s").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "solutions" / f"{EXERCISE}.py", tmp_path / "class" / "s")
    run = subprocess.run([str(venv / "bin" / "python"), "-m", "cnngrade", "grade", str(tmp_path / "class"),
                          "--out", str(tmp_path / "out"), "--exercises", EXERCISE, "--jobs", "1", "--profile", "cpu",
                          "--quiet"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "s" / "report.json").read_text())
    assert report["total"]["score"] == report["total"]["max_score"] > 0


def test_the_private_tmp_is_mounted_before_the_interpreter_is_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(bwrap, "python_paths", lambda: ["/tmp/some/venv"])
    argv = bwrap.bwrap_prefix(str(tmp_path), sandbox.Limits(), {}, uid=None)
    tmpfs = argv.index("--tmpfs", argv.index("/dev/shm") + 1)
    assert argv[tmpfs + 1] == "/tmp" and argv.index("/tmp/some/venv") > tmpfs
    assert ["--perms", "0755", "--dir", "/tmp/some"] == argv[argv.index("/tmp/some") - 3:argv.index("/tmp/some") + 1]
    assert "/tmp" not in [argv[i + 1] for i, a in enumerate(argv) if a == "--dir"]   # never over the tmpfs
