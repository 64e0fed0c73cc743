"""Cgroups (v2 or v1) that hold a worker: made with its limits, joined, measured, killed as a whole and removed.

Every worker runs in a cgroup of its own, made by the grading process before the worker starts and
removed after it ends: a CPU quota of its share of the cores, a memory limit that also counts the
pages of its private tmpfs mounts (with no swap), and a limit on processes and threads. Closing the
worker kills everything in its cgroup, however the student detached it (``setsid``, double forks).
Where the groups are made (below the cgroup cnngrade was started in, v2 preferred) is found by
``cgroup_setup``; the CPU time a timed-out worker got is judged by ``overload``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import itertools
import os
import re
import signal
import time
from collections.abc import Callable

NEEDED = ("cpu", "memory", "pids")
V1_OPTIONAL = ("cpuacct", "freezer")
PERIOD_US = 100_000
PREFIX = "cnngrade-"

_rmdir = os.rmdir   # tests of the fake hierarchy replace it: a real cgroup folder is removed with its files
_COUNTER = itertools.count()


class CgroupError(OSError):
    """A cgroup could not be made, configured, joined or emptied."""


# Every cgroup file is written and read through these two (``cgroup_setup`` calls them as ``cgroups.write_file``),
# so a test that replaces them here stands in for the kernel everywhere.
def write_file(path: str, value: str | int) -> None:
    with open(path, "w") as fh:
        fh.write(str(value))


def read_file(path: str) -> str:
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

    def sweep(self, which: Callable[[str], bool]) -> int:
        """Kill and remove every group cnngrade made here whose name ``which`` accepts: what a killed process left
        (its own groups, by the pid in their names; or any whose maker has ended, ``maker_gone``)."""
        names = [name for name in stale_groups(self) if which(name)]
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

    def _file(self, controller: str, file: str) -> str:
        """The path of a file of a controller every base has (v1: a needed one); FileNotFoundError if it has not."""
        path = self._path(controller, file)
        if path is None:
            raise FileNotFoundError(errno.ENOENT, f"no {controller} hierarchy", file)
        return path

    def configure(self, cores: float | None, memory: int | None, pids: int | None) -> None:
        v2 = self.base.version == 2
        if cores is not None:
            quota = max(1000, int(cores * PERIOD_US))
            if v2:
                write_file(self._file("cpu", "cpu.max"), f"{quota} {PERIOD_US}")
            else:
                write_file(self._file("cpu", "cpu.cfs_period_us"), PERIOD_US)
                write_file(self._file("cpu", "cpu.cfs_quota_us"), quota)
        if memory is not None:
            write_file(self._file("memory", "memory.max" if v2 else "memory.limit_in_bytes"), memory)
            # No swap: what counts is all the worker holds. v1 bounds memory+swap together, v2 swap alone;
            # the file is absent where the kernel does not account swap (then no swap is charged either).
            try:
                write_file(self._file("memory", "memory.swap.max" if v2 else "memory.memsw.limit_in_bytes"),
                       0 if v2 else memory)
            except OSError:
                pass
        if pids is not None:
            write_file(self._file("pids", "pids.max"), pids)

    def procs_files(self) -> list[str]:
        """Where a new process writes its pid to join the group (one file per hierarchy)."""
        return [os.path.join(f, "cgroup.procs") for f in self.folders()]

    def join(self, pid: int) -> None:
        for path in self.procs_files():
            write_file(path, pid)

    def pids(self) -> list[int]:
        found: set[int] = set()
        for path in self.procs_files():
            try:
                found.update(int(p) for p in read_file(path).split())
            except (OSError, ValueError):
                continue
        return sorted(found)

    def tasks(self) -> list[int]:
        """Every thread in the group."""
        path = self._path("cpu", "cgroup.threads" if self.base.version == 2 else "tasks")
        try:
            return [int(t) for t in read_file(path).split()] if path else []
        except (OSError, ValueError):
            return []

    def cpu_seconds(self) -> float | None:
        """CPU time all processes of the group have used, dead ones included (None where not accounted)."""
        try:
            if self.base.version == 2:
                return int(_fields(read_file(self._file("cpu", "cpu.stat")))["usage_usec"]) / 1e6
            path = self._path("cpuacct", "cpuacct.usage")
            return int(read_file(path)) / 1e9 if path else None
        except (OSError, KeyError, ValueError, TypeError):
            return None

    def memory_peak(self) -> int | None:
        path = self._path("memory", "memory.peak" if self.base.version == 2 else "memory.max_usage_in_bytes")
        try:
            return int(read_file(path)) if path else None
        except (OSError, ValueError):
            return None

    def oom_kills(self) -> int:
        """How many processes of the group the kernel killed for its memory limit, so far."""
        try:
            name = "memory.events" if self.base.version == 2 else "memory.oom_control"
            return int(_fields(read_file(self._file("memory", name))).get("oom_kill", 0))
        except (OSError, ValueError, TypeError):
            return 0

    def out_of_memory(self) -> bool:
        return self.oom_kills() > 0

    def kill(self, timeout: float = 5.0) -> bool:
        """SIGKILL everything in the group; True once it is empty. Frozen first, so nothing forks meanwhile."""
        if self.base.version == 2:
            try:
                write_file(self._file("", "cgroup.kill"), 1)
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
                write_file(state_file, frozen)
                froze = True
            except OSError:
                pass
        self._signal_all()
        if froze and state_file is not None:
            try:
                write_file(state_file, thawed)   # the kill is delivered once the group runs again
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


def _fields(text: str) -> dict[str, str]:
    """A flat keyed file (cpu.stat, memory.events): one ``name value`` pair a line; ValueError if malformed."""
    pairs = (line.split() for line in text.splitlines() if line.strip())
    return {name: value for name, value in pairs}


def group_name(kind: str) -> str:
    """A fresh name: the process that made it (so a sweep after its death finds it), the kind, a counter."""
    return f"{PREFIX}{os.getpid()}-{kind}{next(_COUNTER)}"


def maker_gone(name: str) -> bool:
    """Whether the process whose pid a cnngrade name carries (``group_name``, reaping.scratch_prefix) has ended:
    what it made there is left over (it was killed outright: SIGKILL, the OOM killer). A running process's, another
    batch on this machine, is not. (Names carry pids of this pid namespace: two batches sharing one cgroup tree
    across pid namespaces would need a cgroup namespace each, as containers have.)"""
    m = re.match(rf"{re.escape(PREFIX)}(?:[a-z]+-)?(\d+)-", name)
    if m is None:
        return False
    try:
        os.kill(int(m[1]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def stale_groups(base: Base) -> list[str]:
    """Names of groups cnngrade made in ``base`` (for tests and cleanup)."""
    names: set[str] = set()
    for folder in set(base.folders.values()):
        with contextlib.suppress(OSError):   # a hierarchy that is not there (or went away) holds none
            names.update(n for n in os.listdir(folder) if n.startswith(PREFIX))
    return sorted(names)
