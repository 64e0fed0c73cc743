"""The trusted end of the worker pipe: ``Worker`` starts a student's sandboxed process, sends it requests, enforces
the import, per-call and per-exercise time limits, and restarts the process after a crash or a timeout.

Graders hold a ``Submission`` (``submission.py``) whose calls go through a Worker; objects that cannot cross
(a model, a figure) come back as ``Handle``s (``handles.py``). A worker is either a sandbox of its own or,
during grading, a fresh fork of its student's ``Zygote`` (``zygote.py``): one sandbox per student that imports
torch once, each exercise then a child with its own interpreter, cgroup, private folder, output file and
channel, killed and restarted alone. Replies are read strictly (``replies.py``); what the student printed is
kept per process (``capture.py``).
"""
from __future__ import annotations

import os
import secrets
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from cnngrade.errors import StudentError, SubmissionFault, SubmissionImportError, WorkerCrashed, WorkerTimeout
from cnngrade.sandbox import cgroup_setup, cgroups, handles, overload, reaping, replies, staging
from cnngrade.sandbox.capture import OutputCapture
from cnngrade.sandbox.launch import IMPORT_TIMEOUT, ISOLATIONS, Limits, fresh_uid, start_worker
from cnngrade.sandbox.overload import MachineOverloaded
from cnngrade.sandbox.zygote import Zygote, ZygoteChild
from cnngrade.worker import codec

__all__ = ["Worker"]

EXTRA_PIDS = 8   # bubblewrap's own processes, which share the worker's cgroup


