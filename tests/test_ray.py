"""`cnngrade grade --backend ray` on a 2-node Ray cluster started on this machine: the same reports as the local
pool, --resume, and a node lost mid-batch losing no student."""
from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import sys
import tarfile
import threading
import time

import pytest

from cnngrade.cli import main
from cnngrade.config import PROJECT_ROOT
from cnngrade.errors import ExitCode, UsageError
from cnngrade.grading.pipeline import comparable, grade_class
from cnngrade.grading.ray_backend import RayBackend, ShippedStudent
from tests.test_readme import doc_argv

EX1 = "ex1_output_size"
VARIANTS = PROJECT_ROOT / "tests" / "submissions" / EX1
NODE = {"num_cpus": 1, "object_store_memory": 80 << 20}
# The reference solution, whose import sleeps: long enough to lose a node while it is graded there.
SLOW = (PROJECT_ROOT / "solutions" / f"{EX1}.py").read_text() + "\nimport time\ntime.sleep(6)\n"


@pytest.fixture(scope="module")
def cluster():
    """A head and one more node, one CPU each, as two machines would be; workers import this checkout."""
    pytest.importorskip("ray", reason="Ray is in the [ray] and [dev] extras")
    import ray
    from ray.cluster_utils import Cluster

    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_USAGE_STATS_ENABLED")}
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), saved["PYTHONPATH"]) if p)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    second = cluster.add_node(**NODE)
    try:
        yield cluster, second
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def documented_command() -> str:
    text = (PROJECT_ROOT / "docs" / "instructors.md").read_text()
    section = text[text.index("### On a cluster (Ray)"):]
    [block] = re.findall(r"```\n(.*?)\n```", section, re.DOTALL)[:1]
    [line] = [line.split("#")[0].strip() for line in block.splitlines() if line.startswith("cnngrade grade")]
    assert "--backend ray --address HEAD:6379" in line, line
    return line


def make_class(root, students: dict[str, str]):
    klass = root / "class"
    for student, source in students.items():
        (klass / student).mkdir(parents=True)
        (klass / student / f"{EX1}.py").write_text(source)
    return klass


def on_disk(out) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob("*/report.json"))}


@pytest.mark.slow
def test_ray_grades_as_the_local_pool_and_resume_keeps_finished_reports(cluster, tmp_path):
    klass = make_class(tmp_path, {"a_good": (VARIANTS / "good_loop.py").read_text(),
                                  "b_padding": (VARIANTS / "bad_padding_once.py").read_text(),
                                  "c_import": (VARIANTS / "bad_import_error.py").read_text()})
    local, remote = tmp_path / "local", tmp_path / "ray"
    grade_class(klass, local, [EX1], jobs=2)
    # docs/instructors.md's command, run as written (its `ray start` lines are what the fixture does in-process).
    argv = [*doc_argv(documented_command(), **{"submissions/": str(klass), "reports/": str(remote),
                                               "HEAD:6379": cluster[0].address}),
            "--exercises", "ex1", "--jobs", "2", "--quiet"]
    assert main(argv) == ExitCode.OK
    mine, theirs = on_disk(local), on_disk(remote)
    assert sorted(theirs) == ["a_good", "b_padding", "c_import"]
    assert {s: comparable(r) for s, r in theirs.items()} == {s: comparable(r) for s, r in mine.items()}
    assert theirs["a_good"]["total"]["score"] == theirs["a_good"]["total"]["max_score"] > 0
    assert (remote / "gradebook.csv").read_text() == (local / "gradebook.csv").read_text()

    # A batch stopped mid-way: one report never written, one kept (tagged, to tell it was not graded again).
    (remote / "b_padding" / "report.json").unlink()
    kept = theirs["a_good"] | {"duration_s": 12345.0}
    (remote / "a_good" / "report.json").write_text(json.dumps(kept))
    assert main([*argv, "--resume"]) == ExitCode.OK
    again = on_disk(remote)
    assert again["a_good"]["duration_s"] == 12345.0
    assert comparable(again["b_padding"]) == comparable(mine["b_padding"])


def test_a_submission_travels_to_the_node_as_its_files(tmp_path):
    """No shared disk: the driver packs the student's folder (hidden entries and links left out) into the task."""
    from cnngrade.intake.collect import collect_student

    folder = tmp_path / "alice"
    (folder / "data").mkdir(parents=True)
    (folder / f"{EX1}.py").write_text("X = 1\n")
    (folder / "data" / "table.csv").write_text("a,b\n")
    (folder / ".git").mkdir()
    (folder / ".git" / "config").write_text("secret")
    (folder / "link.py").symlink_to("/etc/passwd")
    shipped = ShippedStudent.pack(collect_student(folder, [EX1]))
    where = tmp_path / "node"
    where.mkdir()
    sub = shipped.unpack(where)
    assert sub.modules[EX1].read_text() == "X = 1\n" and sub.modules[EX1].is_relative_to(where)
    files = sorted(str(p.relative_to(where)) for p in where.rglob("*") if p.is_file())
    assert files == ["0/data/table.csv", f"0/{EX1}.py"]


