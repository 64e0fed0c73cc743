"""Grader-written operations that run inside the worker on objects that cannot leave it (models, figures).

They run next to student code, so their answers are no more trusted than the student's:
the grader side only uses them to obtain data it then checks by itself (weights to load into
a reference network, outputs on inputs the grader chose). Each helper takes and returns
values the codec can carry; objects come in and go out as handles.
"""
from __future__ import annotations

from typing import Any, Callable

REGISTRY: dict[str, Callable[..., Any]] = {}

# Layers the grader may ask the worker to build, with the keyword arguments each accepts.
BUILDABLE = {
    "Conv2d": {"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "bias"},
    "Linear": {"in_features", "out_features", "bias"},
    "ReLU": set(), "Sigmoid": set(), "Tanh": set(), "Flatten": {"start_dim"},
    "MaxPool2d": {"kernel_size", "stride", "padding"}, "AvgPool2d": {"kernel_size", "stride", "padding"},
    "AdaptiveAvgPool2d": {"output_size"}, "AdaptiveMaxPool2d": {"output_size"},
    "BatchNorm2d": {"num_features"}, "Dropout": {"p"}, "Identity": set(),
}


def helper(fn: Callable[..., Any]) -> Callable[..., Any]:
    REGISTRY[fn.__name__] = fn
    return fn


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
def leaf_modules(model: Any) -> list:
    """[qualified name, class name] of every module that has no children, in registration order."""
    import torch

    out = []
    for name, mod in torch.nn.Module.named_modules(_module(model)):
        if not any(True for _ in mod.children()):
            out.append([name, type(mod).__name__])
    return out


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


@helper
def state_in_use_order(model: Any, x: Any) -> list:
    """Names of the parameters and buffers of ``model``, ordered by when their module first runs on ``x``.

    Registration order depends on how the student wrote ``__init__``; the order in which layers
    run does not, so it is what lets the grader pair these tensors with a reference network's.
    Tensors of modules that never ran follow in registration order.
    """
    import torch

    model = _module(model)
    order: list[str] = []
    hooks = []
    for prefix, mod in torch.nn.Module.named_modules(model):
        own = [n for n, _ in mod.named_parameters(recurse=False)] + [n for n, _ in mod.named_buffers(recurse=False)]
        if own:
            names = [f"{prefix}.{n}" if prefix else n for n in own]
            hooks.append(mod.register_forward_pre_hook(lambda _m, _i, names=names: order.extend(
                n for n in names if n not in order)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    rest = [n for n in torch.nn.Module.state_dict(model) if n not in order]
    return order + rest


# -- figures --------------------------------------------------------------------------------------
# A figure stays in the worker; the grader asks for a plain description of what it shows, or a PNG.
MAX_POINTS = 10_000


def _figure(fig: Any) -> Any:
    from matplotlib.figure import FigureBase

    if not isinstance(fig, FigureBase):
        raise TypeError(f"expected a matplotlib Figure, got {type(fig).__name__}")
    return fig


def _floats(values: Any) -> list | None:
    """Line data as plain floats (None when it is not numeric, e.g. category labels)."""
    import numpy as np

    try:
        arr = np.asarray(values, dtype=float).ravel()[:MAX_POINTS]
    except (TypeError, ValueError):
        return None
    return [float(v) for v in arr]


def _label(artist: Any) -> str:
    # matplotlib names unlabelled artists "_child0", "_line1", ...: those have no label.
    text = str(artist.get_label() or "")
    return "" if text.startswith("_") else text


def _image_info(image: Any) -> dict:
    arr = image.get_array()
    cmap = image.get_cmap()
    return {"shape": list(getattr(arr, "shape", ())), "cmap": getattr(cmap, "name", None)}


def _color(artist: Any) -> str | None:
    from matplotlib.colors import to_hex

    try:
        return to_hex(artist.get_color())
    except (AttributeError, TypeError, ValueError):
        return None


def _legend_colors(legend: Any) -> list:
    # A legend built from (handles, labels) leaves the lines unlabelled; its proxies keep their colours.
    handles = getattr(legend, "legend_handles", None) or getattr(legend, "legendHandles", [])
    return [_color(h) for h in handles]


def _axes_info(ax: Any) -> dict:
    legend = ax.get_legend()
    return {
        "title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
        "lines": [{"label": _label(line), "n": len(line.get_xdata()), "x": _floats(line.get_xdata()),
                   "y": _floats(line.get_ydata()), "color": _color(line)} for line in ax.get_lines()],
        "images": [_image_info(im) for im in ax.get_images()],
        "collections": [type(c).__name__ for c in ax.collections],
        "legend": None if legend is None else [t.get_text() for t in legend.get_texts()],
        "legend_colors": None if legend is None else _legend_colors(legend),
        "visible": bool(ax.get_visible()),
        "axis_on": bool(ax.axison),
    }


@helper
def figure_info(fig: Any) -> dict:
    """What a figure shows: per axes its title, axis labels, lines (label, data, colour), images (shape, colormap),
    other collections and legend entries (texts and colours); plus the figure's suptitle and legends."""
    fig = _figure(fig)
    suptitle = getattr(fig, "_suptitle", None)
    return {
        "axes": [_axes_info(ax) for ax in fig.get_axes()],
        "suptitle": suptitle.get_text() if suptitle is not None else "",
        "legends": [[t.get_text() for t in leg.get_texts()] for leg in fig.legends],
    }


@helper
def figure_png(fig: Any, dpi: int = 60) -> bytes:
    """The figure rendered to PNG bytes (Agg), for a person to look at or a grader to decode."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = _figure(fig)
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)  # attaches itself as fig.canvas; pyplot figures under Agg already have one
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=int(dpi))
    return buf.getvalue()


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


# Hyper-parameters module_config reports when a module has them (conv, pool, norm, linear, dropout layers).
CONFIG_KEYS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
               "padding_mode", "ceil_mode", "output_size", "num_features", "in_features", "out_features", "p")


def _config_value(value: Any) -> Any:
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, (tuple, list)) and all(type(v) in (int, float) for v in value):
        return tuple(value)
    return str(value)[:200]


@helper
def module_config(module: Any) -> dict:
    """A module's class, the class names of its ancestry and its hyper-parameters (bias: whether it has one)."""
    module = _module(module)
    config = {k: _config_value(getattr(module, k)) for k in CONFIG_KEYS if hasattr(module, k)}
    if hasattr(module, "bias"):
        config["bias"] = module.bias is not None
    return {"type": type(module).__name__, "mro": [c.__name__ for c in type(module).__mro__][:30], "config": config}


@helper
def layer_trace(model: Any, x: Any) -> dict:
    """Every leaf module that runs on ``x``, in the order it runs, with its config and its input and output
    shapes; plus the model's output. Eval mode without autograd; the mode is restored afterwards."""
    import torch

    model = _module(model)
    calls: list = []

    def note(mod: Any, inputs: tuple, output: Any) -> None:
        first = inputs[0] if inputs else None
        calls.append({**module_config(mod),
                      "in_shape": tuple(first.shape) if isinstance(first, torch.Tensor) else None,
                      "out_shape": tuple(output.shape) if isinstance(output, torch.Tensor) else None})

    hooks = [m.register_forward_hook(note) for m in torch.nn.Module.modules(model)
             if not any(True for _ in m.children())]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return {"layers": calls, "output": out}


@helper
def figure_images(fig: Any, lut_size: int = 16) -> list:
    """Per axes of a figure, its images: the data each shows (float64, masked cells as NaN) and its colormap
    sampled at ``lut_size`` points (RGBA rows), so the grader can judge both by value, not by name."""
    import numpy as np

    out = []
    for ax in _figure(fig).get_axes():
        images = []
        for image in ax.get_images():
            data = np.ma.filled(np.ma.asarray(image.get_array(), dtype=float), np.nan)
            lut = np.asarray(image.get_cmap()(np.linspace(0.0, 1.0, int(lut_size))), dtype=float)
            images.append({"data": np.ascontiguousarray(data), "lut": lut})
        out.append(images)
    return out


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


@helper
def build_nested(blocks: list, seed: int = 0) -> Any:
    """An nn.Sequential of nn.Sequential blocks, block i built by ``build_sequential(blocks[i], seed + i)``.

    Nesting is what tells apart a shape tracer that visits leaf layers from one that only loops over
    the top-level children of a flat nn.Sequential.
    """
    import torch

    return torch.nn.Sequential(*(build_sequential(spec, seed + i) for i, spec in enumerate(blocks)))


@helper
def leaf_output_shapes(model: Any, x: Any) -> list:
    """The output shape of every leaf module, in the order they run on ``x`` (eval mode, no autograd)."""
    import torch

    model = _module(model)
    shapes: list[list[int]] = []
    leaves = [m for m in torch.nn.Module.modules(model) if not any(True for _ in m.children())]
    hooks = [m.register_forward_hook(lambda _m, _i, out: shapes.append(list(out.shape))) for m in leaves]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
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
