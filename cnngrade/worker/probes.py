"""Worker helpers that measure a model from its outputs: write the grader's weights, read one unit, run order.

Like every helper they run next to the student's code, so the grader treats their answers as the
student's: outputs on inputs the grader chose, compared on the trusted side (cnngrade/graderkit/rf.py).
"""
from __future__ import annotations

from typing import Any

from .registry import helper


def _as_module(obj: Any) -> Any:
    import torch

    if not isinstance(obj, torch.nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(obj).__name__}")
    return obj


def _parameters(model: Any) -> list:
    import torch

    return [p for _, p in torch.nn.Module.named_parameters(model)]


def _write(param: Any, value: Any) -> None:
    if tuple(param.shape) != tuple(value.shape):
        raise ValueError(f"a parameter of shape {tuple(param.shape)} cannot take a tensor of shape "
                         f"{tuple(value.shape)}")
    param.copy_(value.to(dtype=param.dtype, device=param.device))


def _eval_forward(model: Any, x: Any) -> Any:
    """model(x) in eval mode without autograd; the mode is restored afterwards."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    finally:
        model.train(was_training)


@helper
def is_module(obj: Any) -> bool:
    import torch

    return isinstance(obj, torch.nn.Module)


@helper
def write_parameters(model: Any, tensors: list) -> None:
    """Copy ``tensors[k]`` into the k-th parameter of ``model`` (``named_parameters`` order)."""
    import torch

    params = _parameters(_as_module(model))
    if len(params) != len(tensors):
        raise ValueError(f"the model has {len(params)} parameters; the grader sent {len(tensors)} tensors")
    with torch.no_grad():
        for param, value in zip(params, tensors):
            _write(param, value)


@helper
def outputs_after_writes(model: Any, x: Any, start: int, tensors: list) -> list:
    """For each k, write ``tensors[k]`` into parameter ``start + k``, then return model(x) (eval, no autograd)."""
    import torch

    params = _parameters(_as_module(model))
    outs = []
    for k, value in enumerate(tensors):
        with torch.no_grad():
            _write(params[start + k], value)
        outs.append(_eval_forward(model, x))
    return outs


@helper
def center_outputs(model: Any, x: Any) -> dict:
    """The output shape of model(x) (eval, no autograd) and its values at the centre unit (H // 2, W // 2)."""
    import torch

    out = _eval_forward(_as_module(model), x)
    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        raise TypeError(f"expected a (N, C, H, W) tensor, got {type(out).__name__} "
                        f"{tuple(out.shape) if isinstance(out, torch.Tensor) else ''}")
    h, w = out.shape[-2:]
    return {"shape": list(out.shape), "center": out[:, :, h // 2, w // 2].detach().cpu().contiguous()}


@helper
def parameter_run_order(model: Any, x: Any) -> list:
    """Indices (``named_parameters`` order) of the parameters, ordered by when their module first runs on ``x``;
    parameters of modules that never ran follow in registration order."""
    import torch

    model = _as_module(model)
    index = {id(p): k for k, p in enumerate(_parameters(model))}
    order: list[int] = []

    def note(mod: Any, _inputs: Any) -> None:
        for p in mod.parameters(recurse=False):
            k = index.get(id(p))
            if k is not None and k not in order:
                order.append(k)

    hooks = [m.register_forward_pre_hook(note) for m in torch.nn.Module.modules(model)
             if any(True for _ in m.parameters(recurse=False))]
    try:
        _eval_forward(model, x)
    finally:
        for h in hooks:
            h.remove()
    return order + [k for k in range(len(index)) if k not in order]
