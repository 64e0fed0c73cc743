"""Exercise 5: count where AlexNet's parameters live, and explain what made it work.

Parameter counts:
- A fully connected layer from n inputs to m outputs has an n x m weight matrix and, with a
  bias, m more numbers.
- A convolution from c_in to c_out channels with a k x k kernel has c_out filters of
  c_in x k x k weights each and, with a bias, one more number per output channel.

Plain Python only: do not import torch in this file.
"""
from __future__ import annotations


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Return the number of parameters of ``nn.Linear(in_features, out_features, bias=bias)``.

    Example:
        linear_params(3, 2) == 8  (6 weights + 2 biases)
    """
    raise NotImplementedError("linear_params: weights plus optional bias")


def conv_params(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> int:
    """Return the number of parameters of ``nn.Conv2d(in_channels, out_channels, kernel_size)``.

    ``kernel_size`` is a single int: the kernel is kernel_size x kernel_size.

    Example:
        conv_params(1, 8, 3) == 80  (8 * 1 * 3 * 3 weights + 8 biases)
    """
    raise NotImplementedError("conv_params: weights plus optional bias")


# alexnet_fc6: AlexNet's first fully connected layer, 9216 -> 4096, with bias (an int).
# lenet_fc: LeNet-5's first fully connected layer, 400 -> 120, with bias (an int).
# ratio: alexnet_fc6 / lenet_fc as a float (two decimals are enough).
ANSWERS = {
    "alexnet_fc6": None,
    "lenet_fc": None,
    "ratio": None,
}

# A few sentences each, as strings: why did each of these help AlexNet?
EXPLANATIONS = {
    "relu": None,
    "dropout": None,
    "augmentation": None,
}
