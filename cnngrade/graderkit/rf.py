"""Receptive field of one output unit of a network, measured from its outputs on grader-chosen inputs.

Nothing here reads a layer's attributes: the network is a black box ``probe`` that maps a batch of
images to its output map's shape and the values of its centre unit. The unit's field is the box of
input pixels it depends on. Each edge of the box is found with a monotone test: perturb every pixel
beyond a threshold row (or column) and see whether the unit changes. Perturbing pixels outside the
field can never change the unit; perturbing a band that reaches into it does, except for a rare
cancellation, which the large random perturbations here make vanishingly unlikely (a miss would only
make the field look smaller). Adaptive pools, residual blocks and functional calls are measured like
any other network.

Cost: a full-size forward of a student's network is the expensive step (about 1.5 s for the reference design
on one CPU core), so the field is first located on smaller inputs (assuming the network is translation-
equivariant), then mapped to the full-size input and verified there with one batch of three images: the unit
must not change when everything outside the box changes, and must change when the box's near and far corners
change (or, for a field that is not a full rectangle, each edge). On the smallest input only the row edges are
bisected; the columns are guessed to mirror them and verified alike. A network that is not equivariant (an
adaptive pool that is not global, a position-dependent forward) falls back to a bisection on full-size inputs.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

SIDE = 512                    # the task's input side: the field that counts is the one on this input
ESTIMATE_SIDES = (128, 256)   # smaller inputs that locate the field before it is verified on SIDE
AMPLITUDE = 1000.0            # perturbation scale (inputs are uniform in [0, 1]): far edges change visibly
# A change below this share of the unit's magnitude is rounding, not dependence: batches of different sizes give
# outputs about 1e-6 apart (the algorithm depends on the batch); a far edge of a ten-layer field moves it by 1e-2.
REL_TOL = 1e-4
MAX_BATCH = 8                 # images per probe call
MAX_PARAMETER_ELEMENTS = 30_000_000   # grader-drawn weights written into a student's network, at most
MAX_PARAMETER_TENSORS = 4096

# images (B, 3, s, s) -> ((C, H, W) of the output map, the output at its centre unit (H // 2, W // 2), as (B, C))
Probe = Callable[[torch.Tensor], "tuple[tuple[int, int, int], torch.Tensor]"]


class Refused(Exception):
    """The network cannot run on a smaller probe input; the estimate on that size is skipped (probe-raised)."""


class Inconsistent(AssertionError):
    """The network's outputs contradict themselves (same image, different output; shape changing between calls)."""


@dataclass(frozen=True)
class Field:
    """What one measurement found on ``side`` x ``side`` inputs."""

    side: int
    shape: tuple[int, int, int]          # (C, H, W) of the output map
    rows: tuple[int, int] | None         # first and last input row the centre unit depends on (None: none)
    cols: tuple[int, int] | None
    work: float = 0.0                    # images forwarded in all, counted in full-size (SIDE) images

    @property
    def height(self) -> int:
        return 0 if self.rows is None else self.rows[1] - self.rows[0] + 1

    @property
    def width(self) -> int:
        return 0 if self.cols is None else self.cols[1] - self.cols[0] + 1

    @property
    def clipped(self) -> bool:
        """The field reaches the input's border, so on a larger input it could be larger."""
        last = self.side - 1
        return any(span is not None and (span[0] == 0 or span[1] == last) for span in (self.rows, self.cols))


# -- one edge of the box as a monotone test --------------------------------------------------------------
@dataclass
class _Edge:
    """An edge of the field along one axis (2: rows, 3: columns), at the far (last) or near (first) end. A threshold
    t perturbs positions >= t (far) or <= side - 1 - t (near): the test "the unit changes" is true for t up to the
    edge and false beyond it. ``lo`` is a threshold known true, ``hi`` one known false."""

    axis: int
    far: bool
    side: int
    lo: int = 0
    hi: int = 0
    todo: list[int] = field(default_factory=list)   # thresholds to try before bisecting (from a guess)
    exact: int | None = None                         # the threshold a guess expects to be the edge

    def position(self, t: int) -> int:
        return t if self.far else self.side - 1 - t

    def done(self) -> bool:
        return self.hi - self.lo <= 1

    def next(self) -> int:
        while self.todo:
            t = self.todo.pop(0)
            if self.lo < t < self.hi:
                return t
        return (self.lo + self.hi) // 2

    def mask(self, t: int) -> torch.Tensor:
        pos = torch.arange(self.side)
        keep = pos >= t if self.far else pos <= self.side - 1 - t
        grid = keep[:, None] if self.axis == 2 else keep[None, :]
        return grid.expand(self.side, self.side)


