"""The trusted client and its worker: calls, student exceptions, time limits, crashes and restarts."""
from __future__ import annotations

import textwrap
import time

import pytest
import torch

from cnngrade.errors import StudentError, SubmissionImportError, WorkerCrashed, WorkerTimeout
from cnngrade.sandbox.client import Worker
from cnngrade.sandbox.handles import Handle
from cnngrade.sandbox.submission import Submission

MODULE = "ex_probe"


def make_worker(tmp_path, source: str, **kwargs) -> Worker:
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(source))
    return Worker(tmp_path, MODULE, **kwargs)


@pytest.fixture
def worker(tmp_path, request):
    made: list[Worker] = []

    def make(source: str, **kwargs) -> Submission:
        w = make_worker(tmp_path, source, **kwargs)
        made.append(w)
        return Submission(w)

    yield make
    for w in made:
        w.close()


@pytest.mark.slow
def test_calls_constants_and_handles(worker):
    sub = worker("""
        import torch
        ANSWERS = {"a": 1, "t": (1, 2)}
        def add(a, b=0):
            return a + b
        def model():
            return torch.nn.Linear(2, 3)
    """)
    assert sub.add(2, b=3) == 5
    assert sub.value("ANSWERS") == {"a": 1, "t": (1, 2)}
    m = sub.model()
    assert isinstance(m, Handle) and m.type_name == "torch.nn.modules.linear.Linear"
    out = m(torch.ones(4, 2))
    assert isinstance(out, torch.Tensor) and out.shape == (4, 3)
    assert m.attr("out_features") == 3
    assert sorted(sub.helper("state_dict", m)) == ["bias", "weight"]


def test_student_exceptions_arrive_with_type_and_traceback(worker):
    sub = worker("""
        class MyError(ValueError):
            pass
        def bad(x):
            raise MyError(f"no {x}")
        def todo():
            raise NotImplementedError
    """)
    with pytest.raises(StudentError) as info:
        sub.bad(3)
    assert info.value.type_name == "MyError" and info.value.is_a("ValueError") and "no 3" in info.value.message
    assert "ex_probe.py" in info.value.traceback
    with pytest.raises(StudentError) as info:
        sub.todo()
    assert info.value.not_implemented
    with pytest.raises(StudentError) as info:
        sub.absent()
    assert info.value.is_a("AttributeError")


def test_import_failure_is_remembered(worker):
    sub = worker("raise RuntimeError('broken at import')\n")
    for _ in range(2):
        with pytest.raises(SubmissionImportError, match="broken at import"):
            sub.anything()


@pytest.mark.slow
def test_call_timeout_kills_and_the_next_test_gets_a_fresh_worker(worker):
    sub = worker("""
        import time
        def slow():
            time.sleep(60)
        def fast():
            return 1
    """, call_timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(WorkerTimeout):
        sub.slow()
    assert time.monotonic() - t0 < 5
    with pytest.raises(WorkerTimeout):   # the same test goes on failing fast
        sub.fast()
    sub._worker.begin_test()
    assert sub.fast() == 1


def test_crash_is_reported_and_stale_handles_refused(worker):
    sub = worker("""
        import os
        def die():
            os._exit(3)
        def obj():
            return object()
    """)
    h = sub.obj()
    with pytest.raises(WorkerCrashed, match="exit status 3"):
        sub.die()
    sub._worker.begin_test()
    with pytest.raises(WorkerCrashed, match="restarted"):
        h.method("__repr__")


def test_exercise_budget_stops_every_later_call(worker):
    sub = worker("""
        import time
        def nap(t):
            time.sleep(t)
            return t
    """, call_timeout=10.0, budget=1.5)
    with pytest.raises(WorkerTimeout):
        sub.nap(3)
    sub._worker.begin_test()
    with pytest.raises(WorkerTimeout, match="total time limit"):
        sub.nap(0)


def test_printing_does_not_disturb_the_protocol(worker):
    sub = worker("""
        import sys
        def chatty():
            print("hello from the student")
            sys.stdout.write("\\x00\\x00\\x00\\x10{\\"id\\": 1}")
            sys.stdout.flush()
            return 42
    """)
    assert sub.chatty() == 42
    assert "hello from the student" in sub.output()


def test_worker_does_not_see_the_graders_environment(worker, monkeypatch):
    monkeypatch.setenv("CNNGRADE_SECRET_PROBE", "s3cret")
    sub = worker("""
        import os
        def env():
            return dict(os.environ)
    """)
    env = sub.env()
    assert "CNNGRADE_SECRET_PROBE" not in env and "s3cret" not in str(env)


def test_an_unreadable_submission_file_is_the_students_error(tmp_path, monkeypatch):
    import shutil

    from cnngrade.sandbox import staging

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "ex_probe.py").write_text("X = 1\n")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(shutil, "copyfile", refuse)
    problem = staging.stage_submission(tmp_path / "src", tmp_path / "dest", None)
    assert problem == "cannot read ex_probe.py of the submission (Permission denied)"


