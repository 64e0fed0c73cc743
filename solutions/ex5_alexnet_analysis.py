"""Reference solution for exercise 5: where AlexNet's parameters are, and why it worked."""
from __future__ import annotations


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Number of parameters of a fully connected layer: a weight matrix plus an optional bias."""
    return in_features * out_features + (out_features if bias else 0)


def conv_params(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> int:
    """Number of parameters of a Conv2d with a square kernel_size x kernel_size kernel."""
    return in_channels * out_channels * kernel_size * kernel_size + (out_channels if bias else 0)


ANSWERS = {
    "alexnet_fc6": 37752832,  # 9216 * 4096 + 4096
    "lenet_fc": 48120,  # 400 * 120 + 120
    "ratio": 784.56,  # 37752832 / 48120 = 784.556...
}

EXPLANATIONS = {
    "relu": (
        "ReLU does not saturate for positive inputs, so its gradient stays 1 instead of shrinking "
        "towards 0 as a sigmoid or tanh does. Deep stacks therefore keep a usable gradient and "
        "AlexNet trained several times faster than the same network with tanh units."
    ),
    "dropout": (
        "The fully connected layers hold most of AlexNet's parameters and overfit easily. Dropout "
        "zeroes a random half of their units on every step, so no unit can rely on particular "
        "partners; this acts like averaging many thinned networks and reduced overfitting."
    ),
    "augmentation": (
        "Random crops and horizontal flips produce new, label-preserving versions of each training "
        "image every epoch. The network sees far more variety than the raw data set contains, which "
        "makes it more robust to position and orientation and lowers the gap between training and "
        "test accuracy."
    ),
}
