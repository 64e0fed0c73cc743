# expect: zero
"""Tries to become root again or leave the sandbox: setuid, new namespaces, chroot, mount."""
import ctypes
import os

attempts = {}
for name, action in [("setuid0", lambda: os.setuid(0)), ("chroot", lambda: os.chroot("/tmp")),
                     ("unshare_user", lambda: ctypes.CDLL(None, use_errno=True).unshare(0x10000000) or
                      ctypes.get_errno()),
                     ("mount", lambda: ctypes.CDLL(None, use_errno=True).mount(b"none", b"/tmp", b"tmpfs", 0, None)
                      or ctypes.get_errno()),
                     ("shadow", lambda: open("/etc/shadow").read())]:
    try:
        attempts[name] = repr(action())
    except Exception as exc:
        attempts[name] = f"{type(exc).__name__}: {exc}"
print("ATTEMPTS:", attempts, "uid", os.getuid(), "euid", os.geteuid())


def conv_output_size(size, kernel_size, padding=0, stride=1):
    return -1


ANSWERS = {"a": os.getuid(), "b": os.geteuid(), "c": -1, "d": -1}
