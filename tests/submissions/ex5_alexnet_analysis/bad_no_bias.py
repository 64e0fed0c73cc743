# expect-fail: test_linear_params, test_conv_params, test_answer[alexnet_fc6], test_answer[lenet_fc], test_answer_ratio
# Counts the weights only: the bias vector is forgotten everywhere.
def linear_params(in_features, out_features, bias=True):
    return in_features * out_features


def conv_params(in_channels, out_channels, kernel_size, bias=True):
    return in_channels * out_channels * kernel_size * kernel_size


ANSWERS = {"alexnet_fc6": linear_params(9216, 4096), "lenet_fc": linear_params(400, 120)}
ANSWERS["ratio"] = ANSWERS["alexnet_fc6"] / ANSWERS["lenet_fc"]
