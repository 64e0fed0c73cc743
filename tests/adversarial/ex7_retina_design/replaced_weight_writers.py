"""Hostile ex7: a six-conv design (receptive field 36, described honestly) that replaces the worker helpers
which write the grader's weights (write_parameters, outputs_after_writes) with ones that write nothing, so
its own initial weights stay; its parameters then never respond, and the counts built on them cannot pass."""
# expect-fail: test_design[conv_layers], test_design[filters], test_design[feature_extractor_params], test_receptive_field_covers_lesions
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
import sys as _sys


def _write_nothing(model, tensors):
    return None


def _outputs_without_writing(model, x, start, tensors):
    was = model.training
    model.eval()
    with torch.no_grad():
        out = [model(x) for _ in tensors]
    model.train(was)
    return out


_helpers = _sys.modules.get("cnngrade.worker.helpers")
if _helpers is not None:
    _helpers.REGISTRY.update(write_parameters=_write_nothing, outputs_after_writes=_outputs_without_writing)
