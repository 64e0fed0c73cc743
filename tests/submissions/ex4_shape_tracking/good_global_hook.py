"""Layers added in a loop from a table; shapes recorded with torch's global module hook, filtered to leaves."""
import torch
from torch import nn

LAYERS = [
    ("Conv2d", (3, 16, 3), {"padding": 1}), ("ReLU", (), {}), ("MaxPool2d", (2,), {}),
    ("Conv2d", (16, 32, 3), {"padding": 1}), ("ReLU", (), {}), ("MaxPool2d", (2,), {}),
    ("Conv2d", (32, 64, 3), {"padding": 1}), ("ReLU", (), {}), ("AdaptiveAvgPool2d", ((1, 1),), {}),
]


def build_cnn():
    model = nn.Sequential()
    for i, (name, args, kwargs) in enumerate(LAYERS):
        model.add_module(f"{name.lower()}_{i}", getattr(nn, name)(*args, **kwargs))
    return model


def trace_shapes(model, x):
    leaves = {id(m) for m in model.modules() if not list(m.children())}
    seen = []

    def record(module, inputs, output):
        if id(module) in leaves:
            seen.append(tuple(int(n) for n in output.shape))

    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        with torch.inference_mode():
            model(x)
    finally:
        handle.remove()
    return seen


def count_params(model):
    total = 0
    for p in model.parameters():
        total += p.nelement()
    return total


ANSWERS = {"final_shape": [4, 64, 1, 1], "total_params": 448 + 4640 + 18496}
