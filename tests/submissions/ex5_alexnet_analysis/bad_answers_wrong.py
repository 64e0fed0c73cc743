# expect-fail: test_answer_ratio, test_answer[alexnet_fc6], test_answer[lenet_fc]
# Functions right; the ratio is upside down, FC6 uses 4096 inputs, and LeNet's count is a formatted string.
def linear_params(in_features, out_features, bias=True):
    return in_features * out_features + (out_features if bias else 0)


def conv_params(in_channels, out_channels, kernel_size, bias=True):
    return in_channels * out_channels * kernel_size * kernel_size + (out_channels if bias else 0)


ANSWERS = {"alexnet_fc6": linear_params(4096, 4096), "lenet_fc": "48,120", "ratio": 48120 / 37752832}
