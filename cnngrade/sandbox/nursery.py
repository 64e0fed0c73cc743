"""The trusted side of a class's nursery (``cnngrade/worker/nursery.py``): one sandbox per grading machine that
imports torch once and forks every student's zygote into a sandbox of the student's own.

Without it each student's sandbox imports torch, torchvision and matplotlib itself: about two bare imports of
torch of CPU per student. The nursery does it once; each student's zygote is then a fork that made its own
namespaces, mounts, uid and cgroup membership before it served a single request (see the worker side for the
list). ``Nursery.endpoint`` (the socket's path and the class folder) travels to each grading process, whose
``zygote.Zygote`` asks for the student's zygote there, and falls back to a sandbox of its own when the nursery
cannot be reached.

Used only where it gives every guarantee of a student's own sandbox: bubblewrap isolation, running as root (the
nursery needs real uids to hand out), cgroups (the trusted side moves each student's zygote into its group before
it goes on), pidfds and the seccomp filter (x86-64 Linux), the cpu profile (GPU workers keep a sandbox each).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from cnngrade.sandbox import cgroup_setup, reaping, seccomp
from cnngrade.sandbox.bwrap import RUNTIME_ROOT, bwrap_prefix
from cnngrade.sandbox.launch import PYTHON_FLAGS, Limits, WorkerCommand, seccomp_pipe, start_process, worker_env
from cnngrade.worker.nursery import LIMITS, NURSERY_BOOTSTRAP, STUDENTS

# Namespaces and mounts; the loopback device up; the drop to the student's uid and of every capability.
CAPABILITIES = ("CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")
BACKLOG = 256
_UCRED = struct.Struct("iII")   # struct ucred: pid, uid, gid


def pidfds() -> bool:
    """Whether a process that is not our child can be watched and killed through a pidfd (Linux 5.3, Python 3.9)."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


def usable(isolation: str, gpu: bool) -> bool:
    """Whether a nursery can give each student every guarantee of a sandbox of their own here."""
    return (isolation == "bwrap" and not gpu and os.getuid() == 0 and sys.platform == "linux"
            and seccomp.supported() and pidfds() and cgroup_setup.active()[0] is not None
            and shutil.which("bwrap") is not None)


class Nursery:
    """One class's nursery: started with ``start``, stopped (with every student sandbox in it) by ``close``."""

    def __init__(self, limits: Limits):
        # Trusted code that lives as long as the class: no CPU limit of a worker's; the memory bounds stay.
        self.limits = dataclasses.replace(limits, cpu_seconds=1 << 30)
        self.root = ""       # the class folder: each grading process makes its student's folder in it
        self._dir = ""       # root-only: the listening socket, the nursery's output, an empty /submission
        self._proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> dict[str, str]:
        """What a grading process needs to ask for its student's zygote (``Zygote(nursery=...)``)."""
        return {"socket": os.path.join(self._dir, "nursery.sock"), "root": self.root}

    def start(self) -> None:
        self.root = tempfile.mkdtemp(prefix=reaping.scratch_prefix("class"))
        os.chmod(self.root, 0o711)   # classmates' uids may pass through, never list it
        self._dir = tempfile.mkdtemp(prefix=reaping.scratch_prefix("nursery"))
        os.mkdir(os.path.join(self._dir, "empty"), 0o755)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        filter_fd = seccomp_pipe()
        try:
            listener.bind(self.endpoint["socket"])
            listener.listen(BACKLOG)
            argv = bwrap_prefix(os.path.join(self._dir, "empty"), self.limits, worker_env("/tmp", self.limits),
                                uid=None, seccomp_fd=filter_fd)
            argv += ["--ro-bind", self.root, STUDENTS, "--cap-drop", "ALL"]
            for cap in CAPABILITIES:
                argv += ["--cap-add", cap]
            argv += [sys.executable, *PYTHON_FLAGS, "-c", NURSERY_BOOTSTRAP, RUNTIME_ROOT, str(listener.fileno())]
            cmd = WorkerCommand(argv, {"PATH": "/usr/bin:/bin"}, self._dir, self.limits, "bwrap", None, False,
                                filter_fd)
            fds = tuple(fd for fd in (listener.fileno(), filter_fd) if fd is not None)
            self._proc = start_process(cmd, os.path.join(self._dir, "output"), fds)
        except BaseException:
            self.close()
            raise
        finally:
            listener.close()   # the nursery holds the only copy: once it is gone, asking for a zygote is refused
            if filter_fd is not None:
                os.close(filter_fd)

    def output(self) -> str:
        """What the nursery printed (torch's warnings; why a student's sandbox could not be made)."""
        path = os.path.join(self._dir, "output")
        if not (self._dir and os.path.exists(path)):
            return ""
        with open(path, errors="replace") as fh:
            return fh.read()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:   # its pid namespace ends with it, and every student sandbox nested in it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            reaping.LIVE.discard(proc.pid)
        for folder in (self._dir, self.root):
            if folder:
                shutil.rmtree(folder, ignore_errors=True)
        self._dir = self.root = ""


