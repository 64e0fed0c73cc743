"""Hostile ex7 (malformed worker data): its convolutions are a class of its own named Conv2d, with a weight and
a bias but no kernel_size, stride or padding attributes (the old grader crashed on it with a KeyError). The
design is an honest six-conv one (field 36), which loses only the lesion check."""
# expect-fail: test_receptive_field_covers_lesions
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FILTERS = [32, 32, 64, 64, 128, 128]


class RetinaCNN(nn.Module):
    """Six 3x3 convs with a 2x2 max pool after every second one, then a pooled linear head (field 36)."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for i, out_channels in enumerate(FILTERS):
            layers += [Conv2d(in_channels, out_channels), nn.ReLU()]
            if i % 2 == 1:
                layers.append(PlainPool())
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5),
                                        nn.Linear(FILTERS[-1], num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_retina_cnn(num_classes: int = 5) -> nn.Module:
    return RetinaCNN(num_classes)


DESIGN = {
    "conv_layers": 6,
    "filters": list(FILTERS),
    "final_feature_map": (128, 64, 64),
    "feature_extractor_params": 287008,
    "receptive_field": 36,
}

ANSWERS = {"min_conv_layers": 8}

JUSTIFICATION = {
    "pooling_vs_strided_conv": "Max pooling halves the resolution at no parameter cost and keeps strong responses.",
    "dropout": "Dropout before the linear layer, because labelled fundus photographs are scarce.",
    "batchnorm": "It would steady training, but batches of 512 x 512 images are small, so it is left out.",
}


def PlainConv(c_in: int, c_out: int) -> nn.Module:
    return nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)


def PlainPool() -> nn.Module:
    return nn.MaxPool2d(2)


# ---- the attack ---------------------------------------------------------------------------------------
class Conv2d(nn.Module):
    """A 3x3 convolution of its own: F.conv2d over its weight and bias, no kernel_size attribute."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, 3, 3) * (2.0 / (9 * c_in)) ** 0.5)
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, padding=1)
