"""Grader for exercise 7: the retina CNN's outputs, and every DESIGN figure checked against what the model does.

Trust: the student's module owns the worker, so nothing a layer says about itself (kernel_size, stride,
its class name) and no helper's description of the model is taken as true. What counts is behaviour on
inputs the grader chose: the output shapes of model.features; its receptive field, measured from its
outputs (cnngrade/graderkit/rf.py); and, for the counts of layers and parameters, the parameter tensors
the student's process lists, each of which must change features(x) when the grader changes its values.
Which module a tensor belongs to, and the order the layers run in, are only reported by the worker: the
order of DESIGN["filters"] is advice. Every check runs on one model whose features hold weights the grader
drew (written before its first forward pass), so the 512 x 512 forward passes, the costly part, are
shared: the output checks' image is the first one the receptive-field measurement probes.

Budgets: sizes the student's process reports are bounded before anything is allocated here (at most
rf.MAX_PARAMETER_ELEMENTS grader-drawn weights, two draws of them, about 240 MB at worst; feature maps read
back in chunks of MAX_OUTPUT_ELEMENTS; probe images are the grader's own, at most 8 of 512 x 512 at once).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from cnngrade.graderkit import (
    BadValue,
    Handle,
    Layer,
    StudentError,
    expect_int,
    handle,
    receptive_field,
    rf,
    show,
    values,
)

SIDE = rf.SIDE       # 512: the images the design is for
LESION = 64          # pixels a lesion can span: one final unit must see at least this much
INPUT_SEED = 7       # fixed, so tests sharing a memoised forward pass see the same images
WEIGHT_SEED = 7007   # the grader's weights for model.features (two draws: WEIGHT_SEED and WEIGHT_SEED + 1)
PARAMETER_SIDES = (64, 128, 256, SIDE)   # the parameter check runs on the smallest of these the features accept
MAX_CHANNELS = 1_000_000
MAX_OUTPUT_ELEMENTS = 8_000_000          # feature maps read back per call by the parameter check
DESIGN_KEYS = ("conv_layers", "filters", "final_feature_map", "feature_extractor_params", "receptive_field")


def images(n: int, seed: int = INPUT_SEED, side: int = SIDE) -> torch.Tensor:
    return torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(seed))


def build(submission, **kwargs: Any) -> Handle:
    model = submission.build_retina_cnn(**kwargs)
    return handle(model, f"build_retina_cnn({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})")


def part(submission, model: Handle, name: str) -> Handle:
    """model.features or model.classifier, which must be a torch.nn.Module."""
    try:
        value = model.attr(name)
    except StudentError as exc:
        if exc.is_a("AttributeError"):
            raise AssertionError(f"the model has no .{name} attribute") from None
        raise
    if isinstance(value, Handle) and submission.helper("is_module", value) is True:
        return value
    raise AssertionError(f"model.{name} is {show(value)}; expected a torch.nn.Module")


def expect_shape(value: Any, shape: tuple[int, ...], call: str) -> torch.Tensor:
    out = values.tensor(value, call)
    assert tuple(out.shape) == shape, f"{call} returned shape {tuple(out.shape)}; expected {shape}"
    return out


def remembered(submission, key: str, compute: Callable[[], Any]) -> Any:
    """``submission.memo`` that also keeps a failure, so every test that needs a costly result which failed
    fails with the same message instead of paying for it again."""
    def attempt() -> tuple[bool, Any]:
        try:
            return True, compute()
        except (AssertionError, StudentError) as exc:
            return False, exc
    ok, value = submission.memo(key, attempt)
    if not ok:
        raise value
    return value


def full_image() -> torch.Tensor:
    """The 512 x 512 image of the output checks, which the receptive-field measurement probes first: one forward
    pass of model.features on it serves both (rf.base_image)."""
    return rf.base_image(SIDE, INPUT_SEED)


def probe_model(submission) -> Handle:
    """build_retina_cnn(), one instance for every check: its .features take the grader's weights (a network that
    initialises its weights to zeros or constants hides what it computes), and its outputs are compared with
    each other, so every forward pass sees the same weights."""
    return submission.memo("probe_model", lambda: build(submission))


def weighted(submission) -> None:
    """The grader's weights written into the model's features before any forward pass; a failed write leaves the
    weights they hold, which fails only the checks that rest on the writes (the DESIGN counts)."""
    try:
        grader_weights(submission)
    except (AssertionError, StudentError):
        pass


def batch_logits(submission) -> Any:
    """The model's output on two images (the first is the image features_output uses)."""
    def compute() -> Any:
        weighted(submission)
        return submission.helper("forward", probe_model(submission),
                                 torch.cat([full_image(), images(1, INPUT_SEED + 1)]))
    return submission.memo("batch_logits", compute)


