"""The ex4 grader on correct variants written differently from the reference, and on plausible mistakes."""
from __future__ import annotations

import pytest

from conftest import assert_verdict, grade_variants, variants

EXERCISE = "ex4_shape_tracking"


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    return grade_variants(EXERCISE, tmp_path_factory.mktemp(EXERCISE))


@pytest.mark.slow
@pytest.mark.parametrize("path", variants(EXERCISE), ids=lambda p: p.stem)
def test_variant(reports, path):
    assert_verdict(reports[path.stem], EXERCISE, path)


def test_torch_size_crosses_as_tuple():
    """A shape returned as torch.Size (what tensor.shape is) must reach the grader as data, not as a handle."""
    import torch

    from cnngrade.worker import codec

    def no_objects(obj):
        raise AssertionError(f"{type(obj).__name__} would have stayed in the worker")

    enc = codec.Encoder(no_objects)
    tree = enc.encode([torch.zeros(2, 3).shape, torch.Size([])])
    frame = codec.pack({"value": tree}, enc.blobs)
    header = codec.parse_header(frame[codec.HEADER.size:])
    decoded = codec.Decoder([], no_objects).decode(header["value"])
    assert decoded == [(2, 3), ()] and all(type(s) is tuple for s in decoded)
