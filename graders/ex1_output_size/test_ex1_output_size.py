"""Grader for exercise 1: output sizes against the shapes torch.nn.Conv2d really produces."""
from __future__ import annotations

import pytest
import torch
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from cnngrade.graderkit import call_text, expect_int, expect_raises, values

QUESTIONS = {"a": (28, 5, 0, 1), "b": (64, 3, 1, 1), "c": (128, 3, 0, 2), "d": (224, 7, 3, 2)}


def conv2d_side(size: int, kernel_size: int, padding: int, stride: int) -> int:
    """The output side of torch's 2-D convolution, computed shape-only on the meta device."""
    x = torch.empty(1, 1, size, size, device="meta")
    w = torch.empty(1, 1, kernel_size, kernel_size, device="meta")
    return int(torch.nn.functional.conv2d(x, w, stride=stride, padding=padding).shape[-1])


sizes = st.integers(1, 256)
kernels = st.integers(1, 11)
paddings = st.integers(0, 5)
strides = st.integers(1, 5)


# The mistakes students make are pinned by fixed cases (run first, on every grading): a stride that does not
# divide the span (floor, not ceil or a float), padding on both sides, a kernel that exactly fits the padded
# input, a stride longer than the span; random layers then look for anything else, so a few dozen suffice.
@settings(max_examples=40)
@given(size=sizes, kernel_size=kernels, padding=paddings, stride=strides)
@example(size=7, kernel_size=2, padding=0, stride=2)
@example(size=8, kernel_size=3, padding=1, stride=1)
@example(size=5, kernel_size=7, padding=1, stride=1)
@example(size=10, kernel_size=3, padding=0, stride=4)
def test_matches_conv2d(submission, size, kernel_size, padding, stride):
    assume(kernel_size <= size + 2 * padding)
    got = submission.conv_output_size(size, kernel_size, padding, stride)
    expect_int(got, conv2d_side(size, kernel_size, padding, stride),
               call_text("conv_output_size", size=size, kernel_size=kernel_size, padding=padding, stride=stride))


@settings(max_examples=30)
@given(size=sizes, padding=paddings, stride=strides, extra=st.integers(1, 8))
@example(size=5, padding=1, stride=1, extra=1)   # one pixel too large: the boundary
@example(size=1, padding=0, stride=3, extra=1)
def test_kernel_larger_than_input_raises(submission, size, padding, stride, extra):
    kernel_size = size + 2 * padding + extra
    with pytest.raises(RuntimeError):  # torch agrees that no output exists
        conv2d_side(size, kernel_size, padding, stride)
    expect_raises("ValueError", submission.conv_output_size, size, kernel_size, padding, stride,
                  call=call_text("conv_output_size", size=size, kernel_size=kernel_size, padding=padding,
                                 stride=stride))


@pytest.mark.parametrize("args", [
    {"size": 0, "kernel_size": 1}, {"size": 8, "kernel_size": 0}, {"size": 8, "kernel_size": 3, "padding": -1},
    {"size": 8, "kernel_size": 3, "stride": 0}, {"size": 8, "kernel_size": 3, "stride": -2},
], ids=["size0", "kernel0", "padding-1", "stride0", "stride-2"])
def test_invalid_arguments_raise(submission, args):
    expect_raises("ValueError", submission.conv_output_size, **args, call=call_text("conv_output_size", **args))


@pytest.mark.parametrize("question", sorted(QUESTIONS))
def test_answer(submission, question):
    answers = values.answers(submission)
    size, k, p, s = QUESTIONS[question]
    expect_int(answers.get(question), conv2d_side(size, k, p, s),
               f'ANSWERS["{question}"] (H={size}, K={k}, P={p}, S={s})')
