"""The trusted grading process's own memory bound where no cgroup holds it: an address-space limit."""
from __future__ import annotations

from pathlib import Path


def bound_memory_without_cgroup(limit: int) -> None:
    """No cgroup for the grading process: cap its address space ``limit`` bytes above what it maps now."""
    import resource

    try:
        status = Path("/proc/self/status").read_text()
        mapped = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmSize:"))) * 1024
    except (OSError, StopIteration, ValueError):
        mapped = 0
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = mapped + limit
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    resource.setrlimit(resource.RLIMIT_AS, (want, hard))
