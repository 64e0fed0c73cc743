"""Cohort training: many networks of one architecture trained at once on one device, each as it would train alone.

A batch of students' training checks trains the trusted reference network from each student's proven initial
weights with one recipe and one seed, so the runs differ only in their weights. ``train_cohort`` stacks the
networks' parameters (``torch.func.stack_module_state``), runs one forward and backward over all of them with
``vmap`` and steps one Adam over the stacked tensors. Every member sees what ``trainer.train`` would show it for
that seed: the same batch order and augmentation (one generator, drawn in the same sequence) and the same dropout
masks (``randomness="same"`` draws each mask once from the global generator, in the solo run's order, and gives
it to every member). Adam is elementwise, so one optimizer over stacked tensors is K independent ones. What
differs from a solo run is float reassociation (a vmapped convolution is one grouped convolution), which grows
over the steps of training: members match their solo runs closely in weights after a few steps and in accuracy
after a whole run (tests/test_cohort.py states the tolerance), not bitwise.

Where the networks differ in architecture, ``vmap`` cannot run them, or memory is short even for two at a time,
members are trained one at a time with ``trainer.train``. It is meant for GPU batches (bench/cohort_bench.py); on an
idle CPU a stacked step costs about what the members' solo steps cost together, so the cpu profile's graders keep
training one student at a time.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from cnngrade.training import trainer

# Members per chunk when no budget says otherwise (CPU): memory is not the limit there, time per step is.
CPU_CHUNK = 16
# Share of the device's free memory a cohort may plan to use (the rest: allocator slack, cuDNN workspaces).
CUDA_MEMORY_SHARE = 0.6


def _settings(module: nn.Module) -> tuple:
    """A module's type and its plain settings (a Dropout's p, a Conv2d's stride): what its forward depends on
    besides its tensors and submodules."""
    plain = (int, float, str, bool, tuple, type(None))
    return type(module), tuple(sorted((k, v) for k, v in vars(module).items()
                                      if not k.startswith("_") and k != "training" and isinstance(v, plain)))


def same_architecture(networks: Sequence[nn.Module]) -> bool:
    """Every module of the same type and settings, every tensor of the same name, shape and dtype: one function,
    so ``vmap`` over stacked weights computes each network (a ReLU and a Sigmoid network hold the same tensors)."""
    def signature(net: nn.Module) -> tuple:
        tensors = [*net.named_parameters(), *net.named_buffers()]
        return (tuple((name, _settings(m)) for name, m in net.named_modules()),
                tuple((name, tuple(t.shape), t.dtype) for name, t in tensors))

    first = signature(networks[0])
    return all(signature(net) == first for net in networks[1:])


def member_bytes(network: nn.Module, batch_size: int, image_shape: Sequence[int]) -> int:
    """Rough memory one member needs while training: weights, gradients and Adam's two moments, plus every
    module's output for one batch kept three times over (forward, saved for backward, its gradient)."""
    weights = sum(p.numel() * p.element_size() for p in network.parameters()) * 4
    outputs = 0

    def count(_module, _inputs, output):
        nonlocal outputs
        if isinstance(output, torch.Tensor):
            outputs += output.numel() * output.element_size()

    probe = copy.deepcopy(network).cpu().eval()
    hooks = [m.register_forward_hook(count) for m in probe.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            probe(torch.zeros(1, *image_shape))
    finally:
        for h in hooks:
            h.remove()
    return weights + outputs * int(batch_size) * 3


def chunk_size(network: nn.Module, count: int, batch_size: int, image_shape: Sequence[int], device: torch.device,
               memory_budget: int | None) -> int:
    """How many members to train at once: all of them when the budget allows, else as many as fit (at least 1)."""
    if memory_budget is None:
        if device.type != "cuda":
            return max(1, min(count, CPU_CHUNK))
        free, _total = torch.cuda.mem_get_info(device)
        memory_budget = int(free * CUDA_MEMORY_SHARE)
    return max(1, min(count, memory_budget // max(1, member_bytes(network, batch_size, image_shape))))


def _stacked_loss(base: nn.Module):
    """(params, buffers, x, y) -> (K,) cross-entropy losses, one per stacked member, on one shared batch."""
    from torch.func import functional_call, vmap

    def member(params, buffers, x, y):
        return nn.functional.cross_entropy(functional_call(base, (params, buffers), (x,)), y)

    return vmap(member, in_dims=(0, 0, None, None), randomness="same")


def _train_stacked(networks: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, *, epochs: int,
                   batch_size: int, lr: float, seed: int, augment: bool, dev: torch.device,
                   deadline: float | None, time_limit: float | None,
                   on_epoch: Callable[[int], None] | None = None) -> list[list[float]]:
    """One chunk, trained together; the trained weights are written back into ``networks``."""
    from torch.func import stack_module_state

    params, buffers = stack_module_state(list(networks))
    params = {k: v.detach().to(dev).requires_grad_() for k, v in params.items()}
    buffers = {k: v.to(dev) for k, v in buffers.items()}
    base = copy.deepcopy(networks[0]).to("meta").train()
    loss_of = _stacked_loss(base)
    optimizer = torch.optim.Adam(list(params.values()), lr=lr, fused=dev.type == "cuda")
    history: list[torch.Tensor] = []
    # Dropout masks drawn as in trainer.train, shared by every member; the batches are trainer.train's own.
    with trainer.seeded_dropout(dev, seed):
        for epoch in trainer.epoch_batches(x, y, epochs=epochs, batch_size=batch_size, seed=seed, augment=augment,
                                           time_limit=time_limit, deadline=deadline):
            total, steps = torch.zeros(len(networks), device=dev), 0
            for inputs, targets in epoch:
                losses = loss_of(params, buffers, inputs, targets)
                optimizer.zero_grad(set_to_none=True)
                losses.sum().backward()            # members are independent: each gets its own loss's gradient
                optimizer.step()
                total += losses.detach()
                steps += 1
            history.append(total / max(steps, 1))
            if on_epoch is not None:
                on_epoch(len(history))
    with torch.no_grad():
        for i, net in enumerate(networks):
            net.to(dev)
            for name, tensor in [*net.named_parameters(), *net.named_buffers()]:
                tensor.copy_((params if name in params else buffers)[name][i])
            net.train()
    per_epoch = torch.stack(history).T.cpu() if history else torch.zeros(len(networks), 0)
    return [[float(v) for v in row] for row in per_epoch]


class EpochCount:
    """Epochs done of all the passes one ``train_cohort`` call trains one after another (its chunks, or its members
    alone), reported as ``report(done, total)`` after every epoch: what the progress line shows for a cohort."""

    def __init__(self, epochs: int, passes: int, report: Callable[[int, int], None] | None):
        self.epochs, self.passes, self.finished, self.report = int(epochs), int(passes), 0, report
        self.epoch(0)

    def epoch(self, in_pass: int) -> None:
        if self.report is not None:
            self.report(self.finished * self.epochs + in_pass, self.passes * self.epochs)

    def pass_done(self) -> None:
        self.finished += 1

    def more_passes(self, extra: int) -> None:
        """A pass abandoned and redone as ``extra + 1`` smaller ones (halves out of memory, members alone)."""
        self.passes += extra
        self.epoch(0)


def train_cohort(networks: Sequence[nn.Module], images_u8: torch.Tensor, labels: torch.Tensor, *, epochs: int,
                 batch_size: int, lr: float, seed: int, augment: bool = True, device: str = "cpu",
                 time_limit: float | None = None, memory_budget: int | None = None,
                 chunk: int | None = None, on_epoch: Callable[[int, int], None] | None = None) -> list[list[float]]:
    """Train every network in place with ``trainer.train``'s recipe and seed; returns each one's per-epoch losses.

    Networks of one architecture are trained ``chunk`` at a time (default: as many as ``memory_budget`` bytes
    hold; on CUDA a share of the free memory), otherwise one at a time. A chunk that runs out of CUDA memory is
    retried in halves from its initial weights. Raises ``trainer.TrainingTimeout`` past ``time_limit`` seconds.
    ``on_epoch(done, total)``: epochs trained so far of all the passes this call makes, after each epoch.
    """
    networks = list(networks)
    if not networks:
        return []
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    x = trainer.nchw(images_u8).to(dev)
    y = labels.to(dev, torch.int64)
    deadline = None if time_limit is None else time.monotonic() + time_limit
    size = chunk or chunk_size(networks[0], len(networks), batch_size, x.shape[1:], dev, memory_budget)
    recipe: dict[str, Any] = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
                              "augment": augment, "deadline": deadline}
    if len(networks) == 1 or size <= 1 or not same_architecture(networks):
        count = EpochCount(epochs, len(networks), on_epoch)
        return [_solo(net, x, y, device=device, count=count, **recipe) for net in networks]
    count = EpochCount(epochs, -(-len(networks) // size), on_epoch)
    losses: list[list[float]] = []
    for start in range(0, len(networks), size):
        losses += _chunk(networks[start:start + size], x, y, dev=dev, time_limit=time_limit, device=device,
                         count=count, **recipe)
    return losses


def _chunk(group: list[nn.Module], x: torch.Tensor, y: torch.Tensor, *, device: str, count: EpochCount,
           **recipe: Any) -> list[list[float]]:
    """A chunk together; on CUDA out-of-memory, its halves (the networks are untouched until a chunk finishes)."""
    if len(group) == 1:
        return [_solo(group[0], x, y, device=device, count=count, **recipe)]
    try:
        losses = _train_stacked(group, x, y, on_epoch=count.epoch, **recipe)
    except trainer.TrainingTimeout:
        raise
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        count.more_passes(1)
        half = len(group) // 2
        return (_chunk(group[:half], x, y, device=device, count=count, **recipe)
                + _chunk(group[half:], x, y, device=device, count=count, **recipe))
    except (RuntimeError, NotImplementedError):
        # An operation vmap cannot batch (a custom layer): the members, untouched so far, train one at a time.
        count.more_passes(len(group) - 1)
        return [_solo(net, x, y, device=device, count=count, **recipe) for net in group]
    count.pass_done()
    return losses


def _solo(net: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int, lr: float, seed: int,
          augment: bool, device: str, deadline: float | None, count: EpochCount, **_: Any) -> list[float]:
    left = None if deadline is None else deadline - time.monotonic()
    losses = trainer.train(net, x, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, augment=augment,
                           device=device, time_limit=left, on_epoch=count.epoch)
    count.pass_done()
    return losses


def predict_cohort(networks: Sequence[nn.Module], images_u8: torch.Tensor, *, device: str = "cpu",
                   batch_size: int = trainer.PREDICT_BATCH) -> torch.Tensor:
    """(K, n) int64 argmax classes of every network (eval mode, no autograd), as ``trainer.predict`` gives them."""
    networks = list(networks)
    if len(networks) == 1 or not same_architecture(networks):
        return torch.stack([trainer.predict(net, images_u8, device=device, batch_size=batch_size) for net in networks])
    from torch.func import functional_call, stack_module_state, vmap

    dev = torch.device(device)
    params, buffers = stack_module_state(list(networks))
    params = {k: v.detach().to(dev) for k, v in params.items()}
    buffers = {k: v.to(dev) for k, v in buffers.items()}
    base = copy.deepcopy(networks[0]).to("meta").eval()
    run = vmap(lambda p, b, xb: functional_call(base, (p, b), (xb,)), in_dims=(0, 0, None))
    x = trainer.nchw(images_u8)
    out = []
    with torch.no_grad():
        for start in range(0, x.shape[0], int(batch_size)):
            out.append(run(params, buffers, trainer.normalize(x[start:start + int(batch_size)].to(dev))).argmax(-1).cpu())
    for net in networks:
        net.eval()
    return torch.cat(out, dim=1).to(torch.int64)


def accuracy_cohort(networks: Sequence[nn.Module], images_u8: torch.Tensor, labels: torch.Tensor, *,
                    device: str = "cpu") -> list[float]:
    """Each network's fraction of ``images_u8`` classified as ``labels``."""
    hits = (predict_cohort(networks, images_u8, device=device) == labels.cpu()[None]).sum(1)
    return [float(h) / max(1, labels.numel()) for h in hits]
