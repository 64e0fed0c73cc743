"""The trusted side of a student's zygote: one sandbox per student that imports torch once and forks a fresh worker
per exercise (the sandboxed side is ``cnngrade/worker/zygote.py``).

A child says it is ready, the kernel attaches its pid to that message (SCM_CREDENTIALS), this side moves it
into the worker's own cgroup and only then lets it import the student's module. A crash or a timeout kills
that child alone; a dead zygote is started again by the next worker that needs one.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from cnngrade.errors import WorkerCrashed
from cnngrade.sandbox import cgroup_setup, cgroups, reaping, staging
from cnngrade.sandbox.bwrap import SANDBOX_TMP, SUBMISSION_MOUNT
from cnngrade.sandbox.launch import (
    IMPORT_TIMEOUT,
    ISOLATIONS,
    ZYGOTE_WORKERS,
    Limits,
    fresh_uid,
    seccomp_pipe,
    start_process,
    zygote_command,
)
from cnngrade.sandbox.nursery import RemoteZygote, ask, credentials, pidfds
from cnngrade.sandbox.overload import OVERLOADED, MachineOverloaded

ZYGOTE_TIMEOUT = 120.0   # for a student's zygote to import torch: the machine's time, never the student's
ZYGOTE_PIDS = 32         # bubblewrap, the zygote's threads, a child between its fork and its move to its own group


class ZygoteChild:
    """One exercise's worker, forked by the student's zygote: killed through a pidfd, its exit status read back."""

    def __init__(self, pid: int, pidfd: int, chan: socket.socket, status: int):
        self.pid, self._pidfd, self._chan, self._status = pid, pidfd, chan, status
        self.channel = chan.fileno()   # requests and replies both travel on this socket

    def kill(self) -> None:
        try:
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        except (ProcessLookupError, OSError):
            pass
        select.select([self._pidfd], [], [], 5.0)   # readable once it has ended

    def wait(self, timeout: float) -> int | None:
        """Its exit status as the zygote saw it (negative: a signal), None if the zygote is gone too.

        Told by the zygote, so no more trusted than the student's code: it only words the student's message.
        """
        if not select.select([self._status], [], [], timeout)[0]:
            raise subprocess.TimeoutExpired("zygote child", timeout)
        text = os.read(self._status, 32).decode("ascii", "replace").strip()
        return int(text) if text.lstrip("-").isdigit() else None

    def close(self) -> None:
        self._chan.close()
        for fd in (self._pidfd, self._status):
            try:
                os.close(fd)
            except OSError:
                pass
        self._pidfd = self._status = -1


class Zygote:
    """One student's sandbox: a process that imported torch once and forks a fresh worker per exercise.

    Every worker of the student runs in it (its namespaces, uid, seccomp filter and rlimits), each as a child
    of its own with its own interpreter state, cgroup, private folder, output file and channel. The zygote
    itself never runs student code (worker/zygote.py); if it dies, the next exercise to start starts another.
    """

    def __init__(self, *, isolation: str = ISOLATIONS[0], limits: Limits | None = None, gpu: bool = False,
                 start_timeout: float = ZYGOTE_TIMEOUT, nursery: dict[str, str] | None = None):
        self.isolation, self.limits, self.gpu = isolation, limits or Limits(), gpu
        # The class's nursery (sandbox/nursery.py: its socket and class folder), or None: a sandbox of our own.
        self.nursery = nursery if isolation == "bwrap" and not gpu else None
        self._pending = False    # asked the nursery for our sandbox; not yet admitted into our cgroup
        self.start_timeout = start_timeout
        self.uid = fresh_uid()   # None unless we are root
        self.starts = 0          # how many times it was started (each an import of torch, unless the nursery forked it)
        self.proc: subprocess.Popen | RemoteZygote | None = None
        self._ctrl: socket.socket | None = None
        self._root: str | None = None
        self._group: cgroups.Group | None = None
        self._copies = itertools.count()
        self._children = itertools.count()
        self.fresh = False       # started and not yet asked for a child: its import of torch may be under way

    @staticmethod
    def supported() -> bool:
        """Whether this system can run zygotes: a child is killed through a pidfd (Linux 5.3, Python 3.9)."""
        return pidfds()

    def _prepare(self) -> str:
        if self._root is None:
            parent = self.nursery["root"] if self.nursery else None   # the nursery's class folder shows it inside
            self._root = tempfile.mkdtemp(prefix=reaping.scratch_prefix("student"), dir=parent)
            os.chmod(self._root, 0o711)   # others (classmates' sandbox uids) may not list it
            for name, mode in (("submission", 0o750), ("home", 0o700)):
                os.mkdir(os.path.join(self._root, name), mode)
            if self.uid is not None:
                os.chown(os.path.join(self._root, "home"), self.uid, self.uid)
                staging.restrict(Path(self._root, "submission"), self.uid, 0o750)
        return self._root

    def stage(self, student_dir: Path) -> tuple[str, str]:
        """A private copy of one exercise's folder: (the path the sandbox sees it at, '' or why it is unusable)."""
        root = self._prepare()
        name = f"e{next(self._copies)}"
        problem = staging.stage_submission(Path(student_dir), Path(root, "submission", name), self.uid)
        inside = SUBMISSION_MOUNT if self.isolation == "bwrap" else os.path.join(root, "submission")
        return f"{inside}/{name}", problem

    def alive(self) -> bool:
        return self._pending or (self.proc is not None and self.proc.poll() is None)

    def _start(self) -> None:
        self._stop()
        root = self._prepare()
        base = cgroup_setup.active()[0]
        if self._group is None and base is not None:
            self._group = base.create(cgroups.group_name("z"), cores=self.limits.threads,
                                      memory=self.limits.ram_bytes, pids=ZYGOTE_PIDS)
        if self.nursery is not None:
            try:
                self._ask_nursery(root)
                return
            except OSError:   # no nursery any more: this student's sandbox is started as before
                self.nursery = None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        filter_fd = seccomp_pipe() if self.isolation == "bwrap" else None
        cmd = zygote_command(Path(root, "submission"), theirs.fileno(), os.path.join(root, "home"),
                             isolation=self.isolation, limits=self.limits, uid=self.uid, gpu=self.gpu,
                             seccomp_fd=filter_fd, cgroup_procs=tuple(self._group.procs_files()) if self._group else ())
        try:   # its output is torch's warnings: not the student's
            self.proc = start_process(cmd, os.path.join(root, "zygote-output"),
                                      tuple(fd for fd in (theirs.fileno(), filter_fd) if fd is not None))
        finally:
            theirs.close()
            if filter_fd is not None:
                os.close(filter_fd)
        self._ctrl, self.fresh = ours, True
        self.starts += 1

    def _ask_nursery(self, root: str) -> None:
        """Ask the class's nursery to fork this student's sandbox; admitted into our cgroup by ``_admit``."""
        assert self.nursery is not None and self.uid is not None
        limits = dataclasses.replace(self.limits, processes=self.limits.processes * ZYGOTE_WORKERS)
        self._ctrl = ask(self.nursery, os.path.basename(root), self.uid, limits, os.path.join(root, "zygote-output"))
        self.fresh, self._pending = True, True
        self.starts += 1

    def _admit(self) -> None:
        """The student's sandbox, forked by the nursery, says it is ready (as root, before it drops to the
        student's uid): move it into the student's cgroup, then let it go on. Nothing of the student's has run."""
        assert self._ctrl is not None
        self._pending = False
        found = credentials(self._ctrl, self.start_timeout)
        if found is None:
            self._stop()
            raise MachineOverloaded(f"{OVERLOADED}: the class's nursery did not make the student's sandbox within "
                                    f"{self.start_timeout:g} s. This is not the student's fault; grade again on a less "
                                    "busy machine (cnngrade grade --resume regrades it) or with fewer --jobs")
        pid, uid = found
        if pid <= 0 or uid != 0:   # the nursery refused or died: start a sandbox of our own instead
            self._stop()
            self.nursery = None
            self._start()
            return
        proc = RemoteZygote(pid, os.pidfd_open(pid))
        self.proc = proc
        reaping.LIVE.add(pid)
        try:
            if self._group is not None:
                self._group.join(pid)
            self._ctrl.sendall(b"G")
        except BaseException:
            self._stop()
            raise
        self._ctrl.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 0)

    def start(self) -> None:
        """Start the zygote now, if it is not running, without waiting for its import of torch (the grading
        plugin does this first, so the import overlaps with the collection of the graders)."""
        if not self.alive():
            self._start()

    def spawn(self, module: str, inside: str, output_fd: int, group: cgroups.Group | None) -> ZygoteChild:
        """A fresh worker for ``module`` (staged at ``inside``), its output to ``output_fd``, in ``group``."""
        self.start()
        if self._pending:
            self._admit()
        assert self._ctrl is not None
        work = (SANDBOX_TMP if self.isolation == "bwrap" else os.path.join(self._root or "", "home"))
        request = json.dumps({"module": module, "dir": inside, "work": f"{work}/w{next(self._children)}"}).encode()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # Set before the child writes: the kernel then attaches its pid, as this process sees it, to what it sends.
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        status_r, status_w = os.pipe()
        try:
            socket.send_fds(self._ctrl, [request], [theirs.fileno(), output_fd, status_w])
        except OSError:
            self.fresh = False
            ours.close()
            os.close(status_r)
            raise WorkerCrashed("the student's sandbox ended before the worker could start") from None
        finally:
            theirs.close()
            os.close(status_w)
        timeout = self.start_timeout if self.fresh else max(IMPORT_TIMEOUT, 10.0)
        try:
            pid = self._ready(ours, timeout)
            pidfd = os.pidfd_open(pid)
        except BaseException:
            ours.close()
            os.close(status_r)
            raise
        child = ZygoteChild(pid, pidfd, ours, status_r)
        try:
            if group is not None:   # before it runs a line of student code: it waits for the go-ahead
                group.join(pid)
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 0)
            ours.sendall(b"G")
        except BaseException:
            child.kill()
            child.close()
            raise
        return child

    def _ready(self, chan: socket.socket, timeout: float) -> int:
        """The pid of the child that said it is ready on ``chan``, from the kernel's credentials."""
        fresh, self.fresh = self.fresh, False
        if not select.select([chan], [], [], timeout)[0]:
            if fresh:   # no student code has run yet: a machine too busy to import torch in time
                self._stop()
                raise MachineOverloaded(f"{OVERLOADED}: the student's sandbox did not import torch within "
                                        f"{timeout:g} s. This is not the student's fault; grade again on a less "
                                        "busy machine (cnngrade grade --resume regrades it) or with fewer --jobs")
            raise WorkerCrashed(f"the student's sandbox did not start a worker within {timeout:g} s")
        found = credentials(chan, 0.0)
        if found is not None and found[0] > 0 and found[1] == (self.uid if self.uid is not None else os.getuid()):
            return found[0]
        raise WorkerCrashed("the student's sandbox ended before the worker could start")

    def _stop(self) -> None:
        if self._ctrl is not None:
            self._ctrl.close()
            self._ctrl = None
        proc, self.proc = self.proc, None
        self._pending = False
        if isinstance(proc, RemoteZygote):   # pid 1 of the student's pid namespace: its workers end with it
            proc.kill()
            if self._group is not None:
                self._group.kill()
            proc.close()
            reaping.LIVE.discard(proc.pid)
        elif proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if self._group is not None:
                self._group.kill()
            proc.wait()
            reaping.LIVE.discard(proc.pid)

    def close(self) -> None:
        """End the sandbox and everything in it (close the workers first: their groups are theirs to remove)."""
        self._stop()
        if self._group is not None:
            self._group.kill()
            self._group.remove()
            self._group = None
        reaping.sweep(self.uid, keep=reaping.LIVE)   # every worker of the student is closed: the uid is all theirs
        if self._root:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
