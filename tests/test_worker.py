"""The trusted client and its worker: calls, student exceptions, time limits, crashes and restarts."""
from __future__ import annotations

import textwrap
import time

import pytest
import torch

from cnngrade.client import Handle, Submission, Worker
from cnngrade.errors import StudentError, SubmissionImportError, WorkerCrashed, WorkerTimeout

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

    from cnngrade import sandbox

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "ex_probe.py").write_text("X = 1\n")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(shutil, "copyfile", refuse)
    problem = sandbox.stage_submission(tmp_path / "src", tmp_path / "dest", None)
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
