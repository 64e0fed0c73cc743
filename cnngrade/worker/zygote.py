"""One student's zygote: imports torch once, then forks a fresh worker per exercise when the trusted side asks.

It runs inside the student's sandbox (namespaces, uid, seccomp, rlimits all set before it started) and never
imports student code: each request forks a child that takes the channel, output file and status pipe the
trusted side sent (SCM_RIGHTS), says it is ready (the kernel attaches its pid for the trusted side, which
moves it into the exercise's cgroup), waits for the go-ahead, and only then imports its one module and serves
``server``'s protocol. So exercises never share an interpreter: one's monkeypatching dies with its child.

Started as ``python -c <ZYGOTE_BOOTSTRAP> RUNTIME_ROOT CTRL_FD``. A request on the control socket is a line
of JSON ``{"module", "dir", "work"}`` with three fds: the child's channel, its output file, its status pipe.
When a child ends, its exit status (negative: the signal) is written to its status pipe, then closed.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import shutil
import signal
import socket
import sys

PRELOAD = ("torch", "torchvision", "numpy", "PIL.Image", "matplotlib.pyplot")   # never torch.cuda: fork-unsafe
MAX_REQUEST = 4096
CHILD_FD = 3          # the child's channel, both ways
PR_SET_DUMPABLE = 4


def dumpable(flag: int) -> None:
    """Non-dumpable: children (the same uid) cannot ptrace the zygote or read its memory; children undo it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, flag, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def preload() -> None:
    """What every exercise imports, once; a package that is missing or fails is left to each child."""
    for name in PRELOAD:
        with contextlib.suppress(Exception):   # the child imports it again and reports the failure as its own
            __import__(name)
    from . import helpers, server  # noqa: F401 - the worker's own modules, figures and probes included


def main(argv: list[str]) -> None:
    ctrl = socket.socket(fileno=int(argv[0]))
    dumpable(0)
    preload()
    serve(ctrl)


def serve(ctrl: socket.socket) -> None:
    """Fork a worker for each request on ``ctrl`` until the trusted side closes it (torch already imported)."""
    dumpable(0)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)   # wakes select through wake_r
    children: dict[int, tuple[int, str]] = {}        # pid -> (status pipe, private folder)
    sys.stdout.flush()
    sys.stderr.flush()
    while True:
        ready = select.select([ctrl.fileno(), wake_r], [], [])[0]
        if wake_r in ready:
            os.read(wake_r, 4096)
        _reap(children)
        if ctrl.fileno() not in ready:
            continue
        msg, fds, _flags, _addr = socket.recv_fds(ctrl, MAX_REQUEST, 3)
        if not msg:
            return   # the trusted side closed: the sandbox ends, and with it every child
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            continue
        chan, out, status = fds
        pid = os.fork()
        if pid == 0:
            _child(msg, chan, out)
        os.close(chan)
        os.close(out)
        children[pid] = (status, _work(msg))


def _work(msg: bytes) -> str:
    try:
        return str(json.loads(msg)["work"])
    except (ValueError, KeyError, TypeError):
        return ""


def _reap(children: dict[int, tuple[int, str]]) -> None:
    """Reap every ended child: our workers, and (as a student's pid 1, see nursery.py) whatever they left."""
    while True:
        try:
            pid, code = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        status, work = children.pop(pid, (None, ""))
        if status is not None:
            try:
                os.write(status, str(os.waitstatus_to_exitcode(code)).encode())
            except OSError:
                pass
            os.close(status)
        if work:   # its private folder goes with it: the sandbox's /tmp is shared by the student's exercises
            shutil.rmtree(work, ignore_errors=True)


def _child(msg: bytes, chan: int, out: int) -> None:
    """The exercise's worker: its own fds, signals and files, then its module. Never returns into the zygote."""
    code = 0
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.dup2(chan, CHILD_FD)
        os.closerange(CHILD_FD + 1, 1 << 16)   # the control socket, the wake pipe, other children's status pipes
        dumpable(1)
        os.write(CHILD_FD, b"R")   # the kernel attaches our pid: the trusted side moves us into our cgroup
        if os.read(CHILD_FD, 1) != b"G":
            os._exit(0)
        request = json.loads(msg)
        _settle(str(request["work"]))
        from . import server

        server.main([str(CHILD_FD), str(CHILD_FD), str(request["dir"]), str(request["module"])])
    except BaseException:  # noqa: BLE001 - whatever happens, this process must not go back to the zygote's loop
        code = 1
    finally:
        exit_now(code)


def exit_now(code: int) -> None:
    """End a forked child for good, what it printed flushed: it must never return into its parent's loop."""
    with contextlib.suppress(BaseException):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _settle(work: str) -> None:
    """A private working folder, fresh random state: what a newly started worker would have had."""
    os.makedirs(work, 0o700, exist_ok=True)
    os.chdir(work)
    for key in ("HOME", "TMPDIR", "MPLCONFIGDIR"):
        os.environ[key] = work
    import tempfile

    tempfile.tempdir = None   # chosen again from TMPDIR
    for name in ("random", "numpy.random"):
        mod = sys.modules.get(name)
        if mod is not None:
            mod.seed()   # from the OS: children of one zygote must not repeat each other's draws


ZYGOTE_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); del sys.argv[1]; "
    "from cnngrade.worker import zygote; zygote.main(sys.argv[1:])"
)
