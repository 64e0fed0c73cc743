"""Containment beyond one process: a cgroup per worker (v2 or v1), a memory bound for the trusted side, one job per GPU.

Every worker runs in a cgroup of its own, made by the grading process before the worker starts and
removed after it ends: a CPU quota of its share of the cores, a memory limit that also counts the
pages of its private tmpfs mounts (with no swap), and a limit on processes and threads. Closing the
worker kills everything in its cgroup, however the student detached it (``setsid``, double forks).
The groups are made below the cgroup cnngrade was started in, in the unified (v2) hierarchy where it
has the cpu, memory and pids controllers, else in the v1 hierarchies of those controllers.
"""
from __future__ import annotations

import dataclasses
import errno
import itertools
import os
import signal
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:   # Windows: `cnngrade check` refuses to start a worker there (see check.py)
    fcntl = None  # type: ignore[assignment]

NEEDED = ("cpu", "memory", "pids")
V1_OPTIONAL = ("cpuacct", "freezer")
PERIOD_US = 100_000
PREFIX = "cnngrade-"

UNAVAILABLE_WARNING = (
    "NO CGROUPS: {why}. Each worker keeps its own resource limits, but a student's processes are not held to a "
    "share of the CPU, one memory limit (their private /tmp included) or one process count, so one submission "
    "can slow classmates down or exhaust the machine's memory. Run cnngrade as root on a machine with cgroup v2 "
    "(cpu, memory and pids controllers delegated, e.g. `systemd-run --scope -p Delegate=yes cnngrade grade ...`) "
    "or with the cgroup v1 cpu, memory and pids controllers mounted.")

_rmdir = os.rmdir   # tests of the fake hierarchy replace it: a real cgroup folder is removed with its files
_COUNTER = itertools.count()


class CgroupError(OSError):
    """A cgroup could not be made, configured, joined or emptied."""


def _write(path: str, value: str | int) -> None:
    with open(path, "w") as fh:
        fh.write(str(value))


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


@dataclasses.dataclass(frozen=True)
class Base:
    """Where cnngrade makes its groups: one folder (v2) or one folder per controller (v1)."""

    version: int
    folders: dict[str, str]    # v2: {"": folder}; v1: controller -> folder (co-mounted controllers share one)

    def to_dict(self) -> dict:
        return {"version": self.version, "folders": dict(self.folders)}

    @classmethod
    def from_dict(cls, data: dict) -> Base:
        return cls(int(data["version"]), {str(k): str(v) for k, v in data["folders"].items()})

    def create(self, name: str, *, cores: float | None = None, memory: int | None = None,
               pids: int | None = None) -> Group:
        """A new group ``name`` with the limits given (None: no limit of that kind); CgroupError if it fails."""
        group = Group(self, name)
        try:
            for folder in group.folders():
                os.mkdir(folder, 0o755)
            group.configure(cores, memory, pids)
        except OSError as exc:
            group.remove()
            raise CgroupError(exc.errno, f"cannot set up cgroup {name}: {exc.strerror or exc}") from None
        return group

    def sweep(self, prefix: str) -> int:
        """Kill and remove every group named ``prefix``* (left by a grading process that was killed)."""
        names = set()
        for folder in set(self.folders.values()):
            try:
                names.update(n for n in os.listdir(folder) if n.startswith(prefix))
            except OSError:
                continue
        for name in names:
            group = Group(self, name)
            group.kill()
            group.remove()
        return len(names)


