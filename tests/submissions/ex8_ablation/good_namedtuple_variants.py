"""Correct, with typed containers: build_variant returns a NamedTuple (model, augment) and run_ablation an
OrderedDict, as written in many course repositories. They cross as the tuple and dict they are."""
from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple


from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

if TYPE_CHECKING:
    from matplotlib.figure import Figure

VARIANTS = ("baseline", "no_dropout", "sigmoid", "no_augmentation")


class MiniAlexNet(nn.Module):
    """The network of exercise 6, with a choice of activation and dropout rate.

    Layer indices match exercise 6, so every variant has the same state_dict keys, and
    activations and dropout hold no parameters, so they do not change the initial weights.
    """

    def __init__(
        self, num_classes: int = 10, dropout: float = 0.5, activation: type[nn.Module] = nn.ReLU
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=5, padding=2),
            activation(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            activation(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 128, kernel_size=3, padding=1),
            activation(),
            nn.AdaptiveAvgPool2d((4, 4)),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(128 * 4 * 4, 512),
            activation(),
            nn.Dropout(dropout),
            nn.Linear(512, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class Variant(NamedTuple):
    model: nn.Module
    augment: bool


def build_variant(name: str, seed: int = 42) -> tuple[nn.Module, bool]:
    """Return (model, uses_augmentation) for one of VARIANTS, initialised from seed.

    The seed is applied inside a forked RNG, so the caller's random state is untouched.
    """
    settings = {
        "baseline": (0.5, nn.ReLU, True),
        "no_dropout": (0.0, nn.ReLU, True),
        "sigmoid": (0.5, nn.Sigmoid, True),
        "no_augmentation": (0.5, nn.ReLU, False),
    }
    if name not in settings:
        raise ValueError(f"unknown variant {name!r}; expected one of {VARIANTS}")
    dropout, activation, augment = settings[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MiniAlexNet(dropout=dropout, activation=activation)
    return Variant(model, augment)


def _transforms(augment: bool) -> transforms.Compose:
    """The transforms of exercise 6: crop and flip only when augmenting."""
    steps: list[Callable[[Any], Any]] = []
    if augment:
        steps += [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()]
    steps += [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
    return transforms.Compose(steps)


class _Transformed(Dataset):
    """A view of a (PIL image, label) data set with a transform applied to each image."""

    def __init__(self, data: Any, transform: Callable[[Any], torch.Tensor]) -> None:
        self.data = data
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.data[index]
        return self.transform(image), int(label)


def _train_epoch(
    model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, device: str | torch.device
) -> float:
    model.train()
    losses = []
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(sum(losses) / len(losses))


def _accuracy(model: nn.Module, loader: DataLoader, device: str | torch.device) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            correct += int((model(images).argmax(dim=1) == labels).sum().item())
            total += int(labels.numel())
    return correct / total


def run_ablation(
    train_set: Any,
    val_set: Any,
    epochs: int = 10,
    seed: int = 42,
    device: str | torch.device = "cpu",
    batch_size: int = 128,
) -> dict[str, dict[str, list[float]]]:
    """Train every variant with Adam(1e-3) and cross-entropy; return its per-epoch history."""
    val_loader = DataLoader(_Transformed(val_set, _transforms(augment=False)), batch_size=batch_size)
    results: dict[str, dict[str, list[float]]] = OrderedDict()
    for name in VARIANTS:
        model, augment = build_variant(name, seed)
        model.to(device)
        # Same shuffling order and augmentation draws for every variant.
        torch.manual_seed(seed)
        train_loader = DataLoader(
            _Transformed(train_set, _transforms(augment)),
            batch_size=batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(seed),
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        history: dict[str, list[float]] = {"train_loss": [], "val_acc": []}
        for _ in range(epochs):
            history["train_loss"].append(_train_epoch(model, train_loader, optimizer, device))
            history["val_acc"].append(_accuracy(model, val_loader, device))
        results[name] = history
    return results


def plot_ablation(results: Mapping[str, Mapping[str, list[float]]]) -> Figure:
    """One validation-accuracy line per variant, labelled with its name."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for name, history in results.items():
        accuracy = history["val_acc"]
        ax.plot(range(1, len(accuracy) + 1), accuracy, marker="o", label=name)
    ax.set(title="Ablation: validation accuracy", xlabel="epoch", ylabel="validation accuracy")
    ax.legend()
    fig.tight_layout()
    return fig


CONCLUSION = (
    "Replacing ReLU with sigmoid mattered most: the saturating units passed back tiny gradients, "
    "and that variant learned far more slowly and ended well below all the others. Removing "
    "augmentation or dropout made the training loss fall faster but lowered validation accuracy "
    "by a few points, a sign of overfitting rather than of weaker learning. So the activation "
    "function decides whether this network trains well at all, while dropout and augmentation "
    "decide how well what it learns carries over to unseen images."
)
