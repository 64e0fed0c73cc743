"""Grader for exercise 2: image loading, a seeded Conv2d, its feature maps and their figure, all checked by value."""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image
from torchvision.transforms import ToTensor

from cnngrade.checks import show
from cnngrade.client import Handle
from cnngrade.errors import StudentError

# The file formats each PIL mode is written in; every pair here reopens in the same mode.
FORMATS = {
    "L": ("PNG", "TIFF", "BMP", "JPEG"), "RGB": ("PNG", "TIFF", "BMP", "JPEG"), "RGBA": ("PNG", "TIFF"),
    "P": ("PNG", "TIFF", "BMP", "GIF"), "LA": ("PNG", "TIFF"), "I;16": ("PNG", "TIFF"), "1": ("PNG", "TIFF", "BMP"),
}
EXTENSIONS = {"PNG": "png", "TIFF": "tif", "BMP": "bmp", "JPEG": "jpg", "GIF": "gif"}
CHANNELS = {"L": 0, "RGB": 3, "RGBA": 4, "LA": 2}
sides = st.integers(1, 40)
seeds = st.integers(0, 2**32 - 1)


def random_image(mode: str, height: int, width: int, seed: int) -> Image.Image:
    """An image of the given PIL mode filled with random pixels (and a random palette for mode P)."""
    rng = np.random.default_rng(seed)
    if mode == "1":
        return Image.fromarray(rng.random((height, width)) < 0.5)
    if mode == "P":
        img = Image.frombytes("P", (width, height), rng.integers(0, 256, height * width, dtype=np.uint8).tobytes())
        img.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tobytes())
        return img
    if mode == "I;16":
        return Image.frombytes("I;16", (width, height), rng.integers(0, 65536, (height, width), dtype="<u2").tobytes())
    shape = (height, width, CHANNELS[mode]) if CHANNELS[mode] else (height, width)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8))


def encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def expect_tensor(value: Any, shape: tuple[int, ...], call: str) -> torch.Tensor:
    """The student's result must be a float32 tensor of exactly this shape."""
    if not isinstance(value, torch.Tensor):
        raise AssertionError(f"{call} returned {show(value)} ({type(value).__name__}); expected a torch.Tensor")
    assert value.dtype == torch.float32, f"{call} returned a tensor of dtype {value.dtype}; expected torch.float32"
    assert tuple(value.shape) == shape, f"{call} returned shape {tuple(value.shape)}; expected {shape}"
    return value


def expect_values(got: torch.Tensor, expected: torch.Tensor, call: str, tol: float) -> None:
    diff = (got.double() - expected.double()).abs()
    worst = diff.max().item() if diff.numel() else 0.0
    if not worst <= tol:  # also catches NaN
        where = tuple(int(i) for i in np.unravel_index(int(diff.nan_to_num(float("inf")).argmax()), diff.shape))
        raise AssertionError(f"{call}: value at index {where} is {got[where].item():.6g}, expected "
                             f"{expected[where].item():.6g} (largest difference {worst:.3g})")


# -- load_grayscale -------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", list(FORMATS), ids=lambda m: m.replace(";", ""))
@settings(max_examples=8)
@given(data=st.data(), height=sides, width=sides, seed=seeds)
def test_load_grayscale(submission, mode, data, height, width, seed):
    fmt = data.draw(st.sampled_from(FORMATS[mode]), label="format")
    raw = encode(random_image(mode, height, width, seed), fmt)
    with Image.open(io.BytesIO(raw)) as img:
        expected = ToTensor()(img.convert("L"))[None]
    path = submission.helper("write_input_file", f"image.{EXTENSIONS[fmt]}", raw)
    call = f"load_grayscale(<{width}x{height} {fmt} image of mode {mode}>)"
    got = expect_tensor(submission.load_grayscale(path), (1, 1, height, width), call)
    if got.numel() and got.max().item() > 1.0:
        raise AssertionError(f"{call} has values up to {got.max().item():g}; ToTensor scales pixels to [0, 1]")
    expect_values(got, expected, call, 1e-6)


