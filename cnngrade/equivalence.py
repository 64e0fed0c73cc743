"""Functional equivalence: a student's model is right when, with its own weights loaded into the
reference network on the trusted side, both give the same outputs on inputs the grader chose.

This accepts every way of writing the model (nn.Sequential, named attributes, F.relu in
forward, any __init__ order) and rejects near misses a shape check cannot see (a wrong padding
hidden by an adaptive pool, the wrong pooling, the wrong activation).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from cnngrade.checks import show
from cnngrade.client import Handle, Submission
from cnngrade.worker.helpers import state_in_use_order


def use_order(model: torch.nn.Module, x: torch.Tensor) -> list[str]:
    """The reference network's tensors in the order its layers run (the same code the worker runs)."""
    return state_in_use_order(model, x)


def _shapes(names: Sequence[str], state: dict[str, torch.Tensor]) -> str:
    return ", ".join(f"{tuple(state[n].shape)}" for n in names)


def load_student_weights(submission: Submission, model: Any, reference: torch.nn.Module, x: torch.Tensor,
                         what: str = "your model") -> None:
    """Copy the student's parameters and buffers into ``reference``, pairing them by the order layers run."""
    if not isinstance(model, Handle):
        raise AssertionError(f"expected a torch.nn.Module, got {show(model)}")
    names = submission.helper("state_in_use_order", model, x)
    state = submission.helper("state_dict", model)
    if not (isinstance(names, list) and isinstance(state, dict)
            and all(isinstance(n, str) and isinstance(state.get(n), torch.Tensor) for n in names)):
        raise AssertionError(f"could not read the weights of {what}")
    ref_state = reference.state_dict()
    ref_names = use_order(reference, x)
    # Buffers such as BatchNorm's num_batches_tracked count nothing the output depends on in eval mode.
    names = [n for n in names if not n.endswith("num_batches_tracked")]
    ref_names = [n for n in ref_names if not n.endswith("num_batches_tracked")]
    if [tuple(state[n].shape) for n in names] != [tuple(ref_state[n].shape) for n in ref_names]:
        raise AssertionError(
            f"{what} does not have the specified layers: its weight tensors, in the order its layers run, have "
            f"shapes [{_shapes(names, state)}]; the specified network has [{_shapes(ref_names, ref_state)}]")
    with torch.no_grad():
        for mine, theirs in zip(ref_names, names):
            ref_state[mine].copy_(state[theirs].to(ref_state[mine].dtype))


def assert_same_outputs(submission: Submission, model: Any, reference: torch.nn.Module,
                        inputs: Sequence[torch.Tensor], *, what: str = "your model",
                        atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """In eval mode, the student's model and the reference (holding the student's weights) agree on ``inputs``."""
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
        got = got.to(expected.dtype)
        if not torch.allclose(got, expected, atol=atol, rtol=rtol):
            diff = (got - expected).abs().max().item()
            raise AssertionError(
                f"{what} has the right weight shapes but computes something else: on a random input of shape "
                f"{tuple(x.shape)} its outputs differ from the specified network's (with your weights) by up to "
                f"{diff:.3g}. Check the order of layers, the activations, the pooling type, padding and stride.")


def assert_equivalent(submission: Submission, model: Any, reference: torch.nn.Module,
                      inputs: Sequence[torch.Tensor], *, what: str = "your model",
                      atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """Load the student's weights into the reference network, then compare outputs on ``inputs``."""
    load_student_weights(submission, model, reference, inputs[0][:1], what)
    assert_same_outputs(submission, model, reference, inputs, what=what, atol=atol, rtol=rtol)
