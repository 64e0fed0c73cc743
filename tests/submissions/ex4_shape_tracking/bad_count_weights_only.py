# expect-fail: test_count_params_random, test_answer_total_params
# Counts only the weight tensors; biases are forgotten, in the answer too.
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
    return sum(p.numel() for name, p in model.named_parameters() if name.endswith("weight"))


ANSWERS = {"total_params": count_params(build_cnn()), "final_shape": (4, 64, 1, 1)}
