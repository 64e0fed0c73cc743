"""Worker helpers for the data and training exercises (6 and 8): images and transforms, seeded calls, optimizers,
a spy that logs each forward's mode, and data loaders.

What they report (a spy's log, which parameters hold a gradient) comes from the student's interpreter: graders read
it strictly and give points only for outputs they check on the trusted side.
"""
from __future__ import annotations

from typing import Any

from .helpers import as_module
from .registry import helper


@helper
def pil_images(arrays: list) -> list:
    """PIL RGB images from (H, W, 3) uint8 tensors the grader sent; they stay in the worker as handles."""
    import torch
    from PIL import Image

    out = []
    for a in arrays:
        if not isinstance(a, torch.Tensor) or a.dtype != torch.uint8 or a.dim() != 3 or a.shape[-1] != 3:
            raise ValueError("expected (H, W, 3) uint8 tensors")
        out.append(Image.fromarray(a.numpy(), mode="RGB"))
    return out


def _plain(value: Any) -> Any:
    """A tensor subclass (torchvision's tv_tensors.Image) as a plain tensor, so it crosses as data."""
    import torch

    return value.as_subclass(torch.Tensor) if isinstance(value, torch.Tensor) else value


@helper
def apply_transform(transform: Any, images: list, seeds: list) -> list:
    """transform(image) for every image, each under torch.manual_seed(seed) in a forked RNG."""
    import torch

    out = []
    for image, seed in zip(images, seeds):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            out.append(_plain(transform(image)))
    return out


@helper
def call_seeded(fn: Any, seed: int, args: list, kwargs: dict | None = None) -> Any:
    """fn(*args, **kwargs) under torch.manual_seed(seed) in a forked RNG, so dropout masks are reproducible."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return fn(*args, **(kwargs or {}))


@helper
def make_optimizer(model: Any, name: str, lr: float) -> Any:
    """A torch optimizer ("Adam" or "SGD") over the model's parameters."""
    import torch

    if name not in ("Adam", "SGD"):
        raise ValueError(f"unknown optimizer {name!r}")
    return getattr(torch.optim, name)(as_module(model).parameters(), lr=float(lr))


@helper
def set_mode(model: Any, train: bool) -> None:
    as_module(model).train(bool(train))


@helper
def grads_present(model: Any) -> list:
    """Names of the parameters that hold a .grad."""
    import torch

    return [n for n, p in torch.nn.Module.named_parameters(as_module(model)) if p.grad is not None]


def _spy_class() -> Any:
    import torch

    class Spy(torch.nn.Module):
        """Wraps a model and notes, at every forward, the mode and whether autograd was recording."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner
            self.log: list = []

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            self.log.append({"training": self.training, "grad_enabled": torch.is_grad_enabled(),
                             "batch": int(args[0].shape[0]) if args and isinstance(args[0], torch.Tensor) else -1})
            return self.inner(*args, **kwargs)

    return Spy


@helper
def spy(model: Any) -> Any:
    """``model`` wrapped so that every forward call is logged (read the log with ``spy_log``)."""
    return _spy_class()(as_module(model))


@helper
def spy_log(wrapped: Any) -> list:
    return list(getattr(wrapped, "log", []))


@helper
def tensor_loader(x: Any, y: Any, batch_size: int) -> Any:
    """A real DataLoader over (x, y) in order, so student code may use len(loader) and loader.dataset."""
    import torch

    dataset = torch.utils.data.TensorDataset(x, y)
    # Its own generator: iterating a DataLoader otherwise draws a seed from the global RNG, which would
    # shift the dropout masks the grader replays under the same seed.
    return torch.utils.data.DataLoader(dataset, batch_size=int(batch_size), shuffle=False,
                                       generator=torch.Generator())