class Worker:
    """One sandboxed process serving one student module; restarted after a crash or a timeout.

    ``zygote``: fork the process from the student's zygote (shared by their exercises) instead of starting a
    sandbox for it alone.
    """

    def __init__(self, student_dir: Path, module: str, *, isolation: str = ISOLATIONS[0], limits: Limits = Limits(),  # noqa: B008 - frozen
                 call_timeout: float = 30.0, budget: float = 600.0, max_restarts: int = 3, gpu: bool = False,
                 zygote: Zygote | None = None):
        self.student_dir, self.module = Path(student_dir), module
        self.isolation, self.limits, self.gpu = isolation, limits, gpu
        # With a zygote, the worker is a fresh fork of the student's sandbox (its uid); else a sandbox of its own.
        self.zygote = zygote
        self.uid = zygote.uid if zygote is not None else fresh_uid()   # None unless root
        self.call_timeout, self.max_restarts = call_timeout, max_restarts
        self.deadline = time.monotonic() + budget
        self.proc: subprocess.Popen | ZygoteChild | None = None
        self._inside: str | None = None   # with a zygote: where its sandbox sees this exercise's staged copy
        self.generation = 0
        self.restarts = -1
        self.dead: SubmissionFault | None = None   # set after a crash or timeout until the next test begins
        self.fatal: SubmissionFault | None = None   # set when the module cannot be loaded at all
        self.names: list[str] = []
        self.memo: dict[str, Any] = {}   # plain data graders derived from this process; cleared on restart
        self._next_id = 0
        self._workdir: str | None = None
        self._output = OutputCapture(limits.output_bytes)   # what its processes printed, one file per start
        self._group: cgroups.Group | None = None   # the cgroup every process of this worker runs in
        self._oom_kills = 0                          # its count of memory-limit kills when this process started
        self._limit = call_timeout                   # the time limit of the request under way
        self._req_w = self._resp_r = -1              # its ends of the pipes (with a zygote: one socket)

    # -- life cycle ---------------------------------------------------------------------------
    def _start(self) -> None:
        self.restarts += 1
        if self.restarts > self.max_restarts:
            raise WorkerCrashed(f"the worker was restarted {self.max_restarts} times already; giving up")
        if self._workdir is None:
            self._prepare()
        if self.zygote is not None:
            self._start_child()
        else:
            self._start_sandbox()
        self._oom_kills = self._group.oom_kills() if self._group else 0
        self.generation += 1
        self.memo = {}
        try:
            # Importing torch and torchvision alone can take many seconds on a busy machine, and that is
            # not the student's time to spend: the import gets a longer limit than a call.
            self.names = self.request("load", None, timeout=max(self.call_timeout, IMPORT_TIMEOUT))
        except StudentError as exc:
            self.fatal = SubmissionImportError(
                f"importing {self.module}.py raised {exc.type_name}: {exc.message}\n{exc.traceback}".rstrip())
        except WorkerTimeout as exc:
            self.fatal = WorkerTimeout(f"importing {self.module}.py did not finish: {exc}")
        except WorkerCrashed as exc:
            self.fatal = WorkerCrashed(f"importing {self.module}.py: {exc}")
        if self.fatal is not None:
            self._kill()
            raise self.fatal

    def _new_output(self) -> str:
        """A fresh capture file for the process about to start (the previous one's output is kept)."""
        assert self._workdir is not None
        return self._output.new_file(os.path.join(self._workdir, "output"))

    def _start_child(self) -> None:
        """Fork this exercise's worker from the student's zygote, in this worker's own cgroup."""
        assert self.zygote is not None and self._inside is not None
        group = self._cgroup()
        output = self._new_output()
        fresh, started, t0 = self.zygote.fresh, self.zygote.starts, time.monotonic()
        with open(output, "wb") as out:
            try:
                child = self.zygote.spawn(self.module, self._inside, out.fileno(), group)
            except MachineOverloaded as exc:
                self.fatal = exc
                raise
        if fresh or self.zygote.starts != started:   # the zygote's import of torch is not the student's time
            self.deadline += time.monotonic() - t0
        self.proc = child
        self._req_w = self._resp_r = child.channel

    def _start_sandbox(self) -> None:
        """Start this exercise's worker in a sandbox of its own."""
        assert self._workdir is not None
        group = self._cgroup()
        self.proc, self._req_w, self._resp_r = start_worker(
            Path(self._workdir, "submission"), self.module, os.path.join(self._workdir, "home"), self._new_output(),
            isolation=self.isolation, limits=self.limits, uid=self.uid, gpu=self.gpu,
            cgroup_procs=tuple(group.procs_files()) if group else ())

    def _cgroup(self) -> cgroups.Group | None:
        """The worker's cgroup, made at its first start and kept (emptied) across restarts; None without cgroups.

        A CgroupError (cgroups work here, yet this one could not be made) is the grader's problem, never the
        student's: it propagates as an internal error rather than start a worker without its bounds.
        """
        base, _ = cgroup_setup.active()
        if self._group is None and base is not None:
            lim = self.limits
            self._group = base.create(cgroups.group_name("w"), cores=lim.threads, memory=lim.ram_bytes,
                                      pids=lim.processes + EXTRA_PIDS)
        return self._group

    def _prepare(self) -> None:
        """The worker's folder: a private copy of the submission, a home (rlimits mode), the output file."""
        self._workdir = tempfile.mkdtemp(prefix=reaping.scratch_prefix("worker"))
        os.chmod(self._workdir, 0o711)   # others (classmates' sandbox uids) may not list it
        if self.zygote is not None:   # the staged copy lives in the student's sandbox; here only the output file
            self._inside, problem = self.zygote.stage(self.student_dir)
            if problem:
                self.fatal = WorkerCrashed(problem)
                raise self.fatal
            return
        home = os.path.join(self._workdir, "home")
        os.mkdir(home, 0o700)
        if self.uid is not None:
            os.chown(home, self.uid, self.uid)
        problem = staging.stage_submission(self.student_dir, Path(self._workdir, "submission"), self.uid)
        if problem:
            self.fatal = WorkerCrashed(problem)
            raise self.fatal

    def begin_test(self) -> None:
        """A new test starts: a worker that died in an earlier test may be started again."""
        self.dead = None

    def close(self) -> None:
        if self.proc is not None:
            self._kill()
        if self._group is not None:
            self._group.kill()
            self._group.remove()
            self._group = None
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def _kill(self) -> None:
        proc = self.proc
        self.proc = None
        if proc is None:
            return
        if isinstance(proc, ZygoteChild):
            proc.kill()
            if self._group is not None:   # whatever it started, however detached
                self._group.kill()
            proc.close()   # its channel too: no sweep by uid here, the uid is the whole student's
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self._group is not None:   # everything the student started, however detached (setsid, double fork)
            self._group.kill()
        proc.wait()
        reaping.LIVE.discard(proc.pid)
        # Whatever the student started outside the process group (setsid daemons) runs as the sandbox uid;
        # under bubblewrap the pid namespace dies with its first process, and this makes sure it has.
        reaping.sweep(self.uid, keep=reaping.LIVE)
        for fd in (self._req_w, self._resp_r):
            try:
                os.close(fd)
            except OSError:
                pass

    def output(self) -> str:
        """What the student's code printed (capped)."""
        return self._output.whole()

    def take_output(self) -> str:
        """What the student's code printed since the last call, across restarts, within limits.output_bytes.

        The grading plugin calls it at test boundaries, so every test gets the slice printed while it ran:
        students see the slices of public tests, the instructor all of them.
        """
        return self._output.take()

    # -- requests -----------------------------------------------------------------------------
    def request(self, op: str, args: Any, timeout: float | None = None, **fields: Any) -> Any:
        if self.fatal is not None:
            raise type(self.fatal)(str(self.fatal))
        if self.dead is not None:
            raise type(self.dead)(str(self.dead))
        if time.monotonic() >= self.deadline:
            raise WorkerTimeout("the exercise used up its total time limit")
        if self.proc is None and op != "load":
            self._start()
        # Unpredictable request ids: a reply written ahead of time by student code cannot match a later request.
        self._next_id = secrets.randbits(53)
        enc = codec.Encoder(handles.encode)
        frame = codec.pack({"id": self._next_id, "op": op, "args": enc.encode(args), **fields}, enc.blobs)
        limit = min(timeout or self.call_timeout, self.deadline - time.monotonic())
        self._limit = timeout or self.call_timeout
        before = overload.sample(self._group)
        try:
            header, blobs = self._exchange(frame, time.monotonic() + limit)
        except (WorkerTimeout, WorkerCrashed) as exc:
            failure = self._judge_timeout(exc, before) if isinstance(exc, WorkerTimeout) else exc
            if isinstance(failure, MachineOverloaded):
                # The rest of the exercise would be judged on the same starved machine, and --resume regrades
                # the whole student: its remaining tests fail at once, with this grader error.
                self.fatal = failure
            self._kill()
            self.dead = failure
            raise failure from None
        if not replies.in_order(header, self._next_id):
            self._kill()
            raise WorkerCrashed("the worker sent a reply out of order")
        return replies.value(header, blobs, lambda node: handles.decode(self, node))

    def _judge_timeout(self, exc: WorkerTimeout, before: overload.Sample) -> SubmissionFault:
        """The student's timeout with the CPU time the worker got, or the machine's overload (overload.py)."""
        return overload.judge_timeout(exc, before, self._group)

    def _exchange(self, frame: bytes, deadline: float) -> tuple[dict, list[bytes]]:
        assert self.proc is not None
        try:
            codec.write_all(self._req_w, frame)
        except (BrokenPipeError, OSError):
            raise self._crash() from None

        def read(fd: int, n: int) -> bytes:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise WorkerTimeout(f"no answer within {self._limit_text(deadline)}")
            try:
                return os.read(fd, n)
            except ConnectionResetError:   # a zygote child's socket, closed by its death with our request unread
                return b""

        try:
            return codec.read_frame(self._resp_r, read)
        except EOFError:
            raise self._crash() from None
        except codec.ProtocolError as exc:
            raise WorkerCrashed(f"the worker's reply broke the protocol: {exc}") from None

    def _limit_text(self, deadline: float) -> str:
        return "the exercise's time limit" if deadline >= self.deadline - 0.01 else f"{self._limit:g} s"

    def _crash(self) -> WorkerCrashed:
        proc = self.proc
        try:
            code = proc.wait(timeout=5) if proc is not None else None
        except subprocess.TimeoutExpired:  # it closed its end of the pipe but lives on: killed by the caller
            code = None
        oom = self._group is not None and self._group.oom_kills() > self._oom_kills
        return replies.crash(code, bwrap_status=self.isolation == "bwrap" and self.zygote is None,
                             memory_limit=self.limits.ram_bytes if oom else None)
