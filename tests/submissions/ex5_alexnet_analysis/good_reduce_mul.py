from functools import reduce
from operator import mul


def conv_params(in_channels, out_channels, kernel_size, bias=True):
    total = reduce(mul, [in_channels, out_channels, kernel_size, kernel_size], 1)
    if bias:
        total += out_channels
    return total


def linear_params(in_features, out_features, bias=True):
    # A 1x1 convolution on a 1x1 image is a fully connected layer.
    return conv_params(in_features, out_features, 1, bias=bias)


ANSWERS = {
    "alexnet_fc6": linear_params(9216, 4096),
    "lenet_fc": linear_params(400, 120),
    "ratio": round(linear_params(9216, 4096) / linear_params(400, 120), 1),
}
