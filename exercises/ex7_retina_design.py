"""Exercise 7: design a CNN that grades retinal disease from 512 x 512 colour fundus photos.

The design brief: a stack of 3x3 convolutions (stride 1, padding 1, each followed by ReLU)
with a 2x2 stride-2 max pool after every second convolution, then a classifier. Lesions
can span about 64 pixels, so one unit at the end of the convolutional stack should see
at least a 64 x 64 patch of the input.

Receptive field of a stack of layers (input to output), with rf = 1 and jump = 1 at the
start; for each conv or pool with kernel k and stride s:

    rf   = rf + (k - 1) * jump
    jump = jump * s

Suggested filters: 32, 32, 64, 64, 128, 128, 256, 256. Check every number you put in
DESIGN against the model you actually build.
"""
from __future__ import annotations

from torch import nn


def build_retina_cnn(num_classes: int = 5) -> nn.Module:
    """Return a model mapping (N, 3, 512, 512) images to (N, num_classes) logits.

    The model must expose two attributes:
      - ``model.features``: the convolution / ReLU / pooling stack only;
      - ``model.classifier``: everything after it, e.g. AdaptiveAvgPool2d(1), Flatten(),
        Dropout, Linear(last number of filters, num_classes).
    ``forward`` is ``classifier(features(x))`` (flatten in between if your classifier
    does not start with pooling and Flatten).
    """
    raise NotImplementedError("build_retina_cnn: features stack plus classifier")


# Describe the model that build_retina_cnn() returns:
#   conv_layers: number of Conv2d layers (int)
#   filters: out_channels of each Conv2d, in order (list of ints)
#   final_feature_map: (channels, height, width) of features(x) for one 512 x 512 image
#   feature_extractor_params: number of parameters in model.features (int)
#   receptive_field: receptive field (int) of one unit of features(x), using the recurrence
DESIGN = {
    "conv_layers": None,
    "filters": None,
    "final_feature_map": None,
    "feature_extractor_params": None,
    "receptive_field": None,
}

# The fewest 3x3 stride-1 convs, with a 2x2 stride-2 max pool after every second conv,
# that give a receptive field of at least 64 (an int).
ANSWERS = {"min_conv_layers": None}

# A few sentences each, as strings, about your design choices.
JUSTIFICATION = {
    "pooling_vs_strided_conv": None,
    "dropout": None,
    "batchnorm": None,
}
