"""Weights the grader draws, written into a student's model and into the trusted reference network alike, paired by
the order their layers run; and the student's own weights read into the reference, for checks whose subject they are.

What the worker says while writing or reading weights is a claim: the output comparisons of ``equivalence`` confirm
it by behaviour.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from cnngrade.graderkit import values
from cnngrade.graderkit.checks import show
from cnngrade.sandbox.handles import Handle
from cnngrade.sandbox.submission import Submission
from cnngrade.worker.run_order import state_in_use_order

NORM_LAYERS = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm)
DRAWS = 5              # weight draws tried before a degenerate reference is the grader's problem
VARYING_SHARE = 0.5    # share of output units that must vary between the inputs of a batch
VARYING_MARGIN = 100   # how many times the tolerance an output unit must vary by to count
# Sigmoid's slope is 1/4 at 0, so differences between inputs shrink about 4-fold per layer unless the weights
# make up for it: MiniAlexNet's sigmoid variant varies by ~0.005 between inputs with ReLU-scaled weights.
ACTIVATION_GAIN = ((torch.nn.Sigmoid, 4.0),)


def use_order(model: torch.nn.Module, x: torch.Tensor) -> list[str]:
    """The reference network's tensors in the order its layers run (the same code the worker runs)."""
    return state_in_use_order(model, x)


def _counted(names: Sequence[str]) -> list[str]:
    # BatchNorm's num_batches_tracked counts nothing the output depends on in eval mode.
    return [n for n in names if not n.endswith("num_batches_tracked")]


def _shape_list(shapes: Sequence[Sequence[int]]) -> str:
    return ", ".join(str(tuple(s)) for s in shapes)


def _layers_message(what: str, theirs: Sequence[Sequence[int]], ours: Sequence[Sequence[int]]) -> str:
    return (f"{what} does not have the specified layers: its weight tensors, in the order its layers run, have "
            f"shapes [{_shape_list(theirs)}]; the specified network has [{_shape_list(ours)}]")


