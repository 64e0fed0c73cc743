"""Grader for exercise 4: build_cnn checked by behaviour, trace_shapes and count_params on random architectures.

Every expected value is computed on the trusted side: build_cnn holds weights the grader drew and is
compared with the reference network holding the same weights; traces and counts come from the grader's
own copy of each random architecture, or from the reference once build_cnn is proven to compute it.

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

from cnngrade.graderkit import (
    StudentError,
    assert_equivalent,
    build_nested,
    build_sequential,
    build_shuffled,
    leaf_output_shapes,
    show,
    values,
)

ANSWER_INPUT = (4, 3, 64, 64)  # the handout's question
EQUIVALENCE_INPUTS = [(2, 3, 32, 32), (1, 3, 20, 28), (3, 3, 8, 8)]  # odd sizes expose padding and pooling slips
TRACE_INPUT = (2, 3, 24, 24)


def _conv(c_in: int, c_out: int) -> list:
    return ["Conv2d", {"in_channels": c_in, "out_channels": c_out, "kernel_size": 3, "padding": 1}]


# The contract's network as [layer, kwargs] specs: built here by torch, and in the worker by build_sequential.
REFERENCE_SPEC = [
    _conv(3, 16), ["ReLU", {}], ["MaxPool2d", {"kernel_size": 2}],
    _conv(16, 32), ["ReLU", {}], ["MaxPool2d", {"kernel_size": 2}],
    _conv(32, 64), ["ReLU", {}],
    ["AdaptiveAvgPool2d", {"output_size": (1, 1)}],
]


def reference_cnn() -> torch.nn.Sequential:
    """The contract's network, built on the trusted side."""
    return torch.nn.Sequential(*(getattr(torch.nn, name)(**kwargs) for name, kwargs in REFERENCE_SPEC))


