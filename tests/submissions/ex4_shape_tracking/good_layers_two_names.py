"""Correct, written as many students do: each layer kept as an attribute (self.conv1, ...) and the same
objects put into self.features too, so every weight is reachable under two names (issue 12, root cause 1)."""
import torch
from torch import nn


class TwoNames(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.features = nn.Sequential(
            self.conv1, nn.ReLU(), nn.MaxPool2d(2),
            self.conv2, nn.ReLU(), nn.MaxPool2d(2),
            self.conv3, nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)),
        )

    def forward(self, x):
        return self.features(x)


def build_cnn():
    return TwoNames()


def trace_shapes(model, x):
    # modules() visits a shared layer once, so each layer is hooked (and traced) once per call.
    shapes = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape)))
             for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return shapes


def count_params(model):
    return sum(p.numel() for p in model.parameters())  # parameters() yields a shared tensor once


ANSWERS = {"total_params": 23584, "final_shape": (4, 64, 1, 1)}
