"""How a worker process is started: isolation mode (bubblewrap or rlimits alone), resource limits, uid, environment.

The bubblewrap command line itself is ``bwrap``'s; the check that a sandbox starts at all is ``preflight``'s; the
private copy of the submission a worker sees is ``staging``'s.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import sys
from pathlib import Path

from cnngrade.sandbox import cgroup_setup, reaping, seccomp
from cnngrade.sandbox.bwrap import (
    PACKAGE_PARENT,
    RUNTIME_ROOT,
    SANDBOX_TMP,
    SUBMISSION_MOUNT,
    bwrap_prefix,
    drop_privileges,
)
from cnngrade.worker.nursery import set_rlimits
from cnngrade.worker.server import BOOTSTRAP
from cnngrade.worker.zygote import ZYGOTE_BOOTSTRAP

ISOLATIONS = ("bwrap", "rlimits")   # the first is the default: weaker isolation must be asked for
IMPORT_TIMEOUT = 30.0   # for a worker to import the student's module, torch included: the machine's time, not a call's

# Unprivileged uids used when cnngrade runs as root: one per worker, so that RLIMIT_NPROC counts one student's
# processes only, and so that every process a student started can be found (and killed) by its uid.
UID_BASE = 1_000_000
ZYGOTE_WORKERS = 8    # a student's zygote and its exercises' workers share one uid, so its process limit is theirs

RLIMITS_WARNING = ("WEAK ISOLATION: graded with --isolation rlimits (resource limits and an unprivileged uid, "
                   "no bubblewrap): student code could read files this machine's users may read and reach the "
                   "network. Install bubblewrap to grade untrusted work.")


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits of one worker process."""

    memory_bytes: int = 6 << 30       # address space; the CUDA build of torch maps about 4 GiB at import
    ram_bytes: int = 4 << 30          # the worker's cgroup: all its processes' memory, its tmpfs pages included
    grader_memory_bytes: int = 4 << 30   # the trusted grading process's own memory bound
    cpu_seconds: int = 600
    processes: int = 64               # per sandbox uid; threads count too
    file_bytes: int = 64 << 20        # also caps the file that captures the student's stdout/stderr
    open_files: int = 256
    output_bytes: int = 64 << 10      # how much of the student's stdout/stderr is kept
    threads: int = 1                  # torch / OpenMP threads
    tmp_bytes: int = 256 << 20        # the sandbox's private /tmp


