"""Counts from the tensor shapes a framework would allocate, multiplied with math.prod."""
import math


def _shapes_linear(n_in, n_out, with_bias):
    shapes = [(n_out, n_in)]
    if with_bias:
        shapes.append((n_out,))
    return shapes


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    return sum(math.prod(s) for s in _shapes_linear(in_features, out_features, bias))


def conv_params(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> int:
    shapes = [(out_channels, in_channels, kernel_size, kernel_size)] + ([(out_channels,)] if bias else [])
    return sum(map(math.prod, shapes))


ANSWERS = {"alexnet_fc6": 37752832, "lenet_fc": 48120, "ratio": 784.56}
EXPLANATIONS = {"relu": "non-saturating", "dropout": None, "augmentation": ""}
