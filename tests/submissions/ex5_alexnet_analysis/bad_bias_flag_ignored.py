# expect-fail: test_linear_params, test_conv_params
# `bias is not None` is True for bias=False too, so a bias is always counted.
def linear_params(in_features, out_features, bias=True):
    n = in_features * out_features
    if bias is not None:
        n += out_features
    return n


def conv_params(in_channels, out_channels, kernel_size, bias=True):
    n = in_channels * out_channels * kernel_size * kernel_size
    if bias is not None:
        n += out_channels
    return n


ANSWERS = {"alexnet_fc6": 37752832, "lenet_fc": 48120, "ratio": 784.56}
