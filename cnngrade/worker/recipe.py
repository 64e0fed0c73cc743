"""Worker helper for the training thresholds: the handout's recipe run on the student's model, and predictions."""
from __future__ import annotations

from typing import Any

from .helpers import _module, helper


def _normalize(images_u8: Any, memory_format: Any) -> Any:
    """uint8 NCHW images to Normalize((0.5,)*3, (0.5,)*3) floats in the given memory layout."""
    return images_u8.float().div_(127.5).sub_(1.0).contiguous(memory_format=memory_format)


def _layout(model: Any, sample_u8: Any) -> Any:
    """channels_last (faster convolutions) when the student's forward accepts it, else the default layout.

    The layout changes no value, but a correct forward may still refuse it: ``x.view(n, -1)`` raises on a
    channels_last activation. Such a model is trained in the default layout rather than failed. The probe
    runs in eval mode without autograd, so it draws no random numbers and changes no weight.
    """
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model.to(memory_format=torch.channels_last)(_normalize(sample_u8, torch.channels_last))
        return torch.channels_last
    except Exception:
        model.to(memory_format=torch.contiguous_format)
        return torch.contiguous_format
    finally:
        model.train(was_training)


def _crop_flip(batch: Any, gen: Any) -> Any:
    """RandomCrop(32, padding=4) with zero fill and a horizontal flip with p=0.5, per image, batched on its device.

    Padding the uint8 images with 0 before normalizing matches torchvision, which pads the PIL image.
    """
    import torch

    n, dev = batch.shape[0], batch.device
    padded = torch.nn.functional.pad(batch, (4, 4, 4, 4))
    offsets = torch.randint(0, 9, (2, n), generator=gen, device=dev)
    flip = torch.rand(n, generator=gen, device=dev) < 0.5
    span = torch.arange(32, device=dev)
    rows = offsets[0][:, None] + span
    cols = offsets[1][:, None] + span
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    picked = padded.permute(0, 2, 3, 1)[torch.arange(n, device=dev)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return picked.permute(0, 3, 1, 2)


@helper
def train_recipe(model: Any, images_u8: Any, labels: Any, epochs: int, batch_size: int, lr: float, seed: int,
                 augment: bool = True, device: str = "cpu") -> dict:
    """The handout's recipe, run by the grader on the student's model: Adam(lr), cross-entropy, batches of
    ``batch_size`` reshuffled every epoch (the last one smaller), crop+flip augmentation when ``augment``.

    Data and augmentation stay on ``device`` (no DataLoader). The model is left on ``device`` in train
    mode. Returns the mean training loss of every epoch and the seconds spent. On the CPU the same seed
    gives bitwise the same weights; on CUDA, cuDNN's algorithm choice and atomic adds can differ at
    rounding level between runs, which the thresholds' margins absorb.
    """
    import time

    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True   # picks conv algorithms; results differ only at rounding level
    model = _module(model).to(device=dev)
    x = images_u8.to(dev).permute(0, 3, 1, 2).contiguous() if images_u8.shape[-1] == 3 else images_u8.to(dev)
    layout = _layout(model, x[:2])
    y = labels.to(dev, torch.int64)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=dev.type == "cuda")
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    losses, started = [], time.perf_counter()
    cuda_ids = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_ids):
        torch.manual_seed(int(seed))               # dropout masks
        model.train()
        for _ in range(int(epochs)):
            order = torch.randperm(x.shape[0], generator=gen, device=dev)
            total, steps = torch.zeros((), device=dev), 0
            for start in range(0, x.shape[0], int(batch_size)):
                idx = order[start:start + int(batch_size)]
                batch = _crop_flip(x[idx], gen) if augment else x[idx]
                loss = torch.nn.functional.cross_entropy(model(_normalize(batch, layout)), y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.detach()
                steps += 1
            losses.append(float(total) / max(steps, 1))   # one synchronisation per epoch
    return {"losses": losses, "seconds": time.perf_counter() - started}


@helper
def predict(model: Any, images_u8: Any, batch_size: int = 1000, device: str = "cpu") -> Any:
    """int64 argmax class of every image (uint8, NHWC or NCHW), model in eval mode without autograd."""
    import torch

    model = _module(model)
    model.eval()
    x = images_u8.permute(0, 3, 1, 2) if images_u8.shape[-1] == 3 else images_u8
    layout = _layout(model, x[:2].to(device))
    out = []
    with torch.no_grad():
        for start in range(0, x.shape[0], int(batch_size)):
            out.append(model(_normalize(x[start:start + int(batch_size)].to(device), layout)).argmax(1).cpu())
    return torch.cat(out).to(torch.int64)