def _edges(side: int) -> list[_Edge]:
    return [_Edge(axis, far, side, 0, side) for axis in (2, 3) for far in (False, True)]


def changed(got: torch.Tensor, base: torch.Tensor) -> bool:
    """Whether a unit's output (one value per channel) differs from the base by more than rounding."""
    got, base = got.double(), base.double()
    scale = torch.maximum(got.abs(), base.abs()).max().item() if got.numel() else 0.0
    return bool(got.numel()) and (got - base).abs().max().item() > REL_TOL * scale


def base_image(side: int, seed: int) -> torch.Tensor:
    """The unperturbed image ``measure(seed=seed)`` probes first at ``side`` (a grader may reuse its forward)."""
    return torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(seed * 1000 + side))


class _Session:
    """Probes of one network on one input side: a base image, a fixed noise field, masks of what to perturb."""

    def __init__(self, probe: Probe, side: int, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed * 1000 + side)   # base_image's draw comes first
        self.probe, self.side = probe, side
        self.x0 = torch.rand(1, 3, side, side, generator=gen)
        self.noise = AMPLITUDE * torch.randn(1, 3, side, side, generator=gen)
        self.shape, base = probe(self.x0)
        self.base = base[0]
        self.images = 1
        self.any_change = False

    def run(self, masks: Sequence[torch.Tensor]) -> list[bool]:
        out: list[bool] = []
        for start in range(0, len(masks), MAX_BATCH):
            chunk = masks[start:start + MAX_BATCH]
            batch = torch.cat([self.x0 + self.noise * m.to(self.noise.dtype) for m in chunk])
            shape, values = self.probe(batch)
            if shape != self.shape:
                raise Inconsistent(f"model.features gave a {shape} output map for {self.side} x {self.side} images "
                                   f"after giving {self.shape} for the same size")
            self.images += len(chunk)
            out += [changed(v, self.base) for v in values]
        self.any_change = self.any_change or any(out)
        return out

    def work(self) -> float:
        return self.images * (self.side / SIDE) ** 2


def _guess(edges: list[_Edge], prev: Field | None, shape: tuple[int, int, int]) -> bool:
    """Seed each edge with thresholds to try, from the field on a smaller input; True when every edge has an
    exact guess. Assumes the network is translation-equivariant with a stride J per axis, read from how the
    output map grows with the input; a wrong guess costs forwards, never a wrong answer."""
    if prev is None or prev.rows is None or prev.cols is None:
        return False
    exact = True
    for edge in edges:
        dim = edge.axis - 1   # index into (C, H, W)
        span = prev.rows if edge.axis == 2 else prev.cols
        old = span[1] if edge.far else span[0]
        grow_in, grow_out = edge.side - prev.side, shape[dim] - prev.shape[dim]
        new = None
        if grow_out > 0 and grow_in % grow_out == 0:
            new = old + grow_in // grow_out * (shape[dim] // 2 - prev.shape[dim] // 2)
            new = new if 0 <= new < edge.side else None
        t = None if new is None else (new if edge.far else edge.side - 1 - new)
        if old == (prev.side - 1 if edge.far else 0):
            # The field reached the smaller input's border: try the border first (a global pool), then bisect.
            edge.todo = [edge.side - 1] + ([] if t is None else [t])
            exact = False
        elif t is not None:
            edge.todo, edge.exact = [t, t + 1], t
        else:
            exact = False
    return exact


def _measure_at(probe: Probe, side: int, seed: int, prev: Field | None, repeat: bool) -> tuple[Field, float]:
    session = _Session(probe, side, seed)
    edges = _edges(side)
    confirmed = _guess(edges, prev, session.shape) and _verify(session, edges)
    if prev is None:
        # No earlier size to guess from: find the row edges, then guess that the columns mirror them.
        _settle(session, edges[:2])
        confirmed = session.any_change and _mirror(edges) and _verify(session, edges)
    _settle(session, edges)
    if repeat and not confirmed and session.run([torch.zeros(side, side, dtype=torch.bool)])[0]:
        # Without a confirmed box every answer came from bisection: make sure the outputs are a function of the input.
        raise Inconsistent(f"model.features gave two different outputs for the same {side} x {side} image in eval "
                           "mode; its output must be a function of its input")
    if not session.any_change and not session.run([torch.ones(side, side, dtype=torch.bool)])[0]:
        return Field(side, session.shape, None, None), session.work()
    near_r, far_r, near_c, far_c = (e.position(e.lo) for e in edges)
    if near_r > far_r or near_c > far_c:
        raise Inconsistent("the centre unit of model.features answered the grader's probes inconsistently "
                           f"(rows {near_r}..{far_r}, columns {near_c}..{far_c})")
    return Field(side, session.shape, (near_r, far_r), (near_c, far_c)), session.work()


