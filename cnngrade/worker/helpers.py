"""Grader-written operations that run inside the worker on objects that cannot leave it (models, figures).

They run next to student code, so their answers are no more trusted than the student's:
the grader side only uses them to obtain data it then checks by itself (weights to load into
a reference network, outputs on inputs the grader chose). Each helper takes and returns
values the codec can carry; objects come in and go out as handles.
"""
from __future__ import annotations

from typing import Any

from .registry import REGISTRY, helper  # noqa: F401 - REGISTRY: the one table, also reachable from here

# Layers the grader may ask the worker to build, with the keyword arguments each accepts.
BUILDABLE = {
    "Conv2d": {"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "bias"},
    "Linear": {"in_features", "out_features", "bias"},
    "ReLU": set(), "Sigmoid": set(), "Tanh": set(), "Flatten": {"start_dim"},
    "MaxPool2d": {"kernel_size", "stride", "padding"}, "AvgPool2d": {"kernel_size", "stride", "padding"},
    "AdaptiveAvgPool2d": {"output_size"}, "AdaptiveMaxPool2d": {"output_size"},
    "BatchNorm2d": {"num_features"}, "Dropout": {"p"}, "Identity": set(),
}


def _module(obj: Any) -> Any:
    import torch

    if not isinstance(obj, torch.nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(obj).__name__}")
    return obj


@helper
def build_sequential(spec: list, seed: int = 0) -> Any:
    """An nn.Sequential from [[layer_name, kwargs], ...], weights drawn from ``seed``."""
    import torch

    layers = []
    for name, kwargs in spec:
        allowed = BUILDABLE.get(name)
        if allowed is None or not set(kwargs) <= allowed:
            raise ValueError(f"cannot build layer {name}({kwargs})")
        layers.append(getattr(torch.nn, name)(**kwargs))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torch.nn.Sequential(*layers)
        for p in model.parameters():
            torch.nn.init.uniform_(p, -0.5, 0.5)
    return model


@helper
def state_dict(model: Any) -> dict:
    """Every parameter and buffer of a module, by name, as CPU tensors."""
    import torch

    return {k: v.detach().cpu() for k, v in torch.nn.Module.state_dict(_module(model)).items()}


@helper
def parameter_shapes(model: Any) -> list:
    """[name, shape, requires_grad] for every parameter, in registration order."""
    import torch

    return [[n, list(p.shape), bool(p.requires_grad)] for n, p in torch.nn.Module.named_parameters(_module(model))]


@helper
def forward(model: Any, x: Any, train: bool = False, seed: int | None = None) -> Any:
    """model(x) in eval (or train) mode without autograd; the mode is restored afterwards."""
    import torch

    model = _module(model)
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
    return bool(_module(model).training)


@helper
def type_name(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


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
    skip = getattr(mod, "_non_persistent_buffers_set", set())
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

    model = _module(model)
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


# -- training and data (exercises 6 and 8) --------------------------------------------------------
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
    return getattr(torch.optim, name)(_module(model).parameters(), lr=float(lr))


@helper
def set_mode(model: Any, train: bool) -> None:
    _module(model).train(bool(train))


@helper
def grads_present(model: Any) -> list:
    """Names of the parameters that hold a .grad."""
    import torch

    return [n for n, p in torch.nn.Module.named_parameters(_module(model)) if p.grad is not None]


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
    return _spy_class()(_module(model))


@helper
def spy_log(wrapped: Any) -> list:
    return list(getattr(wrapped, "log", []))


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


@helper
def build_nested(blocks: list, seed: int = 0) -> Any:
    """An nn.Sequential of nn.Sequential blocks, block i built by ``build_sequential(blocks[i], seed + i)``.

    Nesting is what tells apart a shape tracer that visits leaf layers from one that only loops over
    the top-level children of a flat nn.Sequential.
    """
    import torch

    return torch.nn.Sequential(*(build_sequential(spec, seed + i) for i, spec in enumerate(blocks)))


def _shuffled_class() -> Any:
    import torch

    class Shuffled(torch.nn.Module):
        """Layers registered in one order and run in another, as a hand-written forward() may do."""

        def __init__(self, layers: list, order: list) -> None:
            super().__init__()
            for i, j in enumerate(order):  # the i-th registered child is the j-th layer to run
                self.add_module(f"m{i}", layers[j])
            self.run_names = [f"m{order.index(j)}" for j in range(len(layers))]

        def forward(self, x: Any) -> Any:
            for name in self.run_names:
                x = getattr(self, name)(x)
            return x

    return Shuffled


@helper
def build_shuffled(spec: list, order: list, seed: int = 0) -> Any:
    """The layers of ``build_sequential(spec, seed)`` (listed in the order they run), registered as children in
    the order ``order`` gives: child i is layer ``order[i]``. Registration order then differs from run order,
    which tells apart a shape tracer that hooks the layers from one that re-runs them in registration order.
    """
    if sorted(order) != list(range(len(spec))):
        raise ValueError(f"order {order!r} is not a permutation of the {len(spec)} layers")
    return _shuffled_class()(list(build_sequential(spec, seed)), [int(i) for i in order])


@helper
def leaf_output_shapes(model: Any, x: Any) -> list:
    """The output shape of every leaf module, in the order they run on ``x`` (eval mode, no autograd)."""
    import torch

    model = _module(model)
    shapes: list[list[int]] = []
    leaves = [m for m in torch.nn.Module.modules(model) if not any(True for _ in m.children())]
    hooks = [m.register_forward_hook(lambda _m, _i, out: shapes.append(list(out.shape))) for m in leaves]
    _run_once(model, x, hooks)
    return shapes


@helper
def tensor_loader(x: Any, y: Any, batch_size: int) -> Any:
    """A real DataLoader over (x, y) in order, so student code may use len(loader) and loader.dataset."""
    import torch

    dataset = torch.utils.data.TensorDataset(x, y)
    # Its own generator: iterating a DataLoader otherwise draws a seed from the global RNG, which would
    # shift the dropout masks the grader replays under the same seed.
    return torch.utils.data.DataLoader(dataset, batch_size=int(batch_size), shuffle=False,
                                       generator=torch.Generator())
