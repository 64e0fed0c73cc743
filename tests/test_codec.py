"""The wire format: values survive the round trip, and hostile frames are refused."""
from __future__ import annotations

import collections
import json
import math
import os
import struct
import typing

import numpy as np
import pytest
import torch

from cnngrade.worker import codec


def roundtrip(value):
    enc = codec.Encoder(lambda obj: {"$handle": 1, "type": type(obj).__name__})
    frame = codec.pack({"value": enc.encode(value)}, enc.blobs)
    r, w = os.pipe()
    try:
        codec.write_all(w, frame)
        header, blobs = codec.read_frame(r)
    finally:
        os.close(r)
        os.close(w)
    return codec.Decoder(blobs, lambda node: ("handle", node["$handle"])).decode(header["value"])


@pytest.mark.parametrize("value", [
    None, True, 3, -2**70, 1.5, "text", [1, [2, "x"]], (1, (2, 3)), {"a": 1, "b": (2,)}, {1: "one", (2, 3): None},
    {"$sneaky": 1}, b"\x00\xff",
])
def test_plain_values_roundtrip(value):
    got = roundtrip(value)
    assert got == value and type(got) is type(value)


def test_non_finite_floats_roundtrip():
    got = roundtrip([math.inf, -math.inf, math.nan])
    assert got[0] == math.inf and got[1] == -math.inf and math.isnan(got[2])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64,
                                   torch.uint8, torch.bool])
def test_tensors_roundtrip_exactly(dtype):
    t = (torch.randn(3, 4, 5) * 10).to(dtype)
    got = roundtrip({"t": t, "view": t[:, 1]})
    assert got["t"].dtype == dtype and torch.equal(got["t"], t)
    assert torch.equal(got["view"], t[:, 1])


def test_torch_size_and_numpy_values_are_data():
    got = roundtrip([torch.Size([2, 3]), np.arange(4, dtype=np.int32), np.int64(7), np.float32(0.5)])
    assert got[0] == (2, 3) and type(got[0]) is tuple
    assert np.array_equal(got[1], np.arange(4)) and got[1].dtype == np.int32
    assert got[2] == 7 and isinstance(got[2], np.int64)
    assert got[3] == np.float32(0.5)


def test_objects_and_subclasses_become_handles():
    class Liar(int):
        def __eq__(self, other):
            return True

    assert roundtrip(Liar(5)) == ("handle", 1)
    assert roundtrip(object()) == ("handle", 1)


def decode(header: dict, blobs: list[bytes] = ()) -> object:
    return codec.Decoder(list(blobs), lambda node: None).decode(header)


@pytest.mark.parametrize("node, blobs", [
    ({"$tensor": 0, "dtype": "float32", "shape": [4]}, [b"\x00" * 15]),        # wrong byte count
    ({"$tensor": 0, "dtype": "object", "shape": [1]}, [b"\x00" * 8]),          # dtype not allowed
    ({"$tensor": 3, "dtype": "float32", "shape": [1]}, [b"\x00" * 4]),         # blob index out of range
    ({"$tensor": 0, "dtype": "float32", "shape": [-1]}, [b""]),                # negative dimension
    ({"$unknown": 1}, []),                                                     # unknown tag
    ({"$tuple": [1], "$float": "nan"}, []),                                    # two tags
    ({"$float": "1e999"}, []),                                                 # not one of the three constants
    ({"$dict": [[[1], 2]]}, []),                                               # unhashable key
])
def test_malformed_values_are_refused(node, blobs):
    with pytest.raises(codec.ProtocolError):
        decode(node, blobs)


def test_deep_nesting_is_refused():
    node: object = 1
    for _ in range(codec.MAX_DEPTH + 5):
        node = [node]
    with pytest.raises(codec.ProtocolError):
        decode(node)


@pytest.mark.parametrize("payload", [b"{\"v\": NaN}", b"[1, 2]", b"\xff\xfe", b"{\"blobs\": [-1]}",
                                     json.dumps({"blobs": [codec.MAX_BLOB_BYTES + 1]}).encode()])
def test_bad_headers_are_refused(payload):
    with pytest.raises(codec.ProtocolError):
        codec.parse_header(payload)


def test_oversized_header_is_refused_before_reading_it():
    r, w = os.pipe()
    try:
        os.write(w, struct.pack(">I", codec.MAX_HEADER_BYTES + 1))
        with pytest.raises(codec.ProtocolError):
            codec.read_frame(r)
    finally:
        os.close(r)
        os.close(w)


class _Pair(typing.NamedTuple):
    model: int
    augment: bool


class _Loud(list):
    def __iter__(self):  # a subclass's own iteration is not what crosses: the list's items are
        raise RuntimeError("never called")


@pytest.mark.parametrize("value, plain", [
    (collections.defaultdict(list, {"train_loss": [1.0], "val_acc": [0.5]}), {"train_loss": [1.0], "val_acc": [0.5]}),
    (collections.OrderedDict([("b", 1), ("a", 2)]), {"b": 1, "a": 2}),
    (_Pair(3, True), (3, True)),
    (_Loud([1, 2]), [1, 2]),
])
def test_subclasses_of_plain_containers_cross_as_their_base_type(value, plain):
    got = roundtrip(value)
    assert got == plain and type(got) is type(plain)
