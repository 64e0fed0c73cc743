"""Functional equivalence: a student's model is right when, holding weights the grader drew, it gives the same
outputs as the trusted reference network holding the same weights, on inputs the grader chose.

This accepts every way of writing the model (nn.Sequential, named attributes, a layer kept under two
names, lazy layers, F.relu in forward, any __init__ order) and rejects near misses a shape check
cannot see (a wrong padding hidden by an adaptive pool, the wrong pooling, the wrong activation).
The weights are the grader's, not the student's: a model whose own weights are degenerate (a last
layer of zeros) would otherwise make the reference output a constant too; ``weights`` draws them and writes
them into both networks.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from cnngrade.graderkit import values
from cnngrade.graderkit.checks import show
from cnngrade.graderkit.weights import load_grader_weights
from cnngrade.sandbox.submission import Submission


def unobservable_tensors(reference: torch.nn.Module, inputs: Sequence[torch.Tensor], *, atol: float = 1e-4,
                         rtol: float = 1e-4, seed: int = 0) -> list[str]:
    """Names of the reference's floating-point tensors that its eval outputs on ``inputs`` do not reveal.

    Weights the worker reports are confirmed by behaviour (holding them, the reference gives the student's own
    outputs), but only where the outputs depend on them: behind a layer of zeros, any claim about the layers
    before it gives the same outputs. A tensor counts as observable when a perturbation of a tenth of its spread
    moves some output by ten times the tolerance the comparison allows.
    """
    gen = torch.Generator().manual_seed(seed)
    reference.eval()
    with torch.no_grad():
        before = [reference(x) for x in inputs]
        hidden = []
        for name, t in reference.state_dict(keep_vars=True).items():
            if not t.is_floating_point():
                continue
            saved = t.detach().clone()
            scale = max(saved.std().item() if saved.numel() > 1 else 0.0, 0.1)
            t.data.add_(torch.randn(t.shape, generator=gen, dtype=t.dtype) * scale)
            moved = any(((reference(x) - out).abs() > 10 * (_tolerance(out, atol) + rtol * out.abs())).any()
                        for x, out in zip(inputs, before))
            t.data.copy_(saved)
            if not moved:
                hidden.append(name)
    return hidden


def _tolerance(expected: torch.Tensor, atol: float) -> float:
    """An absolute tolerance that scales with the outputs (float32 sums over thousands of terms)."""
    return atol * max(1.0, expected.abs().max().item()) if expected.numel() else atol


def assert_same_outputs(submission: Submission, model: Any, reference: torch.nn.Module,
                        inputs: Sequence[torch.Tensor], *, what: str = "your model",
                        atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """In eval mode, the student's model and the reference (holding the same weights) agree on ``inputs``."""
    reference.eval()
    for x in inputs:
        got = submission.helper("forward", model, x)
        with torch.no_grad():
            expected = reference(x)
        if not isinstance(got, torch.Tensor):
            raise AssertionError(f"{what} returned {show(got)} for an input of shape {tuple(x.shape)}; "
                                 f"expected a tensor of shape {tuple(expected.shape)}")
        if tuple(got.shape) != tuple(expected.shape):
            raise AssertionError(f"{what} maps an input of shape {tuple(x.shape)} to shape {tuple(got.shape)}; "
                                 f"the specified network gives {tuple(expected.shape)}")
        got = values.tensor(got, f"{what} on an input of shape {tuple(x.shape)}").to(expected.dtype)
        if not torch.allclose(got, expected, atol=_tolerance(expected, atol), rtol=rtol):
            diff = (got - expected).abs().max().item()
            raise AssertionError(
                f"{what} has the right weight shapes but computes something else: holding the same weights as the "
                f"specified network, on a random input of shape {tuple(x.shape)} its outputs differ from the "
                f"specified network's by up to {diff:.3g}. Check the order of layers, the activations, the pooling "
                "type, padding and stride.")


def assert_equivalent(submission: Submission, model: Any, reference: torch.nn.Module,
                      inputs: Sequence[torch.Tensor], *, what: str = "your model",
                      atol: float = 1e-4, rtol: float = 1e-4, seed: int = 0) -> None:
    """Write weights the grader draws (from ``seed``) into the student's model and the reference, then compare
    their outputs on ``inputs`` in eval mode."""
    load_grader_weights(submission, model, reference, inputs, seed=seed, what=what, atol=atol)
    assert_same_outputs(submission, model, reference, inputs, what=what, atol=atol, rtol=rtol)


def _train_outputs(reference: torch.nn.Module, x: torch.Tensor, seed: int) -> torch.Tensor:
    """The reference's train-mode output under ``seed``: the same dropout masks torch draws in the worker."""
    reference.train()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = reference(x)
    reference.eval()
    return out


def _dropout_rate_matching(reference: torch.nn.Module, x: torch.Tensor, seed: int, got: torch.Tensor,
                           atol: float, rtol: float) -> float | None:
    """Which dropout rate (same places) would explain ``got``, for a more useful message; None if none does."""
    layers = [m for m in reference.modules() if isinstance(m, torch.nn.Dropout)]
    saved = [m.p for m in layers]
    try:
        for p in (0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9):
            for m in layers:
                m.p = p
            if torch.allclose(got, _train_outputs(reference, x, seed), atol=atol, rtol=rtol):
                return p
    finally:
        for m, p in zip(layers, saved):
            m.p = p
    return None


