# expect-fail: test_build_cnn_equivalent
# The last conv has no padding; the adaptive pool hides the smaller map, so every shape check passes.
import torch
from torch import nn


def build_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, 1)),
    )


def trace_shapes(model, x):
    shapes = []
    leaves = [m for m in model.modules() if not any(m.children())]
    handles = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape))) for m in leaves]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return shapes


def count_params(model):
    return sum(p.numel() for p in model.parameters())


ANSWERS = {"total_params": 23584, "final_shape": (4, 64, 1, 1)}