@dataclasses.dataclass
class Group:
    """One cgroup (in every hierarchy of the base)."""

    base: Base
    name: str

    def folders(self) -> list[str]:
        return sorted({os.path.join(f, self.name) for f in self.base.folders.values()})

    def _path(self, controller: str, file: str) -> str | None:
        folder = self.base.folders.get("" if self.base.version == 2 else controller)
        return None if folder is None else os.path.join(folder, self.name, file)

    def configure(self, cores: float | None, memory: int | None, pids: int | None) -> None:
        v2 = self.base.version == 2
        if cores is not None:
            quota = max(1000, int(cores * PERIOD_US))
            if v2:
                _write(self._path("cpu", "cpu.max"), f"{quota} {PERIOD_US}")
            else:
                _write(self._path("cpu", "cpu.cfs_period_us"), PERIOD_US)
                _write(self._path("cpu", "cpu.cfs_quota_us"), quota)
        if memory is not None:
            _write(self._path("memory", "memory.max" if v2 else "memory.limit_in_bytes"), memory)
            # No swap: what counts is all the worker holds. v1 bounds memory+swap together, v2 swap alone;
            # the file is absent where the kernel does not account swap (then no swap is charged either).
            try:
                _write(self._path("memory", "memory.swap.max" if v2 else "memory.memsw.limit_in_bytes"),
                       0 if v2 else memory)
            except OSError:
                pass
        if pids is not None:
            _write(self._path("pids", "pids.max"), pids)

    def procs_files(self) -> list[str]:
        """Where a new process writes its pid to join the group (one file per hierarchy)."""
        return [os.path.join(f, "cgroup.procs") for f in self.folders()]

    def join(self, pid: int) -> None:
        for path in self.procs_files():
            _write(path, pid)

    def pids(self) -> list[int]:
        found: set[int] = set()
        for path in self.procs_files():
            try:
                found.update(int(p) for p in _read(path).split())
            except (OSError, ValueError):
                continue
        return sorted(found)

    def tasks(self) -> list[int]:
        """Every thread in the group."""
        path = self._path("cpu", "cgroup.threads" if self.base.version == 2 else "tasks")
        try:
            return [int(t) for t in _read(path).split()] if path else []
        except (OSError, ValueError):
            return []

    def cpu_seconds(self) -> float | None:
        """CPU time all processes of the group have used, dead ones included (None where not accounted)."""
        try:
            if self.base.version == 2:
                stat = dict(line.split() for line in _read(self._path("cpu", "cpu.stat")).splitlines() if line)
                return int(stat["usage_usec"]) / 1e6
            path = self._path("cpuacct", "cpuacct.usage")
            return int(_read(path)) / 1e9 if path else None
        except (OSError, KeyError, ValueError, TypeError):
            return None

    def memory_peak(self) -> int | None:
        path = self._path("memory", "memory.peak" if self.base.version == 2 else "memory.max_usage_in_bytes")
        try:
            return int(_read(path)) if path else None
        except (OSError, ValueError):
            return None

    def oom_kills(self) -> int:
        """How many processes of the group the kernel killed for its memory limit, so far."""
        try:
            name = "memory.events" if self.base.version == 2 else "memory.oom_control"
            fields = dict(line.split() for line in _read(self._path("memory", name)).splitlines() if line.strip())
            return int(fields.get("oom_kill", 0))
        except (OSError, ValueError, TypeError):
            return 0

    def out_of_memory(self) -> bool:
        return self.oom_kills() > 0

    def kill(self, timeout: float = 5.0) -> bool:
        """SIGKILL everything in the group; True once it is empty. Frozen first, so nothing forks meanwhile."""
        if self.base.version == 2:
            kill_file = self._path("", "cgroup.kill")
            try:
                _write(kill_file, 1)
            except OSError:   # before Linux 5.14: freeze, kill each, thaw
                self._signal_frozen(self._path("", "cgroup.freeze"), "1", "0")
        else:
            self._signal_frozen(self._path("freezer", "freezer.state"), "FROZEN", "THAWED")
        deadline = time.monotonic() + timeout
        while self.pids():
            if time.monotonic() > deadline:
                return False
            self._signal_all()   # zombies leave once reaped; a process that escaped the freeze is killed here
            time.sleep(0.01)
        return True

    def _signal_frozen(self, state_file: str | None, frozen: str, thawed: str) -> None:
        froze = False
        if state_file and os.path.exists(os.path.dirname(state_file)):
            try:
                _write(state_file, frozen)
                froze = True
            except OSError:
                pass
        self._signal_all()
        if froze:
            try:
                _write(state_file, thawed)   # the kill is delivered once the group runs again
            except OSError:
                pass

    def _signal_all(self) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def remove(self) -> None:
        """Remove the (empty) group; a folder still busy after a few tries is left for the next sweep."""
        for folder in self.folders():
            for _ in range(50):
                try:
                    _rmdir(folder)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                        break
                    time.sleep(0.02)

    def exists(self) -> bool:
        return any(os.path.isdir(f) for f in self.folders())


