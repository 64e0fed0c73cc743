# expect-fail: test_trace_shapes_random
"""Wrong: trace_shapes re-runs the leaf layers one after another in registration order. Right for an
nn.Sequential, wrong for a module whose forward() runs its layers in another order (issue 12, root cause 7)."""
import torch
from torch import nn


def build_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, 1)),
    )


def trace_shapes(model, x):
    shapes = []
    with torch.no_grad():
        for layer in model.modules():
            if not list(layer.children()):
                x = layer(x)
                shapes.append(tuple(x.shape))
    return shapes


def count_params(model):
    return sum(p.numel() for p in model.parameters())


ANSWERS = {"total_params": 23584, "final_shape": (4, 64, 1, 1)}
