"""Correct, written differently: build the baseline, then swap modules in place (Sigmoid for ReLU, Identity for
Dropout), seeded inside fork_rng; the plot labels lines through ax.legend(handles, names)."""
import copy

import torch
from matplotlib.figure import Figure
from torch import nn

VARIANTS = ("baseline", "no_dropout", "sigmoid", "no_augmentation")


def _baseline():
    return nn.Sequential(
        nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d((4, 4)), nn.Flatten(),
        nn.Dropout(0.5), nn.Linear(2048, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, 10))


def _swap(model, old, make):
    for i, layer in enumerate(model):
        if isinstance(layer, old):
            model[i] = make()
    return model


def build_variant(name: str, seed: int = 42):
    if name not in VARIANTS:
        raise ValueError(name)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = _baseline()
    if name == "no_dropout":
        _swap(model, nn.Dropout, nn.Identity)
    elif name == "sigmoid":
        _swap(model, nn.ReLU, nn.Sigmoid)
    return model, name != "no_augmentation"


def run_ablation(train_set, val_set, epochs=10, seed=42, device="cpu", batch_size=128):
    from torchvision import transforms as T
    norm = [T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)]
    out = {}
    for name in VARIANTS:
        model, augment = build_variant(name, seed)
        tf = T.Compose(([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if augment else []) + norm)
        plain = T.Compose(norm)
        train = [(tf(img), y) for img, y in train_set]
        val = [(plain(img), y) for img, y in val_set]
        loader = torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True)
        vloader = torch.utils.data.DataLoader(val, batch_size=batch_size)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        hist = {"train_loss": [], "val_acc": []}
        for _ in range(epochs):
            model.train()
            total = []
            for x, y in loader:
                opt.zero_grad()
                loss = nn.CrossEntropyLoss()(model(x), y)
                loss.backward()
                opt.step()
                total.append(float(loss))
            model.eval()
            with torch.no_grad():
                hits = sum(int((model(x).argmax(1) == y).sum()) for x, y in vloader)
            hist["train_loss"].append(sum(total) / len(total))
            hist["val_acc"].append(hits / len(val))
        out[name] = copy.deepcopy(hist)
    return out


def plot_ablation(results):
    fig = Figure()
    ax = fig.add_subplot()
    handles = [ax.plot(range(1, len(h["val_acc"]) + 1), [100 * a for a in h["val_acc"]])[0] for h in results.values()]
    ax.legend(handles, list(results))
    ax.set_ylabel("validation accuracy (%)")
    return fig


CONCLUSION = ("The sigmoid network barely learned within ten epochs, so the activation mattered most. "
              "Without dropout or augmentation it overfit a little. Both regularisers helped by a few points.")
