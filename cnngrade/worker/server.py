"""The worker: imports one student module and answers the trusted grader's requests over two pipes.

Everything here runs next to student code, so nothing it says is trusted: the grader side
re-checks every value. Requests and replies are frames of ``codec``; objects that are not
plain data stay here behind numbered handles.

Started as ``python -I -c <bootstrap> REQ_FD RESP_FD STUDENT_DIR MODULE``.
"""
from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Any

# Importing the helper modules registers their helpers.
from . import builders, codec, figures, helpers, probes, registry, run_order, training_helpers  # noqa: F401

MAX_TEXT = 4000


class HandleTable:
    """Objects that stay in the worker, by number."""

    def __init__(self) -> None:
        self.objects: dict[int, Any] = {}
        self.next_id = 1

    def put(self, obj: Any) -> dict:
        hid = self.next_id
        self.next_id += 1
        self.objects[hid] = obj
        return {"$handle": hid, "type": _type_name(obj)}

    def get(self, node: dict) -> Any:
        hid = node.get("$handle")
        if type(hid) is not int or hid not in self.objects:
            raise codec.ProtocolError(f"unknown handle {hid!r}")
        return self.objects[hid]


def _type_name(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"[:200]


def _safe_str(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:  # a student exception whose __str__ itself fails
        text = "<unprintable message>"
    return text[:MAX_TEXT]


def describe_error(exc: BaseException, runtime_dir: str) -> dict:
    """A plain-data description of an exception raised by student code."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(runtime_dir)]
    lines = traceback.format_list(frames[-8:])
    mro = []
    try:
        mro = [c.__name__ for c in type(exc).__mro__][:20]
    except BaseException:
        pass
    return {
        "type": type(exc).__name__[:200],
        "mro": mro,
        "message": _safe_str(exc),
        "traceback": "".join(lines)[-MAX_TEXT:],
    }


class Server:
    def __init__(self, student_dir: str, module_name: str):
        self.student_dir = student_dir
        self.module_name = module_name
        self.module: Any = None
        self.handles = HandleTable()
        self.runtime_dir = os.path.dirname(os.path.abspath(__file__))

    # -- requests -------------------------------------------------------------------------
    def op_load(self, req: dict, args: Any) -> Any:
        sys.path.insert(0, self.student_dir)
        self.module = importlib.import_module(self.module_name)
        return sorted(n for n in vars(self.module) if not n.startswith("_"))[:500]

    def _resolve(self, target: Any) -> Any:
        if type(target) is str:
            if self.module is None:
                raise codec.ProtocolError("module not loaded")
            if not hasattr(self.module, target):
                raise MissingName(f"your module defines no {target!r}")
            return getattr(self.module, target)
        return target

    def op_get(self, req: dict, args: Any) -> Any:
        return self._resolve(req.get("name"))

    def op_call(self, req: dict, args: Any) -> Any:
        fn = self._resolve(args["target"])
        return fn(*args.get("args", ()), **args.get("kwargs", {}))

    def op_getattr(self, req: dict, args: Any) -> Any:
        return getattr(args["obj"], req["name"])

    def op_method(self, req: dict, args: Any) -> Any:
        return getattr(args["obj"], req["name"])(*args.get("args", ()), **args.get("kwargs", {}))

    def op_helper(self, req: dict, args: Any) -> Any:
        name = req.get("name")
        fn = registry.REGISTRY.get(name) if isinstance(name, str) else None
        if fn is None:
            raise codec.ProtocolError(f"unknown helper {name!r}")
        return fn(*args.get("args", ()), **args.get("kwargs", {}))

    def op_release(self, req: dict, args: Any) -> Any:
        for hid in req.get("ids", []):
            self.handles.objects.pop(hid, None)
        return None

    def op_ping(self, req: dict, args: Any) -> Any:
        return "pong"

    def handle(self, header: dict, blobs: list[bytes]) -> bytes:
        rid = header.get("id")
        op = getattr(self, f"op_{header.get('op')}", None)
        try:
            if op is None:
                raise codec.ProtocolError(f"unknown op {header.get('op')!r}")
            args = codec.Decoder(blobs, self.handles.get).decode(header.get("args"))
            value = op(header, args)
            enc = codec.Encoder(self.handles.put)
            payload = enc.encode(value)
            return codec.pack({"id": rid, "ok": True, "value": payload}, enc.blobs)
        except BaseException as exc:  # every student failure becomes a reply, SystemExit included
            if isinstance(exc, KeyboardInterrupt):
                raise
            return codec.pack({"id": rid, "ok": False, "error": describe_error(exc, self.runtime_dir)}, [])


class MissingName(AttributeError):
    """The student module lacks a name the grader asked for."""


def main(argv: list[str]) -> None:
    req_fd, resp_fd = int(argv[0]), int(argv[1])
    server = Server(argv[2], argv[3])
    # Keep our own references to the pipes: student code that closes or reuses fds 0-2 cannot reach them by accident.
    while True:
        try:
            header, blobs = codec.read_frame(req_fd)
        except EOFError:
            return
        reply = server.handle(header, blobs)
        codec.write_all(resp_fd, reply)


BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); del sys.argv[1]; "
    "from cnngrade.worker import server; server.main(sys.argv[1:])"
)
