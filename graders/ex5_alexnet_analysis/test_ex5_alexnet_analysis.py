"""Grader for exercise 5: parameter counts against the numel of real torch layers, and the AlexNet answers."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cnngrade.graderkit import call_text, expect_close, expect_int, values

# The handout's layers: AlexNet's FC6 and LeNet-5's first fully connected layer, both with a bias.
ALEXNET_FC6 = (9216, 4096)
LENET_FC = (400, 120)
RATIO_TOLERANCE = 0.5  # the contract accepts the ratio to within ±0.5 (two decimals are plenty)


def numel(layer: torch.nn.Module) -> int:
    """How many numbers a real layer holds in its parameters."""
    return sum(p.numel() for p in layer.parameters())


def linear_numel(in_features: int, out_features: int, bias: bool = True) -> int:
    # The meta device gives real parameter shapes without allocating memory, even for huge layers.
    return numel(torch.nn.Linear(in_features, out_features, bias=bias, device="meta"))


def conv_numel(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> int:
    return numel(torch.nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias, device="meta"))


# None stands for "argument left out": the default must mean bias=True, as in torch.
biases = st.sampled_from([None, True, False])


def _bias_kwargs(bias: bool | None) -> dict:
    return {} if bias is None else {"bias": bias}


@given(in_features=st.integers(1, 10_000), out_features=st.integers(1, 5_000), bias=biases)
def test_linear_params(submission, in_features, out_features, bias):
    kwargs = _bias_kwargs(bias)
    got = submission.linear_params(in_features, out_features, **kwargs)
    expect_int(got, linear_numel(in_features, out_features, **kwargs),
               call_text("linear_params", in_features, out_features, **kwargs))


@given(in_channels=st.integers(1, 512), out_channels=st.integers(1, 512), kernel_size=st.integers(1, 11),
       bias=biases)
def test_conv_params(submission, in_channels, out_channels, kernel_size, bias):
    kwargs = _bias_kwargs(bias)
    got = submission.conv_params(in_channels, out_channels, kernel_size, **kwargs)
    expect_int(got, conv_numel(in_channels, out_channels, kernel_size, **kwargs),
               call_text("conv_params", in_channels, out_channels, kernel_size, **kwargs))


@pytest.mark.parametrize("key, layer", [("alexnet_fc6", ALEXNET_FC6), ("lenet_fc", LENET_FC)],
                         ids=["alexnet_fc6", "lenet_fc"])
def test_answer(submission, key, layer):
    expect_int(values.answers(submission).get(key), linear_numel(*layer),
               f'ANSWERS["{key}"] (Linear({layer[0]}, {layer[1]}) with bias)')


def test_answer_ratio(submission):
    expected = linear_numel(*ALEXNET_FC6) / linear_numel(*LENET_FC)
    expect_close(values.answers(submission).get("ratio"), expected,
                 'ANSWERS["ratio"] (alexnet_fc6 / lenet_fc)', abs_tol=RATIO_TOLERANCE)
