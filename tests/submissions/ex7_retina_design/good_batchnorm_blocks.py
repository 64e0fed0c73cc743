"""A correct ex7: Conv-BatchNorm-ReLU blocks with narrower filters, named layers, max pool after every second conv."""
from collections import OrderedDict

import torch.nn as nn

WIDTHS = [24, 24, 48, 48, 96, 96, 192, 192]


def build_retina_cnn(num_classes=5):
    layers = OrderedDict()
    c_in = 3
    for i, c_out in enumerate(WIDTHS, start=1):
        layers[f"conv{i}"] = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        layers[f"bn{i}"] = nn.BatchNorm2d(c_out)
        layers[f"relu{i}"] = nn.ReLU(inplace=True)
        if i % 2 == 0:
            layers[f"pool{i // 2}"] = nn.MaxPool2d(kernel_size=2, stride=2)
        c_in = c_out
    return RetinaNet(nn.Sequential(layers), nn.Sequential(
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Dropout(0.3), nn.Linear(WIDTHS[-1], num_classes)))


class RetinaNet(nn.Module):
    def __init__(self, features, classifier):
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, x):
        return self.classifier(self.features(x))


# conv weights without bias: 3*24*9 + 24*24*9 + 24*48*9 + 48*48*9 + 48*96*9 + 96*96*9 + 96*192*9 + 192*192*9
# = 659,016, plus BatchNorm's weight and bias: 2 * (24+24+48+48+96+96+192+192) = 1,440.
DESIGN = {
    "conv_layers": 8,
    "filters": WIDTHS,
    "final_feature_map": (192, 32, 32),
    "feature_extractor_params": 660456,
    "receptive_field": 76,  # 68 after conv 8, plus (2 - 1) * 8 for the last pool
}

ANSWERS = {"min_conv_layers": 8}

JUSTIFICATION = {
    "pooling_vs_strided_conv": "Max pooling is free of parameters and keeps the strongest response of small lesions.",
    "dropout": "A little dropout before the only linear layer, since labelled fundus images are few.",
    "batchnorm": "BatchNorm after every conv steadies training of the deep stack, so the convs need no bias.",
}
