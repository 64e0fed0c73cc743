# expect-fail: test_trace_shapes_random
# Runs the top-level children by hand: right for a flat Sequential, wrong once layers are nested in blocks.
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
        for layer in model.children():
            x = layer(x)
            shapes.append(tuple(x.shape))
    return shapes


def count_params(model):
    return sum(p.numel() for p in model.parameters())


ANSWERS = {"total_params": 23584, "final_shape": (4, 64, 1, 1)}