def _schedstat(tid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds waiting for one) of a thread, from /proc/<tid>/schedstat."""
    try:
        on_cpu, waited = _read(f"/proc/{tid}/schedstat").split()[:2]
        return int(on_cpu) / 1e9, int(waited) / 1e9
    except (OSError, ValueError):
        return 0.0, 0.0


# -- finding where groups can be made ----------------------------------------------------------------------------
def _unescape(path: str) -> str:
    return path.encode().decode("unicode_escape") if "\\" in path else path


def _mounts(mountinfo: str) -> list[tuple[str, str, str, set[str]]]:
    """(fs type, mount point, mount root, super options) of every cgroup mount."""
    found = []
    for line in _read(mountinfo).splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            found.append((tail[0], _unescape(fields[4]), _unescape(fields[3]), set(tail[2].split(","))))
    return found


def _membership(cgroup_file: str) -> dict[str, str]:
    """Our path in each hierarchy: "" for the unified one, else each v1 controller's name."""
    paths: dict[str, str] = {}
    for line in _read(cgroup_file).splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _inside(mount_point: str, mount_root: str, path: str) -> str | None:
    """Our folder under a mount of the hierarchy whose root folder is ``mount_root``."""
    rel = os.path.relpath(path, mount_root) if mount_root != "/" else path.lstrip("/")
    if rel.startswith(".."):
        return None
    return os.path.normpath(os.path.join(mount_point, rel))


def _v2_base(mount_point: str, mount_root: str, path: str) -> tuple[Base | None, str]:
    folder = _inside(mount_point, mount_root, path)
    if folder is None:
        return None, "cgroup v2: our cgroup is outside the mounted hierarchy"
    try:
        available = set(_read(os.path.join(folder, "cgroup.controllers")).split())
    except OSError as exc:
        return None, f"cgroup v2: cannot read {folder}/cgroup.controllers ({exc.strerror})"
    missing = [c for c in NEEDED if c not in available]
    if missing:
        return None, f"cgroup v2 at {folder} lacks the {', '.join(missing)} controller(s)"
    problem = _enable_v2(folder)
    return (None, problem) if problem else (Base(2, {"": folder}), "")


def _enable_v2(folder: str) -> str:
    """Let child groups of ``folder`` use the controllers; '' or why not.

    Processes may not live in a v2 group whose children use controllers, so when cnngrade (and what it
    started) are the only ones in its group, they move to a leaf of their own first.
    """
    control = os.path.join(folder, "cgroup.subtree_control")
    try:
        if all(c in _read(control).replace("+", " ").split() for c in NEEDED):
            return ""
        _write(control, " ".join(f"+{c}" for c in NEEDED))
        return ""
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            return f"cgroup v2: cannot enable controllers in {control} ({exc.strerror})"
    members = [int(p) for p in _read(os.path.join(folder, "cgroup.procs")).split()]
    if not all(_ours(pid) for pid in members):
        return (f"cgroup v2: {folder} also holds processes other than cnngrade's, so its child groups cannot have "
                "controllers; start cnngrade in a cgroup of its own")
    leaf = os.path.join(folder, f"{PREFIX}main")   # one for every run: an empty leaf is not left per run
    try:
        os.makedirs(leaf, exist_ok=True)
        for pid in members:
            _write(os.path.join(leaf, "cgroup.procs"), pid)
        _write(control, " ".join(f"+{c}" for c in NEEDED))
    except OSError as exc:
        return f"cgroup v2: cannot enable controllers in {control} ({exc.strerror})"
    return ""


