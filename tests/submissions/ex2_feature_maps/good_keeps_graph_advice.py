"""ex2 whose feature_maps returns conv(image) with its autograd graph: full points, advice only.

Whether a graph is attached can only be seen inside the student's own process, so
test_feature_maps_no_graph is an advice test (status advice, no points); the values are right.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from PIL import Image
from torch import nn
from torchvision.transforms import ToTensor

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def load_grayscale(path: str | Path) -> torch.Tensor:
    """Open any image PIL reads and return it as a float32 tensor (1, 1, H, W) in [0, 1]."""
    with Image.open(path) as img:
        gray = img.convert("L")
    return ToTensor()(gray)[None].to(torch.float32)


def make_conv(seed: int) -> nn.Conv2d:
    """Return Conv2d(1, 8, 3, padding=1) whose weights depend only on seed.

    The global RNG is left as it was, so calling this does not change later random draws.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Conv2d(1, 8, kernel_size=3, padding=1)


def feature_maps(conv: nn.Conv2d, image: torch.Tensor) -> torch.Tensor:
    """Apply conv to image (1, 1, H, W) and return the (1, 8, H, W) result without a graph."""
    return conv(image)


def plot_feature_maps(maps: torch.Tensor) -> Figure:
    """Draw each of the 8 maps of a (1, 8, H, W) or (8, H, W) tensor in grey, one subplot each."""
    from matplotlib.figure import Figure

    maps = maps.detach().cpu()
    if maps.dim() == 4:
        maps = maps[0]
    fig = Figure(figsize=(12, 6))
    axes = fig.subplots(2, 4)
    for i, ax in enumerate(axes.flat):
        ax.imshow(maps[i].numpy(), cmap="gray")
        ax.set_title(f"filter {i}")
        ax.axis("off")
    fig.tight_layout()
    return fig
