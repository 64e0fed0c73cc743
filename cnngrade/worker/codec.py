"""Wire format shared by the trusted grader and the sandboxed worker: framed JSON plus raw tensor bytes.

A frame is a 4-byte big-endian header length, a UTF-8 JSON header, then the raw bytes of
every blob the header lists (``"blobs": [n0, n1, ...]``). Values are plain JSON with a few
tagged objects:

    {"$tuple": [...]}                         a tuple (torch.Size too)
    {"$dict": [[key, value], ...]}            a dict whose keys are not all plain strings
    {"$float": "nan" | "inf" | "-inf"}        a non-finite float
    {"$tensor": i, "dtype": d, "shape": s}    a torch tensor, bytes in blob i
    {"$ndarray": i, "dtype": d, "shape": s}   a numpy array, bytes in blob i
    {"$npscalar": v, "dtype": d}              a numpy scalar
    {"$bytes": i}                             raw bytes in blob i
    {"$handle": id, "type": name}             an object that stays in the worker

This module runs on both sides, so it imports only the standard library at load time;
torch and numpy are imported when a tensor or an array is met. Nothing is ever unpickled.
"""
from __future__ import annotations

import json
import math
import os
import struct
from typing import Any, Callable

HEADER = struct.Struct(">I")
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_BLOB_BYTES = 512 * 1024 * 1024
MAX_DEPTH = 64

# dtype name -> (numpy dtype name or None, item size); bfloat16 travels as raw 2-byte words.
DTYPES: dict[str, tuple[str | None, int]] = {
    "float64": ("float64", 8), "float32": ("float32", 4), "float16": ("float16", 2),
    "bfloat16": (None, 2), "int64": ("int64", 8), "int32": ("int32", 4), "int16": ("int16", 2),
    "int8": ("int8", 1), "uint8": ("uint8", 1), "bool": ("bool", 1),
}


class ProtocolError(Exception):
    """A frame or a value broke the wire format (size, type, tag or shape)."""


