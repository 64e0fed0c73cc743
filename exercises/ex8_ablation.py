"""Exercise 8: ablation study — which part of MiniAlexNet's recipe matters most?

Train four versions of the MiniAlexNet of exercise 6 under the same conditions and
compare their validation accuracy:

    baseline         MiniAlexNet as in exercise 6 (ReLU, dropout 0.5), trained with augmentation
    no_dropout       the same network with dropout probability 0 (or nn.Identity instead of Dropout)
    sigmoid          the same network with every ReLU replaced by nn.Sigmoid
    no_augmentation  the baseline network, trained without RandomCrop / RandomHorizontalFlip

Make this file self-contained: define the network here (do not import exercise 6).
MiniAlexNet for reference:
    features:   Conv2d(3, 32, 5, padding=2), ReLU, MaxPool2d(2), Conv2d(32, 64, 3, padding=1),
                ReLU, MaxPool2d(2), Conv2d(64, 128, 3, padding=1), ReLU, AdaptiveAvgPool2d((4, 4))
    classifier: Dropout(p), Linear(2048, 512), ReLU, Dropout(p), Linear(512, 10)
    forward:    classifier(flatten(features(x), 1))
Transforms: with augmentation RandomCrop(32, padding=4), RandomHorizontalFlip(), ToTensor(),
Normalize((0.5,) * 3, (0.5,) * 3); without, only ToTensor() and the same Normalize.

Nothing may run at import time.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Given: the variant names, in this order. Do not change.
VARIANTS = ("baseline", "no_dropout", "sigmoid", "no_augmentation")


def build_variant(name: str, seed: int = 42) -> tuple[nn.Module, bool]:
    """Return ``(model, use_augmentation)`` for the variant called ``name``.

    Call ``torch.manual_seed(seed)`` immediately before building the network, so that all
    four variants start from identical weights for the same seed (activations and dropout
    have no parameters, so swapping them does not change the weights). You may wrap this
    in ``with torch.random.fork_rng(devices=[]):`` to leave the caller's random state alone.

    Returns:
        The model (10 classes) and True if this variant trains with augmentation
        (False only for "no_augmentation").

    Raises:
        ValueError: if ``name`` is not one of VARIANTS.
    """
    raise NotImplementedError("build_variant: seed, build the right network, return the flag")


def run_ablation(
    train_set: Any,
    val_set: Any,
    epochs: int = 10,
    seed: int = 42,
    device: str | torch.device = "cpu",
    batch_size: int = 128,
) -> dict[str, dict[str, list[float]]]:
    """Train every variant and return its history.

    ``train_set`` and ``val_set`` are indexable data sets whose items are
    (PIL image, integer label), like ``torchvision.datasets.CIFAR10`` without a transform.

    For each name in VARIANTS: build it with ``build_variant(name, seed)``, move it to
    ``device``, wrap ``train_set`` in a small ``torch.utils.data.Dataset`` that applies the
    augmenting or the plain transforms (according to the flag) and ``val_set`` in one that
    applies the plain transforms, make DataLoaders of ``batch_size`` (shuffle the training
    one), and train for ``epochs`` epochs with ``torch.optim.Adam(lr=1e-3)`` and
    cross-entropy loss, measuring validation accuracy after every epoch.

    Returns:
        {variant: {"train_loss": [float per epoch], "val_acc": [float per epoch]}} with one
        entry for each of the four variants.
    """
    raise NotImplementedError("run_ablation: train the four variants the same way")


def plot_ablation(results: Mapping[str, Mapping[str, list[float]]]) -> Figure:
    """Plot validation accuracy per epoch for every variant in ``results`` on one set of axes.

    Draw one line per variant with ``label=<variant name>``, label the axes, add a legend and
    return the ``matplotlib.figure.Figure`` (create it directly, importing matplotlib inside
    this function; do not call ``show``).
    """
    raise NotImplementedError("plot_ablation: one labelled line per variant")


# Three sentences, as a string: which change hurt accuracy most, and why?
CONCLUSION = None


# The ablation, once the functions above work: `python ex8_ablation.py` runs this block (the notebook has it as
# an experiment cell). It trains four networks, so it takes a while; CIFAR-10 is downloaded to ./data the first
# time (about 170 MB). Grading never runs it.
if __name__ == "__main__":
    from torchvision.datasets import CIFAR10

    device = "cuda" if torch.cuda.is_available() else "cpu"
    train_set = CIFAR10("data", train=True, download=True)
    val_set = CIFAR10("data", train=False, download=True)
    results = run_ablation(train_set, val_set, epochs=10, device=device)
    for name, history in results.items():
        print(f"{name}: validation accuracy {history['val_acc'][-1]:.3f}")
    plot_ablation(results)   # a notebook shows the figure of its cell's last line
