"""Exercise 6: build and train a small AlexNet-style network on CIFAR-10 (32x32 colour images).

Write the model, the data transforms, one training epoch, an evaluation function, a loop
that ties them together, and a plot of the training history. Then train twice, with
dropout 0.5 and with dropout 0.0, and report what you saw in RESULTS and OBSERVATIONS.

Suggested recipe: Adam with learning rate 1e-3, batch size 128, 20 epochs, the training
transforms below for the training set and the evaluation transforms for the test set.

Nothing may run when this module is imported: keep your training runs in a notebook or
under ``if __name__ == "__main__":``.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import nn
from torchvision import transforms

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class MiniAlexNet(nn.Module):
    """A small AlexNet for 3 x 32 x 32 inputs.

    Build it from two ``nn.Sequential`` sub-modules (the grader checks what the network
    computes, so another layout that computes the same thing is also accepted):

    ``self.features``:
        Conv2d(3, 32, kernel_size=5, padding=2), ReLU, MaxPool2d(2),
        Conv2d(32, 64, kernel_size=3, padding=1), ReLU, MaxPool2d(2),
        Conv2d(64, 128, kernel_size=3, padding=1), ReLU,
        AdaptiveAvgPool2d((4, 4))
    ``self.classifier``:
        Dropout(dropout), Linear(128 * 4 * 4, 512), ReLU,
        Dropout(dropout), Linear(512, num_classes)

    ``forward`` runs ``features``, flattens everything except the batch dimension
    (``torch.flatten(x, 1)``) and runs ``classifier``, returning logits of shape
    (N, num_classes). With 10 classes the network has 1,149,002 parameters.
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.5) -> None:
        """Call ``super().__init__()`` and create ``self.features`` and ``self.classifier``."""
        raise NotImplementedError("MiniAlexNet.__init__: create features and classifier")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a batch (N, 3, 32, 32) to logits (N, num_classes)."""
        raise NotImplementedError("MiniAlexNet.forward: features, flatten, classifier")


def build_transforms(train: bool) -> transforms.Compose:
    """Return the ``torchvision.transforms.Compose`` applied to each PIL training or test image.

    train=True:  RandomCrop(32, padding=4), RandomHorizontalFlip(), ToTensor(),
                 Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    train=False: ToTensor(), Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    """
    raise NotImplementedError("build_transforms: augmenting or plain transforms")


def train_one_epoch(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    device: str | torch.device,
) -> float:
    """Train ``model`` for one pass over ``loader`` and return the mean batch loss as a float.

    Put the model in training mode (``model.train()``). For every (images, labels) batch:
    move both to ``device``, zero the gradients, compute the cross-entropy loss
    (``nn.CrossEntropyLoss``) of the model's logits, back-propagate and take one optimizer
    step. The return value is the average of the per-batch losses (``loss.item()``). The
    model is expected to be on ``device`` already.
    """
    raise NotImplementedError("train_one_epoch: one optimizer step per batch")


def evaluate(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    device: str | torch.device,
) -> float:
    """Return the classification accuracy of ``model`` on ``loader`` as a float in [0, 1].

    Put the model in evaluation mode (``model.eval()``) and work under ``torch.no_grad()``.
    The predicted class is the index of the largest logit; accuracy is the number of
    correct predictions divided by the number of samples (not the mean over batches).
    """
    raise NotImplementedError("evaluate: fraction of correct predictions")


def fit(
    model: nn.Module,
    train_loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    val_loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    epochs: int = 20,
    lr: float = 1e-3,
    device: str | torch.device = "cpu",
) -> dict[str, list[float]]:
    """Train for ``epochs`` epochs with ``torch.optim.Adam(model.parameters(), lr=lr)``.

    Move the model to ``device`` first and create the optimizer once. After each epoch of
    ``train_one_epoch``, measure ``evaluate`` on ``val_loader``.

    Returns:
        {"train_loss": [one float per epoch], "val_acc": [one float per epoch]}
    """
    raise NotImplementedError("fit: create Adam, then alternate training and evaluation")


def plot_history(history: dict[str, list[float]]) -> Figure:
    """Plot a history returned by ``fit`` and return the matplotlib Figure.

    Use two subplots: training loss per epoch and validation accuracy per epoch, each with
    a title and axis labels. Create ``matplotlib.figure.Figure()`` directly (import it
    inside this function) and return it without calling ``show``.
    """
    raise NotImplementedError("plot_history: a loss curve and an accuracy curve")


# Your final test accuracies, as floats in [0, 1] (e.g. 0.71 for 71 %).
RESULTS = {
    "test_acc_dropout": None,
    "test_acc_no_dropout": None,
}

# A short paragraph: how did training loss and validation accuracy differ with and without
# dropout, and why?
OBSERVATIONS = None


# Your training runs, once the functions above work: `python ex6_cifar10_training.py` runs this block (the
# notebook has it as an experiment cell). CIFAR-10 is downloaded to ./data the first time (about 170 MB).
# Copy the accuracies it prints into RESULTS. Grading never runs it.
if __name__ == "__main__":
    from torch.utils.data import DataLoader
    from torchvision.datasets import CIFAR10

    device = "cuda" if torch.cuda.is_available() else "cpu"
    train_set = CIFAR10("data", train=True, download=True, transform=build_transforms(train=True))
    test_set = CIFAR10("data", train=False, download=True, transform=build_transforms(train=False))
    train_loader = DataLoader(train_set, batch_size=128, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=256)
    histories = {}
    for dropout in (0.5, 0.0):
        torch.manual_seed(0)
        histories[dropout] = fit(MiniAlexNet(dropout=dropout), train_loader, test_loader, epochs=20, device=device)
        print(f"dropout {dropout}: test accuracy {histories[dropout]['val_acc'][-1]:.3f}")
    plot_history(histories[0.5])   # a notebook shows the figure of its cell's last line
