"""Hostile ex4: build_cnn() owns conv weights of the right shapes, all zero, and returns zeros. With the student's
own weights in the reference, the reference outputs zeros too; with the grader's weights it does not."""
# expect-fail: test_build_cnn_equivalent
from __future__ import annotations

import torch
from torch import nn


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


# -- the attack ------------------------------------------------------------------------------------------
class _Zero(nn.Module):
    """The three convolutions of the specified network, so every weight has the right shape; forward() ignores
    them and returns zeros of the right shape."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1), \
            nn.Conv2d(32, 64, 3, padding=1)
        with torch.no_grad():
            for p in self.parameters():
                p.zero_()

    def forward(self, x):
        return torch.zeros(x.shape[0], 64, 1, 1)


def build_cnn() -> nn.Module:
    return _Zero()
