"""A tiny seccomp filter for the worker: no new user namespaces, no x32 syscalls, everything else allowed.

Without it, student code in the sandbox (an unprivileged uid) can still call
``unshare(CLONE_NEWUSER)`` and gain every capability inside a namespace of its own: it sees no
more files than before, but it reaches kernel code (mounts, netfilter) that is a common way out.
bubblewrap can block this itself only when it creates the user namespace (``--disable-userns``),
which it does not do when launched as root. The filter is classic BPF written out by hand, so it
needs no libseccomp; ``clone3`` answers ENOSYS, which makes the C library fall back to ``clone``,
whose flags a classic filter can inspect (the approach of Docker's and Flatpak's profiles).
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
SYSCALLS_X86_64 = {"clone": 56, "unshare": 272, "clone3": 435}
CLONE_NEWUSER = 0x10000000

RET_ALLOW = 0x7FFF0000
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000

# Classic BPF opcodes used below.
LD_W_ABS, JEQ_K, JGE_K, JSET_K, RET_K = 0x20, 0x15, 0x35, 0x45, 0x06


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def supported() -> bool:
    """The filter is written for x86-64 Linux; elsewhere the worker runs without it."""
    return platform.system() == "Linux" and platform.machine() == "x86_64"


def program() -> bytes:
    """The filter as the bytes of a ``struct sock_filter`` array (what ``bwrap --seccomp FD`` reads)."""
    nr = SYSCALLS_X86_64
    insns = [
        _insn(LD_W_ABS, 0, 0, 4),                           # 0: A = seccomp_data.arch
        _insn(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),              # 1: x86-64? go on : kill
        _insn(RET_K, 0, 0, RET_KILL_PROCESS),               # 2
        _insn(LD_W_ABS, 0, 0, 0),                           # 3: A = seccomp_data.nr
        _insn(JGE_K, 7, 0, X32_SYSCALL_BIT),                # 4: x32 ABI -> EPERM (11)
        _insn(JEQ_K, 3, 0, nr["unshare"]),                  # 5: -> check flags (9)
        _insn(JEQ_K, 2, 0, nr["clone"]),                    # 6: -> check flags (9)
        _insn(JEQ_K, 5, 0, nr["clone3"]),                   # 7: -> ENOSYS (13)
        _insn(RET_K, 0, 0, RET_ALLOW),                      # 8
        _insn(LD_W_ABS, 0, 0, 16),                          # 9: A = low word of args[0] (the flags)
        _insn(JSET_K, 1, 0, CLONE_NEWUSER),                 # 10: new user namespace? EPERM : allow
        _insn(RET_K, 0, 0, RET_ALLOW),                      # 11
        _insn(RET_K, 0, 0, RET_ERRNO | errno.EPERM),        # 12
        _insn(RET_K, 0, 0, RET_ERRNO | errno.ENOSYS),       # 13
    ]
    return b"".join(insns)


def install() -> None:
    """Apply the filter to the calling process (and everything it execs); for a child before exec."""
    PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    code = program()
    buf = ctypes.create_string_buffer(code, len(code))
    prog = SockFprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
            libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "cannot install the seccomp filter: " + os.strerror(ctypes.get_errno()))