def test_reports_get_ordinary_file_modes(tmp_path):
    import os

    from cnngrade.report.files import atomic_write

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "r.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644


# -- one zygote per student: torch imported once, a fresh fork per exercise -----------------------------------------
PROBE = """
    import os
    import sys
    PRELOADED = "torch" in sys.modules    # imported by the zygote, before this module
    import torch
    CUDA_BEFORE = torch.cuda.is_initialized()   # the zygote must never start CUDA: a fork would inherit it broken

    def where():
        print(f"printed by {__name__}")
        return {"pid": os.getpid(), "parent": os.getppid(), "cwd": os.getcwd(), "preloaded": PRELOADED,
                "cuda": CUDA_BEFORE}

    def conv(seed):
        torch.manual_seed(seed)
        layer = torch.nn.Conv2d(1, 2, 3)
        x = torch.ones(1, 1, 5, 5)
        return layer.weight.detach(), layer.bias.detach(), layer(x).detach()
"""

# Monkeypatches torch for its whole interpreter at import, then dies in several ways when asked.
SABOTEUR = """
    import os
    import torch
    import torch.nn.functional as F

    torch.Tensor.__add__ = lambda self, other: torch.zeros(1)
    F.conv2d = lambda *args, **kwargs: torch.full((1,), 7.0)
    torch.nn.Conv2d.forward = lambda self, x: torch.full((1,), 7.0)
    torch.manual_seed = lambda seed: None

    def patched():
        return (torch.ones(2) + torch.ones(2)).tolist()

    def exit_now():
        os._exit(3)

    def segfault():
        import ctypes
        ctypes.string_at(0)

    def hang():
        import time
        time.sleep(60)
"""


@pytest.fixture
def student(tmp_path):
    """Workers of one student that share a zygote: make(name, source, **kwargs) -> Submission."""
    from cnngrade.sandbox.zygote import Zygote

    zygote = Zygote()
    made: list[Worker] = []

    def make(name: str, source: str, **kwargs) -> Submission:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        made.append(Worker(tmp_path, name, zygote=zygote, **kwargs))
        return Submission(made[-1])

    make.zygote = zygote
    yield make
    for w in made:
        w.close()
    zygote.close()


def _reference_conv(weight, bias):
    x = torch.ones(1, 1, 5, 5)
    return torch.nn.functional.conv2d(x, weight, bias)


@pytest.mark.slow
def test_a_students_exercises_share_one_import_of_torch_and_no_interpreter(student):
    subs = [student(f"ex_probe{i}", PROBE) for i in range(3)]
    seen = [s.where() for s in subs]
    assert all(s["preloaded"] and not s["cuda"] for s in seen)   # torch came from the zygote, CUDA untouched
    assert len({s["parent"] for s in seen}) == 1             # one zygote forked them all
    assert len({s["pid"] for s in seen}) == 3                # each exercise a process of its own
    assert len({s["cwd"] for s in seen}) == 3                # and a private working folder
    assert [s.output().strip() for s in subs] == [f"printed by ex_probe{i}" for i in range(3)]   # and output
    assert student.zygote.starts == 1