def features_output(submission) -> torch.Tensor:
    """model.features on the 512 x 512 image: a (1, C, H, W) tensor."""
    def compute() -> torch.Tensor:
        weighted(submission)
        out = submission.helper("forward", probe_features(submission), full_image())
        call = "model.features on a (1, 3, 512, 512) image"
        out = values.tensor(out, call, floating=True)
        assert out.dim() == 4 and out.shape[0] == 1, f"{call} returned shape {tuple(out.shape)}; expected (1, C, H, W)"
        return out
    return remembered(submission, "features_output", compute)


def test_output_shape(submission):
    expect_shape(batch_logits(submission), (2, 5), "build_retina_cnn() on a (2, 3, 512, 512) batch")


def test_num_classes(submission):
    out = submission.helper("forward", build(submission, num_classes=2), images(1))
    expect_shape(out, (1, 2), "build_retina_cnn(num_classes=2) on a (1, 3, 512, 512) batch")


def test_features_and_classifier(submission):
    """.features and .classifier exist, and classifier(features(x)) is what the model outputs."""
    classifier = part(submission, probe_model(submission), "classifier")
    feats = features_output(submission)
    try:
        out = submission.helper("forward", classifier, feats)
    except StudentError:  # the model may flatten between the two parts, as the exercise allows
        out = submission.helper("forward", classifier, feats.flatten(1))
    out = expect_shape(out, (1, 5), "model.classifier(model.features(x)) for one image")
    logits = expect_shape(batch_logits(submission), (2, 5), "build_retina_cnn() on a (2, 3, 512, 512) batch")
    assert torch.allclose(out.double(), logits[:1].double(), rtol=1e-3, atol=1e-4), \
        "model(x) differs from model.classifier(model.features(x)): the model must run .features, then .classifier"


# -- the grader's weights in the model's features -------------------------------------------------------
def probe_features(submission) -> Handle:
    """.features of the shared model, which take the grader's weights."""
    return submission.memo("probe_features", lambda: part(submission, probe_model(submission), "features"))


def claimed_parameters(submission, feats: Handle) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every parameter the student's process says model.features holds, within budget."""
    call = "the parameters of model.features"
    raw = values.sequence(submission.helper("parameter_shapes", feats), call, max_items=rf.MAX_PARAMETER_TENSORS)
    out, total = [], 0
    for i, item in enumerate(raw):
        entry = values.sequence(item, f"{call}[{i}]", max_items=8)
        if len(entry) < 2:
            raise BadValue(f"{call}[{i}] is {show(entry)}; expected [name, shape, ...]")
        name = values.text(entry[0], f"{call}[{i}] name", max_chars=200)
        shape = values.shape(entry[1], f"{call}[{i}] shape")
        if shape is None or any(d < 0 or d > rf.MAX_PARAMETER_ELEMENTS for d in shape):
            raise BadValue(f"{call}: {name!r} has shape {show(entry[1])}; expected a list of sizes")
        total += math.prod(shape)
        if total > rf.MAX_PARAMETER_ELEMENTS:
            raise BadValue(f"model.features holds more than {rf.MAX_PARAMETER_ELEMENTS:,} parameter values; the "
                           "grader writes its own random weights into at most that many")
        out.append((name, shape))
    return out


def differs(new: torch.Tensor, old: torch.Tensor) -> bool:
    scale = max(new.abs().max().item(), old.abs().max().item()) if new.numel() else 0.0
    return bool(new.numel()) and (new.double() - old.double()).abs().max().item() > rf.REL_TOL * scale