class Encoder:
    """Turns a value into (JSON-able tree, blobs); ``on_object`` decides what happens to other objects."""

    def __init__(self, on_object: Callable[[Any], Any]):
        self.blobs: list[bytes] = []
        self.on_object = on_object

    def _blob(self, data: bytes) -> int:
        self.blobs.append(bytes(data))
        return len(self.blobs) - 1

    def encode(self, value: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise ProtocolError("value nested too deeply")
        t = type(value)
        if value is None or t is bool or t is int or t is str:
            return value
        if t is float:
            if math.isfinite(value):
                return value
            return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
        # Subclasses (defaultdict, OrderedDict, a NamedTuple, a list subclass) cross as their base type, read
        # through the base type's own methods: the data is what a grader asks about, not the class around it.
        if isinstance(value, list):
            return [self.encode(v, depth + 1) for v in list.__iter__(value)]
        if isinstance(value, tuple) and not (t.__module__ == "torch" and t.__name__ == "Size"):
            return {"$tuple": [self.encode(v, depth + 1) for v in tuple.__iter__(value)]}
        if isinstance(value, dict):
            items = list(dict.items(value))
            if all(type(k) is str and not k.startswith("$") for k, _ in items):
                return {k: self.encode(v, depth + 1) for k, v in items}
            return {"$dict": [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in items]}
        if t is bytes:
            return {"$bytes": self._blob(value)}
        module = t.__module__
        if module == "torch" and t.__name__ == "Size":
            # A shape (tensor.shape) is plain data: it crosses as the tuple of ints it subclasses.
            return {"$tuple": [self.encode(int(v), depth + 1) for v in value]}
        if module == "torch" and t.__name__ in ("Tensor", "Parameter") or module == "torch.nn.parameter":
            return self._tensor(value)
        if module == "numpy":
            return self._numpy(value)
        return self.on_object(value)

    def _tensor(self, tensor: Any) -> dict:
        import torch

        t = tensor.detach().to("cpu")
        dtype = str(t.dtype).removeprefix("torch.")
        if dtype not in DTYPES:
            raise ProtocolError(f"tensors of dtype {dtype} cannot cross the boundary")
        t = t.contiguous()
        if dtype == "bfloat16":
            data = t.view(torch.int16).numpy().tobytes()
        else:
            data = t.numpy().tobytes()
        return {"$tensor": self._blob(data), "dtype": dtype, "shape": list(t.shape)}

    def _numpy(self, value: Any) -> Any:
        import numpy as np

        if isinstance(value, np.ndarray):
            dtype = str(value.dtype)
            if dtype not in DTYPES or value.dtype.hasobject:
                raise ProtocolError(f"arrays of dtype {dtype} cannot cross the boundary")
            arr = np.ascontiguousarray(value)
            return {"$ndarray": self._blob(arr.tobytes()), "dtype": dtype, "shape": list(arr.shape)}
        if isinstance(value, np.generic) and str(value.dtype) in DTYPES:
            item = value.item()
            enc = self.encode(item) if type(item) in (int, float, bool) else None
            return {"$npscalar": enc, "dtype": str(value.dtype)}
        return self.on_object(value)


class Decoder:
    """Rebuilds values from a JSON tree and blobs, strictly; ``on_handle`` maps a handle tag to an object."""

    def __init__(self, blobs: list[bytes], on_handle: Callable[[dict], Any]):
        self.blobs = blobs
        self.on_handle = on_handle

    def decode(self, node: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise ProtocolError("value nested too deeply")
        t = type(node)
        if node is None or t in (bool, int, float, str):
            return node
        if t is list:
            return [self.decode(v, depth + 1) for v in node]
        if t is not dict:
            raise ProtocolError(f"unexpected JSON node {t.__name__}")
        tags = [k for k in node if k.startswith("$")]
        if not tags:
            return {k: self.decode(v, depth + 1) for k, v in node.items()}
        if len(tags) != 1:
            raise ProtocolError("an object carries several tags")
        tag = tags[0]
        if tag == "$tuple":
            return tuple(self.decode(v, depth + 1) for v in _list(node[tag]))
        if tag == "$dict":
            out = {}
            for pair in _list(node[tag]):
                if type(pair) is not list or len(pair) != 2:
                    raise ProtocolError("malformed $dict entry")
                key = self.decode(pair[0], depth + 1)
                try:
                    out[key] = self.decode(pair[1], depth + 1)
                except TypeError as exc:  # unhashable key
                    raise ProtocolError(f"unusable dict key: {exc}") from None
            return out
        if tag == "$float":
            value = node[tag]
            if value not in ("nan", "inf", "-inf"):
                raise ProtocolError("malformed $float")
            return float(value)
        if tag == "$bytes":
            return self._blob(node[tag])
        if tag in ("$tensor", "$ndarray"):
            return self._array(node, tag)
        if tag == "$npscalar":
            return self._npscalar(node)
        if tag == "$handle":
            return self.on_handle(node)
        raise ProtocolError(f"unknown tag {tag}")

    def _blob(self, index: Any) -> bytes:
        if type(index) is not int or not 0 <= index < len(self.blobs):
            raise ProtocolError("blob index out of range")
        return self.blobs[index]

    def _array(self, node: dict, tag: str) -> Any:
        dtype, shape = node.get("dtype"), node.get("shape")
        if dtype not in DTYPES:
            raise ProtocolError(f"dtype {dtype!r} not allowed")
        if type(shape) is not list or not all(type(s) is int and s >= 0 for s in shape) or len(shape) > 8:
            raise ProtocolError("malformed shape")
        data = self._blob(node[tag])
        np_name, size = DTYPES[dtype]
        count = math.prod(shape)
        if count * size != len(data):
            raise ProtocolError(f"{dtype} {shape} needs {count * size} bytes, got {len(data)}")
        import numpy as np

        if tag == "$ndarray":
            if np_name is None:
                raise ProtocolError("bfloat16 numpy arrays do not exist")
            return np.frombuffer(data, dtype=np_name).reshape(shape).copy()
        import torch

        if np_name is None:
            raw = np.frombuffer(data, dtype="int16").reshape(shape).copy()
            return torch.from_numpy(raw).view(torch.bfloat16)
        return torch.from_numpy(np.frombuffer(data, dtype=np_name).reshape(shape).copy())

    def _npscalar(self, node: dict) -> Any:
        dtype = node.get("dtype")
        if dtype not in DTYPES or DTYPES[dtype][0] is None:
            raise ProtocolError(f"dtype {dtype!r} not allowed")
        value = self.decode(node["$npscalar"], 1)
        if type(value) not in (int, float, bool):
            raise ProtocolError("malformed numpy scalar")
        import numpy as np

        try:
            return np.dtype(DTYPES[dtype][0]).type(value)
        except (OverflowError, ValueError) as exc:
            raise ProtocolError(f"bad numpy scalar: {exc}") from None


def _list(value: Any) -> list:
    if type(value) is not list:
        raise ProtocolError("expected a list")
    return value


def _reject_constant(name: str) -> Any:
    raise ProtocolError(f"non-standard JSON constant {name}")


def pack(header: dict, blobs: list[bytes]) -> bytes:
    """Serialise one frame."""
    header = dict(header, blobs=[len(b) for b in blobs])
    data = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    return b"".join([HEADER.pack(len(data)), data, *blobs])


def parse_header(data: bytes) -> dict:
    """Parse a frame header strictly: JSON object, no NaN constants, sane blob list."""
    try:
        header = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise ProtocolError(f"unreadable frame header: {type(exc).__name__}") from None
    if type(header) is not dict:
        raise ProtocolError("frame header is not an object")
    sizes = header.get("blobs", [])
    if type(sizes) is not list or not all(type(n) is int and n >= 0 for n in sizes):
        raise ProtocolError("malformed blob list")
    if sum(sizes) > MAX_BLOB_BYTES:
        raise ProtocolError("frame too large")
    return header


def read_exact(fd: int, n: int, read: Callable[[int, int], bytes] | None = None) -> bytes:
    """Read exactly n bytes from a file descriptor (EOFError when the other side closed)."""
    read = read or os.read
    chunks, left = [], n
    while left:
        chunk = read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("pipe closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, read: Callable[[int, int], bytes] | None = None) -> tuple[dict, list[bytes]]:
    """Read one frame: its parsed header and its blobs."""
    (length,) = HEADER.unpack(read_exact(fd, HEADER.size, read))
    if length > MAX_HEADER_BYTES:
        raise ProtocolError(f"frame header of {length} bytes exceeds the cap")
    header = parse_header(read_exact(fd, length, read))
    blobs = [read_exact(fd, n, read) for n in header["blobs"]]
    return header, blobs


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
