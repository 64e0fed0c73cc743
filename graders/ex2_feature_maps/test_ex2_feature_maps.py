"""Grader for exercise 2: image loading, a seeded Conv2d, its feature maps and their figure, all judged by behaviour."""
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

from cnngrade.graderkit import (
    Handle,
    StudentError,
    handle,
    image_panels,
    is_grey,
    mapping,
    render,
    resembles,
    show,
    tensor,
)

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


def grey_tensor(img: Image.Image) -> torch.Tensor:
    """torchvision's ``ToTensor()(img.convert("L"))[None]``, value for value: the uint8 pixels as float32 divided by
    255. Written out because importing torchvision (torch._dynamo with it) costs the grading process about as
    much as importing torch (tests/test_grader_speed.py checks the two agree)."""
    pixels = torch.from_numpy(np.array(img.convert("L"), dtype=np.uint8, copy=True))
    return pixels.to(torch.float32).div(255)[None, None]


def encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def expect_tensor(value: Any, shape: tuple[int, ...], call: str) -> torch.Tensor:
    """The student's result must be a float32 tensor of exactly this shape."""
    assert isinstance(value, torch.Tensor), \
        f"{call} returned {show(value)} ({type(value).__name__}); expected a torch.Tensor"
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
        expected = grey_tensor(img)
    path = submission.helper("write_input_file", f"image.{EXTENSIONS[fmt]}", raw)
    call = f"load_grayscale(<{width}x{height} {fmt} image of mode {mode}>)"
    got = expect_tensor(submission.load_grayscale(path), (1, 1, height, width), call)
    if got.numel() and got.max().item() > 1.0:
        raise AssertionError(f"{call} has values up to {got.max().item():g}; ToTensor scales pixels to [0, 1]")
    expect_values(got, expected, call, 1e-6)


# -- make_conv --------------------------------------------------------------------------------------
# make_conv is judged by what its layer computes on images the grader draws, checked against F.conv2d with
# the weights the layer claims (read strictly: a float (8, 1, 3, 3) weight and an (8,) bias), never by the
# kernel_size, stride or padding the object reports about itself.
def conv_handle(submission, seed: int) -> Handle:
    """make_conv(seed), which stays in the worker (a module is never plain data)."""
    return handle(submission.make_conv(seed), f"make_conv({seed})", "a torch.nn.Conv2d")