@dataclass(frozen=True)
class Weights:
    """The parameters of model.features as listed by the student's process, and what behaviour showed."""

    names: list[str]
    shapes: list[tuple[int, ...]]
    used: list[bool]     # replacing this tensor's values changed features(x)
    order: list[int]     # indices in the order their modules ran (reported by the worker: advice only)

    def kernels(self, in_run_order: bool = False) -> list[int]:
        """Conv kernels: 4-D (out_channels, in_channels / groups, kh, kw) tensors that features(x) uses."""
        indices = self.order if in_run_order else range(len(self.shapes))
        return [k for k in indices if len(self.shapes[k]) == 4 and self.used[k]]


def smallest_input(submission, feats: Handle) -> tuple[torch.Tensor, torch.Tensor]:
    """The smallest probe image model.features accepts (a parameter check per tensor is cheap there), and its output."""
    for side in PARAMETER_SIDES:
        x = images(1, INPUT_SEED + 2, side)
        try:
            out = submission.helper("forward", feats, x)
        except StudentError:
            if side == SIDE:
                raise
            continue
        call = f"model.features on a (1, 3, {side}, {side}) image"
        return x, values.tensor(out, call, floating=True, max_elements=MAX_OUTPUT_ELEMENTS)
    raise AssertionError("unreachable")  # the last size re-raises


def run_order(submission, feats: Handle, x: torch.Tensor, count: int) -> list[int]:
    """Parameter indices in the order their modules run, as the worker reports it; registration order if malformed."""
    try:
        order = [values.integer(k, "parameter run order") for k in values.sequence(
            submission.helper("parameter_run_order", feats, x), "parameter run order", max_items=count)]
    except (BadValue, StudentError):
        return list(range(count))
    return order if sorted(order) == list(range(count)) else list(range(count))