def _settle(session: _Session, edges: list[_Edge]) -> None:
    """Bisect every edge that is not yet pinned, one threshold per edge and round, the guesses' first."""
    while not all(e.done() for e in edges):
        live = [e for e in edges if not e.done()]
        thresholds = [e.next() for e in live]
        for edge, t, hit in zip(live, thresholds, session.run([e.mask(t) for e, t in zip(live, thresholds)])):
            if hit:
                edge.lo = max(edge.lo, t)
            else:
                edge.hi = min(edge.hi, t)


def _mirror(edges: list[_Edge]) -> bool:
    """Guess the column edges from the row edges just found (square kernels, square input); False if unfound."""
    near_r, far_r, near_c, far_c = edges
    for found, guess in ((near_r, near_c), (far_r, far_c)):
        if not found.done():
            return False
        found.exact = found.lo
        guess.exact, guess.todo = found.lo, [found.lo, found.lo + 1]
    return True


def _verify(session: _Session, edges: list[_Edge]) -> bool:
    """Check the box the edges' exact guesses describe with three images; True when nothing outside it matters.

    Nothing outside the box may change the unit (no edge lies past its guess); then a change from perturbing
    everything at or beyond both far edges can only come from the far corner pixel, which puts the far row and
    column in the field; likewise the near corner. A corner that does not change the unit (a field that is not
    a full rectangle) leaves its two edges to the per-edge tests of ``_settle``.
    """
    bands = [e.mask(e.exact) for e in edges if e.exact is not None]   # at or beyond each guessed edge
    if len(bands) != len(edges):
        return False
    outside, near, far = session.run([_outside(edges), bands[0] & bands[2], bands[1] & bands[3]])
    if outside:
        return False   # the field is larger than the guess somewhere: the edges bisect, trying the guesses first
    for edge in edges:
        assert edge.exact is not None
        edge.hi = min(edge.hi, edge.exact + 1)
        if far if edge.far else near:
            edge.lo = max(edge.lo, edge.exact)
    return True


def _outside(edges: list[_Edge]) -> torch.Tensor:
    """Every pixel outside the box that the edges' exact guesses describe."""
    side = edges[0].side
    box = torch.ones(side, side, dtype=torch.bool)
    for edge in edges:
        assert edge.exact is not None
        box &= ~edge.mask(edge.exact + 1)
    return ~box


def measure(probe: Probe, *, side: int = SIDE, seed: int = 0,
            estimate_sides: Sequence[int] = ESTIMATE_SIDES) -> Field:
    """The field of the centre unit of the network behind ``probe`` on ``side`` x ``side`` inputs."""
    work = 0.0
    prev: Field | None = None
    for small in estimate_sides:
        if small >= side:
            break
        try:
            found, cost = _measure_at(probe, small, seed, prev, repeat=False)
        except (Refused, Inconsistent):
            continue
        work += cost
        if found.rows is None:
            break
        prev = found
        if not found.clipped:
            break
    found, cost = _measure_at(probe, side, seed, prev, repeat=True)
    return Field(found.side, found.shape, found.rows, found.cols, work + cost)


# -- grader-drawn weights ----------------------------------------------------------------------------------
def draw_parameters(shapes: Sequence[Sequence[int]], seed: int) -> list[torch.Tensor]:
    """Random weights for parameters of these shapes: He-normal for weights (2-D and up), uniform in [0.5, 1.5]
    for vectors (biases, normalisation scales and shifts), which keeps ReLU units alive and no map degenerate."""
    sizes = [math.prod(s) for s in shapes]
    if len(shapes) > MAX_PARAMETER_TENSORS or sum(sizes) > MAX_PARAMETER_ELEMENTS:
        raise ValueError(f"{len(shapes)} tensors of {sum(sizes):,} values is over the grader's budget")
    gen = torch.Generator().manual_seed(seed)
    out = []
    for shape in shapes:
        shape = tuple(int(d) for d in shape)
        if len(shape) >= 2:
            fan_in = max(1, math.prod(shape[1:]))
            out.append(torch.randn(shape, generator=gen) * math.sqrt(2.0 / fan_in))
        else:
            out.append(torch.rand(shape, generator=gen) + 0.5)
    return out
