"""How a worker process is started: isolation mode, resource limits and a scrubbed environment."""
from __future__ import annotations

import dataclasses
import os
import resource
import sys
from pathlib import Path

import cnngrade
from cnngrade.worker.server import BOOTSTRAP

PACKAGE_PARENT = str(Path(cnngrade.__file__).resolve().parent.parent)
ISOLATIONS = ("rlimits",)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits of one worker process."""

    memory_bytes: int = 8 << 30       # address space; the CUDA build of torch maps about 4 GiB at import
    cpu_seconds: int = 600
    processes: int = 256
    file_bytes: int = 64 << 20
    open_files: int = 256
    output_bytes: int = 64 << 10      # how much of the student's stdout/stderr is kept
    threads: int = 1                  # torch / OpenMP threads


@dataclasses.dataclass(frozen=True)
class WorkerCommand:
    """Everything needed to start one worker: argv, environment, working folder, pre-exec hook."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    limits: Limits
    isolation: str

    def preexec(self) -> None:
        """Runs in the child before exec: apply the rlimits (the child is already its own session)."""
        lim = self.limits
        for which, value in (
            (resource.RLIMIT_AS, lim.memory_bytes),
            (resource.RLIMIT_CPU, lim.cpu_seconds),
            (resource.RLIMIT_FSIZE, lim.file_bytes),
            (resource.RLIMIT_NOFILE, lim.open_files),
            (resource.RLIMIT_CORE, 0),
        ):
            hard = value + 1 if which == resource.RLIMIT_CPU else value
            resource.setrlimit(which, (value, hard))
        if os.getuid() != 0:  # RLIMIT_NPROC counts every process of the uid and does not bind root
            resource.setrlimit(resource.RLIMIT_NPROC, (lim.processes, lim.processes))


def worker_env(workdir: str, limits: Limits) -> dict[str, str]:
    """The worker sees none of the grader's environment, only what Python and torch need."""
    threads = str(limits.threads)
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": workdir,
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
    }


def worker_command(student_dir: Path, module: str, req_fd: int, resp_fd: int, workdir: str,
                   *, isolation: str = "rlimits", limits: Limits = Limits()) -> WorkerCommand:
    """The command that starts a worker serving ``module`` from ``student_dir``."""
    if isolation not in ISOLATIONS:
        raise ValueError(f"unknown isolation {isolation!r}")
    argv = [sys.executable, "-I", "-B", "-c", BOOTSTRAP, PACKAGE_PARENT,
            str(req_fd), str(resp_fd), str(student_dir.resolve()), module]
    return WorkerCommand(argv=argv, env=worker_env(workdir, limits), cwd=workdir, limits=limits,
                         isolation=isolation)
