"""Grader for exercise 7: the retina CNN's outputs, and every DESIGN figure checked against what the model does."""
from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from cnngrade.checks import expect_int, is_integral, show
from cnngrade.client import Handle
from cnngrade.errors import StudentError
from cnngrade.measure import Layer, receptive_field

SIDE = 512
LESION = 64          # pixels a lesion can span: one final unit must see at least this much
INPUT_SEED = 7       # fixed, so tests sharing a memoised forward pass see the same images
DESIGN_KEYS = ("conv_layers", "filters", "final_feature_map", "feature_extractor_params", "receptive_field")
POOLS = ("MaxPool2d", "AvgPool2d")


def images(n: int, seed: int = INPUT_SEED) -> torch.Tensor:
    return torch.rand(n, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(seed))


def build(submission, **kwargs: Any) -> Handle:
    model = submission.build_retina_cnn(**kwargs)
    call = f"build_retina_cnn({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    assert isinstance(model, Handle), f"{call} returned {show(model)}; expected a torch.nn.Module"
    return model


def part(submission, model: Handle, name: str) -> Handle:
    """model.features or model.classifier, which must be a torch.nn.Module."""
    try:
        value = model.attr(name)
    except StudentError as exc:
        if exc.is_a("AttributeError"):
            raise AssertionError(f"the model has no .{name} attribute") from None
        raise
    if isinstance(value, Handle):
        try:
            submission.helper("module_config", value)
            return value
        except StudentError as exc:
            if not exc.is_a("TypeError"):
                raise
    raise AssertionError(f"model.{name} is {show(value)}; expected a torch.nn.Module")


def expect_shape(value: Any, shape: tuple[int, ...], call: str) -> None:
    if not isinstance(value, torch.Tensor):
        raise AssertionError(f"{call} returned {show(value)} ({type(value).__name__}); expected a tensor")
    assert tuple(value.shape) == shape, f"{call} returned shape {tuple(value.shape)}; expected {shape}"


def default_model(submission) -> Handle:
    """build_retina_cnn(), one instance shared by the tests, so their forward passes see the same weights."""
    return submission.memo("model", lambda: build(submission))


def batch_logits(submission) -> Any:
    """The model's output on two images (the first is the image the features trace uses)."""
    return submission.memo("batch_logits", lambda: submission.helper(
        "forward", default_model(submission), torch.cat([images(1), images(1, INPUT_SEED + 1)])))


def features_trace(submission) -> dict:
    """The layers model.features runs on one 512 x 512 image, in order, and its output (one forward pass)."""
    return submission.memo("features_trace", lambda: submission.helper(
        "layer_trace", part(submission, default_model(submission), "features"), images(1)))


def test_output_shape(submission):
    expect_shape(batch_logits(submission), (2, 5), "build_retina_cnn() on a (2, 3, 512, 512) batch")


def test_num_classes(submission):
    out = submission.helper("forward", build(submission, num_classes=2), images(1))
    expect_shape(out, (1, 2), "build_retina_cnn(num_classes=2) on a (1, 3, 512, 512) batch")


def test_features_and_classifier(submission):
    """.features and .classifier exist, and classifier(features(x)) is what the model outputs."""
    classifier = part(submission, default_model(submission), "classifier")
    feats = features_trace(submission)["output"]
    assert isinstance(feats, torch.Tensor) and feats.dim() == 4, \
        f"model.features returned {show(feats)} for one image; expected a (1, C, H, W) tensor"
    try:
        out = submission.helper("forward", classifier, feats)
    except StudentError:  # the model may flatten between the two parts, as the exercise allows
        out = submission.helper("forward", classifier, feats.flatten(1))
    logits = batch_logits(submission)
    expect_shape(out, (1, 5), "model.classifier(model.features(x)) for one image")
    assert isinstance(logits, torch.Tensor) and logits.shape[0] == 2 and torch.allclose(
        out.double(), logits[:1].double(), rtol=1e-3, atol=1e-4), \
        "model(x) differs from model.classifier(model.features(x)): the model must run .features, then .classifier"


# -- what the features stack really is ---------------------------------------------------------------
def _first(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) else value


