"""Exercise 2: load an image, pass it through a random convolution and look at the feature maps.

You will write four small functions:

1. ``load_grayscale`` turns an image file into a grey tensor of shape (1, 1, H, W).
2. ``make_conv`` creates a reproducible convolution with 8 output channels.
3. ``feature_maps`` applies that convolution and returns the 8 feature maps.
4. ``plot_feature_maps`` shows the 8 maps side by side as grey images.

Nothing should run when this module is imported; only define the functions.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def load_grayscale(path: str | Path) -> torch.Tensor:
    """Read an image file and return it as a grey float tensor of shape (1, 1, H, W).

    The file may be in any mode PIL can open (RGB, RGBA, palette, 16-bit, already grey...).
    Recipe: open it with ``PIL.Image.open``, convert it to mode ``"L"`` (8-bit grey), turn it
    into a tensor with ``torchvision.transforms.ToTensor()`` (which gives shape (1, H, W) and
    scales values to [0, 1]) and add a batch dimension in front.

    Returns:
        A ``torch.float32`` tensor of shape (1, 1, H, W) with values in [0, 1], where H and
        W are the image's height and width.
    """
    raise NotImplementedError("load_grayscale: open, convert to 'L', ToTensor, add a batch dimension")


def make_conv(seed: int) -> nn.Conv2d:
    """Create ``nn.Conv2d(1, 8, kernel_size=3, padding=1)`` (stride 1, with bias) from a seed.

    The random initial weights must depend only on ``seed``: calling ``make_conv(7)`` twice
    gives identical weights and biases, while ``make_conv(7)`` and ``make_conv(8)`` differ.
    Seed PyTorch's random number generator (``torch.manual_seed``) right before creating
    the layer. Tip: wrapping that in ``with torch.random.fork_rng(devices=[]):`` leaves the
    rest of the program's random state unchanged.

    Padding 1 with a 3x3 kernel keeps the height and width of the input unchanged.
    """
    raise NotImplementedError("make_conv: seed torch, then build the Conv2d")


def feature_maps(conv: nn.Conv2d, image: torch.Tensor) -> torch.Tensor:
    """Apply ``conv`` to ``image`` and return the result.

    Args:
        conv: the layer from ``make_conv``.
        image: a tensor of shape (1, 1, H, W), as returned by ``load_grayscale``.

    Returns:
        A tensor of shape (1, 8, H, W) equal to ``conv(image)``. It must not carry an
        autograd graph: compute it inside ``with torch.no_grad():`` (or call ``.detach()``).
    """
    raise NotImplementedError("feature_maps: run the convolution without tracking gradients")


def plot_feature_maps(maps: torch.Tensor) -> Figure:
    """Draw the 8 feature maps as grey images and return the matplotlib Figure.

    Args:
        maps: the (1, 8, H, W) tensor from ``feature_maps``.

    Returns:
        A ``matplotlib.figure.Figure`` with 8 subplots (for example a 2 x 4 grid), subplot i
        showing map i with ``ax.imshow(..., cmap="gray")``. Convert each map to a NumPy
        array first (``.cpu().numpy()``). Build the figure without opening a window, e.g.
        ``fig = matplotlib.figure.Figure(); axes = fig.subplots(2, 4)``, and import
        matplotlib inside this function, not at the top of the module. Return the figure;
        do not call ``show``.
    """
    raise NotImplementedError("plot_feature_maps: one grey imshow per feature map")
