"""Exercise 4: build a small CNN, follow the shape of its feature maps and count its parameters."""
from __future__ import annotations

import torch
from torch import nn


def build_cnn() -> nn.Module:
    """Return this network, with layers in exactly this order (an ``nn.Sequential`` is fine):

        Conv2d(3, 16, kernel_size=3, padding=1), ReLU, MaxPool2d(2),
        Conv2d(16, 32, kernel_size=3, padding=1), ReLU, MaxPool2d(2),
        Conv2d(32, 64, kernel_size=3, padding=1), ReLU,
        AdaptiveAvgPool2d((1, 1))

    All convolutions have stride 1 and a bias.
    """
    raise NotImplementedError("build_cnn: stack the layers listed above")


def trace_shapes(model: nn.Module, x: torch.Tensor) -> list[tuple[int, ...]]:
    """Run ``x`` through ``model`` and record the output shape of every leaf layer.

    A leaf layer is a module with no sub-modules (``not any(m.children())``): a Conv2d or a
    ReLU, not the Sequential around them. Register a forward hook on each leaf with
    ``m.register_forward_hook(hook)``; the hook receives (module, inputs, output) and should
    append ``tuple(output.shape)``. Run the forward pass under ``torch.no_grad()`` and
    remove the hooks afterwards (``handle.remove()``), even if the forward pass fails.

    Returns:
        One tuple of Python ints per leaf call, in the order the layers run. For
        ``build_cnn()`` and an input of shape (1, 3, 8, 8) the first entry is (1, 16, 8, 8).
    """
    raise NotImplementedError("trace_shapes: forward hooks on leaf modules")


def count_params(model: nn.Module) -> int:
    """Return the total number of trainable numbers in ``model`` (weights and biases) as an int.

    Hint: each tensor in ``model.parameters()`` has ``.numel()`` elements.
    """
    raise NotImplementedError("count_params: add up the sizes of all parameters")


# For build_cnn() and an input of shape (4, 3, 64, 64):
# total_params: an int; final_shape: the output shape as a tuple of ints.
ANSWERS = {
    "total_params": None,
    "final_shape": None,
}