def _ours(pid: int) -> bool:
    """Whether ``pid`` is this process or one it started."""
    me = os.getpid()
    while pid > 1:
        if pid == me:
            return True
        try:
            stat = _read(f"/proc/{pid}/stat")
            pid = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            return False
    return False


def _v1_base(mounts: list[tuple[str, str, str, set[str]]], member: dict[str, str]) -> tuple[Base | None, str]:
    folders: dict[str, str] = {}
    for kind, point, root, options in mounts:
        for ctrl in options & {*NEEDED, *V1_OPTIONAL}:
            if kind == "cgroup" and ctrl in member and ctrl not in folders:
                folder = _inside(point, root, member[ctrl])
                if folder is not None and os.path.isdir(folder):
                    folders[ctrl] = folder
    missing = [c for c in NEEDED if c not in folders]
    if missing:
        return None, f"no cgroup v1 {', '.join(missing)} hierarchy is mounted"
    return Base(1, folders), ""


def detect(mountinfo: str = "/proc/self/mountinfo", cgroup_file: str = "/proc/self/cgroup",
           *, probe: bool = True) -> tuple[Base | None, str]:
    """(where groups can be made, '') or (None, why not). v2 is preferred; a test group proves it works."""
    try:
        mounts, member = _mounts(mountinfo), _membership(cgroup_file)
    except (OSError, ValueError) as exc:
        return None, f"cannot read this process's cgroups ({exc})"
    reasons = []
    for kind, point, root, _ in mounts:
        if kind == "cgroup2" and "" in member:
            base, why = _v2_base(point, root, member[""])
            why = why or (_probe(base) if probe and base is not None else "")
            if not why:
                return base, ""
            reasons.append(why)
            break
    base, why = _v1_base(mounts, member)
    if base is not None:
        problem = _probe(base) if probe else ""
        return (None, problem) if problem else (base, "")
    reasons.append(why)
    return None, "; ".join(reasons) if reasons else "no cgroup hierarchy is mounted"


def _probe(base: Base) -> str:
    try:
        group = base.create(f"{PREFIX}{os.getpid()}-probe-{next(_COUNTER)}", cores=1, memory=1 << 30, pids=64)
    except CgroupError as exc:
        return f"cgroups cannot be made here ({exc.strerror}); run cnngrade as root"
    group.remove()
    return ""


# -- the base in use -----------------------------------------------------------------------------------------------
_ACTIVE: tuple[Base | None, str] | None = None


def active() -> tuple[Base | None, str]:
    """The base this process makes its groups in: set by ``use`` (a grading process), else detected once."""
    global _ACTIVE
    if _ACTIVE is None:
        _ACTIVE = detect()
    return _ACTIVE


def use(base: Base | None, why: str = "") -> None:
    """Make groups in ``base`` (the batch's, handed down to a grading process); None: no cgroups."""
    global _ACTIVE
    _ACTIVE = (base, why or ("" if base else "cgroups were not available to the batch"))


def warning() -> str:
    """The loud line reports and the CLI carry when workers cannot be put in cgroups, else ''."""
    base, why = active()
    return "" if base is not None else UNAVAILABLE_WARNING.format(why=why.rstrip("."))


def group_name(kind: str) -> str:
    """A fresh name: the process that made it (so a sweep after its death finds it), the kind, a counter."""
    return f"{PREFIX}{os.getpid()}-{kind}{next(_COUNTER)}"


# -- the trusted grading process -----------------------------------------------------------------------------------
def bound_memory_without_cgroup(limit: int) -> None:
    """No cgroup for the grading process: cap its address space ``limit`` bytes above what it maps now."""
    import resource

    try:
        mapped = int(next(line.split()[1] for line in _read("/proc/self/status").splitlines()
                          if line.startswith("VmSize:"))) * 1024
    except (OSError, StopIteration, ValueError):
        mapped = 0
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = mapped + limit
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    resource.setrlimit(resource.RLIMIT_AS, (want, hard))


