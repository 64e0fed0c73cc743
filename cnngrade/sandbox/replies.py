"""Reading what comes back from the worker, strictly: a reply's value, the student's exception, why it ended.

Everything here was written by a process the student owns: a malformed reply is the worker's crash
(``WorkerCrashed``), never an error of the grader, and every student-written text is capped.
"""
from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from cnngrade.errors import StudentError, WorkerCrashed
from cnngrade.worker import codec


def in_order(header: dict, request_id: int) -> bool:
    """Whether ``header`` answers the request under way (its id is unpredictable: never written ahead of time)."""
    return header.get("id") == request_id and type(header.get("ok")) is bool


def value(header: dict, blobs: list[bytes], decode_handle: Callable[[dict], Any]) -> Any:
    """The value an in-order reply carries; StudentError when it reports the student's exception."""
    try:
        if header["ok"]:
            return codec.Decoder(blobs, decode_handle).decode(header.get("value"))
        raise student_error(header.get("error"))
    except (codec.ProtocolError, RecursionError) as exc:
        raise WorkerCrashed(f"the worker's reply broke the protocol: {exc}") from None


def student_error(err: Any) -> StudentError:
    """The student's exception as the worker described it: every field capped, a malformed one refused."""
    if type(err) is not dict:
        raise codec.ProtocolError("malformed error")
    mro = err.get("mro")
    return StudentError(str(err.get("type", "?"))[:200], str(err.get("message", ""))[:4000],
                        str(err.get("traceback", ""))[:4000],
                        [str(m)[:200] for m in mro][:20] if type(mro) is list else None)


def crash(code: int | None, *, bwrap_status: bool, memory_limit: int | None) -> WorkerCrashed:
    """Why the worker ended during a call, from its exit status ``code`` (negative: a signal; None: unknown).

    ``bwrap_status``: the status is bubblewrap's, which reports a child killed by signal N as 128 + N.
    ``memory_limit``: the limit of the worker's cgroup when the kernel killed one of its processes for memory.
    What it printed is not quoted: this message reaches the student for hidden tests too, and the printed text
    is attributed to its test (``Worker.take_output``), shown to students for public tests only.
    """
    if code is not None and code > 128 and bwrap_status:
        code = 128 - code
    why = f"exit status {code}" if code is not None and code >= 0 else f"signal {-code}" if code else "unknown"
    if memory_limit is not None:
        why += (f" (killed: its processes used more than their memory limit of {memory_limit >> 20} MiB, "
                "files written to /tmp included)")
    elif code == -signal.SIGKILL or code == -signal.SIGXCPU:
        why += " (killed: a resource limit such as memory or CPU time was reached, or it killed itself)"
    return WorkerCrashed(f"the worker process ended during the call ({why})")
