"""One nursery per class (sandbox/nursery.py): torch imported once, each student's zygote forked into a sandbox of
its own that keeps every guarantee of a sandbox the student started alone, and a fallback when it is gone."""
from __future__ import annotations

import ast
import json
import os
import shutil
import socket
from pathlib import Path

import pytest

from cnngrade.cli import main
from cnngrade.config import PROJECT_ROOT
from cnngrade.sandbox import launch, nursery
from cnngrade.sandbox.client import Worker
from cnngrade.sandbox.nursery import credentials
from cnngrade.sandbox.submission import Submission
from cnngrade.sandbox.zygote import Zygote
from tests.test_isolation import ZYGOTE_PROBE, write_probe

HUNTER = Path(__file__).parent / "adversarial" / "nursery" / "ex1_output_size.py"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not nursery.usable("bwrap", False), reason="needs root, bubblewrap and cgroups")]

NEIGHBOURS = '''

def world():
    """What else this sandbox shows: processes, network, the class folder, its submission, its pid 1."""
    import socket
    return {"pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()), "me": os.getpid(),
            "parent": os.getppid(), "nets": [n for _, n in socket.if_nameindex()],
            "students": os.listdir("/students") if os.path.isdir("/students") else None,
            "submission": sorted(os.listdir("/submission")), "tmp": sorted(os.listdir("/tmp"))}


def loopback():
    """A server and a client on 127.0.0.1, as in a sandbox of the student's own."""
    import socket
    with socket.create_server(("127.0.0.1", 0)) as server, \
            socket.create_connection(server.getsockname()[:2], timeout=5) as client:
        peer, _ = server.accept()
        client.sendall(b"ping")
        return peer.recv(4).decode()


def leave(name):
    with open(f"/tmp/{name}", "w") as fh:
        fh.write("a note for a classmate")


def kill_init():
    """Try to end the sandbox's pid 1: this student's zygote."""
    import signal
    try:
        os.kill(1, signal.SIGKILL)
        return "sent"
    except OSError as exc:
        return type(exc).__name__
'''


@pytest.fixture
def probe_dir(tmp_path):
    return write_probe(tmp_path, ZYGOTE_PROBE + NEIGHBOURS)


@pytest.fixture
def class_nursery():
    made = nursery.Nursery(launch.Limits())
    made.start()
    yield made
    made.close()


def test_each_student_forked_by_the_nursery_keeps_every_guarantee(probe_dir, class_nursery):
    """Two students of one class: each in namespaces, a uid, a /tmp and a /submission of their own; no
    capabilities, the seccomp filter, nothing of the nursery or the classmate visible, their pid 1 untouchable."""
    zygotes = [Zygote(nursery=class_nursery.endpoint) for _ in range(2)]
    workers = [Worker(probe_dir, "probe_mod", call_timeout=60, zygote=z) for z in zygotes]
    try:
        alice, bob = (Submission(w) for w in workers)
        seen = [alice.look(), bob.look()]
        alice.leave("from-alice")
        worlds = [alice.world(), bob.world()]
        pings = [alice.loopback(), bob.loopback()]
        writes = {p: alice.write(p) for p in ("/submission/e0/probe_mod.py", "/usr/evil", "/students/evil",
                                              str(PROJECT_ROOT / "evil"))}
        parent = alice.parent()
        kills = alice.kill_init()
        again = Worker(probe_dir, "probe_mod", call_timeout=60, zygote=zygotes[0])   # her next exercise
        workers.append(again)
        after = Submission(again).world()
        forked = [z.nursery is not None for z in zygotes] + [z.starts for z in zygotes]
    finally:
        for w in workers:
            w.close()
        for z in zygotes:
            z.close()
    assert forked == [True, True, 1, 1]   # both came from the nursery; neither started a sandbox of its own
    for look in seen:
        assert look["checkout"] is False and look["cwd"].startswith("/tmp/w")
        assert look["uid"] >= launch.UID_BASE
        assert set(look["env"]) - {"PWD", "TORCHINDUCTOR_CACHE_DIR"} == set(launch.worker_env("/tmp", launch.Limits()))
        assert look["status"]["CapEff"].strip("0\t ") == "" and look["status"]["CapBnd"].strip("0\t ") == ""
        assert look["status"]["NoNewPrivs"].strip() == "1" and look["status"]["Seccomp"].strip() == "2"
        assert "work" not in look["root"] and "etc" not in look["root"] and "home" not in look["root"]
    assert seen[0]["uid"] != seen[1]["uid"] and pings == ["ping", "ping"]
    for world in worlds:   # only its pid 1 (the student's zygote) and itself; loopback only; no class folder
        assert world["pids"] == sorted({1, world["me"]}) and world["parent"] == 1
        assert world["nets"] == ["lo"] and world["students"] == [] and world["submission"] == ["e0"]
    assert "from-alice" in worlds[0]["tmp"] and "from-alice" not in worlds[1]["tmp"]
    assert set(writes.values()) <= {"OSError", "PermissionError", "FileNotFoundError"}
    assert not (PROJECT_ROOT / "evil").exists()
    assert parent == {"mem": "PermissionError", "trace": "PermissionError"}
    # A signal to pid 1 from inside its namespace is dropped: her zygote lived on and forked her next exercise.
    assert kills == "sent" and after["parent"] == 1 and after["submission"] == ["e0", "e1"]