def ask(endpoint: dict[str, str], folder: str, uid: int, limits: Limits, output: str) -> socket.socket:
    """Ask the nursery at ``endpoint`` for a student's sandbox (their files in ``folder`` of the class folder, run as
    ``uid``, what it prints to the file ``output``): our end of its control socket, where it says it is ready (see
    ``credentials``) before it serves as the student's zygote. OSError: no nursery there."""
    request = json.dumps({"student": folder, "uid": uid, "limits": {k: getattr(limits, k) for k in LIMITS}}).encode()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)   # its pid comes with its first message
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.connect(endpoint["socket"])
        with open(output, "wb") as out:
            socket.send_fds(conn, [request], [theirs.fileno(), out.fileno()])
    except OSError:
        ours.close()
        raise
    finally:
        conn.close()
        theirs.close()
    return ours


def credentials(chan: socket.socket, timeout: float) -> tuple[int, int] | None:
    """(pid, uid) the kernel attached to the ready message b"R" on ``chan``; (0, -1) for anything else (a closed
    socket, another byte); None when nothing came within ``timeout`` seconds."""
    if not select.select([chan], [], [], timeout)[0]:
        return None
    try:
        data, ancillary, _flags, _addr = chan.recvmsg(1, socket.CMSG_SPACE(_UCRED.size))
    except OSError:
        data, ancillary = b"", []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= _UCRED.size:
            pid, uid, _gid = _UCRED.unpack(payload[:_UCRED.size])
            if data == b"R":
                return pid, uid
    return 0, -1


class RemoteZygote:
    """A student's zygote that the nursery forked (not our child): watched and killed through a pidfd."""

    def __init__(self, pid: int, pidfd: int):
        self.pid, self._pidfd = pid, pidfd

    def poll(self) -> int | None:
        return None if self._pidfd >= 0 and not select.select([self._pidfd], [], [], 0)[0] else 0

    def kill(self) -> None:
        if self._pidfd < 0:
            return
        with contextlib.suppress(ProcessLookupError, OSError):
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        select.select([self._pidfd], [], [], 5.0)   # readable once it has ended

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._pidfd)
        self._pidfd = -1


_HEAVY_IMPORT = re.compile(rb"^[ \t]*(?:import|from)[ \t]+(?:torch|torchvision|matplotlib)\b", re.MULTILINE)


def pays_off(modules: Iterable[Path]) -> bool:
    """Whether some module of the batch imports what the nursery imports once for all (torch, torchvision,
    matplotlib): then each student's sandbox is a fork instead of a start that imports them again. A batch
    of modules that import none of them (exercise 1) is graded in plain sandboxes, which start in milliseconds."""
    for path in modules:
        try:
            with open(path, "rb") as fh:
                if _HEAVY_IMPORT.search(fh.read(1 << 20)):
                    return True
        except OSError:
            continue
    return False


@contextlib.contextmanager
def for_class(isolation: str, limits: Limits, *, gpu: bool, wanted: bool) -> Iterator[dict[str, str] | None]:
    """A running nursery's endpoint for the length of a class's grading, or None where one is not usable (or
    not ``wanted``, see ``pays_off``); grading then starts a sandbox per student."""
    if not (wanted and usable(isolation, gpu)):
        yield None
        return
    nursery = Nursery(limits)
    try:
        nursery.start()
    except OSError:
        yield None
        return
    try:
        yield nursery.endpoint
    finally:
        nursery.close()
