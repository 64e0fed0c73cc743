"""Hostile ex2: plot_feature_maps draws nothing, and the worker helpers that used to describe figures
(figure_images, figure_info) are replaced to describe 8 grey images of exactly the maps it was given."""
# expect-fail: test_plot_eight_image_axes, test_plot_grey_colormap, test_plot_shows_each_map
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
import numpy as _np

from cnngrade.worker import helpers as _helpers

_SEEN = {}


def plot_feature_maps(maps):  # noqa: F811
    from matplotlib.figure import Figure

    _SEEN["maps"] = maps.detach().cpu().reshape(-1, *maps.shape[-2:]).double().numpy()
    return Figure()


def _grey_lut(n):
    lut = _np.repeat(_np.linspace(0.0, 1.0, n)[:, None], 4, axis=1)
    lut[:, 3] = 1.0
    return lut


def _forged_images(fig, lut_size=16):
    return [[{"data": _np.ascontiguousarray(m), "lut": _grey_lut(int(lut_size))}] for m in _SEEN.get("maps", [])]


def _forged_info(fig):
    axes = [{"title": f"map {i}", "xlabel": "", "ylabel": "", "lines": [], "collections": [], "legend": None,
             "legend_colors": None, "visible": True, "axis_on": False,
             "images": [{"shape": list(m.shape), "cmap": "gray"}]} for i, m in enumerate(_SEEN.get("maps", []))]
    return {"axes": axes, "suptitle": "", "legends": []}


_helpers.REGISTRY["figure_images"] = _forged_images
_helpers.REGISTRY["figure_info"] = _forged_info
