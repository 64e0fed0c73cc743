"""Hostile ex2: make_conv's layer is a 5x5 convolution (padding 2) whose attributes claim kernel_size 3, padding 1,
stride 1; the old check believed the attributes. Judged by what it computes, it is the wrong layer."""
# expect-fail: test_make_conv_layer, test_feature_maps_of_make_conv
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


# ---- the attack ------------------------------------------------------------------------------------------
import torch.nn.functional as _F


class _FiveByFive(nn.Conv2d):
    def forward(self, x):
        return _F.conv2d(x, self.weight, self.bias, padding=2)


def make_conv(seed):  # noqa: F811
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        conv = _FiveByFive(1, 8, kernel_size=5, padding=2)
    conv.kernel_size, conv.padding, conv.stride = (3, 3), (1, 1), (1, 1)
    return conv
