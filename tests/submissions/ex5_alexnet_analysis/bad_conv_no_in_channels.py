# expect-fail: test_conv_params
# Each filter is counted as a single k x k plane, as if the input had one channel.
def linear_params(in_features, out_features, bias=True):
    return in_features * out_features + (out_features if bias else 0)


def conv_params(in_channels, out_channels, kernel_size, bias=True):
    return out_channels * kernel_size * kernel_size + (out_channels if bias else 0)


ANSWERS = {"alexnet_fc6": 37752832, "lenet_fc": 48120, "ratio": 784.56}
