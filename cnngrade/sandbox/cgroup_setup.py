"""Where this machine lets cnngrade make cgroups (v2 preferred, else the v1 cpu, memory and pids hierarchies), and
the base this process makes its groups in (found once, or handed down by the batch)."""
from __future__ import annotations

import errno
import os

from cnngrade.sandbox import cgroups
from cnngrade.sandbox.cgroups import NEEDED, PREFIX, V1_OPTIONAL, Base, CgroupError

UNAVAILABLE_WARNING = (
    "NO CGROUPS: {why}. Each worker keeps its own resource limits, but a student's processes are not held to a "
    "share of the CPU, one memory limit (their private /tmp included) or one process count, so one submission "
    "can slow classmates down or exhaust the machine's memory. Run cnngrade as root on a machine with cgroup v2 "
    "(cpu, memory and pids controllers delegated, e.g. `systemd-run --scope -p Delegate=yes cnngrade grade ...`) "
    "or with the cgroup v1 cpu, memory and pids controllers mounted.")


def _unescape(path: str) -> str:
    return path.encode().decode("unicode_escape") if "\\" in path else path


def _mounts(mountinfo: str) -> list[tuple[str, str, str, set[str]]]:
    """(fs type, mount point, mount root, super options) of every cgroup mount."""
    found = []
    for line in cgroups.read_file(mountinfo).splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            found.append((tail[0], _unescape(fields[4]), _unescape(fields[3]), set(tail[2].split(","))))
    return found


def _membership(cgroup_file: str) -> dict[str, str]:
    """Our path in each hierarchy: "" for the unified one, else each v1 controller's name."""
    paths: dict[str, str] = {}
    for line in cgroups.read_file(cgroup_file).splitlines():
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
        available = set(cgroups.read_file(os.path.join(folder, "cgroup.controllers")).split())
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
        if all(c in cgroups.read_file(control).replace("+", " ").split() for c in NEEDED):
            return ""
        cgroups.write_file(control, " ".join(f"+{c}" for c in NEEDED))
        return ""
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            return f"cgroup v2: cannot enable controllers in {control} ({exc.strerror})"
    members = [int(p) for p in cgroups.read_file(os.path.join(folder, "cgroup.procs")).split()]
    if not all(_ours(pid) for pid in members):
        return (f"cgroup v2: {folder} also holds processes other than cnngrade's, so its child groups cannot have "
                "controllers; start cnngrade in a cgroup of its own")
    leaf = os.path.join(folder, f"{PREFIX}main")   # one for every run: an empty leaf is not left per run
    try:
        os.makedirs(leaf, exist_ok=True)
        for pid in members:
            cgroups.write_file(os.path.join(leaf, "cgroup.procs"), pid)
        cgroups.write_file(control, " ".join(f"+{c}" for c in NEEDED))
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
            stat = cgroups.read_file(f"/proc/{pid}/stat")
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
        group = base.create(cgroups.group_name("probe-"), cores=1, memory=1 << 30, pids=64)
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
