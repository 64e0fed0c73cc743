# expect: full
"""Solves the exercise, but first leaves a daemon behind (double fork, new session) that should outlive grading."""
import os
import sys

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", "@@MARK@@-daemon"])
    os._exit(0)
os.wait()


def conv_output_size(size, kernel_size, padding=0, stride=1):
    if size < 1 or kernel_size < 1 or padding < 0 or stride < 1 or kernel_size > size + 2 * padding:
        raise ValueError("no output")
    return (size + 2 * padding - kernel_size) // stride + 1


ANSWERS = {"a": 24, "b": 64, "c": 63, "d": 112}
