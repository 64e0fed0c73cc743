"""Inputs the graders draw (seeded, so a regrade draws the same) and the check that a value stayed a handle."""
from __future__ import annotations

from typing import Any

import torch

from cnngrade.graderkit.checks import show
from cnngrade.sandbox.handles import Handle


def rng(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``: every draw of a test comes from its own seed."""
    return torch.Generator().manual_seed(seed)


def images(seed: int, n: int, side: int = 32) -> torch.Tensor:
    """``n`` standard-normal RGB images of ``side`` x ``side`` (N, 3, side, side), drawn from ``seed``."""
    return torch.randn(n, 3, side, side, generator=rng(seed))


def handle(value: Any, call: str, expected: str = "a torch.nn.Module") -> Handle:
    """A value the student's code returned that must stay in the worker (a module, a figure): anything that
    crossed as plain data is the student's mistake, said with what the call returned."""
    assert isinstance(value, Handle), f"{call} returned {show(value)}; expected {expected}"
    return value
