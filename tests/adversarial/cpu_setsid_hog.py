"""CPU starvation: at import, starts 40 busy processes that each call setsid() (a session of its own escapes the
kernel's per-session fair share), then holds the import for 20 s, so that a classmate graded at the same time would
get almost no CPU unless this worker's cgroup holds all of them to its share of the cores. Computes nothing."""
# expect: zero
import os
import sys
import time

for _ in range(40):
    if os.fork() == 0:
        os.setsid()
        os.execv(sys.executable, [sys.executable, "-c", "while True: pass", "@@MARK@@"])
time.sleep(20)


def conv_output_size(size, kernel_size, padding=0, stride=1):
    return -1
