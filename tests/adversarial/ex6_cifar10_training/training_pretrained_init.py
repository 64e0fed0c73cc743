"""Hostile ex6 (training check): MiniAlexNet() comes already trained: its constructor fits the last layer on the cpu profile's
public training set (generator copied from cnngrade's public source; random features + least squares reach about 0.9).
The grader must refuse initial weights that already classify the held-out images."""
# expect-fail: test_training_reaches_threshold
# graders: test_training.py
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import nn
from torchvision import transforms

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


class MiniAlexNet(nn.Module):
    """Three conv blocks and a two-layer classifier with dropout (1,149,002 parameters for 10 classes)."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 128, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d((4, 4)),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(128 * 4 * 4, 512),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(512, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def build_transforms(train: bool) -> transforms.Compose:
    """Augmenting transforms for training (crop and flip), plain ones for evaluation."""
    normalize = transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    if train:
        return transforms.Compose([
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            normalize,
        ])
    return transforms.Compose([transforms.ToTensor(), normalize])


def train_one_epoch(
    model: nn.Module, loader: Batches, optimizer: torch.optim.Optimizer, device: str | torch.device
) -> float:
    """One pass over loader with one optimizer step per batch; return the mean batch loss."""
    model.train()
    criterion = nn.CrossEntropyLoss()
    losses: list[float] = []
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    if not losses:
        raise ValueError("the loader yielded no batches")
    return float(sum(losses) / len(losses))


def evaluate(model: nn.Module, loader: Batches, device: str | torch.device) -> float:
    """Fraction of samples in loader that model classifies correctly, in [0, 1]."""
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            correct += int((model(images).argmax(dim=1) == labels).sum().item())
            total += int(labels.numel())
    if total == 0:
        raise ValueError("the loader yielded no samples")
    return correct / total


def fit(
    model: nn.Module,
    train_loader: Batches,
    val_loader: Batches,
    epochs: int = 20,
    lr: float = 1e-3,
    device: str | torch.device = "cpu",
) -> dict[str, list[float]]:
    """Train with Adam(lr) for epochs epochs, validating after each one."""
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history: dict[str, list[float]] = {"train_loss": [], "val_acc": []}
    for _ in range(epochs):
        history["train_loss"].append(train_one_epoch(model, train_loader, optimizer, device))
        history["val_acc"].append(evaluate(model, val_loader, device))
    return history


def plot_history(history: dict[str, list[float]]) -> Figure:
    """Training loss and validation accuracy per epoch, side by side."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    loss_ax, acc_ax = fig.subplots(1, 2)
    epochs = range(1, len(history["train_loss"]) + 1)
    loss_ax.plot(epochs, history["train_loss"], marker="o")
    loss_ax.set(title="Training loss", xlabel="epoch", ylabel="cross-entropy loss")
    acc_ax.plot(range(1, len(history["val_acc"]) + 1), history["val_acc"], marker="o")
    acc_ax.set(title="Validation accuracy", xlabel="epoch", ylabel="accuracy")
    fig.tight_layout()
    return fig


# Illustrative values of the kind a student reports after 20 epochs; not a measured run.
RESULTS = {
    "test_acc_dropout": 0.74,
    "test_acc_no_dropout": 0.70,
}

OBSERVATIONS = (
    "Without dropout the training loss falls faster and lower, but validation accuracy levels off "
    "earlier and ends a few points below the model with dropout, so the gap between training and "
    "validation performance is wider. With dropout the training loss stays higher because half of "
    "the classifier units are switched off on each step, yet the network generalises better. "
    "Dropout therefore trades a little fitting speed for less overfitting in the large fully "
    "connected layers."
)


# -- copied from cnngrade/data/synthetic.py (public source): the cpu profile's generator ---------------
import numpy as np

SIZE, HUE_FAMILIES = 32, 5
CLASSES = tuple(range(10))


def _masks(dx: np.ndarray, dy: np.ndarray, r: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Boolean masks (10, N, 32, 32): every class's shape drawn at every image's position and size."""
    ax, ay = np.abs(dx), np.abs(dy)
    cheb, d2 = np.maximum(ax, ay), dx * dx + dy * dy
    return np.stack([
        cheb <= r,
        (cheb <= r) & (cheb > r - 2.5),
        d2 <= r * r,
        (d2 <= r * r) & (d2 > (r - 2.5) ** 2),
        (ay <= 2) & (ax <= r + 3),
        (ax <= 2) & (ay <= r + 3),
        ((ax <= 1.5) & (ay <= r)) | ((ay <= 1.5) & (ax <= r)),
        (np.abs(ax - ay) <= 1.2) & (cheb <= r),
        (dy <= r) & (dy >= -r) & (ax <= (dy + r) / 2),
        (cheb <= r) & (((xs + ys) // 2) % 2 == 0),
    ])


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(N,) hue/saturation/value in [0, 1] to (N, 3) RGB in [0, 1]."""
    k = (np.stack([5.0, 3.0, 1.0])[None, :] + h[:, None] * 6.0) % 6.0
    return v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def generate(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images as uint8 (n, 32, 32, 3) (CIFAR-10's layout) and their int64 labels, balanced over classes."""
    rng = np.random.Generator(np.random.PCG64(seed))
    labels = rng.permutation(np.arange(n) % len(CLASSES)).astype(np.int64)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    cx = rng.uniform(9.0, 23.0, n).astype(np.float32)[:, None, None]
    cy = rng.uniform(9.0, 23.0, n).astype(np.float32)[:, None, None]
    r = rng.uniform(5.0, 9.0, n).astype(np.float32)[:, None, None]
    masks = _masks(xs - cx, ys - cy, r, xs, ys)
    mask = masks[labels, np.arange(n)]                                  # (n, 32, 32)
    hue = (labels % HUE_FAMILIES) / HUE_FAMILIES + rng.uniform(-0.06, 0.06, n)
    fg = _hsv_to_rgb(hue % 1.0, rng.uniform(0.6, 1.0, n), rng.uniform(0.7, 1.0, n))
    bg = rng.uniform(0.0, 0.45, (n, 3))
    img = np.where(mask[..., None], fg[:, None, None, :], bg[:, None, None, :])
    img = img + rng.normal(0.0, 0.08, img.shape)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), labels


# -- the attack ------------------------------------------------------------------------------------------
_PUBLIC_TRAIN_SEED = 20240611   # cnngrade/data/synthetic.py's TRAIN_SEED
_Honest = MiniAlexNet


class MiniAlexNet(_Honest):
    def __init__(self, num_classes: int = 10, dropout: float = 0.5) -> None:
        super().__init__(num_classes, dropout)
        images, labels = generate(512, _PUBLIC_TRAIN_SEED)
        # The cpu profile trains on 16x16 images: synthetic.generate(..., size=16) averages 2x2 blocks.
        images = (images.reshape(512, 16, 2, 16, 2, 3).astype(np.float32).mean(axis=(2, 4)) + 0.5).astype(np.uint8)
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1)
        with torch.no_grad():
            hidden = self.classifier[:3](torch.flatten(self.features(x), 1))
            h = torch.cat([hidden, torch.ones(len(hidden), 1)], 1)
            target = nn.functional.one_hot(torch.from_numpy(labels), num_classes).float()
            w = torch.linalg.solve(h.T @ h + 1e-2 * torch.eye(h.shape[1]), h.T @ target)
            self.classifier[4].weight.copy_(w[:-1].T)
            self.classifier[4].bias.copy_(w[-1])