def limits_for(jobs: int) -> Limits:
    """Default limits when ``jobs`` students are graded at once: the cores are shared out as torch threads (and
    as each worker's CPU quota), and the memory so that every worker and grading process fits at once."""
    jobs = max(1, jobs)
    share = _memory_bytes() * 3 // 4 // jobs   # a quarter left to the system and the page cache
    ram = max(1 << 30, min(Limits.ram_bytes, share * 2 // 3))
    return Limits(threads=max(1, (os.cpu_count() or 1) // jobs), ram_bytes=ram,
                  grader_memory_bytes=max(1 << 30, min(Limits.grader_memory_bytes, share // 3)))


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):   # no sysconf (Windows)
        return 16 << 30


def isolation_warning(isolation: str) -> str:
    """The loud line every report and the CLI carry when the isolation is weaker than it should be: no
    bubblewrap (``--isolation rlimits``), or no cgroups to hold each worker to its share of the machine."""
    parts = [RLIMITS_WARNING if isolation == "rlimits" else "", cgroup_setup.warning()]
    return " ".join(p for p in parts if p)


@dataclasses.dataclass(frozen=True)
class WorkerCommand:
    """Everything needed to start one worker: argv, environment, working folder, pre-exec hook."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    limits: Limits
    isolation: str
    uid: int | None = None            # the unprivileged uid the student's code runs as (None: ours)
    gpu: bool = False
    seccomp_fd: int | None = None     # bubblewrap reads the seccomp filter from it; pass it to the child
    cgroup_procs: tuple[str, ...] = ()   # the worker's cgroup (one cgroup.procs file per hierarchy)

    def preexec(self) -> None:
        """Runs in the child before exec: join the worker's cgroup, apply the rlimits; both are inherited by
        everything the student starts, bubblewrap included, before any of the student's code runs."""
        for path in self.cgroup_procs:   # an error here stops the start: no worker runs outside its cgroup
            with open(path, "w") as fh:
                fh.write(str(os.getpid()))
        lim = self.limits
        # CUDA reserves a huge virtual address space: RLIMIT_AS would break it. RLIMIT_NPROC does not bind root,
        # but it is inherited across the uid drop, where it does.
        set_rlimits(lim.cpu_seconds, lim.file_bytes, lim.open_files, None if self.gpu else lim.memory_bytes,
                    lim.processes if self.uid is not None or os.getuid() != 0 else None)
        if self.isolation == "rlimits" and seccomp.supported():  # bubblewrap installs it itself, later
            seccomp.install()


def worker_env(workdir: str, limits: Limits) -> dict[str, str]:
    """The worker sees none of the grader's environment, only what Python and torch need."""
    threads = str(limits.threads)
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": workdir,
        # The worker's uid has no passwd entry; getpass.getuser(), which torch calls at import on some
        # versions, reads these before it would fail on getpwuid().
        "USER": "student",
        "LOGNAME": "student",
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",        # what the student printed reaches the capture file before any kill
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": workdir,
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
    }


# Not -I: it would also ignore PYTHONHASHSEED and PYTHONUNBUFFERED. The environment is ours entirely (cleared,
# then worker_env), so -s (no user site) and -P (no working folder on sys.path, Python 3.11+) isolate as much.
PYTHON_FLAGS = ["-s", "-B", *(["-P"] if sys.version_info >= (3, 11) else [])]


def sandbox_uid(slot: int) -> int | None:
    """The uid a worker runs as: unprivileged and unique per live worker when we are root, else ours (None)."""
    if os.getuid() != 0:
        return None
    return UID_BASE + (os.getpid() << 4) + slot % 16


_SLOTS = itertools.count()   # every sandbox this process starts takes the next slot


def fresh_uid() -> int | None:
    """A uid for a new sandbox (a worker of its own or a student's zygote): see ``sandbox_uid``."""
    return sandbox_uid(next(_SLOTS))


def worker_command(submission_dir: Path, module: str, req_fd: int, resp_fd: int, workdir: str,
                   *, isolation: str = ISOLATIONS[0], limits: Limits = Limits(), uid: int | None = None,
                   gpu: bool = False, seccomp_fd: int | None = None,
                   cgroup_procs: tuple[str, ...] = ()) -> WorkerCommand:
    """The command that starts a worker serving ``module`` from ``submission_dir`` (a copy readable by ``uid``).

    ``workdir`` is the worker's home in rlimits mode (writable by ``uid``); under bubblewrap the worker works in
    its private /tmp instead. ``gpu`` passes the NVIDIA device nodes in and lifts the address-space limit.
    ``seccomp_fd`` (bwrap only): a readable fd holding ``seccomp.program()``, see ``seccomp_pipe``.
    ``cgroup_procs``: the cgroup.procs files the worker joins before it execs (``cgroups.Group.procs_files``).
    """
    if isolation not in ISOLATIONS:
        raise ValueError(f"unknown isolation {isolation!r}")
    python = sys.executable   # not resolved: a virtual environment is recognised by the path it is started as
    tail = [str(req_fd), str(resp_fd)]
    if isolation == "bwrap":
        env = _gpu_env(worker_env(SANDBOX_TMP, limits), gpu)
        argv = [*bwrap_prefix(str(submission_dir), limits, env, uid=uid, gpu=gpu, seccomp_fd=seccomp_fd),
                python, *PYTHON_FLAGS, "-c", BOOTSTRAP, RUNTIME_ROOT, *tail, SUBMISSION_MOUNT, module]
        return WorkerCommand(argv, {"PATH": "/usr/bin:/bin"}, workdir, limits, isolation, uid, gpu, seccomp_fd,
                             tuple(cgroup_procs))
    argv = [*(drop_privileges(uid) if uid is not None else []),
            python, *PYTHON_FLAGS, "-c", BOOTSTRAP, PACKAGE_PARENT, *tail, str(submission_dir), module]
    return WorkerCommand(argv, _gpu_env(worker_env(workdir, limits), gpu), workdir, limits, isolation, uid, gpu,
                         cgroup_procs=tuple(cgroup_procs))


def zygote_command(submission_root: Path, ctrl_fd: int, workdir: str, *, isolation: str = ISOLATIONS[0],
                   limits: Limits = Limits(), uid: int | None = None, gpu: bool = False,
                   seccomp_fd: int | None = None, cgroup_procs: tuple[str, ...] = ()) -> WorkerCommand:
    """The command that starts a student's zygote (``worker/zygote.py``) in the sandbox ``worker_command`` builds.

    ``submission_root`` holds one staged copy per exercise (bound at /submission under bubblewrap); ``ctrl_fd``
    is the zygote's end of its control socket. The process limit is the student's: one per exercise's worker.
    """
    if isolation not in ISOLATIONS:
        raise ValueError(f"unknown isolation {isolation!r}")
    limits = dataclasses.replace(limits, processes=limits.processes * ZYGOTE_WORKERS)
    tail = [ZYGOTE_BOOTSTRAP, RUNTIME_ROOT if isolation == "bwrap" else PACKAGE_PARENT, str(ctrl_fd)]
    if isolation == "bwrap":
        env = _gpu_env(worker_env(SANDBOX_TMP, limits), gpu)
        argv = [*bwrap_prefix(str(submission_root), limits, env, uid=uid, gpu=gpu, seccomp_fd=seccomp_fd),
                sys.executable, *PYTHON_FLAGS, "-c", *tail]
        return WorkerCommand(argv, {"PATH": "/usr/bin:/bin"}, workdir, limits, isolation, uid, gpu, seccomp_fd,
                             tuple(cgroup_procs))
    argv = [*(drop_privileges(uid) if uid is not None else []), sys.executable, *PYTHON_FLAGS, "-c", *tail]
    return WorkerCommand(argv, _gpu_env(worker_env(workdir, limits), gpu), workdir, limits, isolation, uid, gpu,
                         cgroup_procs=tuple(cgroup_procs))


def _gpu_env(env: dict[str, str], gpu: bool) -> dict[str, str]:
    """A GPU worker sees the device its grading process holds (see devices.acquire_device), not the others."""
    device = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    if gpu and device:
        env["CUDA_VISIBLE_DEVICES"] = device
    return env


def seccomp_pipe() -> int | None:
    """A pipe's read end holding the seccomp filter, for ``bwrap --seccomp``; the caller closes it after spawning."""
    if not seccomp.supported():
        return None
    r, w = os.pipe()
    os.write(w, seccomp.program())   # a few hundred bytes: fits the pipe buffer
    os.close(w)
    return r


def start_process(cmd: WorkerCommand, output: str, pass_fds: tuple[int, ...]) -> subprocess.Popen:
    """Start ``cmd`` in a session of its own, its stdout and stderr to the file ``output``; reaped by this process.

    The capture file is opened here and handed over as fds 1 and 2: the student can fill it up to
    RLIMIT_FSIZE, never choose where it lives.
    """
    reaping.become_subreaper()
    with open(output, "wb") as out:
        proc = subprocess.Popen(cmd.argv, env=cmd.env, cwd=cmd.cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                pass_fds=pass_fds, start_new_session=True,
                                preexec_fn=cmd.preexec)   # noqa: PLW1509 - cgroup and rlimits before exec
    reaping.LIVE.add(proc.pid)
    return proc


def start_worker(submission_dir: Path, module: str, workdir: str, output: str, *, isolation: str, limits: Limits,
                 uid: int | None, gpu: bool, cgroup_procs: tuple[str, ...]) -> tuple[subprocess.Popen, int, int]:
    """Start a worker in a sandbox of its own (see ``worker_command``), what it prints going to the file ``output``:
    (its process, the write end of its request pipe, the read end of its reply pipe)."""
    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    filter_fd = seccomp_pipe() if isolation == "bwrap" else None
    cmd = worker_command(submission_dir, module, req_r, resp_w, workdir, isolation=isolation, limits=limits, uid=uid,
                         gpu=gpu, seccomp_fd=filter_fd, cgroup_procs=cgroup_procs)
    try:
        proc = start_process(cmd, output, tuple(fd for fd in (req_r, resp_w, filter_fd) if fd is not None))
    except BaseException:
        os.close(req_w)
        os.close(resp_r)
        raise
    finally:
        for fd in (req_r, resp_w, filter_fd):
            if fd is not None:
                os.close(fd)
    return proc, req_w, resp_r