# -- the time a timed-out worker got -------------------------------------------------------------------------------
MIN_CPU_SHARE = 0.25   # of one core over the timed-out call: less, while it waited to run, is the machine's doing
MIN_WAITING = 0.5      # share of a short look at the end that its threads spent runnable, waiting for a CPU
LOOK_SECONDS = 0.5


@dataclasses.dataclass(frozen=True)
class Sample:
    """The clock and the worker's CPU time at one moment (taken at every request: one file read)."""

    wall: float
    cpu: float | None


def overloaded(wall: float, cpu: float | None, waiting: float | None) -> bool:
    """Whether a worker that ran out of time in ``wall`` seconds was starved by the machine, not slow itself.

    It got under a quarter of one core (``cpu`` seconds) and its threads, looked at as it timed out, spent at
    least half the time runnable but waiting for a CPU (``waiting``): it had work to do and the CPU went to
    others. A worker that sleeps or blocks waits for nothing and keeps its timeout; so does one without these
    numbers (no cgroup).
    """
    if wall <= 0 or cpu is None or waiting is None:
        return False
    return cpu < MIN_CPU_SHARE * wall and waiting >= MIN_WAITING


def sample(group: Group | None) -> Sample:
    return Sample(time.monotonic(), group.cpu_seconds() if group is not None else None)


def waiting(group: Group | None, seconds: float = LOOK_SECONDS) -> float | None:
    """The share of the next ``seconds`` the group's threads spend runnable but waiting for a CPU (summed)."""
    if group is None:
        return None
    before, start = _waits(group), time.monotonic()
    time.sleep(seconds)
    after, span = _waits(group), time.monotonic() - start
    return sum(after[t] - before[t] for t in after.keys() & before.keys()) / span


def _waits(group: Group) -> dict[int, float]:
    return {tid: _schedstat(tid)[1] for tid in group.tasks()}


# -- one job per GPU -------------------------------------------------------------------------------------------------
def lock_dir() -> str:
    return os.environ.get("CNNGRADE_LOCK_DIR") or tempfile.gettempdir()


class DeviceLock:
    """Exclusive use of one GPU by one grading process, across every cnngrade on the machine (an flock)."""

    def __init__(self, device: str, fd: int):
        self.device, self._fd = device, fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)   # closing the file releases the lock, also when the holder dies
            self._fd = -1


def acquire_device(devices: list[str], *, folder: str | None = None, timeout: float | None = None,
                   poll: float = 0.2, slots: int = 1) -> DeviceLock:
    """Wait until one of ``devices`` (CUDA ids) has a free slot and hold it; TimeoutError after ``timeout`` seconds.

    ``slots``: how many grading processes may hold one device at once (1, unless a cohort service does the
    training, so that the processes on the device only run the students' small forward passes)."""
    import fcntl  # here, not at the top: cnngrade check imports this module on Windows too

    if not devices:
        raise ValueError("no GPU to share")
    folder = folder or lock_dir()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        # Slot 0 of every device first, so that processes spread over the GPUs before they share one.
        for slot, device in ((slot, device) for slot in range(max(1, slots)) for device in devices):
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in device)
            name = f"cnngrade-gpu-{safe}.lock" if slot == 0 else f"cnngrade-gpu-{safe}-{slot}.lock"
            fd = os.open(os.path.join(folder, name), os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            return DeviceLock(device, fd)
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"every one of the {len(devices)} GPU(s) stayed busy for {timeout:g} s")
        time.sleep(poll)


def visible_devices() -> list[str]:
    """The CUDA devices this batch may use: those CUDA_VISIBLE_DEVICES names, else every one torch sees."""
    named = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if named:
        return named
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def stale_groups(base: Base) -> list[str]:
    """Names of groups cnngrade made in ``base`` (for tests and cleanup)."""
    names: set[str] = set()
    for folder in set(base.folders.values()):
        if Path(folder).is_dir():
            names.update(n for n in os.listdir(folder) if n.startswith(PREFIX))
    return sorted(names)