def assert_train_mode_dropout(submission: Submission, model: Any, reference: torch.nn.Module,
                              inputs: Sequence[torch.Tensor], seeds: Sequence[int], *, what: str = "your model",
                              atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """In train mode under the same seeds, the student's model and the reference (with its weights) agree.

    torch draws a dropout mask from the global generator when nn.Dropout or F.dropout runs, so a
    model with dropout layers of the same rate at the same places, run under the same seed, draws
    the same masks as the reference. ``reference`` must already hold the same weights as the student's model
    (load_grader_weights). A reference without dropout (rate 0) checks that train mode is deterministic.
    """
    for x in inputs:
        eval_out = submission.helper("forward", model, x)
        reference.eval()
        with torch.no_grad():
            eval_expected = reference(x)
        # Masks are compared through the reference network, which only works once the eval-mode network matches.
        if not (isinstance(eval_out, torch.Tensor) and eval_out.shape == eval_expected.shape
                and torch.allclose(eval_out.to(eval_expected.dtype), eval_expected, atol=_tolerance(eval_expected, atol),
                                   rtol=rtol)):
            raise AssertionError(f"{what} does not compute the specified network in eval mode yet (see the "
                                 "architecture check), so its dropout cannot be checked")
        for seed in seeds:
            got = submission.helper("forward", model, x, train=True, seed=seed)
            expected = _train_outputs(reference, x, seed)
            if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(expected.shape):
                raise AssertionError(f"in train mode {what} returned {show(got)}; expected a tensor of shape "
                                     f"{tuple(expected.shape)}")
            got = got.to(expected.dtype)
            if torch.allclose(got, expected, atol=_tolerance(expected, atol), rtol=rtol):
                continue
            rates = {m.p for m in reference.modules() if isinstance(m, torch.nn.Dropout)}
            spec = ", ".join(f"{p:g}" for p in sorted(rates))
            if not any(rates):
                raise AssertionError(f"{what} should have no dropout, yet its train-mode outputs (torch seed {seed}) "
                                     f"differ from the specified network's, which has none, by up to "
                                     f"{(got - expected).abs().max().item():.3g}")
            if isinstance(eval_out, torch.Tensor) and torch.allclose(got, eval_out.to(got.dtype), atol=atol, rtol=rtol):
                raise AssertionError(f"in train mode {what} gives the same outputs as in eval mode: dropout (p={spec}) "
                                     f"is missing or never active (pass self.training to F.dropout, or use nn.Dropout)")
            rate = _dropout_rate_matching(reference, x, seed, got, atol, rtol)
            if rate is not None:
                raise AssertionError(f"in train mode {what} behaves like dropout with p={rate:g}; the specified rate "
                                     f"is p={spec}")
            problem = _noise_mismatch(submission, model, reference, x[:1], seed)
            if problem is None:
                break  # a dropout of its own making (other random draws) with the right statistics
            raise AssertionError(
                f"in train mode (torch seed {seed}) {what} differs from the specified network with the same weights by up "
                f"to {(got - expected).abs().max().item():.3g}, and its randomness does not have the statistics of "
                f"the specified dropout ({problem}): dropout is at the wrong place or has the wrong rate "
                "(nn.Dropout / F.dropout before each Linear layer of the classifier)")


NOISE_SAMPLES = 1024
NOISE_SIDE = 16  # the adaptive pool accepts it; a quarter of the work of 32 x 32


def _noise_mismatch(submission: Submission, model: Any, reference: torch.nn.Module, x: torch.Tensor,
                    seed: int) -> str | None:
    """Compare the spread of train-mode outputs for one image repeated NOISE_SAMPLES times; None when alike.

    Every row of the batch gets its own dropout masks, so the rows sample the output's distribution.
    With 1024 samples the standard deviation is known to about 3 %, so a 15 % window does not reject a
    correct dropout, while a wrong rate or a dropout missing from one of the two places moves it further.
    """
    side = torch.nn.functional.interpolate(x, size=(NOISE_SIDE, NOISE_SIDE), mode="bilinear", align_corners=False)
    batch = side.expand(NOISE_SAMPLES, -1, -1, -1).contiguous()
    got = submission.helper("forward", model, batch, train=True, seed=seed + 1)
    expected = _train_outputs(reference, batch, seed + 2).double()
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return f"outputs of shape {tuple(getattr(got, 'shape', ()))} for a batch of {NOISE_SAMPLES}"
    got = got.double()
    ratio = got.std(0) / expected.std(0).clamp_min(1e-12)
    if not bool(((ratio > 0.85) & (ratio < 1.15)).all()):
        return f"output spread {ratio.min().item():.2f} to {ratio.max().item():.2f} times the specified one"
    gap = (got.mean(0) - expected.mean(0)).abs()
    if not bool((gap <= 6 * expected.std(0) / NOISE_SAMPLES ** 0.5 + 1e-6).all()):
        return "output means shifted"
    return None


def assert_train_mode_deterministic(submission: Submission, model: Any, inputs: Sequence[torch.Tensor],
                                    seeds: Sequence[int], *, what: str = "your model",
                                    atol: float = 1e-5, rtol: float = 1e-5) -> None:
    """Without dropout, train-mode outputs equal eval-mode outputs whatever the seed."""
    for x in inputs:
        eval_out = submission.helper("forward", model, x)
        if not isinstance(eval_out, torch.Tensor):
            raise AssertionError(f"{what} returned {show(eval_out)} for an input of shape {tuple(x.shape)}")
        for seed in seeds:
            got = submission.helper("forward", model, x, train=True, seed=seed)
            if not isinstance(got, torch.Tensor) or got.shape != eval_out.shape or \
                    not torch.allclose(got.to(eval_out.dtype), eval_out, atol=atol, rtol=rtol):
                raise AssertionError(f"{what} should have no dropout, yet its train-mode outputs (torch seed {seed}) "
                                     "differ from its eval-mode outputs")
