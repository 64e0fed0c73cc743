"""A student who reads sandbox/nursery.py and hunts, at import, for the class's nursery and the classmates it forked.

Graded with a second exercise, so that the batch forks this student's sandbox from the nursery: it kills its own pid 1
(its zygote), signals every process it can see, lists the class folder, connects to every Unix socket the kernel shows
it, and leaves files in /tmp and /dev/shm. What it found is printed (tests/test_nursery.py reads it back); its
exercises are solved, so it must keep every automatic point, and so must its classmates.
"""
from __future__ import annotations

import os
import signal
import socket

FOUND = {"own_pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid())}
for pid in [1, *FOUND["own_pids"]]:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
try:
    FOUND["class_folder"] = os.listdir("/students")
except OSError as exc:
    FOUND["class_folder"] = type(exc).__name__
FOUND["submission"] = sorted(os.listdir("/submission"))
reached = []
with open("/proc/net/unix") as fh:
    for line in fh.read().splitlines()[1:]:
        path = line.split()[-1] if len(line.split()) > 7 else ""
        for kind in (socket.SOCK_SEQPACKET, socket.SOCK_STREAM):
            with socket.socket(socket.AF_UNIX, kind) as sock:
                try:
                    sock.connect(path if not path.startswith("@") else "\0" + path[1:])
                    reached.append(path)
                except OSError:
                    pass
FOUND["unix_sockets_reached"] = reached
for folder in ("/tmp", "/dev/shm"):
    with open(os.path.join(folder, "hunter-was-here"), "w") as fh:
        fh.write("a note for a classmate")
print("NURSERY-HUNT", FOUND)



def conv_output_size(size: int, kernel_size: int, padding: int = 0, stride: int = 1) -> int:
    """Return floor((size + 2*padding - kernel_size) / stride) + 1 as a Python int.

    Raises ValueError for size < 1, kernel_size < 1, padding < 0, stride < 1, or a kernel
    larger than the padded input (no output position exists).
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if kernel_size < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    padded = size + 2 * padding
    if kernel_size > padded:
        raise ValueError(f"kernel_size {kernel_size} is larger than the padded input {padded}")
    return int((padded - kernel_size) // stride + 1)


ANSWERS = {
    "a": 24,  # (28 - 5) / 1 + 1
    "b": 64,  # (64 + 2 - 3) / 1 + 1
    "c": 63,  # floor((128 - 3) / 2) + 1
    "d": 112,  # floor((224 + 6 - 7) / 2) + 1
}