# -- weights the grader draws -------------------------------------------------------------------------
def _uniform(t: torch.Tensor, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(t.shape, generator=gen, dtype=torch.float64).mul_(high - low).add_(low)


def _draw(module: torch.nn.Module, name: str, t: torch.Tensor, gen: torch.Generator, gain: float) -> torch.Tensor:
    """A value for one tensor: Kaiming-uniform weights (activations keep their scale through ReLU layers),
    biases of the same order as the signal, normalisation layers with random but well-conditioned statistics."""
    if isinstance(module, NORM_LAYERS):
        low, high = {"weight": (0.5, 1.5), "running_var": (0.5, 2.0)}.get(name, (-0.5, 0.5))
        return _uniform(t, low, high, gen)
    if t.dim() >= 2:
        bound = gain * math.sqrt(6.0 / max(1, t[0].numel()))
        return _uniform(t, -bound, bound, gen)
    return _uniform(t, -0.5, 0.5, gen)


def draw_weights(reference: torch.nn.Module, seed: int) -> None:
    """Overwrite every floating-point parameter and buffer of ``reference`` with values drawn from ``seed``."""
    gen = torch.Generator().manual_seed(int(seed))
    gain = max([g for kind, g in ACTIVATION_GAIN if any(isinstance(m, kind) for m in reference.modules())] or [1.0])
    with torch.no_grad():
        for module in reference.modules():
            for name, t in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
                if t.is_floating_point():
                    t.copy_(_draw(module, name, t, gen, gain).to(t.dtype))


def _degenerate(reference: torch.nn.Module, inputs: Sequence[torch.Tensor], seed: int, atol: float) -> bool:
    """Whether the reference's outputs fail to tell inputs apart: on each input plus a random one, at least
    half the output units must vary between the rows of the batch by well over the comparison's tolerance."""
    gen = torch.Generator().manual_seed(int(seed) + 1)
    reference.eval()
    with torch.no_grad():
        for x in inputs:
            out = reference(torch.cat([x, torch.randn(x.shape, generator=gen, dtype=x.dtype)]))
            spread = out.amax(0) - out.amin(0)
            if not bool(torch.isfinite(out).all()):
                return True
            if (spread > VARYING_MARGIN * atol).double().mean().item() < VARYING_SHARE:
                return True
    return False


def draw_reference_weights(reference: torch.nn.Module, inputs: Sequence[torch.Tensor], seed: int,
                           atol: float = 1e-4) -> None:
    """Draw weights into ``reference`` from ``seed`` until its outputs tell the inputs apart (a grader error
    if no draw does: the reference and the draw are the grader's, never the student's)."""
    for attempt in range(DRAWS):
        draw_weights(reference, int(seed) * DRAWS + attempt)
        if not _degenerate(reference, inputs, int(seed) + attempt, atol):
            return
    raise RuntimeError(f"grader error: {DRAWS} weight draws for {type(reference).__name__} gave outputs that do "
                       "not vary between inputs")


def load_grader_weights(submission: Submission, model: Any, reference: torch.nn.Module,
                        inputs: Sequence[torch.Tensor] | torch.Tensor, *, seed: int,
                        what: str = "your model", atol: float = 1e-4) -> None:
    """Draw weights into ``reference`` (trusted side) and have the worker write the same tensors into the student's
    model, pairing them by the order layers run on the first input.

    The worker's reply is only used for a message: if it lies about having written the weights, the output
    comparison that follows catches it.
    """
    if not isinstance(model, Handle):
        raise AssertionError(f"expected a torch.nn.Module, got {show(model)}")
    inputs = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
    x = inputs[0][:1]
    draw_reference_weights(reference, inputs, seed, atol)
    state = reference.state_dict()
    names = _counted(use_order(reference, x))
    ours = [list(state[n].shape) for n in names]
    call = f"writing weights into {what}"
    reply = values.mapping(submission.helper("load_state_in_use_order", model, x, [state[n] for n in names]),
                           call, keys=("shapes", "written"))
    read = [values.shape(s, f"{call}: a shape") for s in values.sequence(reply["shapes"], call, max_items=10_000)]
    theirs = [list(s) for s in read if s is not None]
    if len(theirs) != len(read):
        raise AssertionError(f"{call} gave back shapes that are not lists of whole numbers")
    if theirs != ours:
        raise AssertionError(_layers_message(what, theirs, ours))
    if reply["written"] is not True:
        raise AssertionError(f"{call} failed: the weights could not be written")


def load_student_weights(submission: Submission, model: Any, reference: torch.nn.Module, x: torch.Tensor,
                         what: str = "your model") -> None:
    """Copy the student's own parameters and buffers into ``reference``, pairing them by the order layers run.

    For checks whose subject is the student's own weights (their initial weights before training, equal
    seeds giving equal weights). The copies are a claim of the worker's: a check that relies on them
    must confirm them by behaviour (the reference holding them reproduces the student's own outputs).
    """
    if not isinstance(model, Handle):
        raise AssertionError(f"expected a torch.nn.Module, got {show(model)}")
    call = f"reading the weights of {what}"
    names = [values.text(n, call) for n in values.sequence(submission.helper("state_in_use_order", model, x), call)]
    state = values.mapping(submission.helper("state_dict", model), call)
    if any(n not in state for n in names):
        raise AssertionError(f"{call}: the names of its tensors do not match its state_dict")
    names = _counted(names)
    tensors = [values.tensor(state[n], f"{call}: {n}") for n in names]
    ref_state = reference.state_dict()
    ref_names = _counted(use_order(reference, x))
    theirs, ours = [list(t.shape) for t in tensors], [list(ref_state[n].shape) for n in ref_names]
    if theirs != ours:
        raise AssertionError(_layers_message(what, theirs, ours))
    with torch.no_grad():
        for mine, tensor in zip(ref_names, tensors):
            ref_state[mine].copy_(tensor.to(ref_state[mine].dtype))
