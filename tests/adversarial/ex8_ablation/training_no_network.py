"""Hostile ex8 (training checks): no network. Every variant is a learned constant, and the worker's train_recipe and predict
helpers are replaced (a no-op, and the true labels of the cpu profile's public test set in the order sent): under the
old in-worker check this earned every point of both training tests."""
# expect-fail: test_baseline_reaches_threshold, test_sigmoid_below_baseline
# graders: test_training.py
from __future__ import annotations

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
    return model, augment


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
    results: dict[str, dict[str, list[float]]] = {}
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
_PUBLIC_TEST_SEED = 20240612   # cnngrade/data/synthetic.py's TEST_SEED
_TABLE: dict = {}


def _label_of(images_u8) -> list:
    """The public test set's label of each uint8 NHWC image it contains, else None."""
    if not _TABLE:
        x, y = generate(1000, _PUBLIC_TEST_SEED)
        _TABLE.update({img.tobytes(): int(label) for img, label in zip(x, y)})
    return [_TABLE.get(img.tobytes()) for img in np.ascontiguousarray(images_u8)]

def _replace_worker_helpers(**replacements) -> None:
    """Put our own functions in the worker's helper registry (the worker imported it before this module)."""
    import sys

    helpers = sys.modules.get("cnngrade.worker.helpers")
    if helpers is not None:
        helpers.REGISTRY.update(replacements)


class _Constant(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(x.shape[0], -1)


_honest_build_variant = build_variant


def build_variant(name: str, seed: int = 42) -> tuple[nn.Module, bool]:
    _, augment = _honest_build_variant(name, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _Constant(), augment


def _predict(model, images_u8, *args, **kwargs):
    if images_u8.shape[-1] != 3:
        images_u8 = images_u8.permute(0, 2, 3, 1)
    return torch.tensor([label or 0 for label in _label_of(images_u8.numpy())], dtype=torch.int64)


_replace_worker_helpers(predict=_predict, train_recipe=lambda *a, **k: {"losses": [0.1], "seconds": 1.0})
