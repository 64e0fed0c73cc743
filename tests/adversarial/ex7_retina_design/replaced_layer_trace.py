"""Hostile ex7: a six-conv design (receptive field 36) that replaces the worker helpers layer_trace and
module_config with ones describing the reference's eight convs and four pools, and claims its field (76)."""
# expect-fail: test_design[receptive_field], test_receptive_field_covers_lesions
from __future__ import annotations

import torch
from torch import nn

FILTERS = [32, 32, 64, 64, 128, 128]


class RetinaCNN(nn.Module):
    """Six 3x3 convs with a 2x2 max pool after every second one, then a pooled linear head (field 36)."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for i, out_channels in enumerate(FILTERS):
            layers += [PlainConv(in_channels, out_channels), nn.ReLU()]
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
    "receptive_field": 76,
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
import sys as _sys


def _forged_config(module):
    return {"type": "Conv2d", "mro": ["Conv2d", "_ConvNd", "Module", "object"],
            "config": {"in_channels": 3, "out_channels": 256, "kernel_size": (65, 65), "stride": (1, 1),
                       "padding": (1, 1), "dilation": (1, 1), "groups": 1, "bias": True}}


def _forged_trace(model, x):
    n = x.shape[0]
    layers, side, channels = [], x.shape[-1], 3
    for i, width in enumerate([32, 32, 64, 64, 128, 128, 256, 256]):
        cfg = _forged_config(None)
        cfg["config"].update(in_channels=channels, out_channels=width, kernel_size=(3, 3))
        layers.append({**cfg, "in_shape": (n, channels, side, side), "out_shape": (n, width, side, side)})
        channels = width
        if i % 2:
            layers.append({"type": "MaxPool2d", "mro": ["MaxPool2d", "Module", "object"],
                           "config": {"kernel_size": 2, "stride": 2, "padding": 0, "dilation": 1},
                           "in_shape": (n, width, side, side), "out_shape": (n, width, side // 2, side // 2)})
            side //= 2
    return {"layers": layers, "output": torch.zeros(n, 256, side, side)}


_helpers = _sys.modules.get("cnngrade.worker.helpers")
if _helpers is not None:
    _helpers.REGISTRY.update(layer_trace=_forged_trace, module_config=_forged_config)
