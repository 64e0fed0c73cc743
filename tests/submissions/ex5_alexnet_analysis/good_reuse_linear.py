"""A convolution counted as a linear map from each k x k x c_in patch; answers computed, not typed."""


def linear_params(in_features, out_features, bias=True):
    weights = in_features * out_features
    return weights + out_features * int(bias)


def conv_params(in_channels, out_channels, kernel_size, bias=True):
    # Every output channel is a linear unit over a kernel_size x kernel_size x in_channels patch.
    return linear_params(in_channels * kernel_size ** 2, out_channels, bias)


_fc6 = linear_params(9216, 4096)
_lenet = linear_params(400, 120)
ANSWERS = {"alexnet_fc6": _fc6, "lenet_fc": _lenet, "ratio": _fc6 / _lenet}

EXPLANATIONS = {
    "relu": "ReLU keeps a gradient of one for positive inputs, so deep networks train much faster than with tanh.",
    "dropout": "Dropout switches off random units in the big fully connected layers and so reduces overfitting.",
    "augmentation": "Crops and flips make many new training images from each one, which reduces overfitting.",
}