@pytest.mark.slow
def test_a_crashing_monkeypatching_exercise_leaves_the_others_correct(student):
    good = student("ex_good", PROBE)
    bad = student("ex_bad", SABOTEUR)
    before = good.conv(3)
    assert bad.patched() == [0.0]                            # the sabotage holds in its own interpreter
    for fatal, expected in (("exit_now", "exit status 3"), ("segfault", "signal 11")):
        with pytest.raises(WorkerCrashed, match=expected):
            getattr(bad, fatal)()
        bad._worker.begin_test()
        weight, bias, out = good.conv(3)                     # the same process, untouched by the sabotage
        assert torch.equal(out, _reference_conv(weight, bias)) and torch.equal(out, before[2])
        assert bad.patched() == [0.0]                        # restarted alone, from a clean fork
    assert good._worker.generation == 1 and good._worker.restarts == 0
    assert bad._worker.generation == 3
    assert student.zygote.starts == 1


@pytest.mark.slow
def test_a_timed_out_exercise_is_restarted_alone(student):
    good = student("ex_good", PROBE)
    slow = student("ex_slow", SABOTEUR, call_timeout=1.0)
    handle_pid = good.where()["pid"]
    first = slow._worker.proc.pid if slow.patched() else None
    t0 = time.monotonic()
    with pytest.raises(WorkerTimeout):
        slow.hang()
    assert time.monotonic() - t0 < 10
    slow._worker.begin_test()
    assert slow.patched() == [0.0] and slow._worker.proc.pid != first
    assert good.where()["pid"] == handle_pid and good._worker.generation == 1
    assert student.zygote.starts == 1


@pytest.mark.slow
def test_a_dead_zygote_is_started_again_for_the_next_exercise(student):
    killer = student("ex_killer", """
        import os, signal, time
        def kill_parent():
            os.kill(os.getppid(), signal.SIGKILL)   # the zygote: the whole student sandbox goes, this one too
            time.sleep(30)
    """)
    with pytest.raises(WorkerCrashed):
        killer.kill_parent()
    after = student("ex_after", PROBE)
    assert after.where()["preloaded"] and student.zygote.starts == 2


@pytest.mark.slow
def test_a_full_student_imports_torch_once(tmp_path):
    """The grading plugin serves six exercises of one student from one zygote: one import of torch in all."""
    from cnngrade.config import PROJECT_ROOT, load_exercise
    from cnngrade.grading.plugin import GradingPlugin
    from cnngrade.sandbox import cgroup_setup

    if cgroup_setup.active()[0] is None:
        pytest.skip("without cgroups each exercise gets a sandbox of its own")
    exercises = ["ex1_output_size", "ex2_feature_maps", "ex3_receptive_fields", "ex4_shape_tracking",
                 "ex5_alexnet_analysis", "ex7_retina_design"]
    solutions = PROJECT_ROOT / "solutions"
    plugin = GradingPlugin({e: solutions for e in exercises}, {e: load_exercise(e) for e in exercises},
                           isolation="bwrap")
    try:
        for exercise in exercises:
            worker = plugin.worker(exercise)
            plugin._load(exercise, worker)
            assert worker.fatal is None and worker.names
        assert plugin.zygote is not None and plugin.zygote.starts == 1
        assert len({w.proc.pid for w in plugin.workers.values()}) == len(exercises)
        assert plugin.constants["ex1_output_size"]["ANSWERS"] == {"a": 24, "b": 64, "c": 63, "d": 112}
    finally:
        for worker in plugin.workers.values():
            worker.close()
        if plugin.zygote is not None:
            plugin.zygote.close()
