"""Hostile ex4: trace_shapes records each layer's input shape (wrong), and the worker helper that used to give
the expected trace of build_cnn() is replaced by one that records input shapes the same way."""
# expect-fail: test_trace_shapes_random, test_trace_shapes_build_cnn
from __future__ import annotations

import torch
from torch import nn


def build_cnn() -> nn.Module:
    """Return the three-block CNN of the handout as an nn.Sequential."""
    return nn.Sequential(
        nn.Conv2d(3, 16, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, 1)),
    )


def count_params(model: nn.Module) -> int:
    """Return the number of scalars in all parameters (weights and biases) of model."""
    return int(sum(p.numel() for p in model.parameters()))


ANSWERS = {
    "total_params": 23584,  # 448 + 4640 + 18496
    "final_shape": (4, 64, 1, 1),
}


# -- the attack ------------------------------------------------------------------------------------------
def trace_shapes(model: nn.Module, x: torch.Tensor) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    leaves = [m for m in model.modules() if not any(m.children())]
    handles = [m.register_forward_hook(lambda _m, i, _o: shapes.append(tuple(i[0].shape))) for m in leaves]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def _forged_leaf_output_shapes(model, x):
    return [list(s) for s in trace_shapes(model, x)]


import cnngrade.worker.helpers as _h

_h.REGISTRY["leaf_output_shapes"] = _forged_leaf_output_shapes
