"""Worker helpers that build models the grader specifies: plain, nested and shuffled stacks of torch layers.

The same functions build the trusted copy on the grader's side (through cnngrade.graderkit), so a student
function that inspects models (ex4's shape tracer) is run on the worker's copy and judged against the trusted one.
"""
from __future__ import annotations

from typing import Any

from .registry import helper

# Layers the grader may ask the worker to build, with the keyword arguments each accepts.
BUILDABLE = {
    "Conv2d": {"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "bias"},
    "Linear": {"in_features", "out_features", "bias"},
    "ReLU": set(), "Sigmoid": set(), "Tanh": set(), "Flatten": {"start_dim"},
    "MaxPool2d": {"kernel_size", "stride", "padding"}, "AvgPool2d": {"kernel_size", "stride", "padding"},
    "AdaptiveAvgPool2d": {"output_size"}, "AdaptiveMaxPool2d": {"output_size"},
    "BatchNorm2d": {"num_features"}, "Dropout": {"p"}, "Identity": set(),
}


@helper
def build_sequential(spec: list, seed: int = 0) -> Any:
    """An nn.Sequential from [[layer_name, kwargs], ...], weights drawn from ``seed``."""
    import torch

    layers = []
    for name, kwargs in spec:
        allowed = BUILDABLE.get(name)
        if allowed is None or not set(kwargs) <= allowed:
            raise ValueError(f"cannot build layer {name}({kwargs})")
        layers.append(getattr(torch.nn, name)(**kwargs))
    # A generator of its own rather than torch.manual_seed, which leaves the global state alone and costs no
    # queued CUDA/XPU seeding (each of those records a formatted stack while no device is initialised).
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.5, 0.5, generator=gen)
    return model


@helper
def build_nested(blocks: list, seed: int = 0) -> Any:
    """An nn.Sequential of nn.Sequential blocks, block i built by ``build_sequential(blocks[i], seed + i)``.

    Nesting is what tells apart a shape tracer that visits leaf layers from one that only loops over
    the top-level children of a flat nn.Sequential.
    """
    import torch

    return torch.nn.Sequential(*(build_sequential(spec, seed + i) for i, spec in enumerate(blocks)))


def _shuffled_class() -> Any:
    import torch

    class Shuffled(torch.nn.Module):
        """Layers registered in one order and run in another, as a hand-written forward() may do."""

        def __init__(self, layers: list, order: list) -> None:
            super().__init__()
            for i, j in enumerate(order):  # the i-th registered child is the j-th layer to run
                self.add_module(f"m{i}", layers[j])
            self.run_names = [f"m{order.index(j)}" for j in range(len(layers))]

        def forward(self, x: Any) -> Any:
            for name in self.run_names:
                x = getattr(self, name)(x)
            return x

    return Shuffled


@helper
def build_shuffled(spec: list, order: list, seed: int = 0) -> Any:
    """The layers of ``build_sequential(spec, seed)`` (listed in the order they run), registered as children in
    the order ``order`` gives: child i is layer ``order[i]``. Registration order then differs from run order,
    which tells apart a shape tracer that hooks the layers from one that re-runs them in registration order.
    """
    if sorted(order) != list(range(len(spec))):
        raise ValueError(f"order {order!r} is not a permutation of the {len(spec)} layers")
    return _shuffled_class()(list(build_sequential(spec, seed)), [int(i) for i in order])
