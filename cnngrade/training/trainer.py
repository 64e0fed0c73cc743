"""The handout's training recipe, run on the trusted side on a trusted network (no student code), and its scoring.

Adam(lr), cross-entropy, batches reshuffled every epoch (the last one smaller), RandomCrop(32,
padding=4) (on the cpu profile's 16x16 images, padding 2) + horizontal flip when augmenting,
Normalize((0.5,)*3, (0.5,)*3). Images stay uint8 on the device and are augmented there in batches
(no DataLoader, no PIL): on a GPU that is about ten times faster than the handout's DataLoader
(bench/README.md). On the CPU the same seed and thread count give bitwise the same weights; on
CUDA, cuDNN's algorithm choice and atomic adds can differ at rounding level between runs, which
the thresholds' margins absorb. ``cnngrade.training.cohort`` trains many networks with this recipe at once.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import torch
from torch import nn

PREDICT_BATCH = 1000


class TrainingTimeout(RuntimeError):
    """The trusted training ran past its time limit (the machine's fault, never the student's)."""


def normalize(images_u8: torch.Tensor, memory_format: torch.memory_format = torch.channels_last) -> torch.Tensor:
    """uint8 NCHW images to Normalize((0.5,)*3, (0.5,)*3) floats in the given memory layout."""
    return images_u8.float().div_(127.5).sub_(1.0).contiguous(memory_format=memory_format)


def nchw(images_u8: torch.Tensor) -> torch.Tensor:
    """CIFAR-10's (n, 32, 32, 3) layout to (n, 3, 32, 32); NCHW input is returned as it is."""
    return images_u8.permute(0, 3, 1, 2).contiguous() if images_u8.shape[-1] == 3 else images_u8


def crop_flip(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """RandomCrop(size, padding=size // 8) with zero fill and a horizontal flip with p=0.5, per image, batched on its
    device: the handout's RandomCrop(32, padding=4) on 32x32 images, the same shift in proportion on the cpu
    profile's 16x16 ones.

    Padding the uint8 images with 0 before normalizing matches torchvision, which pads the PIL image.
    """
    n, dev, size = batch.shape[0], batch.device, batch.shape[-1]
    pad = max(1, size // 8)
    padded = torch.nn.functional.pad(batch, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=gen, device=dev)
    flip = torch.rand(n, generator=gen, device=dev) < 0.5
    span = torch.arange(size, device=dev)
    rows = offsets[0][:, None] + span
    cols = offsets[1][:, None] + span
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    picked = padded.permute(0, 2, 3, 1)[torch.arange(n, device=dev)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return picked.permute(0, 3, 1, 2)


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Use ``count`` torch threads inside the block (the grading process runs with one; the idle worker's
    share of the cores is lent to the training while it runs), then restore the previous count."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(max(1, int(count)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train(model: nn.Module, images_u8: torch.Tensor, labels: torch.Tensor, *, epochs: int, batch_size: int,
          lr: float, seed: int, augment: bool = True, device: str = "cpu",
          time_limit: float | None = None, on_epoch: Callable[[int], None] | None = None) -> list[float]:
    """Train ``model`` in place with the recipe; returns the mean training loss of every epoch.

    ``seed`` fixes the batch order, the augmentation draws and the dropout masks. The model is left
    on ``device`` in train mode. Raises TrainingTimeout when ``time_limit`` seconds pass (checked
    between batches). ``on_epoch(epochs done)`` after every epoch (progress).
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True   # picks conv algorithms; results differ only at rounding level
    model.to(dev).to(memory_format=torch.channels_last)
    x = nchw(images_u8).to(dev)
    y = labels.to(dev, torch.int64)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=dev.type == "cuda")
    losses: list[float] = []
    with seeded_dropout(dev, seed):
        model.train()
        for epoch in epoch_batches(x, y, epochs=epochs, batch_size=batch_size, seed=seed, augment=augment,
                                   time_limit=time_limit):
            total, steps = torch.zeros((), device=dev), 0
            for inputs, targets in epoch:
                loss = nn.functional.cross_entropy(model(inputs), targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.detach()
                steps += 1
            losses.append(float(total) / max(steps, 1))   # one synchronisation per epoch
            if on_epoch is not None:
                on_epoch(len(losses))
    return losses


@contextlib.contextmanager
def seeded_dropout(dev: torch.device, seed: int) -> Iterator[None]:
    """The global RNG (dropout masks) seeded for one training and restored after it, on the CPU and ``dev``."""
    cuda_ids = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_ids):
        torch.manual_seed(int(seed))
        yield


def epoch_batches(x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int, seed: int, augment: bool,
                  time_limit: float | None = None,
                  deadline: float | None = None) -> Iterator[Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """The recipe's data, one iterator of normalised (inputs, labels) batches per epoch: a seeded order each epoch,
    crops and flips drawn from the same generator. Every trainer reads it, so one seed gives every trainer the
    same batches. Raises TrainingTimeout between batches once ``deadline`` (default: now + ``time_limit``) passes.
    """
    gen = torch.Generator(device=x.device).manual_seed(int(seed))
    if deadline is None and time_limit is not None:
        deadline = time.monotonic() + time_limit

    def one_epoch() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(x.shape[0], generator=gen, device=x.device)
        for start in range(0, x.shape[0], int(batch_size)):
            if deadline is not None and time.monotonic() > deadline:
                raise TrainingTimeout(f"the trusted training ran past its limit of {time_limit:g} s "
                                      "(the grading machine is too slow or too busy)")
            idx = order[start:start + int(batch_size)]
            yield normalize(crop_flip(x[idx], gen) if augment else x[idx]), y[idx]

    for _ in range(int(epochs)):
        yield one_epoch()


def predict(model: nn.Module, images_u8: torch.Tensor, *, device: str = "cpu",
            batch_size: int = PREDICT_BATCH) -> torch.Tensor:
    """int64 argmax class of every image (uint8, NHWC or NCHW), in eval mode without autograd, on the CPU."""
    model.to(torch.device(device)).to(memory_format=torch.channels_last).eval()
    x = nchw(images_u8)
    out = []
    with torch.no_grad():
        for start in range(0, x.shape[0], int(batch_size)):
            out.append(model(normalize(x[start:start + int(batch_size)].to(device))).argmax(1).cpu())
    return torch.cat(out).to(torch.int64)


def accuracy(model: nn.Module, images_u8: torch.Tensor, labels: torch.Tensor, *, device: str = "cpu") -> float:
    """Fraction of ``images_u8`` that ``model`` classifies as ``labels``."""
    return float((predict(model, images_u8, device=device) == labels.cpu()).sum()) / max(1, labels.numel())
