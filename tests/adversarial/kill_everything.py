# expect: zero
"""Sends SIGKILL to its parent and to every process it is allowed to signal."""
import os
import signal

for target in (os.getppid(), 1):
    try:
        os.kill(target, signal.SIGKILL)
    except OSError as exc:
        print("cannot kill", target, exc)
try:
    os.kill(-1, signal.SIGKILL)
except OSError as exc:
    print("cannot kill everything", exc)


def conv_output_size(size, kernel_size, padding=0, stride=1):
    return -1
