"""Worker helpers that follow the order a model's layers run in: its tensors named in that order, the grader's
weights written in that order, the output shape of every leaf layer.

Registration order depends on how the student wrote ``__init__``; run order does not, so it is what pairs the
student's tensors with a reference network's. The trusted side runs ``state_in_use_order`` on its own reference
network too (cnngrade/graderkit/weights.py), so both sides order tensors with the same code.
"""
from __future__ import annotations

from typing import Any

from .helpers import as_module
from .registry import helper


def _run_once(model: Any, x: Any, hooks: list) -> None:
    """model(x) once in eval mode without autograd, for what ``hooks`` record; then the hooks go and the
    model's mode is restored."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)


def _own_state(mod: Any) -> list:
    """A module's own parameters and persistent buffers (what its state_dict holds), as (local name, tensor)."""
    import torch

    own = list(torch.nn.Module.named_parameters(mod, recurse=False))
    skip: set[str] = getattr(mod, "_non_persistent_buffers_set", set())
    return own + [(n, b) for n, b in torch.nn.Module.named_buffers(mod, recurse=False) if n not in skip]


def _dry_run(model: Any, x: Any) -> None:
    """One forward pass in a forked, seeded RNG, so lazy modules (nn.LazyLinear) create their parameters before
    anything reads or writes them; the caller's random state is untouched."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        _run_once(model, x, [])


def _tensors_in_use_order(model: Any, x: Any) -> list:
    """(name, tensor) of every parameter and buffer of ``model``, each tensor once, ordered by when its module
    first runs on ``x``; tensors of modules that never ran follow in registration order.

    A tensor counts once however many names reach it: a layer kept as ``self.conv1`` and also inside
    ``self.features`` (or a weight tied between two layers) is one layer, named by its first name.
    """
    import torch

    model = as_module(model)
    _dry_run(model, x)
    seen: set[int] = set()
    order: list = []

    def note(prefix: str, mod: Any) -> None:
        for name, tensor in _own_state(mod):
            if id(tensor) not in seen:
                seen.add(id(tensor))
                order.append((f"{prefix}.{name}" if prefix else name, tensor))

    modules = list(torch.nn.Module.named_modules(model))
    hooks = [mod.register_forward_pre_hook(lambda m, _i, prefix=prefix: note(prefix, m)) for prefix, mod in modules]
    _run_once(model, x, hooks)
    for prefix, mod in modules:
        note(prefix, mod)
    return order


@helper
def state_in_use_order(model: Any, x: Any) -> list:
    """Names of the parameters and buffers of ``model``, ordered by when their module first runs on ``x``.

    Registration order depends on how the student wrote ``__init__``; the order in which layers
    run does not, so it is what lets the grader pair these tensors with a reference network's.
    Each tensor is named once (by its first name), however many modules share it.
    """
    return [name for name, _ in _tensors_in_use_order(model, x)]


@helper
def load_state_in_use_order(model: Any, x: Any, tensors: list) -> dict:
    """Write the grader's ``tensors`` into ``model``, paired with its own parameters and buffers in the order
    their layers run on ``x`` (BatchNorm's num_batches_tracked aside, as state_in_use_order orders them).

    Nothing is written unless every shape matches. Returns {"shapes": the model's own shapes in that order,
    "written": whether the tensors were written}.
    """
    import torch

    mine = [t for n, t in _tensors_in_use_order(model, x) if not n.endswith("num_batches_tracked")]
    shapes = [list(t.shape) for t in mine]
    if not all(isinstance(t, torch.Tensor) for t in tensors) or shapes != [list(t.shape) for t in tensors]:
        return {"shapes": shapes, "written": False}
    with torch.no_grad():
        for target, value in zip(mine, tensors):
            target.copy_(value.to(dtype=target.dtype, device=target.device))
    return {"shapes": shapes, "written": True}


@helper
def leaf_output_shapes(model: Any, x: Any) -> list:
    """The output shape of every leaf module, in the order they run on ``x`` (eval mode, no autograd)."""
    import torch

    model = as_module(model)
    shapes: list[list[int]] = []
    leaves = [m for m in torch.nn.Module.modules(model) if not any(True for _ in m.children())]
    hooks = [m.register_forward_hook(lambda _m, _i, out: shapes.append(list(out.shape))) for m in leaves]
    _run_once(model, x, hooks)
    return shapes