def grader_weights(submission) -> Weights:
    """Write grader-drawn weights into model.features, then replace each parameter tensor in turn with a second
    draw: a tensor that features(x) uses changes its output when its values change."""
    def compute() -> Weights:
        feats = probe_features(submission)
        x, _ = smallest_input(submission, feats)   # also a dry run: lazy layers get their shapes before they are read
        claimed = claimed_parameters(submission, feats)
        shapes = [shape for _, shape in claimed]
        first, second = rf.draw_parameters(shapes, WEIGHT_SEED), rf.draw_parameters(shapes, WEIGHT_SEED + 1)
        submission.helper("write_parameters", feats, first)
        before = values.tensor(submission.helper("forward", feats, x), "model.features with the grader's weights",
                               floating=True, max_elements=MAX_OUTPUT_ELEMENTS)
        used: list[bool] = []
        chunk = max(1, MAX_OUTPUT_ELEMENTS // max(1, before.numel()))
        for start in range(0, len(shapes), chunk):
            tensors = second[start:start + chunk]
            call = "model.features after the grader changed one parameter tensor"
            outs = values.sequence(submission.helper("outputs_after_writes", feats, x, start, tensors), call,
                                   length=len(tensors))
            for out in outs:
                out = values.tensor(out, call, shape=before.shape, floating=True)
                used.append(differs(out, before))
                before = out
        return Weights([n for n, _ in claimed], shapes, used, run_order(submission, feats, x, len(shapes)))
    return remembered(submission, "grader_weights", compute)


class WorkerProbe:
    """rf's view of the student's features: images in, the output shape and its centre unit out (validated).

    The first image of each size goes through the generic ``forward`` helper (the whole map comes back and the
    centre is read here; at 512 the output checks' forward of the same image); later batches through
    ``center_outputs``. rf compares every later answer with that first one, so the two helpers must agree:
    replacing one of them to fake a wider field shows up as a network whose outputs contradict themselves.
    """

    def __init__(self, submission, feats: Handle) -> None:
        self.submission, self.feats = submission, feats
        self.sides: set[int] = set()

    def __call__(self, batch: torch.Tensor) -> tuple[tuple[int, int, int], torch.Tensor]:
        side = batch.shape[-1]
        call = f"model.features on {batch.shape[0]} image(s) of {side} x {side}"
        try:
            if side not in self.sides:
                self.sides.add(side)
                if side == SIDE and torch.equal(batch, full_image()):   # forwarded once for the output checks
                    return self.known_map(features_output(self.submission), batch, call)
                return self.whole_map(batch, call)
            got = values.mapping(self.submission.helper("center_outputs", self.feats, batch), call,
                                 keys=("shape", "center"))
            shape = self.map_shape(got["shape"], batch, call)
            center = values.tensor(got["center"], call, shape=shape[:2], floating=True)
        except (StudentError, BadValue) as exc:
            if side < SIDE:   # too small for this design: the estimate on this size is skipped
                raise rf.Refused(str(exc)) from None
            raise
        return (shape[1], shape[2], shape[3]), center

    def whole_map(self, batch: torch.Tensor, call: str) -> tuple[tuple[int, int, int], torch.Tensor]:
        out = values.tensor(self.submission.helper("forward", self.feats, batch), call, floating=True)
        return self.known_map(out, batch, call)

    def known_map(self, out: torch.Tensor, batch: torch.Tensor, call: str) -> tuple[tuple[int, int, int], torch.Tensor]:
        _, c, h, w = self.map_shape(list(out.shape), batch, call)
        return (c, h, w), out[:, :, h // 2, w // 2]

    @staticmethod
    def map_shape(raw: Any, batch: torch.Tensor, call: str) -> tuple[int, int, int, int]:
        shape = values.shape(raw, call)
        if shape is None or len(shape) != 4 or shape[0] != batch.shape[0] or min(shape) < 1 or shape[1] > MAX_CHANNELS:
            raise BadValue(f"{call} returned a map of shape {show(raw)}; expected (N, C, H, W)")
        return shape[0], shape[1], shape[2], shape[3]


def measured_field(submission) -> rf.Field:
    """The receptive field of the centre unit of model.features on 512 x 512 images, with the grader's weights."""
    def compute() -> rf.Field:
        weighted(submission)   # a failed write leaves the features' own weights: the field is measured with those
        return rf.measure(WorkerProbe(submission, probe_features(submission)), seed=INPUT_SEED)
    return remembered(submission, "field", compute)


# -- DESIGN against behaviour -------------------------------------------------------------------------------
def design(submission) -> dict:
    return values.mapping(submission.value("DESIGN"), "DESIGN")


def unused_text(weights: Weights, indices: list[int]) -> str:
    names = ", ".join(f"{weights.names[k]} {tuple(weights.shapes[k])}" for k in indices[:5])
    more = f" and {len(indices) - 5} more" if len(indices) > 5 else ""
    return f"replacing the values of {names}{more} did not change model.features(x)"


def check_conv_layers(submission, claim: Any) -> None:
    weights = grader_weights(submission)
    count = len(weights.kernels())
    unused = [k for k in range(len(weights.shapes)) if len(weights.shapes[k]) == 4 and not weights.used[k]]
    note = f" ({unused_text(weights, unused)}, so those are not counted)" if unused else ""
    got = values.integer(claim, 'DESIGN["conv_layers"]')
    assert got == count, f'DESIGN["conv_layers"] is {got}, but model.features runs {count} convolution kernels' \
                         f" (4-D weight tensors that change its output when the grader changes them){note}"


def filters_claim(claim: Any) -> list[int]:
    items = values.sequence(claim, 'DESIGN["filters"]', max_items=10_000)
    return [values.integer(v, f'DESIGN["filters"][{i}]') for i, v in enumerate(items)]


def check_filters(submission, claim: Any) -> None:
    weights = grader_weights(submission)
    widths = [weights.shapes[k][0] for k in weights.kernels()]
    got = filters_claim(claim)
    assert sorted(got) == sorted(widths), \
        f'DESIGN["filters"] is {show(got)}, but the convolution kernels of model.features have {show(widths)} ' \
        "output channels (in the order they are registered)"
    channels = features_output(submission).shape[1]
    assert got and got[-1] == channels, \
        f'DESIGN["filters"] ends with {show(got[-1:])}, but model.features returns {channels} channels for a ' \
        "512 x 512 image: the last entry is the width of the last conv"


def check_final_feature_map(submission, claim: Any) -> None:
    truth = tuple(features_output(submission).shape[1:])
    got = values.shape(claim, 'DESIGN["final_feature_map"]')
    assert got == truth, f'DESIGN["final_feature_map"] is {show(claim)}, but model.features returns a ' \
                         f"(C, H, W) = {truth} map for one 512 x 512 image"


def check_feature_extractor_params(submission, claim: Any) -> None:
    weights = grader_weights(submission)
    unused = [k for k, used in enumerate(weights.used) if not used]
    assert not unused, f"{unused_text(weights, unused)}: every parameter of model.features must take part in " \
                       "its output for DESIGN's parameter count to describe the network"
    total = sum(math.prod(s) for s in weights.shapes)
    got = values.integer(claim, 'DESIGN["feature_extractor_params"]')
    assert got == total, f'DESIGN["feature_extractor_params"] is {got}, but the parameters of model.features ' \
                         f"hold {total:,} values"


def describe(found: rf.Field) -> str:
    if found.rows is None or found.cols is None:
        return "depends on no input pixel at all"
    size = f"{found.height} x {found.width}" if found.height != found.width else f"{found.height}"
    where = f"rows {found.rows[0]}..{found.rows[1]}, columns {found.cols[0]}..{found.cols[1]}"
    edge = ", reaching the image border" if found.clipped else ""
    return f"depends on input pixels in {where} (a field of {size}{edge})"


def field_agrees(claim: int, found: rf.Field) -> bool:
    """The claim equals the measured field along one axis, or, where the field reaches the image border on that
    axis (a global pool, a field wider than the image), is at least as large: the image cuts off the rest.

    Exact otherwise: the field of a central unit, away from the borders, is the theoretical one whatever the
    padding, and the measurement never finds a field larger than the real one."""
    for span, size in ((found.rows, found.height), (found.cols, found.width)):
        if span is None:
            continue
        at_border = span[0] == 0 or span[1] == found.side - 1
        if claim == size or (at_border and claim >= size):
            return True
    return False


def check_receptive_field(submission, claim: Any) -> None:
    found = measured_field(submission)
    got = values.integer(claim, 'DESIGN["receptive_field"]')
    assert field_agrees(got, found), \
        f'DESIGN["receptive_field"] is {got}, but the centre unit of model.features (with random weights the ' \
        f"grader wrote into it, measured by changing input pixels) {describe(found)}"


CHECKS = {"conv_layers": check_conv_layers, "filters": check_filters, "final_feature_map": check_final_feature_map,
          "feature_extractor_params": check_feature_extractor_params, "receptive_field": check_receptive_field}


@pytest.mark.parametrize("key", DESIGN_KEYS)
def test_design(submission, key):
    found = design(submission)
    assert key in found, f'DESIGN has no "{key}" entry (it has {show(sorted(map(str, found)))})'
    CHECKS[key](submission, found[key])


def test_filters_in_run_order(submission):
    """Advice: the order of DESIGN["filters"] is the order the convs run, which only the worker reports."""
    weights = grader_weights(submission)
    widths = [weights.shapes[k][0] for k in weights.kernels(in_run_order=True)]
    claim = design(submission).get("filters")
    got = filters_claim(claim)
    assert got == widths, f'DESIGN["filters"] is {show(got)}; the convs of model.features run with {show(widths)} ' \
                          "output channels, in that order"


def test_receptive_field_covers_lesions(submission):
    found = measured_field(submission)
    measured = min(found.height, found.width)
    assert measured >= LESION, f"the centre unit of model.features {describe(found)}; lesions span about {LESION} " \
                               f"pixels, so one unit must see at least {LESION} x {LESION}"


def brief_pattern(convs: int) -> list[Layer]:
    """``convs`` 3x3 stride-1 convs, a 2x2 stride-2 max pool after every second one (measured after the last conv)."""
    layers: list[Layer] = []
    for i in range(1, convs + 1):
        layers.append(("conv", 3, 1, 1))
        if i % 2 == 0 and i < convs:
            layers.append(("pool", 2, 2, 1))
    return layers


def test_min_conv_layers(submission):
    answers = values.answers(submission)
    fewest = next(n for n in range(1, 64) if receptive_field(brief_pattern(n)) >= LESION)
    expect_int(answers.get("min_conv_layers"), fewest, 'ANSWERS["min_conv_layers"]')
