"""Grader for exercise 3: receptive fields against autograd on a real network, pooling against torch's pooling."""
from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from cnngrade.graderkit import call_text, expect_int, expect_raises, measure, show, values

# The handout's stacks, input to output, as measure.Layer tuples (kind, kernel, stride, dilation).
CONV3 = ("conv", 3, 1, 1)
POOL2 = ("pool", 2, 2, 1)
FIVE_CONVS = [CONV3] * 5
WITH_POOLS = [CONV3, CONV3, POOL2, CONV3, CONV3, POOL2, CONV3]
GRID = [[2, 8, 4, 1], [6, 3, 7, 2], [0, 5, 9, 3], [4, 1, 6, 8]]
# Relative: a mean summed in another order, or a maximum kept in float32, differs from torch's float64 only by rounding.
TOLERANCE = 1e-6
MAX_STRIDE_PRODUCT = 16  # keeps the measuring network's input (and the test) small


convs = st.tuples(st.just("conv"), st.integers(1, 7), st.integers(1, 3), st.just(1))
pools = st.integers(2, 4).flatmap(lambda k: st.tuples(st.just("pool"), st.just(k), st.integers(1, k), st.just(1)))


def _small(stack: list) -> bool:
    return math.prod(s for _, _, s, _ in stack) <= MAX_STRIDE_PRODUCT


def _pairs(stack: list) -> list[tuple[int, int]]:
    """What the student receives: (kernel_size, stride) pairs, convolutions and pools alike."""
    return [(k, s) for _, k, s, _ in stack]


def _check_rf(submission: Any, stack: list) -> None:
    layers = _pairs(stack)
    expect_int(submission.receptive_field(layers), measure.receptive_field(stack),
               call_text("receptive_field", layers))


@given(stack=st.lists(convs, max_size=6).filter(_small))
def test_receptive_field_convs(submission, stack):
    _check_rf(submission, stack)


@given(stack=st.lists(st.one_of(convs, pools), min_size=2, max_size=7).filter(
    lambda s: _small(s) and any(kind == "pool" for kind, *_ in s)))
def test_receptive_field_with_pools(submission, stack):
    _check_rf(submission, stack)


# -- pooling ----------------------------------------------------------------------------------------
cells = st.one_of(st.integers(-50, 50), st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False))


@st.composite
def pooling_cases(draw: st.DrawFn) -> tuple[list[list[float]], int, int]:
    rows, cols = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    grid = draw(st.lists(st.lists(cells, min_size=cols, max_size=cols), min_size=rows, max_size=rows))
    size = draw(st.integers(1, min(rows, cols)))
    stride = draw(st.integers(1, 4))
    return grid, size, stride


def torch_pool(kind: str, grid: list[list[float]], size: int, stride: int) -> torch.Tensor:
    """torch's own pooling (no padding, floor mode) in float64, as a rows x cols tensor."""
    x = torch.tensor(grid, dtype=torch.float64)[None, None]
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    return pool(x, size, stride=stride, padding=0, ceil_mode=False)[0, 0]


def expect_grid(got: Any, expected: torch.Tensor, call: str, rel_tol: float) -> None:
    """A list of lists of numbers (ints accepted when equal) with the expected shape and values."""
    want = expected.tolist()
    shape = f"{len(want)} rows of {len(want[0])}"
    try:
        got = [values.sequence(row, f"{call} row {i}") for i, row in enumerate(values.sequence(got, call))]
    except values.BadValue:
        raise AssertionError(f"{call} returned {show(got)}; expected a list of lists of floats ({shape})") from None
    got_shape = [len(row) for row in got]
    assert got_shape == [len(r) for r in want], \
        f"{call} returned {len(got)} rows of lengths {got_shape}; expected {shape} (floor mode: only windows " \
        f"that fit completely, no padding)"
    for i, (row, wrow) in enumerate(zip(got, want)):
        for j, (v, w) in enumerate(zip(row, wrow)):
            v = values.number(v, f"{call}: entry [{i}][{j}]")
            assert math.isclose(v, w, rel_tol=rel_tol, abs_tol=rel_tol), \
                f"{call}: entry [{i}][{j}] is {v:g}, expected {w:g}\nyou returned {show(got)}\nexpected {want}"


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(case=pooling_cases())
def test_pool_matches_torch(submission, kind, case):
    grid, size, stride = case
    name = f"{kind}_pool2d"
    got = submission.call(name, grid, size, stride)
    expect_grid(got, torch_pool(kind, grid, size, stride), call_text(name, grid, size, stride), TOLERANCE)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_defaults(submission, kind, seed):
    # Left out, size and stride must mean a 2x2 window with stride 2.
    gen = torch.Generator().manual_seed(seed)
    grid = torch.randint(-9, 10, (6, 7), generator=gen).tolist()
    name = f"{kind}_pool2d"
    expect_grid(submission.call(name, grid), torch_pool(kind, grid, 2, 2), call_text(name, grid), TOLERANCE)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_window_too_large_raises(submission, kind):
    grid, size = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], 3
    with pytest.raises(RuntimeError):  # torch agrees: a 3x3 window does not fit two rows
        torch_pool(kind, grid, size, 1)
    name = f"{kind}_pool2d"
    expect_raises("ValueError", submission.call, name, grid, size, 1, call=call_text(name, grid, size, 1))


# -- the handout's questions ----------------------------------------------------------------------
@pytest.mark.parametrize("key, stack", [("rf_five_convs", FIVE_CONVS), ("rf_with_pools", WITH_POOLS)],
                         ids=["rf_five_convs", "rf_with_pools"])
def test_answer_rf(submission, key, stack):
    expect_int(values.answers(submission).get(key), measure.receptive_field(stack), f'ANSWERS["{key}"]')


def test_answer_max_pool(submission):
    expect_grid(values.answers(submission).get("max_pool"), torch_pool("max", GRID, 2, 2),
                'ANSWERS["max_pool"] (2x2 max pooling, stride 2)', TOLERANCE)
