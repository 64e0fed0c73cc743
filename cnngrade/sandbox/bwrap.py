"""The command line that confines a worker: bubblewrap's options (new namespaces, a read-only system and Python,
the worker's part of the package, the submission, a private /tmp) and setpriv's drop to the sandbox uid."""
from __future__ import annotations

import glob
import os
import shutil
import site
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import cnngrade
from cnngrade.errors import IsolationUnavailable

if TYPE_CHECKING:   # launch builds its commands with this module: only the type is needed here
    from cnngrade.sandbox.launch import Limits

PACKAGE_DIR = str(Path(cnngrade.__file__).resolve().parent)
PACKAGE_PARENT = str(Path(PACKAGE_DIR).parent)

# Paths inside the bubblewrap sandbox.
RUNTIME_ROOT = "/rt"                # holds the worker's part of the cnngrade package, bound read-only
# What the worker imports. Only these are visible inside: the rest of the package (trusted grading code, data
# generators) stays outside, so code meant to run in the worker belongs under cnngrade/worker/.
WORKER_PARTS = ("__init__.py", "worker")
SUBMISSION_MOUNT = "/submission"    # the student's module folder, read-only
SANDBOX_TMP = "/tmp"                # a private, size-capped tmpfs, also the working folder

BWRAP_MISSING = ("bubblewrap (bwrap) is not installed, so student code cannot be isolated: install it "
                 "(Debian/Ubuntu: apt-get install bubblewrap) or pass --isolation rlimits to grade with resource "
                 "limits alone (weaker)")


def drop_privileges(uid: int) -> list[str]:
    """setpriv prefix that becomes ``uid`` for good: no groups, no capabilities, no way back through setuid files."""
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs"]


def python_paths() -> list[str]:
    """Folders the worker's interpreter needs: its installation, the environment in use and its site-packages."""
    found = [sys.base_prefix, sys.prefix, *site.getsitepackages(), os.path.dirname(os.path.realpath(sys.executable))]
    paths: list[str] = []
    for p in sorted({os.path.realpath(p) for p in found if os.path.isdir(p)}, key=len):
        if p.startswith("/usr/") or p == "/usr" or any(p.startswith(q.rstrip("/") + "/") for q in paths):
            continue  # already visible through /usr or through a folder bound before
        paths.append(p)
    return paths


def _parents(path: str) -> list[str]:
    parts = Path(path).parts[1:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def bwrap_prefix(submission_dir: str, limits: Limits, env: dict[str, str], *, uid: int | None,
                 gpu: bool = False, seccomp_fd: int | None = None) -> list[str]:
    """bubblewrap options: new namespaces, read-only system and Python, the package and the submission, private /tmp."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise IsolationUnavailable(BWRAP_MISSING)
    argv = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "sandbox", "--die-with-parent", "--new-session", "--clearenv"]
    if os.getuid() != 0:  # unprivileged: bubblewrap needs a user namespace, and nested ones are refused
        argv += ["--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    if seccomp_fd is not None:  # as root there is no user namespace to disable: the filter refuses new ones
        argv += ["--seccomp", str(seccomp_fd)]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    argv += ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink(f"/{link}"):
            argv += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
    # /dev/shm: a private, capped tmpfs writable by the sandbox uid (torch's DataLoader workers share tensors there).
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/dev/shm"]
    if gpu:
        for node in sorted(glob.glob("/dev/nvidia*")):
            argv += ["--dev-bind", node, node]
        if os.path.exists("/etc/ld.so.cache"):  # libcuda is found through the loader cache on some systems
            argv += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    # The private /tmp first: an interpreter or a virtual environment under /tmp is bound over it afterwards,
    # not hidden by it.
    argv += ["--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", SANDBOX_TMP]
    made: set[str] = {SANDBOX_TMP}
    for path in python_paths():
        # bubblewrap would create missing parents 0700 (root's home is); the sandbox uid must traverse them.
        for parent in _parents(path):
            if parent not in made:
                argv += ["--perms", "0755", "--dir", parent]
                made.add(parent)
        argv += ["--ro-bind", path, path]
    argv += ["--perms", "0755", "--dir", RUNTIME_ROOT, "--perms", "0755", "--dir", f"{RUNTIME_ROOT}/cnngrade"]
    for part in WORKER_PARTS:
        argv += ["--ro-bind", os.path.join(PACKAGE_DIR, part), f"{RUNTIME_ROOT}/cnngrade/{part}"]
    argv += ["--ro-bind", submission_dir, SUBMISSION_MOUNT, "--chdir", SANDBOX_TMP]
    return argv + (drop_privileges(uid) if uid is not None else [])
