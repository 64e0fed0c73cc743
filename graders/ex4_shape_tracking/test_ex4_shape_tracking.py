"""Grader for exercise 4: build_cnn checked by behaviour, trace_shapes and count_params on random architectures.

Shapes: the contract asks for a list of tuples of ints. A shape written as a list of ints (or a
torch.Size, which crosses the boundary as a tuple) describes the same thing and torch itself takes
either wherever a shape is expected, so each shape may be a tuple or a list of ints; what is graded
is the numbers, their order and that there is one shape per leaf layer call.
"""
from __future__ import annotations

import itertools
import numbers
from typing import Any

import torch
from hypothesis import given
from hypothesis import strategies as st

from cnngrade.checks import expect_int, show
from cnngrade.equivalence import assert_equivalent
from cnngrade.worker.helpers import build_nested, build_sequential, leaf_output_shapes

ANSWER_INPUT = (4, 3, 64, 64)  # the handout's question
EQUIVALENCE_INPUTS = [(2, 3, 32, 32), (1, 3, 20, 28), (3, 3, 8, 8)]  # odd sizes expose padding and pooling slips


def reference_cnn() -> torch.nn.Sequential:
    """The contract's network, built on the trusted side."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, 1)),
    )


# -- random architectures ----------------------------------------------------------------------------
@st.composite
def architectures(draw: st.DrawFn) -> tuple[list[list], tuple[int, ...]]:
    """Blocks of [layer_name, kwargs] specs that fit an input shape, and that shape.

    A spatial stage (convs, pools, batch norm, activations) may end in an optional flatten and
    fully connected stage; sizes are tracked as layers are drawn so every layer fits its input.
    """
    c, h, w = draw(st.integers(1, 4)), draw(st.integers(4, 20)), draw(st.integers(4, 20))
    shape = (draw(st.integers(1, 3)), c, h, w)
    spec: list[list] = []
    flat: int | None = None  # features once flattened
    for _ in range(draw(st.integers(1, 8))):
        if flat is None:
            kind = draw(st.sampled_from(["conv", "conv", "act", "pool", "bn", "dropout", "adaptive", "flatten"]))
        else:
            kind = draw(st.sampled_from(["linear", "act", "dropout"]))
        if kind == "conv":
            pad = draw(st.integers(0, 2))
            k = draw(st.integers(1, min(5, min(h, w) + 2 * pad)))
            s = draw(st.integers(1, 2))
            out = draw(st.integers(1, 8))
            spec.append(["Conv2d", {"in_channels": c, "out_channels": out, "kernel_size": k, "stride": s,
                                    "padding": pad, "bias": draw(st.booleans())}])
            c, h, w = out, (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
        elif kind == "pool":
            k = draw(st.integers(1, min(3, h, w)))
            s = draw(st.integers(1, 3))
            spec.append([draw(st.sampled_from(["MaxPool2d", "AvgPool2d"])), {"kernel_size": k, "stride": s}])
            h, w = (h - k) // s + 1, (w - k) // s + 1
        elif kind == "adaptive":
            h = w = draw(st.integers(1, 3))
            spec.append([draw(st.sampled_from(["AdaptiveAvgPool2d", "AdaptiveMaxPool2d"])), {"output_size": h}])
        elif kind == "bn":
            spec.append(["BatchNorm2d", {"num_features": c}])
        elif kind == "act":
            spec.append([draw(st.sampled_from(["ReLU", "Sigmoid", "Tanh"])), {}])
        elif kind == "dropout":
            spec.append(["Dropout", {"p": 0.5}])
        elif kind == "flatten":
            spec.append(["Flatten", {}])
            flat = c * h * w
        else:
            out = draw(st.integers(1, 10))
            spec.append(["Linear", {"in_features": flat, "out_features": out, "bias": draw(st.booleans())}])
            flat = out
    # Cut the layers into nested blocks, or keep them flat: a tracer must reach the leaves either way.
    cuts = sorted(draw(st.sets(st.integers(1, len(spec) - 1), max_size=3))) if len(spec) > 1 else []
    nested = draw(st.booleans())
    bounds = [0, *cuts, len(spec)]
    blocks = [spec[a:b] for a, b in itertools.pairwise(bounds)] if nested else [spec]
    return blocks, shape


def build_pair(submission: Any, blocks: list[list]) -> tuple[Any, torch.nn.Module]:
    """The same architecture in the worker (a handle) and on the trusted side, both in eval mode."""
    if len(blocks) == 1:
        remote, trusted = submission.helper("build_sequential", blocks[0]), build_sequential(blocks[0])
    else:
        remote, trusted = submission.helper("build_nested", blocks), build_nested(blocks)
    remote.method("eval")
    return remote, trusted.eval()


def describe(blocks: list[list]) -> str:
    """The architecture as the student would write it: Sequential(Conv2d(...), ReLU(), ...), nested if it is."""
    text = ["Sequential(" + ", ".join(f"{name}({', '.join(f'{k}={v}' for k, v in kw.items())})" for name, kw in block)
            + ")" for block in blocks]
    return text[0] if len(text) == 1 else f"Sequential({', '.join(text)})"


def as_shape(entry: Any) -> tuple[int, ...] | None:
    """A tuple or list of ints as a tuple; None for anything else."""
    if isinstance(entry, (tuple, list)) and all(isinstance(d, numbers.Integral) and not isinstance(d, bool)
                                                 for d in entry):
        return tuple(int(d) for d in entry)
    return None


def expect_shapes(got: Any, expected: list[tuple[int, ...]], call: str) -> None:
    if not isinstance(got, (list, tuple)):
        raise AssertionError(f"{call} returned {show(got)}; expected a list of shape tuples")
    shapes = [as_shape(e) for e in got]
    bad = [e for e, s in zip(got, shapes) if s is None]
    if bad:
        raise AssertionError(f"{call} returned {show(got)}; {show(bad[0])} is not a tuple of ints")
    assert shapes == expected, (
        f"{call} returned {len(shapes)} shapes:\n  {shapes}\nexpected the output shape of each of the "
        f"{len(expected)} leaf layers, in the order they run:\n  {expected}")


@given(arch=architectures(), data_seed=st.integers(0, 2**16))
def test_trace_shapes_random(submission, arch, data_seed):
    blocks, shape = arch
    remote, trusted = build_pair(submission, blocks)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(data_seed))
    expect_shapes(submission.trace_shapes(remote, x), [tuple(s) for s in leaf_output_shapes(trusted, x)],
                  f"trace_shapes(model, x of shape {shape}) for model = {describe(blocks)}")


@given(arch=architectures())
def test_count_params_random(submission, arch):
    blocks, _ = arch
    remote, trusted = build_pair(submission, blocks)
    expect_int(submission.count_params(remote), sum(p.numel() for p in trusted.parameters()),
               f"count_params(model) for model = {describe(blocks)}")


# -- the student's own network --------------------------------------------------------------------
def test_build_cnn_equivalent(submission, seed):
    gen = torch.Generator().manual_seed(seed)
    inputs = [torch.randn(shape, generator=gen) for shape in EQUIVALENCE_INPUTS]
    assert_equivalent(submission, submission.build_cnn(), reference_cnn(), inputs, what="build_cnn()")


def test_trace_shapes_build_cnn(submission, seed):
    # The expected trace comes from hooks placed by grader code in the worker on the student's own model,
    # so whatever layout build_cnn has (named attributes, F.relu in forward, nested blocks) is traced as written.
    model = submission.build_cnn()
    x = torch.randn((2, 3, 24, 24), generator=torch.Generator().manual_seed(seed))
    expected = [tuple(s) for s in submission.helper("leaf_output_shapes", model, x)]
    expect_shapes(submission.trace_shapes(model, x), expected, "trace_shapes(build_cnn(), x of shape (2, 3, 24, 24))")


def _answers(submission: Any) -> dict:
    answers = submission.value("ANSWERS")
    assert isinstance(answers, dict), f"ANSWERS should be a dict, got {type(answers).__name__}"
    return answers


def test_answer_total_params(submission):
    expected = sum(p.numel() for p in reference_cnn().parameters())
    expect_int(_answers(submission).get("total_params"), expected, 'ANSWERS["total_params"]')


def test_answer_final_shape(submission):
    with torch.no_grad():
        expected = tuple(reference_cnn()(torch.zeros(ANSWER_INPUT)).shape)
    got = _answers(submission).get("final_shape")
    assert as_shape(got) == expected, \
        f'ANSWERS["final_shape"] is {show(got)}; expected the output shape for an input of shape {ANSWER_INPUT}: ' \
        f'a tuple of {len(expected)} ints, batch dimension included'
