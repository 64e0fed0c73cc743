# expect-fail: test_linear_params, test_conv_params
# Right formulas, but the default is no bias (torch's layers default to bias=True).
def linear_params(in_features, out_features, bias=False):
    return in_features * out_features + (out_features if bias else 0)


def conv_params(in_channels, out_channels, kernel_size, bias=False):
    return in_channels * out_channels * kernel_size ** 2 + (out_channels if bias else 0)


ANSWERS = {"alexnet_fc6": 37752832, "lenet_fc": 48120, "ratio": 784.56}