def spatial_layers(trace: dict) -> list[Layer]:
    """The convs and pools that ran, in order, as (kind, kernel, stride, dilation) along the image height.

    Layers that keep the spatial size (ReLU, BatchNorm, Dropout) do not change the receptive field. A shape
    that changes between two recorded layers means work done outside any layer (a functional call), which
    the grader cannot see, so it refuses to guess.
    """
    layers: list[Layer] = []
    shape = (1, 3, SIDE, SIDE)
    for entry in trace["layers"]:
        kind, cfg = entry["type"], entry["config"]
        if entry["in_shape"] != shape:
            raise AssertionError(f"model.features changes the shape from {shape} to {entry['in_shape']} outside its "
                                 f"layers, before its {kind}: write every conv and pool as a layer module (not a "
                                 "functional call in forward) so its receptive field can be measured")
        shape = entry["out_shape"]
        if "Conv2d" in entry["mro"]:
            layers.append(("conv", _first(cfg["kernel_size"]), _first(cfg["stride"]), _first(cfg["dilation"])))
        elif any(p in entry["mro"] for p in POOLS) and _first(cfg.get("dilation", 1)) == 1:
            stride = cfg.get("stride") or cfg["kernel_size"]
            layers.append(("pool", _first(cfg["kernel_size"]), _first(stride), 1))
        elif entry["in_shape"][-2:] != entry["out_shape"][-2:]:
            raise AssertionError(f"model.features contains a {kind} that changes the spatial size; the grader "
                                 "measures receptive fields through Conv2d, MaxPool2d and AvgPool2d only")
    if tuple(trace["output"].shape) != shape:
        raise AssertionError("model.features changes the shape after its last layer, outside any layer module")
    return layers


def true_value(submission, key: str) -> Any:
    """What DESIGN[key] should be, computed on the trusted side from the student's model."""
    if key == "feature_extractor_params":
        shapes = submission.helper("parameter_shapes", part(submission, default_model(submission), "features"))
        return sum(math.prod(shape) for _, shape, _ in shapes)
    trace = features_trace(submission)
    if key == "final_feature_map":
        return tuple(trace["output"].shape[1:])
    convs = [e["config"] for e in trace["layers"] if "Conv2d" in e["mro"]]
    if key == "conv_layers":
        return len(convs)
    if key == "filters":
        return [c["out_channels"] for c in convs]
    return receptive_field(spatial_layers(trace))


def design(submission) -> dict:
    value = submission.value("DESIGN")
    assert isinstance(value, dict), f"DESIGN should be a dict, got {type(value).__name__}"
    return value


@pytest.mark.parametrize("key", DESIGN_KEYS)
def test_design(submission, key):
    claim = design(submission).get(key)
    truth = true_value(submission, key)
    if isinstance(truth, int):
        ok = is_integral(claim) and int(claim) == truth
    else:
        ok = isinstance(claim, (list, tuple)) and all(is_integral(v) for v in claim) and \
            [int(v) for v in claim] == list(truth)
    assert ok, f'DESIGN["{key}"] is {show(claim)}, but the model build_retina_cnn() returns gives {show(truth)}'


def test_receptive_field_covers_lesions(submission):
    measured = true_value(submission, "receptive_field")
    assert measured >= LESION, f"one unit of model.features sees only {measured} x {measured} pixels; lesions " \
                               f"span about {LESION}, so the receptive field must be at least {LESION}"


def brief_pattern(convs: int) -> list[Layer]:
    """``convs`` 3x3 stride-1 convs with a 2x2 stride-2 max pool after every second one (measured after the last conv)."""
    layers: list[Layer] = []
    for i in range(1, convs + 1):
        layers.append(("conv", 3, 1, 1))
        if i % 2 == 0 and i < convs:
            layers.append(("pool", 2, 2, 1))
    return layers


def test_min_conv_layers(submission):
    answers = submission.value("ANSWERS")
    assert isinstance(answers, dict), f"ANSWERS should be a dict, got {type(answers).__name__}"
    fewest = next(n for n in range(1, 64) if receptive_field(brief_pattern(n)) >= LESION)
    expect_int(answers.get("min_conv_layers"), fewest, 'ANSWERS["min_conv_layers"]')