def claimed_weights(submission, conv: Handle, call: str, *, bias: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The weight and bias the layer says it holds, of the sizes the task fixes (checked before any use)."""
    try:
        state = mapping(submission.helper("state_dict", conv), f"{call}.state_dict()", max_items=64)
    except StudentError as exc:
        if not exc.is_a("TypeError"):
            raise
        raise AssertionError(f"{call} returned {show(conv)}; expected a torch.nn.Conv2d") from None
    if "weight" not in state:
        raise AssertionError(f"{call} has no weight parameter; expected Conv2d(1, 8, kernel_size=3, padding=1)")
    weight = tensor(state["weight"], f"{call}.weight", floating=True, max_elements=10_000)
    assert tuple(weight.shape) == (8, 1, 3, 3), \
        f"{call}.weight has shape {tuple(weight.shape)}; Conv2d(1, 8, kernel_size=3) has weights of shape (8, 1, 3, 3)"
    if state.get("bias") is None:
        assert not bias, f"{call} has no bias; Conv2d adds one per output channel unless bias=False"
        return weight, None
    return weight, tensor(state["bias"], f"{call}.bias", shape=(8,), floating=True)


def images_for(seed: int) -> torch.Tensor:
    """Two random grey images of a size drawn from the seed."""
    g = torch.Generator().manual_seed(seed)
    height, width = 5 + seed % 9, 6 + (seed // 9) % 11
    return torch.rand(2, 1, height, width, generator=g)


def conv_output(submission, conv: Handle, x: torch.Tensor, call: str, *, keep_size: bool = True) -> torch.Tensor:
    """The layer run on x in the worker (eval mode, no autograd): a bounded float tensor, of x's height and width
    with 8 channels when ``keep_size`` (the seed tests compare two outputs and leave the size to the others)."""
    try:
        out = submission.helper("forward", conv, x)
    except StudentError as exc:
        if not exc.is_a("TypeError"):
            raise
        raise AssertionError(f"{call} is not a torch.nn.Module that can be applied to images") from None
    out = tensor(out, f"{call}(<images of shape {tuple(x.shape)}>)", floating=True, max_elements=10 * x.numel())
    want = (x.shape[0], 8, x.shape[2], x.shape[3])
    assert not keep_size or tuple(out.shape) == want, \
        f"{call} applied to images of shape {tuple(x.shape)} gave shape {tuple(out.shape)}; expected {want} " \
        "(8 channels, height and width kept: kernel 3, padding 1, stride 1)"
    return out


def test_make_conv_layer(submission, seed):
    call = f"make_conv({seed})"
    conv = conv_handle(submission, seed)
    weight, bias = claimed_weights(submission, conv, call, bias=True)
    x = images_for(seed)
    got = conv_output(submission, conv, x, call)
    expected = F.conv2d(x.double(), weight.double(), bias.double(), padding=1)
    expect_values(got, expected, f"{call} applied to <images of shape {tuple(x.shape)}>", 1e-4)


@settings(max_examples=5)
@given(seed=seeds)
def test_make_conv_same_seed(submission, seed):
    x = images_for(seed)
    first = conv_output(submission, conv_handle(submission, seed), x, f"make_conv({seed})", keep_size=False)
    second = conv_output(submission, conv_handle(submission, seed), x, f"make_conv({seed})", keep_size=False)
    assert torch.equal(first, second), \
        f"two layers from make_conv({seed}) give different outputs on the same images: seed the random generator " \
        "inside make_conv"


@settings(max_examples=5)
@given(a=seeds, b=seeds)
def test_make_conv_different_seeds(submission, a, b):
    assume(a != b)
    x = images_for(a)
    first = conv_output(submission, conv_handle(submission, a), x, f"make_conv({a})", keep_size=False)
    second = conv_output(submission, conv_handle(submission, b), x, f"make_conv({b})", keep_size=False)
    assert not torch.equal(first, second), \
        f"make_conv({a}) and make_conv({b}) give identical outputs on the same images: the weights should " \
        "depend on the seed"


# -- feature_maps -------------------------------------------------------------------------------------
def grader_conv(submission, seed: int) -> tuple[Handle, torch.Tensor, torch.Tensor]:
    """A Conv2d(1, 8, 3, padding=1) in the worker holding weights the grader drew here, and those weights."""
    g = torch.Generator().manual_seed(seed)
    weight, bias = torch.rand(8, 1, 3, 3, generator=g) - 0.5, torch.rand(8, generator=g) - 0.5
    seq = submission.helper("build_sequential", [["Conv2d", {"in_channels": 1, "out_channels": 8,
                                                             "kernel_size": 3, "padding": 1}]], seed)
    conv = seq.method("__getitem__", 0)
    conv.method("load_state_dict", {"weight": weight, "bias": bias})
    return conv, weight, bias


def random_batch(height: int, width: int, seed: int) -> torch.Tensor:
    return torch.rand(1, 1, height, width, generator=torch.Generator().manual_seed(seed))


@settings(max_examples=10)
@given(height=sides, width=sides, seed=seeds)
def test_feature_maps_values(submission, height, width, seed):
    conv, weight, bias = grader_conv(submission, seed)
    image = random_batch(height, width, seed)
    call = f"feature_maps(Conv2d(1, 8, 3, padding=1), <image of shape {tuple(image.shape)}>)"
    got = expect_tensor(submission.feature_maps(conv, image), (1, 8, height, width), call)
    expect_values(got, F.conv2d(image, weight, bias, padding=1), call, 1e-5)


def test_feature_maps_no_graph(submission, seed):
    """Advice only: whether a graph is attached is seen by a helper inside the worker, which the student owns."""
    conv, _, _ = grader_conv(submission, seed)
    info = mapping(submission.helper("call_autograd_info", submission.value("feature_maps"), conv,
                                     random_batch(9, 11, seed)), "feature_maps", keys=("requires_grad", "grad_fn"))
    assert info["requires_grad"] is not None, "feature_maps returned no torch.Tensor"
    assert not info["requires_grad"] and info["grad_fn"] is None, \
        f"feature_maps returned a tensor still attached to the autograd graph (grad_fn {show(info['grad_fn'])}): " \
        "compute it inside torch.no_grad() or detach it"


@settings(max_examples=5)
@given(height=sides, width=sides, seed=seeds)
def test_feature_maps_of_make_conv(submission, height, width, seed):
    conv = conv_handle(submission, seed)
    weight, bias = claimed_weights(submission, conv, f"make_conv({seed})", bias=False)
    image = random_batch(height, width, seed)
    call = f"feature_maps(make_conv({seed}), <image of shape {tuple(image.shape)}>)"
    got = expect_tensor(submission.feature_maps(conv, image), (1, 8, height, width), call)
    expected = F.conv2d(image.double(), weight.double(), None if bias is None else bias.double(), padding=1)
    expect_values(got, expected, call, 1e-4)


# -- plot_feature_maps --------------------------------------------------------------------------------
# The figure is judged as the picture it draws: rendered to SVG in the worker, read here (graderkit.figures).
MAP_SHAPE = (9, 13)
PUBLIC_PLOT_SEED = 2024   # the maps of the one figure both public plot tests judge; the hidden test draws its own


def plotted(submission, seed: int, metrics: dict | None = None) -> tuple[np.ndarray, list]:
    """Random maps, and the image panels of the figure plot_feature_maps drew for them."""
    maps = torch.randn(1, 8, *MAP_SHAPE, generator=torch.Generator().manual_seed(seed))
    drawing = render(submission, submission.plot_feature_maps(maps), "plot_feature_maps(<maps of shape "
                     f"{tuple(maps.shape)}>)", metrics)
    return maps[0].numpy(), image_panels(drawing)


def public_plot(submission, metrics: dict | None = None) -> list:
    """The image panels of one figure for both public plot tests: plotting and rendering it in the worker is most
    of their cost, so it is drawn once; its PNG goes to the ``metrics`` of a test that passes them."""
    def draw() -> tuple[list, dict]:
        png: dict = {}
        _, panels = plotted(submission, PUBLIC_PLOT_SEED, png)
        return panels, png

    panels, png = submission.memo("public_plot", draw)
    if metrics is not None:
        metrics.update(png)
    return panels


def test_plot_eight_image_axes(submission, metrics):
    panels = public_plot(submission, metrics)
    counts = [len(p) for p in panels]
    assert len(counts) == 8 and all(n == 1 for n in counts), \
        f"the figure should have 8 subplots, each showing one image; it draws {len(counts)} panels with images " \
        f"(images per panel: {counts})"


def test_plot_grey_colormap(submission):
    panels = public_plot(submission)
    pictures = [pic for panel in panels for pic in panel]
    assert pictures, "the figure shows no image (use ax.imshow for each map)"
    coloured = [i for i, pic in enumerate(pictures) if not is_grey(pic)]
    assert not coloured, f"{len(coloured)} of {len(pictures)} images are not drawn in shades of grey " \
                         "(red = green = blue): pass cmap='gray'"


def test_plot_shows_each_map(submission, seed):
    maps, panels = plotted(submission, seed)
    pictures = [pic for panel in panels for pic in panel]
    # imshow rescales each image to its own range, so a map drawn after any affine rescaling looks the same.
    missing = [i for i in range(len(maps)) if not any(resembles(pic, maps[i]) for pic in pictures)]
    assert not missing, f"no image in the figure shows feature map(s) {missing} of the (1, 8, {MAP_SHAPE[0]}, " \
                        f"{MAP_SHAPE[1]}) input (subplot i should show maps[0, i])"
