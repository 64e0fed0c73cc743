"""One grading job per GPU slot, across every cnngrade on the machine (flocks), and which GPUs a batch may use."""
from __future__ import annotations

import os
import tempfile
import time


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
    import fcntl  # here, not at the top: Windows has none, and `cnngrade check` runs there too

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