def test_a_folder_over_the_caps_travels_cut_short_and_is_refused_alike(tmp_path, monkeypatch):
    """Packing stops at the file that crosses a cap, so the node's copy hits the same cap (and message) as locally,
    and a huge file does not travel."""
    from cnngrade.grading import ray_backend
    from cnngrade.sandbox import staging

    for module in (staging, ray_backend):
        monkeypatch.setattr(module, "MAX_STAGED_BYTES", 100)
    folder = tmp_path / "bob"
    folder.mkdir()
    (folder / "a.py").write_text("x" * 60)
    (folder / "b.bin").write_bytes(b"y" * 10_000)
    (folder / "c.py").write_text("never packed")
    where = tmp_path / "node"
    where.mkdir()
    with tarfile.open(fileobj=io.BytesIO(ray_backend.pack_folder(folder))) as tar:
        assert [(m.name, m.size) for m in tar.getmembers()] == [("a.py", 60), ("b.bin", 41)]
        tar.extractall(where, filter="data")
    local = staging.stage_submission(folder, tmp_path / "copy1", None)
    assert local and staging.stage_submission(where, tmp_path / "copy2", None) == local


def test_a_node_that_cannot_grade_says_why_and_a_task_that_keeps_failing_is_a_grader_error(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from cnngrade.config import GRADERS_DIR, load_exercise
    from cnngrade.grading import ray_backend
    from cnngrade.grading.backends import StudentTask
    from cnngrade.intake.collect import collect_student
    from cnngrade.sandbox.launch import Limits
    from cnngrade.training.profiles import Profile

    task = StudentTask({EX1: load_exercise(EX1)}, GRADERS_DIR, "bwrap", Limits(), Profile("cpu", "cpu", "synthetic"))
    other = ray_backend.NodeTask(task, True, "0" * 16).problem()
    assert "runs other cnngrade code or graders than this machine" in other and "same cnngrade release" in other
    nobox = ray_backend.NodeTask(dataclasses.replace(task, isolation="chroot"), True,
                                 ray_backend.install_digest(str(GRADERS_DIR))).problem()
    assert "cannot run the chroot sandbox" in nobox and "bubblewrap" in nobox

    (tmp_path / "carol").mkdir()
    sub = collect_student(tmp_path / "carol", [EX1])
    backend = RayBackend()
    monkeypatch.setattr(ray_backend, "_ray", lambda: SimpleNamespace(put=lambda value: value))
    monkeypatch.setattr(backend, "check_nodes", lambda spec: None)
    monkeypatch.setattr(backend, "map", lambda fn, calls, **_: ((args, None, RuntimeError("lost")) for args in calls))
    [report] = backend.grade([sub], task)
    assert report.student == "carol" and report.grader_errors == len(task.configs[EX1].tests)
    assert "failed 4 times" in report.exercises[EX1].tests[0].output and "--resume" in report.exercises[EX1].tests[0].output


def test_without_ray_the_backend_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)   # `import ray` now raises ImportError, as when not installed
    with pytest.raises(UsageError, match=r"needs Ray, which is not installed here: pip install 'cnngrade\[ray\]'"):
        RayBackend("127.0.0.1:6379").check("bwrap")


@pytest.mark.slow   # the profile (torch) and the class come first
def test_an_unreachable_cluster_is_one_line(tmp_path, capsys):
    pytest.importorskip("ray", reason="Ray is in the [ray] and [dev] extras")
    (tmp_path / "class" / "a").mkdir(parents=True)
    code = main(["grade", str(tmp_path / "class"), "--out", str(tmp_path / "out"), "--exercises", "ex1",
                 "--backend", "ray", "--address", "127.0.0.1:9"])   # nothing listens on the discard port
    err = capsys.readouterr().err.strip()
    assert code == ExitCode.USAGE_ERROR
    assert err.startswith("cnngrade: error: cannot reach a Ray cluster at 127.0.0.1:9") and "\n" not in err


@pytest.mark.slow
def test_a_node_lost_mid_batch_loses_no_student(cluster, tmp_path):
    """The second node goes while both nodes grade a slow student: its student is graded again on the head."""
    import ray

    whole, second = cluster
    klass = make_class(tmp_path, {"a_slow": SLOW, "b_slow": SLOW})
    backend = RayBackend(whole.address)
    done: list = []
    batch = threading.Thread(target=lambda: done.append(grade_class(klass, tmp_path / "out", [EX1], jobs=2,
                                                                     backend=backend)))
    batch.start()
    deadline = time.monotonic() + 120
    while not (ray.is_initialized() and ray.available_resources().get("CPU", 0) == 0):   # both nodes busy
        assert batch.is_alive() and time.monotonic() < deadline, "the two students never ran at once"
        time.sleep(0.2)
    lost = second.node_id
    whole.remove_node(second)
    batch.join(300)
    whole.add_node(**NODE)   # for any test after this one
    [reports] = done
    assert [r.student for r in reports] == ["a_slow", "b_slow"]
    for r in reports:
        assert r.grader_errors == 0 and r.total["score"] == r.total["max_score"] > 0, r.to_dict()
    # Both ran at once, one on each node; both reports came from the head: the lost node's student was run again.
    assert lost != whole.head_node.node_id and set(backend.graded_on.values()) == {whole.head_node.node_id}
    assert sorted(on_disk(tmp_path / "out")) == ["a_slow", "b_slow"]
