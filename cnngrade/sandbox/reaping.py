"""Clean up after a killed worker: kill what its student left running, reap the zombies it left us; and after a
killed grading process: remove the folders it made for its workers."""
from __future__ import annotations

import glob
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from cnngrade.sandbox.cgroups import maker_gone

LIVE: set[int] = set()   # pids of the workers and zygotes this process runs, which sweep() must not reap


def become_subreaper() -> None:
    """Orphans of a killed sandbox re-parent to this process instead of PID 1, so we can find and reap them."""
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _processes() -> list[tuple[int, int, str, int, str]]:
    """(pid, ppid, state, real uid, name) of every process we can see."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue  # it ended while we looked
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        try:
            found.append((int(entry), int(fields["PPid"]), fields["State"][:1], int(fields["Uid"].split()[0]),
                          fields["Name"].strip()))
        except (KeyError, ValueError):
            continue
    return found


def sweep(uid: int | None, keep: set[int] | frozenset[int] = frozenset()) -> int:
    """After a worker was killed: SIGKILL whatever still runs as its sandbox uid, reap our stray zombies.

    Returns how many processes had to be killed. ``keep`` are child pids that someone else will wait for.
    """
    me, killed = os.getpid(), 0
    for _ in range(200):
        alive = 0
        for pid, ppid, state, ruid, name in _processes():
            if ppid == me and state == "Z" and pid not in keep and (ruid == uid or name == "bwrap"):
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            elif uid is not None and ruid == uid and state != "Z":
                alive += 1
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        killed += alive
        if not alive:
            break
        time.sleep(0.01)
    return killed


# The temporary folders a batch makes carry the pid of the process that made them, so that what a killed process
# could not remove is found: a grading process's (a worker's folder, the sandbox's copy of the submission) by its
# driver at once (remove_scratch), any of them by the next batch once their maker has ended (sweep_orphan_scratch).
SCRATCH_KINDS = ("worker", "student", "job", "intake", "class", "nursery", "collect")
GRADER_SCRATCH = ("worker", "student")


def scratch_prefix(kind: str) -> str:
    assert kind in SCRATCH_KINDS
    return f"cnngrade-{kind}-{os.getpid()}-"


def remove_scratch(pid: int, parents: list[str | None]) -> int:
    """Remove what the grading process ``pid`` left of its folders in ``parents`` (None: the temporary folder)."""
    return _remove([path for parent in set(parents) for path in _scratch(parent, GRADER_SCRATCH, str(pid))])


def sweep_orphan_scratch(parent: str | None = None) -> int:
    """Remove the folders in ``parent`` (the temporary folder) of processes that ended without removing them
    (``cgroups.maker_gone``); those of running processes are left alone."""
    return _remove([path for path in _scratch(parent, SCRATCH_KINDS) if maker_gone(os.path.basename(path))])


def _scratch(parent: str | None, kinds: tuple[str, ...], pid: str = "*") -> list[str]:
    folder = glob.escape(parent or tempfile.gettempdir())
    return [path for kind in kinds for path in glob.glob(os.path.join(folder, f"cnngrade-{kind}-{pid}-*"))]


def _remove(paths: list[str]) -> int:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
    return len(paths)
