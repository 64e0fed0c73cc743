"""Receptive fields measured with autograd on a real torch network: the trusted ground truth for graders."""
from __future__ import annotations

from typing import Sequence

import torch

# One layer as (kind, kernel_size, stride, dilation); kind is "conv" or "pool" ("max" or "avg" pools alike).
Layer = tuple[str, int, int, int]


def _network(layers: Sequence[Layer]) -> torch.nn.Sequential:
    """Positive weights, no padding, average pools in place of max pools, ReLU after convs.

    With a positive input every unit is alive and every pool window passes gradient to all of its
    inputs, so the measured region is the whole theoretical one (a max pool would pass gradient only
    to its argmax and a dead ReLU none at all; neither changes which inputs *can* influence the unit).
    """
    mods: list[torch.nn.Module] = []
    for kind, k, s, d in layers:
        if kind == "conv":
            conv = torch.nn.Conv2d(1, 1, k, stride=s, dilation=d, bias=False)
            torch.nn.init.constant_(conv.weight, 1.0)
            mods += [conv, torch.nn.ReLU()]
        elif kind == "pool":
            if d != 1:
                raise ValueError("dilated pools are not supported")
            mods.append(torch.nn.AvgPool2d(k, stride=s))
        else:
            raise ValueError(f"unknown layer kind {kind!r}")
    return torch.nn.Sequential(*mods).double()


def input_side(layers: Sequence[Layer], outputs: int = 3) -> int:
    """The smallest input side that gives ``outputs`` output units per side (found by shape arithmetic)."""
    side = outputs
    for kind, k, s, d in reversed(layers):
        side = (side - 1) * s + d * (k - 1) + 1
    return side


def receptive_field(layers: Sequence[Layer]) -> int:
    """Side of the input region that one central output unit depends on, measured with autograd."""
    net = _network(layers)
    side = input_side(layers)
    x = torch.ones(1, 1, side, side, dtype=torch.float64, requires_grad=True)
    out = net(x)
    h, w = out.shape[-2:]
    out[0, 0, h // 2, w // 2].backward()
    assert x.grad is not None   # the backward pass above reached the input
    rows = (x.grad[0, 0].abs().sum(dim=1) > 0).nonzero().flatten()
    return int(rows.max() - rows.min() + 1)
