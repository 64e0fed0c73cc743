# expect-fail: test_trace_shapes_random, test_trace_shapes_build_cnn
# Hooks every module, so the Sequential containers are traced as layers too.
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
    leaves = list(model.modules())
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
