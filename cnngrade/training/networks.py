"""Trusted reference implementations of exercises 6 and 8 (MiniAlexNet, CIFAR transforms, Adam loop), built by graders.

These run on the trusted side only. Graders load a student's weights into these networks, or
repeat a student's computation from the same starting point, and compare the results.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
CIFAR_MEAN = (0.5, 0.5, 0.5)
CIFAR_STD = (0.5, 0.5, 0.5)
ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}


class MiniAlexNet(nn.Module):
    """The network of exercise 6 (and of exercise 8, where the activation may change)."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.5, activation: str = "relu") -> None:
        super().__init__()
        act = ACTIVATIONS[activation]
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=5, padding=2), act(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1), act(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, kernel_size=3, padding=1), act(), nn.AdaptiveAvgPool2d((4, 4)),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(128 * 4 * 4, 512), act(),
            nn.Dropout(dropout), nn.Linear(512, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def cifar_transforms(train: bool):
    """The transforms the contract specifies, written with torchvision's v1 API."""
    from torchvision import transforms as T

    steps = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if train else []
    return T.Compose([*steps, T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)])


def augmentations(image) -> torch.Tensor:
    """Every output the training transform can give for ``image``: (81 crops x 2 flips, C, 32, 32).

    RandomCrop(32, padding=4) pads with zeros and picks one of 9 x 9 offsets; the flip doubles that.
    """
    from torchvision import transforms as T

    padded = T.Compose([T.Pad(4), T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)])(image)
    span = padded.shape[-1] - 32 + 1
    crops = [padded[:, i:i + 32, j:j + 32] for i in range(span) for j in range(span)]
    stacked = torch.stack(crops)
    return torch.cat([stacked, stacked.flip(-1)])


def train_epoch(model: nn.Module, loader: Batches, optimizer: torch.optim.Optimizer) -> float:
    """One epoch of the contract's loop: train mode, cross-entropy, zero_grad/backward/step; mean batch loss."""
    model.train()
    losses = []
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def accuracy(model: nn.Module, loader: Batches) -> float:
    """Fraction of samples classified correctly, in eval mode without gradients."""
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(1) == y).sum())
            total += int(y.numel())
    return correct / total
