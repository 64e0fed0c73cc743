"""The trusted side of the worker boundary: start a worker, send requests, decode replies strictly.

Graders see a ``Submission``: ``sub.conv_output_size(28, 5)`` runs the student's function in
the worker and returns plain data; ``sub.value("ANSWERS")`` reads a module constant; objects
that cannot cross (a model, a figure) come back as ``Handle``s.

A worker is either a sandbox of its own or, during grading, a fresh fork of its student's ``Zygote``: one
sandbox per student that imports torch once (``worker/zygote.py``), each exercise then a child with its own
interpreter, cgroup, private folder, output file and channel, killed and restarted alone.
"""
from __future__ import annotations

import codecs
import itertools
import json
import os
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from cnngrade.sandbox import cgroups, reaping, launch as sandbox
from cnngrade.errors import StudentError, SubmissionFault, SubmissionImportError, WorkerCrashed, WorkerTimeout
from cnngrade.sandbox.launch import ISOLATIONS, Limits, worker_command, zygote_command
from cnngrade.worker import codec

IMPORT_TIMEOUT = 30.0
EXTRA_PIDS = 8   # bubblewrap's own processes, which share the worker's cgroup
ZYGOTE_TIMEOUT = 120.0   # for a student's zygote to import torch: the machine's time, never the student's
ZYGOTE_PIDS = 32         # bubblewrap, the zygote's threads, a child between its fork and its move to its own group


OVERLOADED = "the machine was overloaded"


class MachineOverloaded(SubmissionFault):
    """A worker ran out of time because the machine gave it no CPU: not the student's timeout.

    A SubmissionFault only so that every grader that handles worker failures handles it too; its test is
    recorded with status error and flagged as a grader error (run.flag_overloaded), which
    ``cnngrade grade --resume`` grades again.
    """

    status = "error"


