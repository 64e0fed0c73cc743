"""Correct: lazy convolutions that infer their input channels at the first forward pass (issue 12, root cause 5);
the answers are computed by running the network once, which materialises the weights."""
import torch
from torch import nn


def build_cnn():
    return nn.Sequential(
        nn.LazyConv2d(16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.LazyConv2d(32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.LazyConv2d(64, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, 1)),
    )


def trace_shapes(model, x):
    shapes = []

    def keep(_module, _inputs, output):
        shapes.append(tuple(output.shape))

    handles = [m.register_forward_hook(keep) for m in model.modules() if next(m.children(), None) is None]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return shapes


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def _answers():
    model = build_cnn()
    with torch.no_grad():
        out = model(torch.zeros(4, 3, 64, 64))
    return {"total_params": count_params(model), "final_shape": tuple(out.shape)}


ANSWERS = _answers()