# -- random architectures ----------------------------------------------------------------------------
@st.composite
def architectures(draw: st.DrawFn) -> tuple[list[list], tuple[int, ...], list[int] | None]:
    """Blocks of [layer_name, kwargs] specs that fit an input shape, that shape, and a registration order.

    A spatial stage (convs, pools, batch norm, activations) may end in an optional flatten and
    fully connected stage; sizes are tracked as layers are drawn so every layer fits its input.
    The layers are then kept flat, nested in blocks, or registered in a shuffled order (the order
    is None unless shuffled) while forward() runs them in the drawn order.
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
    layout = draw(st.sampled_from(["flat", "nested", "shuffled"]))
    if layout == "shuffled" and len(spec) > 1:
        # Registered in another order than they run, as a hand-written forward() may do: a tracer that
        # re-runs the layers in registration order gets other shapes (or a shape error) than forward() gives.
        order = draw(st.permutations(range(len(spec))))
        return [spec], shape, order if order != sorted(order) else order[::-1]
    cuts = sorted(draw(st.sets(st.integers(1, len(spec) - 1), max_size=3))) if len(spec) > 1 else []
    bounds = [0, *cuts, len(spec)]
    blocks = [spec[a:b] for a, b in itertools.pairwise(bounds)] if layout == "nested" else [spec]
    return blocks, shape, None


def build_pair(submission: Any, blocks: list[list], order: list[int] | None = None) -> tuple[Any, torch.nn.Module]:
    """The same architecture in the worker (a handle) and on the trusted side, both in eval mode."""
    if order is not None:
        remote, trusted = submission.helper("build_shuffled", blocks[0], order), build_shuffled(blocks[0], order)
    elif len(blocks) == 1:
        remote, trusted = submission.helper("build_sequential", blocks[0]), build_sequential(blocks[0])
    else:
        remote, trusted = submission.helper("build_nested", blocks), build_nested(blocks)
    remote.method("eval")
    return remote, trusted.eval()


def _layer(name: str, kwargs: dict) -> str:
    return f"{name}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"


def describe(blocks: list[list], order: list[int] | None = None) -> str:
    """The architecture as the student would write it: Sequential(Conv2d(...), ReLU(), ...), nested if it is."""
    if order is not None:
        spec = blocks[0]
        return (f"a module whose __init__ registers [{', '.join(_layer(*spec[j]) for j in order)}] in that order "
                f"and whose forward() runs them as [{', '.join(_layer(*layer) for layer in spec)}]")
    text = ["Sequential(" + ", ".join(_layer(name, kw) for name, kw in block) + ")" for block in blocks]
    return text[0] if len(text) == 1 else f"Sequential({', '.join(text)})"


def as_shape(entry: Any) -> tuple[int, ...] | None:
    """A tuple or list of ints as a tuple; None for anything else."""
    if isinstance(entry, (tuple, list)) and all(isinstance(d, numbers.Integral) and not isinstance(d, bool)
                                                 for d in entry):
        return tuple(int(d) for d in entry)
    return None


def read_shapes(got: Any, call: str) -> list[tuple[int, ...]]:
    """A returned trace as a list of shape tuples, or a failure saying what is wrong with it."""
    items = values.sequence(got, call, max_items=10_000)
    shapes = [as_shape(e) for e in items]
    bad = [e for e, s in zip(items, shapes) if s is None]
    if bad:
        raise AssertionError(f"{call} returned {show(got)}; {show(bad[0])} is not a tuple of ints")
    return shapes


def expect_shapes(got: Any, expected: list[tuple[int, ...]], call: str) -> None:
    shapes = read_shapes(got, call)
    assert shapes == expected, (
        f"{call} returned {len(shapes)} shapes:\n  {shapes}\nexpected the output shape of each of the "
        f"{len(expected)} leaf layers, in the order they run:\n  {expected}")


def expect_count(got: Any, expected: int, call: str) -> None:
    """A parameter count, accepted by value (np.sum gives 0.0 for a model without parameters)."""
    count = values.integer(got, call)
    assert count == expected, f"{call} returned {count}, expected {expected}"


@given(arch=architectures(), data_seed=st.integers(0, 2**16))
def test_trace_shapes_random(submission, arch, data_seed):
    blocks, shape, order = arch
    remote, trusted = build_pair(submission, blocks, order)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(data_seed))
    expect_shapes(submission.trace_shapes(remote, x), [tuple(s) for s in leaf_output_shapes(trusted, x)],
                  f"trace_shapes(model, x of shape {shape}) for model = {describe(blocks, order)}")


@given(arch=architectures())
def test_count_params_random(submission, arch):
    blocks, _, order = arch
    remote, trusted = build_pair(submission, blocks, order)
    expect_count(submission.count_params(remote), sum(p.numel() for p in trusted.parameters()),
                 f"count_params(model) for model = {describe(blocks, order)}")


# -- the student's own network --------------------------------------------------------------------
def equivalence_inputs(seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen) for shape in EQUIVALENCE_INPUTS]


def test_build_cnn_equivalent(submission, seed):
    assert_equivalent(submission, submission.build_cnn(), reference_cnn(), equivalence_inputs(seed),
                      what="build_cnn()", seed=seed)


def reference_traces(x: torch.Tensor) -> list[list[tuple[int, ...]]]:
    """The reference's leaf trace on ``x``, and that trace without any of the entries of its parameter-free
    layers: a build_cnn that calls F.relu or F.max_pool2d in forward() has no such leaf to trace."""
    model = reference_cnn().eval()
    full = [tuple(s) for s in leaf_output_shapes(model, x)]
    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    optional = [i for i, m in enumerate(leaves) if not any(True for _ in m.parameters())]
    traces = []
    for keep in itertools.product((True, False), repeat=len(optional)):
        dropped = {i for i, k in zip(optional, keep) if not k}
        traces.append([s for i, s in enumerate(full) if i not in dropped])
    return traces


def test_trace_shapes_build_cnn(submission, seed):
    x = torch.randn(TRACE_INPUT, generator=torch.Generator().manual_seed(seed))
    model = submission.build_cnn()
    try:
        assert_equivalent(submission, model, reference_cnn(), equivalence_inputs(seed), what="build_cnn()", seed=seed)
    except (AssertionError, StudentError) as exc:
        if isinstance(exc, StudentError) and exc.not_implemented:
            raise
        # Nothing trusted says what the trace of a network other than the specified one should be, so
        # trace_shapes is graded on the specified network, built by the grader in the worker, instead.
        reference = submission.helper("build_sequential", REFERENCE_SPEC)
        expect_shapes(submission.trace_shapes(reference, x), reference_traces(x)[0],
                      f"trace_shapes(model, x of shape {TRACE_INPUT}) for model = {describe([REFERENCE_SPEC])} "
                      "(build_cnn() does not compute the specified network yet, so the grader built it)")
        return
    # build_cnn() computes the specified network, so its trace is the reference's, up to the parameter-free
    # layers it may call as functions. The trace comes from the trusted reference, never from the worker.
    call = f"trace_shapes(build_cnn(), x of shape {TRACE_INPUT})"
    shapes = read_shapes(submission.trace_shapes(model, x), call)
    candidates = reference_traces(x)
    assert shapes in candidates, (
        f"{call} returned {len(shapes)} shapes:\n  {shapes}\nexpected the output shape of each leaf layer, in "
        f"the order they run:\n  {candidates[0]}\n(layers without parameters that forward() calls as functions, "
        "such as F.relu, have no leaf module and no entry)")


def _answers(submission: Any) -> dict:
    return values.answers(submission)


def test_answer_total_params(submission):
    expected = sum(p.numel() for p in reference_cnn().parameters())
    expect_count(_answers(submission).get("total_params"), expected, 'ANSWERS["total_params"]')


def test_answer_final_shape(submission):
    with torch.no_grad():
        expected = tuple(reference_cnn()(torch.zeros(ANSWER_INPUT)).shape)
    got = _answers(submission).get("final_shape")
    assert as_shape(got) == expected, \
        f'ANSWERS["final_shape"] is {show(got)}; expected the output shape for an input of shape {ANSWER_INPUT}: ' \
        f'a tuple of {len(expected)} ints, batch dimension included'