class Handle:
    """An object that lives in the worker; calling it or its methods runs there."""

    def __init__(self, worker: "Worker", hid: int, type_name: str, generation: int):
        self._worker, self.id, self.type_name, self._generation = worker, hid, type_name, generation

    def __repr__(self) -> str:
        return f"<handle {self.id} to a {self.type_name}>"

    def tag(self) -> dict:
        if self._generation != self._worker.generation:
            raise WorkerCrashed("an object from a worker that has since been restarted was used")
        return {"$handle": self.id}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._worker.request("call", {"target": self, "args": list(args), "kwargs": kwargs})

    def method(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._worker.request("method", {"obj": self, "args": list(args), "kwargs": kwargs}, name=name)

    def attr(self, name: str) -> Any:
        return self._worker.request("getattr", {"obj": self}, name=name)


class Worker:
    """One sandboxed process serving one student module; restarted after a crash or a timeout.

    ``zygote``: fork the process from the student's zygote (shared by their exercises) instead of starting a
    sandbox for it alone.
    """

    def __init__(self, student_dir: Path, module: str, *, isolation: str = ISOLATIONS[0], limits: Limits = Limits(),
                 call_timeout: float = 30.0, budget: float = 600.0, max_restarts: int = 3, gpu: bool = False,
                 zygote: Zygote | None = None):
        self.student_dir, self.module = Path(student_dir), module
        self.isolation, self.limits, self.gpu = isolation, limits, gpu
        # With a zygote, the worker is a fresh fork of the student's sandbox (its uid); else a sandbox of its own.
        self.zygote = zygote
        self.uid = zygote.uid if zygote is not None else sandbox.sandbox_uid(next(_SLOTS))   # None unless root
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
        self._output_path: str | None = None
        self._output_read = 0            # bytes of the current output file already taken by take_output()
        self._output_kept = 0            # bytes taken from every file of this worker, against limits.output_bytes
        self._output_carried = ""        # taken from an earlier process's file, not yet handed out
        self._output_decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._group: cgroups.Group | None = None   # the cgroup every process of this worker runs in
        self._oom_kills = 0                          # its count of memory-limit kills when this process started
        self._limit = call_timeout                   # the time limit of the request under way

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

    def _new_output(self) -> None:
        """A fresh capture file per start, so a restart's output is its own; the previous one's is kept."""
        self._output_carried += self._read_output()   # the previous process's output outlives its file
        self._output_read, self._output_decoder = 0, codecs.getincrementaldecoder("utf-8")("replace")
        assert self._workdir is not None
        self._output_path = os.path.join(self._workdir, "output")

    def _start_child(self) -> None:
        """Fork this exercise's worker from the student's zygote, in this worker's own cgroup."""
        assert self.zygote is not None and self._inside is not None
        group = self._cgroup()
        self._new_output()
        assert self._output_path is not None
        fresh, started, t0 = self.zygote.fresh, self.zygote.starts, time.monotonic()
        with open(self._output_path, "wb") as out:
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
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        assert self._workdir is not None
        home = os.path.join(self._workdir, "home")
        try:
            group = self._cgroup()
        except cgroups.CgroupError:
            for fd in (req_r, req_w, resp_r, resp_w):
                os.close(fd)
            raise
        filter_fd = sandbox.seccomp_pipe() if self.isolation == "bwrap" else None
        cmd = worker_command(Path(self._workdir, "submission"), self.module, req_r, resp_w, home,
                             isolation=self.isolation, limits=self.limits, uid=self.uid, gpu=self.gpu,
                             seccomp_fd=filter_fd, cgroup_procs=tuple(group.procs_files()) if group else ())
        reaping.become_subreaper()
        # The capture file is opened here and handed over as fds 1 and 2: the student can fill it up to
        # RLIMIT_FSIZE, never choose where it lives.
        self._new_output()
        try:
            with open(self._output_path, "wb") as out:
                self.proc = subprocess.Popen(
                    cmd.argv, env=cmd.env, cwd=cmd.cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                    pass_fds=tuple(fd for fd in (req_r, resp_w, filter_fd) if fd is not None),
                    start_new_session=True, preexec_fn=cmd.preexec)
        finally:
            for fd in (req_r, resp_w, filter_fd):
                if fd is not None:
                    os.close(fd)
        _LIVE.add(self.proc.pid)
        self._req_w, self._resp_r = req_w, resp_r

    def _cgroup(self) -> cgroups.Group | None:
        """The worker's cgroup, made at its first start and kept (emptied) across restarts; None without cgroups.

        A CgroupError (cgroups work here, yet this one could not be made) is the grader's problem, never the
        student's: it propagates as an internal error rather than start a worker without its bounds.
        """
        base, _ = cgroups.active()
        if self._group is None and base is not None:
            lim = self.limits
            self._group = base.create(cgroups.group_name("w"), cores=lim.threads, memory=lim.ram_bytes,
                                      pids=lim.processes + EXTRA_PIDS)
        return self._group

    def _prepare(self) -> None:
        """The worker's folder: a private copy of the submission, a home (rlimits mode), the output file."""
        self._workdir = tempfile.mkdtemp(prefix="cnngrade-worker-")
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
        problem = sandbox.stage_submission(self.student_dir, Path(self._workdir, "submission"), self.uid)
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
        _LIVE.discard(proc.pid)
        # Whatever the student started outside the process group (setsid daemons) runs as the sandbox uid;
        # under bubblewrap the pid namespace dies with its first process, and this makes sure it has.
        reaping.sweep(self.uid, keep=_LIVE)
        for fd in (self._req_w, self._resp_r):
            try:
                os.close(fd)
            except OSError:
                pass

    def output(self) -> str:
        """What the student's code printed (capped)."""
        if not self._output_path or not os.path.exists(self._output_path):
            return ""
        with open(self._output_path, "rb") as fh:
            data = fh.read(self.limits.output_bytes + 1)
        text = data[: self.limits.output_bytes].decode("utf-8", "replace")
        return text + ("\n[output truncated]" if len(data) > self.limits.output_bytes else "")

    def take_output(self) -> str:
        """What the student's code printed since the last call, across restarts, within limits.output_bytes.

        The grading plugin calls it at test boundaries, so every test gets the slice printed while it ran:
        students see the slices of public tests, the instructor all of them.
        """
        text = self._output_carried + self._read_output()
        self._output_carried = ""
        return text

    def _read_output(self) -> str:
        if not self._output_path or not os.path.exists(self._output_path):
            return ""
        with open(self._output_path, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            if end <= self._output_read:
                return ""
            fh.seek(self._output_read)
            allowed = max(0, self.limits.output_bytes - self._output_kept)
            data = fh.read(min(end - self._output_read, allowed))
        truncated = end - self._output_read > len(data) and allowed > 0 and len(data) == allowed
        self._output_read = end
        self._output_kept += len(data)
        text = self._output_decoder.decode(data)
        return text + ("\n[output truncated]" if truncated else "")

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
        enc = codec.Encoder(self._encode_arg)
        frame = codec.pack({"id": self._next_id, "op": op, "args": enc.encode(args), **fields}, enc.blobs)
        limit = min(timeout or self.call_timeout, self.deadline - time.monotonic())
        self._limit = timeout or self.call_timeout
        before = cgroups.sample(self._group)
        try:
            header, blobs = self._exchange(frame, time.monotonic() + limit)
        except (WorkerTimeout, WorkerCrashed) as exc:
            if isinstance(exc, WorkerTimeout):
                exc = self._judge_timeout(exc, before)
            if isinstance(exc, MachineOverloaded):
                # The rest of the exercise would be judged on the same starved machine, and --resume regrades
                # the whole student: its remaining tests fail at once, with this grader error.
                self.fatal = exc
            self._kill()
            self.dead = exc
            raise exc from None
        if header.get("id") != self._next_id or type(header.get("ok")) is not bool:
            self._kill()
            raise WorkerCrashed("the worker sent a reply out of order")
        try:
            if header["ok"]:
                return codec.Decoder(blobs, self._decode_handle).decode(header.get("value"))
            err = header.get("error")
            if type(err) is not dict:
                raise codec.ProtocolError("malformed error")
            raise StudentError(str(err.get("type", "?"))[:200], str(err.get("message", ""))[:4000],
                               str(err.get("traceback", ""))[:4000],
                               [str(m)[:200] for m in err.get("mro", [])][:20] if type(err.get("mro")) is list else None)
        except (codec.ProtocolError, RecursionError) as exc:
            raise WorkerCrashed(f"the worker's reply broke the protocol: {exc}") from None

    def _judge_timeout(self, exc: WorkerTimeout, before: cgroups.Sample) -> SubmissionFault:
        """The student's timeout, with the CPU time the worker got beside the wall time; or, when the worker got
        almost no CPU and its threads wait to run, the machine's overload (a grader error, regraded by --resume)."""
        after = cgroups.sample(self._group)
        if before.cpu is None or after.cpu is None:
            return exc
        wall, cpu = after.wall - before.wall, after.cpu - before.cpu
        usage = f"the worker got {cpu:.1f} s of CPU time in {wall:.1f} s"
        waiting = cgroups.waiting(self._group) if cpu < cgroups.MIN_CPU_SHARE * wall else 0.0
        if cgroups.overloaded(wall, cpu, waiting):
            return MachineOverloaded(
                f"{OVERLOADED}: {exc}, but {usage}, and its threads were waiting for a CPU {waiting:.0%} of the "
                "time. This is not the student's timeout; grade again on a less busy machine (cnngrade grade "
                "--resume regrades it) or with fewer --jobs")
        return WorkerTimeout(f"{exc} ({usage})")

    def _encode_arg(self, obj: Any) -> Any:
        if isinstance(obj, Handle):
            return obj.tag()
        raise TypeError(f"the grader cannot send a {type(obj).__name__} to the worker")

    def _decode_handle(self, node: dict) -> Handle:
        hid, type_name = node.get("$handle"), node.get("type", "?")
        if type(hid) is not int or type(type_name) is not str:
            raise codec.ProtocolError("malformed handle")
        return Handle(self, hid, type_name[:200], self.generation)

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
        if code is not None and code > 128 and self.isolation == "bwrap" and self.zygote is None:
            code = 128 - code   # bubblewrap reports a child killed by signal N as exit status 128 + N
        why = f"exit status {code}" if code is not None and code >= 0 else f"signal {-code}" if code else "unknown"
        if self._group is not None and self._group.oom_kills() > self._oom_kills:
            why += (f" (killed: its processes used more than their memory limit of {self.limits.ram_bytes >> 20} MiB, "
                    "files written to /tmp included)")
        elif code == -signal.SIGKILL or code == -signal.SIGXCPU:
            why += " (killed: a resource limit such as memory or CPU time was reached, or it killed itself)"
        # What it printed is not quoted here: this message reaches the student for hidden tests too, and the
        # printed text is attributed to its test (take_output), shown to students for public tests only.
        return WorkerCrashed(f"the worker process ended during the call ({why})")


_SLOTS = itertools.count()
_LIVE: set[int] = set()   # pids of running workers of this process, which sweep() must not reap
_UCRED = struct.Struct("iII")   # struct ucred: pid, uid, gid


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
                 start_timeout: float = ZYGOTE_TIMEOUT):
        self.isolation, self.limits, self.gpu = isolation, limits or Limits(), gpu
        self.start_timeout = start_timeout
        self.uid = sandbox.sandbox_uid(next(_SLOTS))   # None unless we are root
        self.starts = 0          # how many times it was started: the student's imports of torch
        self.proc: subprocess.Popen | None = None
        self._ctrl: socket.socket | None = None
        self._root: str | None = None
        self._group: cgroups.Group | None = None
        self._copies = itertools.count()
        self._children = itertools.count()
        self.fresh = False       # started and not yet asked for a child: its import of torch may be under way

    @staticmethod
    def supported() -> bool:
        """Whether this system can run zygotes: a child is killed through a pidfd (Linux 5.3, Python 3.9)."""
        try:
            os.close(os.pidfd_open(os.getpid()))
        except (AttributeError, OSError):
            return False
        return True

    def _prepare(self) -> str:
        if self._root is None:
            self._root = tempfile.mkdtemp(prefix="cnngrade-student-")
            os.chmod(self._root, 0o711)   # others (classmates' sandbox uids) may not list it
            for name, mode in (("submission", 0o750), ("home", 0o700)):
                os.mkdir(os.path.join(self._root, name), mode)
            if self.uid is not None:
                os.chown(os.path.join(self._root, "home"), self.uid, self.uid)
                sandbox._restrict(Path(self._root, "submission"), self.uid, 0o750)
        return self._root

    def stage(self, student_dir: Path) -> tuple[str, str]:
        """A private copy of one exercise's folder: (the path the sandbox sees it at, '' or why it is unusable)."""
        root = self._prepare()
        name = f"e{next(self._copies)}"
        problem = sandbox.stage_submission(Path(student_dir), Path(root, "submission", name), self.uid)
        inside = sandbox.SUBMISSION_MOUNT if self.isolation == "bwrap" else os.path.join(root, "submission")
        return f"{inside}/{name}", problem

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _start(self) -> None:
        self._stop()
        root = self._prepare()
        if self._group is None and cgroups.active()[0] is not None:
            self._group = cgroups.active()[0].create(cgroups.group_name("z"), cores=self.limits.threads,
                                                     memory=self.limits.ram_bytes, pids=ZYGOTE_PIDS)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        filter_fd = sandbox.seccomp_pipe() if self.isolation == "bwrap" else None
        cmd = zygote_command(Path(root, "submission"), theirs.fileno(), os.path.join(root, "home"),
                             isolation=self.isolation, limits=self.limits, uid=self.uid, gpu=self.gpu,
                             seccomp_fd=filter_fd, cgroup_procs=tuple(self._group.procs_files()) if self._group else ())
        reaping.become_subreaper()
        try:
            with open(os.path.join(root, "zygote-output"), "wb") as out:   # torch's warnings: not the student's
                self.proc = subprocess.Popen(
                    cmd.argv, env=cmd.env, cwd=cmd.cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                    pass_fds=tuple(fd for fd in (theirs.fileno(), filter_fd) if fd is not None),
                    start_new_session=True, preexec_fn=cmd.preexec)
        finally:
            theirs.close()
            if filter_fd is not None:
                os.close(filter_fd)
        _LIVE.add(self.proc.pid)
        self._ctrl, self.fresh = ours, True
        self.starts += 1

    def start(self) -> None:
        """Start the zygote now, if it is not running, without waiting for its import of torch (the grading
        plugin does this first, so the import overlaps with the collection of the graders)."""
        if not self.alive():
            self._start()

    def spawn(self, module: str, inside: str, output_fd: int, group: cgroups.Group | None) -> ZygoteChild:
        """A fresh worker for ``module`` (staged at ``inside``), its output to ``output_fd``, in ``group``."""
        self.start()
        assert self._ctrl is not None
        work = (sandbox.SANDBOX_TMP if self.isolation == "bwrap" else os.path.join(self._root or "", "home"))
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
        try:
            data, ancillary, _flags, _addr = chan.recvmsg(1, socket.CMSG_SPACE(_UCRED.size))
        except OSError:
            data, ancillary = b"", []
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= _UCRED.size:
                pid, uid, _gid = _UCRED.unpack(payload[:_UCRED.size])
                if data == b"R" and pid > 0 and uid == (self.uid if self.uid is not None else os.getuid()):
                    return pid
        raise WorkerCrashed("the student's sandbox ended before the worker could start")

    def _stop(self) -> None:
        if self._ctrl is not None:
            self._ctrl.close()
            self._ctrl = None
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if self._group is not None:
                self._group.kill()
            proc.wait()
            _LIVE.discard(proc.pid)

    def close(self) -> None:
        """End the sandbox and everything in it (close the workers first: their groups are theirs to remove)."""
        self._stop()
        if self._group is not None:
            self._group.kill()
            self._group.remove()
            self._group = None
        reaping.sweep(self.uid, keep=_LIVE)   # every worker of the student is closed: the uid is all theirs
        if self._root:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None


class Submission:
    """What a grader test holds: the student's module, reached through its worker."""

    def __init__(self, worker: Worker):
        self._worker = worker

    def __repr__(self) -> str:
        return f"<your {self._worker.module}.py>"

    @property
    def module(self) -> str:
        return self._worker.module

    def ensure_loaded(self) -> None:
        if self._worker.proc is None and self._worker.fatal is None:
            self._worker.request("ping", None)

    def has(self, name: str) -> bool:
        self.ensure_loaded()
        return name in self._worker.names

    def value(self, name: str) -> Any:
        """A module-level constant, such as ANSWERS."""
        return self._worker.request("get", None, name=name)

    def call(self, name: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        return self._worker.request("call", {"target": name, "args": list(args), "kwargs": kwargs}, timeout=timeout)

    def helper(self, name: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Run one of cnngrade.worker.helpers inside the worker."""
        return self._worker.request("helper", {"args": list(args), "kwargs": kwargs}, timeout=timeout, name=name)

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per worker process, reused by later tests of the exercise.

        For results that cost a lot to obtain and depend only on the student's code (ex7 traces a 512x512
        forward pass once for five tests), or an object several of them must share. A restarted worker
        starts with an empty memo, so a handle kept here never outlives its process.
        """
        self.ensure_loaded()  # restart a worker that died in an earlier test before reading its memo
        if key not in self._worker.memo:
            self._worker.memo[key] = compute()
        return self._worker.memo[key]

    def output(self) -> str:
        return self._worker.output()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def remote(*args: Any, **kwargs: Any) -> Any:
            return self.call(name, *args, **kwargs)

        remote.__name__ = name
        return remote
