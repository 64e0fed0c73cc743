"""A class's nursery: imports torch once for every student, then forks each student's zygote into a sandbox of its own.

It runs inside one bubblewrap sandbox per grading machine (read-only system, no network, the seccomp filter), as
root with five capabilities (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SETUID, CAP_SETGID, CAP_SETPCAP) and never imports
student code. A request (a connection on its listening socket: one line of JSON and two fds, the student zygote's
control socket and its output file) forks a child that makes the student's sandbox before anything else runs in it:

- new mount, pid, network (its loopback up), IPC and UTS namespaces (so no process, socket or shared memory of a
  classmate is reachable, and the nursery is not visible);
- only that student's folder at /submission (read-only), the class folder unmounted, a fresh private /tmp and
  /dev/shm, a /proc of its own pid namespace;
- the trusted side moves it into the student's cgroup (it says ready; the kernel attaches its pid), then it drops to
  the student's uid for good: no groups, no capabilities (bounding set included), no new privileges; the rlimits;
- then it serves as that student's zygote (``zygote.serve``), the pid 1 of its namespace: when it ends, every worker
  of the student ends with it.

Started as ``python -c <NURSERY_BOOTSTRAP> RUNTIME_ROOT LISTEN_FD``.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import select
import signal
import socket
import struct
import sys

from . import zygote

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x00020000, 0x02000000, 0x04000000
CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x08000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 1
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 38, 47, 4
STUDENTS = "/students"       # the class folder: each student's staged files, in a folder of their own
SUBMISSION = "/submission"   # where a student's sandbox sees its own folder's submission/
MAX_REQUEST = 4096
REQUEST_TIMEOUT = 10.0   # seconds for a connected client to send its request
LIMITS = ("cpu_seconds", "file_bytes", "open_files", "memory_bytes", "processes", "tmp_bytes")

@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library, loaded at first use (in a student's fork): importing this module must work everywhere."""
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda s: s.encode() if s is not None else None)
    _check(_libc().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def main(argv: list[str]) -> None:
    listener = socket.socket(fileno=int(argv[0]))
    zygote.dumpable(0)
    zygote.preload()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    while True:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:   # the forks between a request and a student's pid 1
                pass
        if not select.select([listener], [], [], 1.0)[0]:
            continue
        conn, _ = listener.accept()
        conn.settimeout(REQUEST_TIMEOUT)   # a client that connects and says nothing does not stop the class
        try:
            msg, fds, _flags, _addr = socket.recv_fds(conn, MAX_REQUEST, 2)
        except OSError:
            conn.close()
            continue
        conn.close()
        if len(fds) != 2 or not msg:
            for fd in fds:
                os.close(fd)
            continue
        if os.fork() == 0:
            _student(msg, fds[0], fds[1], listener.fileno())
        for fd in fds:
            os.close(fd)


def _student(msg: bytes, ctrl: int, out: int, listener: int) -> None:
    """The fork for one student: make their sandbox, then serve as their zygote. Never returns into the loop."""
    code = 0
    try:
        os.close(listener)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        request = json.loads(msg)
        folder, uid = str(request["student"]), int(request["uid"])
        limits = {k: int(request["limits"][k]) for k in LIMITS}
        if "/" in folder or folder in ("", ".", "..") or uid <= 0:
            raise ValueError("malformed request")
        _check(_libc().unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        _mount(f"{STUDENTS}/{folder}/submission", SUBMISSION, None, MS_BIND | MS_REC)
        _mount(None, SUBMISSION, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        _check(_libc().umount2(STUDENTS.encode(), MNT_DETACH), "umount the class folder")
        for where in ("/tmp", "/dev/shm"):
            _mount("tmpfs", where, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={limits['tmp_bytes']}")
        if os.fork() != 0:
            os._exit(0)   # the student's zygote is the child: pid 1 of the new pid namespace
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        _loopback_up()
        chan = socket.socket(fileno=ctrl)
        chan.sendall(b"R")   # the kernel attaches our pid: the trusted side moves us into the student's cgroup
        if chan.recv(1) != b"G":
            os._exit(0)
        with contextlib.suppress(OSError):   # its cgroup as its root, where the kernel supports it
            _check(_libc().unshare(CLONE_NEWCGROUP), "unshare cgroup")
        set_rlimits(limits["cpu_seconds"], limits["file_bytes"], limits["open_files"], limits["memory_bytes"],
                    limits["processes"])
        _become(uid)
        zygote.serve(chan)
    except BaseException as exc:  # noqa: BLE001 - whatever happens, this process must not go back to the loop
        with contextlib.suppress(BaseException):
            print(f"cnngrade nursery: the student's sandbox could not be made: {exc!r}", file=sys.stderr)
        code = 1
    finally:
        zygote.exit_now(code)


def _loopback_up() -> None:
    """The new network namespace's loopback device up, as bubblewrap leaves it: 127.0.0.1 and nothing else."""
    import fcntl  # here, not at the top, like resource in set_rlimits

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))


def set_rlimits(cpu_seconds: int, file_bytes: int, open_files: int, memory_bytes: int | None,
                processes: int | None) -> None:
    """A worker's rlimits, inherited by everything it starts (None: leave that limit as it is). The CPU hard limit
    sits one second above the soft one, so SIGKILL follows an ignored SIGXCPU. Used before a sandbox's exec
    (sandbox/launch.py) and by each student sandbox the nursery forks."""
    import resource  # here, not at the top: Windows has none, and `cnngrade check` imports the sandbox there

    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    for which, value in ((resource.RLIMIT_FSIZE, file_bytes), (resource.RLIMIT_NOFILE, open_files),
                         (resource.RLIMIT_CORE, 0), (resource.RLIMIT_AS, memory_bytes),
                         (resource.RLIMIT_NPROC, processes)):
        if value is not None:
            resource.setrlimit(which, (value, value))


def _become(uid: int) -> None:
    """The student's uid for good: no groups, no capabilities in any set, no way back through exec."""
    with open("/proc/sys/kernel/cap_last_cap") as fh:
        last = int(fh.read())
    for cap in range(last + 1):
        _check(_libc().prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "drop the capability bounding set")
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)   # from root to another uid: the permitted, effective and ambient sets are cleared

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    data = (ctypes.c_uint32 * 6)()    # effective, permitted, inheritable: all empty (two 32-bit words each)
    _check(_libc().capset(ctypes.byref(Header(0x20080522, 0)), data), "capset")
    _check(_libc().prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear the ambient set")
    _check(_libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no new privileges")
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != uid:
        raise OSError("the uid did not change")


NURSERY_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); del sys.argv[1]; "
    "from cnngrade.worker import nursery; nursery.main(sys.argv[1:])"
)
