"""Fail closed before grading: whether a worker interpreter starts here under the isolation asked for, and if
not, what is missing in words an instructor can act on."""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys

from cnngrade.errors import IsolationUnavailable
from cnngrade.sandbox import seccomp
from cnngrade.sandbox.bwrap import (
    BWRAP_MISSING,
    PACKAGE_PARENT,
    RUNTIME_ROOT,
    SANDBOX_TMP,
    bwrap_prefix,
    drop_privileges,
    python_paths,
)
from cnngrade.sandbox.launch import ISOLATIONS, UID_BASE, Limits, seccomp_pipe, worker_env


def check_isolation(isolation: str) -> None:
    """Fail closed before grading: raise IsolationUnavailable when ``isolation`` cannot run a worker here."""
    if isolation not in ISOLATIONS:
        raise IsolationUnavailable(f"unknown isolation {isolation!r} (choose from {', '.join(ISOLATIONS)})")
    problem = _probe(isolation, shutil.which("bwrap"), UID_BASE if os.getuid() == 0 else None)
    if problem:
        raise IsolationUnavailable(problem)


@functools.cache
def _probe(isolation: str, bwrap: str | None, uid: int | None) -> str:
    """'' when a trivial worker interpreter starts under ``isolation``, else why not (cached per process)."""
    if isolation == "bwrap" and bwrap is None:
        return BWRAP_MISSING
    probe = "import json, numpy, cnngrade.worker.server"  # stdlib, site-packages and our worker all reachable
    fd = seccomp_pipe() if isolation == "bwrap" else None
    if isolation == "bwrap":
        env = worker_env(SANDBOX_TMP, Limits())
        argv = [*bwrap_prefix("/var/empty" if os.path.isdir("/var/empty") else "/usr", Limits(), env, uid=uid,
                              seccomp_fd=fd),
                sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {RUNTIME_ROOT!r}); {probe}"]
    else:
        argv = [*(drop_privileges(uid) if uid is not None else []), sys.executable, "-I", "-c",
                f"import sys; sys.path.insert(0, {PACKAGE_PARENT!r}); {probe}"]
    try:
        proc = subprocess.run(argv, check=False, capture_output=True, timeout=60, stdin=subprocess.DEVNULL, cwd="/",
                              env={"PATH": "/usr/bin:/bin"}, pass_fds=() if fd is None else (fd,),
                              preexec_fn=seccomp.install if isolation == "rlimits" and seccomp.supported() else None)
    except (OSError, subprocess.TimeoutExpired, subprocess.SubprocessError) as exc:
        return f"the {isolation} sandbox could not start a worker ({exc})"
    finally:
        if fd is not None:
            os.close(fd)
    if proc.returncode == 0:
        return ""
    lines = proc.stderr.decode(errors="replace").strip().splitlines()
    why = lines[-1] if lines else f"exit status {proc.returncode}"
    if isolation == "bwrap" and (not why.startswith("bwrap:") or "execvp" in why):
        return _missing_inside(why)
    if isolation == "bwrap":
        return (f"bubblewrap cannot create its sandbox here ({why}): run cnngrade as root, allow unprivileged "
                "user namespaces (e.g. sysctl kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor "
                "profile for bwrap), or pass --isolation rlimits to grade with resource limits alone (weaker)")
    return (f"with --isolation rlimits the worker runs as uid {uid} and cannot start ({why}): install Python "
            "and cnngrade under a prefix every user can read, or use --isolation bwrap")


def _missing_inside(why: str) -> str:
    """Why the worker's Python does not start in the sandbox, naming what is missing there."""
    shown = f"/usr and {', '.join(python_paths())}"
    module = re.search(r"No module named '([^']+)'", why)
    if module:
        return (f"the worker's Python cannot import {module.group(1)} inside the bubblewrap sandbox ({why}): the "
                f"sandbox shows {shown} of this machine; install {module.group(1).split('.')[0]} in "
                f"{sys.prefix} or in one of those folders")
    if "execvp" in why:
        return (f"the worker's interpreter {sys.executable} (really {os.path.realpath(sys.executable)}) cannot be "
                f"run inside the bubblewrap sandbox ({why}): the sandbox shows {shown} of this machine; use a "
                "Python installed in one of them")
    return (f"the worker's Python cannot start inside the bubblewrap sandbox ({why}): the sandbox shows {shown} "
            "of this machine; install Python and its packages there")
