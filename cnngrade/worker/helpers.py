"""Grader-written operations that run inside the worker on objects that cannot leave it: a model's state and outputs.

They run next to student code, so their answers are no more trusted than the student's:
the grader side only uses them to obtain data it then checks by itself (weights to load into
a reference network, outputs on inputs the grader chose). Each helper takes and returns
values the codec can carry; objects come in and go out as handles. The other helpers live by topic beside this
module (builders, run_order, training_helpers, figures, probes); all register into ``registry.REGISTRY``.
"""
from __future__ import annotations

from typing import Any

from .registry import REGISTRY, helper  # noqa: F401 - REGISTRY: the one table, also reachable from here


def as_module(obj: Any) -> Any:
    """``obj`` when it is a torch.nn.Module; otherwise a TypeError, which the grader sees as the student's."""
    import torch

    if not isinstance(obj, torch.nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(obj).__name__}")
    return obj


@helper
def state_dict(model: Any) -> dict:
    """Every parameter and buffer of a module, by name, as CPU tensors."""
    import torch

    return {k: v.detach().cpu() for k, v in torch.nn.Module.state_dict(as_module(model)).items()}


@helper
def parameter_shapes(model: Any) -> list:
    """[name, shape, requires_grad] for every parameter, in registration order."""
    import torch

    return [[n, list(p.shape), bool(p.requires_grad)] for n, p in torch.nn.Module.named_parameters(as_module(model))]


@helper
def forward(model: Any, x: Any, train: bool = False, seed: int | None = None) -> Any:
    """model(x) in eval (or train) mode without autograd; the mode is restored afterwards."""
    import torch

    model = as_module(model)
    was_training = model.training
    model.train(train)
    try:
        with torch.no_grad():
            if seed is None:
                return model(x)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return model(x)
    finally:
        model.train(was_training)


@helper
def is_training(model: Any) -> bool:
    return bool(as_module(model).training)


@helper
def type_name(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


@helper
def write_input_file(name: str, data: bytes) -> str:
    """Save bytes the grader sent as a file of the worker's own, in a fresh folder, and return its path.

    Student functions that read files (ex2's ``load_grayscale``) need a path they can open from inside
    the sandbox, which sees neither the grader's folders nor its /tmp.
    """
    import os
    import tempfile

    if os.path.basename(name) != name or name.startswith(".") or not name:
        raise ValueError(f"bad input file name {name!r}")
    path = os.path.join(tempfile.mkdtemp(prefix="input-"), name)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


@helper
def call_autograd_info(fn: Any, *args: Any, **kwargs: Any) -> dict:
    """fn(*args, **kwargs) plus what the codec drops from a tensor result: requires_grad and grad_fn."""
    import torch

    value = fn(*args, **kwargs)
    if not isinstance(value, torch.Tensor):
        return {"value": value, "requires_grad": None, "grad_fn": None}
    grad_fn = value.grad_fn
    return {"value": value, "requires_grad": bool(value.requires_grad),
            "grad_fn": None if grad_fn is None else type(grad_fn).__name__}