# -- make_conv --------------------------------------------------------------------------------------
def conv_handle(submission, seed: int) -> Handle:
    """make_conv(seed), which must at least be a torch.nn.Module (it stays in the worker)."""
    conv = submission.make_conv(seed)
    if isinstance(conv, Handle):
        try:
            submission.helper("module_config", conv)
            return conv
        except StudentError as exc:  # the helper's TypeError: not a module
            if not exc.is_a("TypeError"):
                raise
    raise AssertionError(f"make_conv({seed}) returned {show(conv)}; expected a torch.nn.Conv2d")


def conv_problems(desc: dict) -> list[str]:
    """Differences between a module's description and Conv2d(1, 8, 3, padding=1), stride 1, with bias."""
    if "Conv2d" not in desc["mro"]:
        return [f"it is a {desc['type']}, not a torch.nn.Conv2d"]
    cfg = desc["config"]
    wanted = {"in_channels": 1, "out_channels": 8, "kernel_size": (3, 3), "stride": (1, 1), "dilation": (1, 1),
              "groups": 1, "padding_mode": "zeros", "bias": True}
    problems = [f"{k} is {show(cfg.get(k))}, expected {show(v)}" for k, v in wanted.items() if cfg.get(k) != v]
    if cfg.get("padding") not in ((1, 1), "same"):  # "same" pads a 3x3 stride-1 kernel by exactly 1
        problems.append(f"padding is {show(cfg.get('padding'))}, expected 1 (keeps height and width)")
    return problems


def test_make_conv_layer(submission, seed):
    problems = conv_problems(submission.helper("module_config", conv_handle(submission, seed)))
    assert not problems, f"make_conv({seed}) should be Conv2d(1, 8, kernel_size=3, padding=1), stride 1, with " \
                         f"bias: {'; '.join(problems)}"


def weights(submission, seed: int) -> dict[str, torch.Tensor]:
    return submission.helper("state_dict", conv_handle(submission, seed))


@settings(max_examples=5)
@given(seed=seeds)
def test_make_conv_same_seed(submission, seed):
    first, second = weights(submission, seed), weights(submission, seed)
    assert set(first) == set(second), f"make_conv({seed}) gave layers with different parameters on two calls"
    for name in first:
        assert torch.equal(first[name], second[name]), \
            f"make_conv({seed}) called twice gave different {name}: seed the random generator inside make_conv"


@settings(max_examples=5)
@given(a=seeds, b=seeds)
def test_make_conv_different_seeds(submission, a, b):
    assume(a != b)
    wa, wb = weights(submission, a), weights(submission, b)
    assert "weight" in wa and "weight" in wb, f"make_conv({a}) has no weight parameter"
    assert not torch.equal(wa["weight"], wb["weight"]), \
        f"make_conv({a}) and make_conv({b}) have identical weights: the weights should depend on the seed"


# -- feature_maps -------------------------------------------------------------------------------------
def reference_conv(submission, seed: int) -> tuple[Handle, dict[str, torch.Tensor]]:
    """A Conv2d(1, 8, 3, padding=1) built in the worker by the grader, and its weights."""
    seq = submission.helper("build_sequential", [["Conv2d", {"in_channels": 1, "out_channels": 8,
                                                             "kernel_size": 3, "padding": 1}]], seed)
    conv = seq.method("__getitem__", 0)
    return conv, submission.helper("state_dict", conv)


def random_batch(height: int, width: int, seed: int) -> torch.Tensor:
    return torch.rand(1, 1, height, width, generator=torch.Generator().manual_seed(seed))


@settings(max_examples=10)
@given(height=sides, width=sides, seed=seeds)
def test_feature_maps_values(submission, height, width, seed):
    conv, w = reference_conv(submission, seed)
    image = random_batch(height, width, seed)
    call = f"feature_maps(Conv2d(1, 8, 3, padding=1), <image of shape {tuple(image.shape)}>)"
    got = expect_tensor(submission.feature_maps(conv, image), (1, 8, height, width), call)
    expect_values(got, F.conv2d(image, w["weight"], w["bias"], padding=1), call, 1e-5)


