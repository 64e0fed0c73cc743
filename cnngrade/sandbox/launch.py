"""How a worker process is started: isolation mode (bubblewrap or rlimits alone), resource limits, uid, environment."""
from __future__ import annotations

import dataclasses
import functools
import glob
import os
import re
import shutil
import site
import subprocess
import sys
from pathlib import Path

import cnngrade
from cnngrade.sandbox import cgroups, seccomp
from cnngrade.errors import IsolationUnavailable
from cnngrade.worker.server import BOOTSTRAP
from cnngrade.worker.zygote import ZYGOTE_BOOTSTRAP

try:
    import resource
except ImportError:   # Windows: `cnngrade check` refuses to start a worker there (see check.py)
    resource = None  # type: ignore[assignment]

PACKAGE_DIR = str(Path(cnngrade.__file__).resolve().parent)
PACKAGE_PARENT = str(Path(PACKAGE_DIR).parent)
ISOLATIONS = ("bwrap", "rlimits")   # the first is the default: weaker isolation must be asked for

# Paths inside the bubblewrap sandbox.
RUNTIME_ROOT = "/rt"                # holds the worker's part of the cnngrade package, bound read-only
# What the worker imports. Only these are visible inside: the rest of the package (trusted grading code, data
# generators) stays outside, so code meant to run in the worker belongs under cnngrade/worker/.
WORKER_PARTS = ("__init__.py", "worker")
SUBMISSION_MOUNT = "/submission"    # the student's module folder, read-only
SANDBOX_TMP = "/tmp"                # a private, size-capped tmpfs, also the working folder

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
    parts = [RLIMITS_WARNING if isolation == "rlimits" else "", cgroups.warning()]
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
        pairs = [(resource.RLIMIT_CPU, lim.cpu_seconds), (resource.RLIMIT_FSIZE, lim.file_bytes),
                 (resource.RLIMIT_NOFILE, lim.open_files), (resource.RLIMIT_CORE, 0)]
        if not self.gpu:  # CUDA reserves a huge virtual address space: RLIMIT_AS would break it
            pairs.append((resource.RLIMIT_AS, lim.memory_bytes))
        for which, value in pairs:
            # The CPU hard limit sits one second above the soft one, so SIGKILL follows an ignored SIGXCPU.
            resource.setrlimit(which, (value, value + 1 if which == resource.RLIMIT_CPU else value))
        # RLIMIT_NPROC does not bind root, but it is inherited across the uid drop, where it does.
        if self.uid is not None or os.getuid() != 0:
            resource.setrlimit(resource.RLIMIT_NPROC, (lim.processes, lim.processes))
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
        raise IsolationUnavailable(_missing_message())
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
    """A GPU worker sees the device its grading process holds (see cgroups.acquire_device), not the others."""
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


def _missing_message() -> str:
    return ("bubblewrap (bwrap) is not installed, so student code cannot be isolated: install it "
            "(Debian/Ubuntu: apt-get install bubblewrap) or pass --isolation rlimits to grade with resource "
            "limits alone (weaker)")


@functools.cache
def _probe(isolation: str, bwrap: str | None, uid: int | None) -> str:
    """'' when a trivial worker interpreter starts under ``isolation``, else why not (cached per process)."""
    if isolation == "bwrap" and bwrap is None:
        return _missing_message()
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


def check_isolation(isolation: str) -> None:
    """Fail closed before grading: raise IsolationUnavailable when ``isolation`` cannot run a worker here."""
    if isolation not in ISOLATIONS:
        raise IsolationUnavailable(f"unknown isolation {isolation!r} (choose from {', '.join(ISOLATIONS)})")
    problem = _probe(isolation, shutil.which("bwrap"), UID_BASE if os.getuid() == 0 else None)
    if problem:
        raise IsolationUnavailable(problem)


# -- the files a worker sees -------------------------------------------------------------------------------------
MAX_STAGED_FILES = 2000
MAX_STAGED_BYTES = 64 << 20


def stage_submission(source: Path, dest: Path, uid: int | None) -> str:
    """Copy the student's module folder to ``dest``, readable by ``uid`` alone; '' or why it cannot be used.

    A copy, not the original: the original may sit under a folder the sandbox uid cannot enter (a 0700
    temporary folder), and the copy holds only regular files, so a planted symlink cannot make root read
    another file on the student's behalf. Hidden entries (.git, editor files) are left out.
    """
    count, size = 0, 0
    for root, dirs, files in os.walk(source, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not os.path.islink(os.path.join(root, d)))
        target = dest / os.path.relpath(root, source)
        target.mkdir(parents=True, exist_ok=True)
        _restrict(target, uid, 0o750)
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.startswith(".") or os.path.islink(path) or not os.path.isfile(path):
                continue
            count, size = count + 1, size + os.path.getsize(path)
            if count > MAX_STAGED_FILES or size > MAX_STAGED_BYTES:
                return (f"the submission folder holds more than {MAX_STAGED_FILES} files or "
                        f"{MAX_STAGED_BYTES >> 20} MiB; hand in only your exercise files")
            try:
                shutil.copyfile(path, target / name, follow_symlinks=False)
            except OSError as exc:   # a file the grader may not read is the submission's problem, said plainly
                return f"cannot read {os.path.relpath(path, source)} of the submission ({exc.strerror})"
            _restrict(target / name, uid, 0o640)
    return ""


def _restrict(path: Path, uid: int | None, mode: int) -> None:
    if uid is not None:  # root-owned, readable through the group that only the sandbox uid has
        os.chown(path, 0, uid)
        os.chmod(path, mode)
