"""Wrong ex2: grey as the plain mean of R, G and B instead of PIL's 'L' weights."""
# expect-fail: test_load_grayscale[RGB], test_load_grayscale[RGBA], test_load_grayscale[P]
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
        rgb = ToTensor()(img.convert("RGB"))
    return rgb.mean(dim=0, keepdim=True)[None]


def make_conv(seed: int) -> nn.Conv2d:
    """Return Conv2d(1, 8, 3, padding=1) whose weights depend only on seed.

    The global RNG is left as it was, so calling this does not change later random draws.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Conv2d(1, 8, kernel_size=3, padding=1)


def feature_maps(conv: nn.Conv2d, image: torch.Tensor) -> torch.Tensor:
    """Apply conv to image (1, 1, H, W) and return the (1, 8, H, W) result without a graph."""
    with torch.no_grad():
        return conv(image).detach()


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