def test_feature_maps_no_graph(submission, seed):
    conv, _ = reference_conv(submission, seed)
    info = submission.helper("call_autograd_info", submission.value("feature_maps"), conv, random_batch(9, 11, seed))
    assert info["requires_grad"] is not None, \
        f"feature_maps returned {show(info['value'])}; expected a torch.Tensor"
    assert not info["requires_grad"] and info["grad_fn"] is None, \
        f"feature_maps returned a tensor still attached to the autograd graph (grad_fn {info['grad_fn']}): " \
        "compute it inside torch.no_grad() or detach it"


@settings(max_examples=5)
@given(height=sides, width=sides, seed=seeds)
def test_feature_maps_of_make_conv(submission, height, width, seed):
    conv = conv_handle(submission, seed)
    w = submission.helper("state_dict", conv)
    assert isinstance(w.get("weight"), torch.Tensor) and w["weight"].shape == (8, 1, 3, 3), \
        f"make_conv({seed}) has no weight of shape (8, 1, 3, 3)"
    image = random_batch(height, width, seed)
    call = f"feature_maps(make_conv({seed}), <image of shape {tuple(image.shape)}>)"
    got = expect_tensor(submission.feature_maps(conv, image), (1, 8, height, width), call)
    expect_values(got, F.conv2d(image, w.get("weight"), w.get("bias"), padding=1), call, 1e-5)


# -- plot_feature_maps --------------------------------------------------------------------------------
def plotted(submission, seed: int) -> tuple[torch.Tensor, list[list[dict]]]:
    """Random maps, and per axes of the figure plot_feature_maps drew for them, that axes' images."""
    maps = torch.randn(1, 8, 7, 10, generator=torch.Generator().manual_seed(seed))
    fig = submission.plot_feature_maps(maps)
    per_axes = None
    if isinstance(fig, Handle):
        try:
            per_axes = submission.helper("figure_images", fig)
        except StudentError as exc:  # the helper's TypeError: the handle is not a figure
            if not exc.is_a("TypeError"):
                raise
    assert per_axes is not None, f"plot_feature_maps returned {show(fig)}; expected a matplotlib.figure.Figure"
    return maps, per_axes


def test_plot_eight_image_axes(submission, seed):
    _, per_axes = plotted(submission, seed)
    counts = [len(images) for images in per_axes if images]
    assert len(counts) == 8 and all(n == 1 for n in counts), \
        f"the figure should have 8 subplots, each showing one image; it has {len(counts)} axes with images " \
        f"(images per axes: {counts})"


def is_grey(lut: np.ndarray) -> bool:
    """A colormap is grey when every colour it produces has equal red, green and blue, and it is not constant."""
    rgb = lut[:, :3]
    return bool(np.allclose(rgb, rgb[:, :1], atol=1e-6) and np.ptp(rgb[:, 0]) > 0.5)


def test_plot_grey_colormap(submission, seed):
    _, per_axes = plotted(submission, seed)
    images = [im for axes in per_axes for im in axes]
    assert images, "the figure shows no image (use ax.imshow for each map)"
    coloured = [i for i, im in enumerate(images) if not is_grey(np.asarray(im["lut"]))]
    assert not coloured, f"{len(coloured)} of {len(images)} images use a colormap that is not grey: pass cmap='gray'"


def normalised(a: np.ndarray) -> np.ndarray | None:
    a = np.asarray(a, dtype=float)
    span = np.nanmax(a) - np.nanmin(a) if a.size else 0.0
    return (a - np.nanmin(a)) / span if np.isfinite(span) and span > 0 else None


def test_plot_shows_each_map(submission, seed):
    maps, per_axes = plotted(submission, seed)
    shown = [normalised(im["data"]) for axes in per_axes for im in axes]
    missing = []
    for i in range(maps.shape[1]):
        # imshow rescales each image to its own range, so a map shown after any increasing rescaling looks the same.
        want = normalised(maps[0, i].numpy())
        if not any(s is not None and s.shape == want.shape and np.allclose(s, want, atol=1e-4) for s in shown):
            missing.append(i)
    assert not missing, f"no image in the figure shows feature map(s) {missing} of the (1, 8, 7, 10) input " \
                        "(subplot i should show maps[0, i])"