def test_a_nursery_that_is_gone_leaves_each_student_a_sandbox_of_their_own(probe_dir):
    made = nursery.Nursery(launch.Limits())
    made.start()
    endpoint = made.endpoint
    made.close()
    os.makedirs(endpoint["root"])   # the class folder outlives a nursery that died on its own
    zygote = Zygote(nursery=endpoint)
    worker = Worker(probe_dir, "probe_mod", call_timeout=60, zygote=zygote)
    try:
        seen = Submission(worker).world()
    finally:
        worker.close()
        zygote.close()
        shutil.rmtree(endpoint["root"], ignore_errors=True)
    assert zygote.nursery is None and zygote.starts == 1 and seen["submission"] == ["e0"]


@pytest.mark.parametrize("request_", [{"student": "..", "uid": 1_500_000}, {"student": "x/../..", "uid": 1_500_000},
                                       {"student": "s", "uid": 0}, {"student": "s"}, "not json"])
def test_the_nursery_makes_no_sandbox_for_a_malformed_request(class_nursery, request_):
    """Refused before any namespace is made: the control socket just closes, and the nursery goes on serving."""
    limits = {k: getattr(launch.Limits(), k) for k in ("cpu_seconds", "file_bytes", "open_files", "memory_bytes",
                                                       "processes", "tmp_bytes")}
    payload = (request_ if isinstance(request_, str) else json.dumps({**request_, "limits": limits})).encode()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    conn.connect(class_nursery.endpoint["socket"])
    with open(os.devnull, "wb") as out:
        socket.send_fds(conn, [payload], [theirs.fileno(), out.fileno()])
    conn.close()
    theirs.close()
    assert credentials(ours, 120.0) == (0, -1)   # closed without a word
    ours.close()
    if request_ == "not json":   # a client that connects and sends nothing is dropped after a while
        silent = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        silent.connect(class_nursery.endpoint["socket"])
        assert silent.recv(1) == b""
        silent.close()
    # ...and a well-formed request after it is served
    os.makedirs(Path(class_nursery.root, "ok", "submission"))
    good = Zygote(nursery=class_nursery.endpoint)
    good._root = str(Path(class_nursery.root, "ok"))
    try:
        good.start()
        good._admit()
        assert good.nursery is not None and good.alive()
    finally:
        good.close()


def test_a_class_is_graded_through_one_nursery(tmp_path, monkeypatch):
    """`cnngrade grade` starts one nursery for a class whose students hand in two exercises or more; a student who
    hunts for it and for the classmates it forked (tests/adversarial/nursery) finds nothing and harms nothing, and
    every report is what a sandbox per student gives."""
    started = []
    real_start = nursery.Nursery.start
    monkeypatch.setattr(nursery.Nursery, "start", lambda self: (started.append(1), real_start(self))[1])
    klass = tmp_path / "class"
    for name in ("ada", "hunter"):
        (klass / name).mkdir(parents=True)
        for exercise in ("ex1_output_size", "ex4_shape_tracking"):   # ex4 imports torch: the nursery pays off
            shutil.copy(PROJECT_ROOT / "solutions" / f"{exercise}.py", klass / name)
    shutil.copy(HUNTER, klass / "hunter" / "ex1_output_size.py")
    reports = {}
    for label, use in (("nursery", True), ("alone", False)):
        monkeypatch.setattr(nursery, "usable", lambda isolation, gpu, _use=use: _use)
        out = tmp_path / label
        assert main(["grade", str(klass), "--out", str(out), "--exercises", "ex1,ex4", "--jobs", "2"]) == 0
        reports[label] = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/report.json")}
    assert started == [1]
    for name in ("ada", "hunter"):   # every automatic point, hunting or not
        total = reports["nursery"][name]["total"]
        assert total["score"] + total["manual_pending"] == total["max_score"], name
    # The honest classmate's report is the one a sandbox of her own gives. (The hunter's is not: in a sandbox
    # started for it alone its zygote is not the pid 1 of its namespace, and it kills it, with its own exercises.)
    def verdicts(report: dict) -> dict:
        return {e: [(t["name"], t["status"]) for t in r["tests"]] for e, r in report["exercises"].items()}

    assert verdicts(reports["nursery"]["ada"]) == verdicts(reports["alone"]["ada"])
    assert reports["nursery"]["ada"]["total"] == reports["alone"]["ada"]["total"]
    printed = reports["nursery"]["hunter"]["exercises"]["ex1_output_size"]["student_output"]
    found = ast.literal_eval(printed.split("NURSERY-HUNT", 1)[1].strip().splitlines()[0])
    assert found["own_pids"] == [1] and found["class_folder"] == [] and found["submission"] == ["e0"]
    assert found["unix_sockets_reached"] == []
