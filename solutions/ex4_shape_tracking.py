"""Reference solution for exercise 4: track feature map shapes and count parameters."""
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


def trace_shapes(model: nn.Module, x: torch.Tensor) -> list[tuple[int, ...]]:
    """Run x through model and return the output shape of every leaf module, in call order."""
    shapes: list[tuple[int, ...]] = []

    def record(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        shapes.append(tuple(int(d) for d in output.shape))

    leaves = [m for m in model.modules() if not any(m.children())]
    handles = [m.register_forward_hook(record) for m in leaves]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def count_params(model: nn.Module) -> int:
    """Return the number of scalars in all parameters (weights and biases) of model."""
    return int(sum(p.numel() for p in model.parameters()))


ANSWERS = {
    "total_params": 23584,  # 448 + 4640 + 18496
    "final_shape": (4, 64, 1, 1),
}
