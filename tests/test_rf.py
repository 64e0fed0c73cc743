"""The behavioural receptive field (graderkit/rf.py) on trusted torch networks, against autograd."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnngrade.graderkit import rf
from cnngrade.graderkit.measure import receptive_field

SIDE = 128                 # small trusted networks on small inputs keep these tests fast
SMALL = (32, 64)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a shared, busy machine two threads contend and run these tiny networks far slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def probe_of(net: nn.Module, refuse_below: int = 0):
    def probe(images: torch.Tensor):
        if images.shape[-1] < refuse_below:
            raise rf.Refused("too small")
        with torch.no_grad():
            out = net(images)
        h, w = out.shape[-2:]
        return tuple(out.shape[1:]), out[:, :, h // 2, w // 2]
    return probe


def randomised(net: nn.Module, seed: int = 0) -> nn.Module:
    with torch.no_grad():
        shapes = [p.shape for p in net.parameters()]
        for p, value in zip(net.parameters(), rf.draw_parameters(shapes, seed)):
            p.copy_(value)
    return net.eval()


def autograd_box(net: nn.Module, side: int = SIDE, draws: int = 4) -> tuple[tuple[int, int], tuple[int, int]]:
    """Rows and columns where the centre unit's gradient is non-zero, over a few random inputs (max pools and
    ReLUs pass gradient to part of the field per input; the union covers it)."""
    seen = torch.zeros(side, side, dtype=torch.bool)
    gen = torch.Generator().manual_seed(1)
    for _ in range(draws):
        x = torch.rand(1, 3, side, side, generator=gen, dtype=torch.float64, requires_grad=True)
        out = net.double()(x)
        h, w = out.shape[-2:]
        out[0, :, h // 2, w // 2].sum().backward()
        seen |= x.grad[0].abs().sum(0) > 0
    net.float()
    rows, cols = seen.any(1).nonzero().flatten(), seen.any(0).nonzero().flatten()
    return (int(rows.min()), int(rows.max())), (int(cols.min()), int(cols.max()))


def convs(spec, width: int = 6, padding: bool = True) -> nn.Sequential:
    """Layers from (kind, kernel, stride, dilation) as in cnngrade.graderkit.measure, ReLU after convs."""
    mods: list[nn.Module] = []
    c = 3
    for kind, k, s, d in spec:
        if kind == "conv":
            mods += [nn.Conv2d(c, width, k, s, padding=d * (k // 2) if padding else 0, dilation=d), nn.ReLU()]
            c = width
        else:
            mods.append(nn.MaxPool2d(k, s))
    return nn.Sequential(*mods)


BRIEF = [("conv", 3, 1, 1), ("conv", 3, 1, 1), ("pool", 2, 2, 1)] * 2 + [("conv", 3, 1, 1)] * 2
SEQUENCES = {
    "five_convs": [("conv", 3, 1, 1)] * 5,
    "brief_pattern": BRIEF,
    "dilated": [("conv", 3, 1, 1), ("conv", 3, 1, 2), ("conv", 3, 1, 4)],
    "strided": [("conv", 3, 2, 1), ("conv", 3, 1, 1), ("conv", 5, 2, 1), ("conv", 3, 1, 1)],
    "pools_3x3": [("conv", 3, 1, 1), ("pool", 3, 2, 1), ("conv", 5, 1, 1), ("pool", 3, 2, 1)],
}


@pytest.mark.parametrize("name", sorted(SEQUENCES))
@pytest.mark.parametrize("padding", [True, False])
def test_sequences_match_the_autograd_field(name, padding):
    spec = SEQUENCES[name]
    found = rf.measure(probe_of(randomised(convs(spec, padding=padding))), side=SIDE, estimate_sides=SMALL)
    expected = receptive_field(spec)
    assert (found.height, found.width) == (expected, expected)
    assert not found.clipped


class Residual(nn.Module):
    """A ResNet basic block: two 3x3 convs, the first with stride 2, and a 1x1 stride-2 shortcut conv."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 2, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x))) + self.shortcut(x))


class FunctionalPools(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 6, 3, padding=1), nn.Conv2d(6, 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.a(x)), 2)
        x = F.avg_pool2d(F.relu(self.b(x)), 2)
        return self.c(x)


NETWORKS = {
    "residual": lambda: nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), Residual(6, 8), Residual(8, 8)),
    "functional_pools": FunctionalPools,
    "adaptive_not_global": lambda: nn.Sequential(convs(BRIEF), nn.AdaptiveAvgPool2d(8)),
    "asymmetric_kernel": lambda: nn.Sequential(nn.Conv2d(3, 4, (3, 7), padding=(1, 3)), nn.ReLU(),
                                               nn.Conv2d(4, 4, (5, 3), padding=(0, 1))),
    "batchnorm_leaky": lambda: nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.LeakyReLU(0.1),
                                             nn.AvgPool2d(2), nn.Conv2d(6, 6, 3, padding=1)),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_any_structure_matches_autograd(name):
    net = randomised(NETWORKS[name]())
    found = rf.measure(probe_of(net), side=SIDE, estimate_sides=SMALL)
    assert (found.rows, found.cols) == autograd_box(net)


def test_residual_field_is_its_longest_path():
    """Two stride-2 blocks after a 3x3 conv: the main path 3, (3,2), (3,1), (3,2), (3,1) sets the field."""
    found = rf.measure(probe_of(randomised(NETWORKS["residual"]())), side=SIDE, estimate_sides=SMALL)
    path = [("conv", 3, 1, 1), ("conv", 3, 2, 1), ("conv", 3, 1, 1), ("conv", 3, 2, 1), ("conv", 3, 1, 1)]
    assert found.height == found.width == receptive_field(path)


def test_global_pool_sees_the_whole_image():
    net = randomised(nn.Sequential(convs(BRIEF), nn.AdaptiveMaxPool2d(1)))
    found = rf.measure(probe_of(net), side=SIDE, estimate_sides=SMALL)
    assert found.rows == found.cols == (0, SIDE - 1) and found.clipped and found.shape == (6, 1, 1)


def test_a_network_that_refuses_small_inputs_is_measured_on_full_ones():
    spec = SEQUENCES["brief_pattern"]
    found = rf.measure(probe_of(randomised(convs(spec)), refuse_below=SIDE), side=SIDE, estimate_sides=SMALL)
    assert found.height == found.width == receptive_field(spec)


def test_verification_is_cheap_for_an_equivariant_network():
    """The field found on small inputs is verified with one batch on the full input: a handful of full images."""
    found = rf.measure(probe_of(randomised(convs(BRIEF))), side=SIDE, estimate_sides=SMALL)
    assert found.work <= 9


def test_constant_output_depends_on_nothing():
    class Constant(nn.Module):
        def forward(self, x):
            return torch.ones(x.shape[0], 4, x.shape[-2] // 4, x.shape[-1] // 4)

    found = rf.measure(probe_of(Constant()), side=SIDE, estimate_sides=SMALL)
    assert found.rows is None and found.height == found.width == 0


def test_random_outputs_are_refused():
    class Noise(nn.Module):
        def forward(self, x):
            return torch.randn(x.shape[0], 4, 8, 8)

    with pytest.raises(rf.Inconsistent):
        rf.measure(probe_of(Noise()), side=SIDE, estimate_sides=SMALL)


def test_a_global_term_really_widens_the_field():
    """x + mean(x) makes every unit depend on every pixel: that is the network's behaviour, and it is measured."""
    class Global(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            return self.conv(x) + x.mean()

    found = rf.measure(probe_of(randomised(Global())), side=SIDE, estimate_sides=SMALL)
    assert found.rows == found.cols == (0, SIDE - 1)


def test_draws_are_seeded_and_budgeted():
    shapes = [(8, 3, 3, 3), (8,), (4, 8)]
    first, again = rf.draw_parameters(shapes, 5), rf.draw_parameters(shapes, 5)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert all(tuple(t.shape) == s for t, s in zip(first, shapes))
    assert bool((first[1] >= 0.5).all() and (first[1] <= 1.5).all())
    with pytest.raises(ValueError):
        rf.draw_parameters([(rf.MAX_PARAMETER_ELEMENTS + 1,)], 0)


def test_global_pool_costs_a_few_full_images():
    net = randomised(nn.Sequential(convs(BRIEF), nn.AdaptiveAvgPool2d(1)))
    found = rf.measure(probe_of(net), side=SIDE, estimate_sides=SMALL)
    assert found.rows == (0, SIDE - 1) and found.work <= 8


def test_answers_that_contradict_the_first_image_are_refused():
    """A probe whose later answers do not come from the same function as its first one per size (a replaced
    helper faking a global field) contradicts itself on the repeated image."""
    net = randomised(convs(BRIEF))
    honest = probe_of(net)
    first: set[int] = set()

    def forged(images):
        side = images.shape[-1]
        shape, values = honest(images)
        if side in first:
            values = values + images.flatten(1).sum(1, keepdim=True)   # every pixel moves every unit
        first.add(side)
        return shape, values

    with pytest.raises(rf.Inconsistent):
        rf.measure(forged, side=SIDE, estimate_sides=SMALL)


def test_size_dependent_behaviour_is_judged_on_the_full_size():
    """A network that mixes the whole image only on small inputs: the estimate is wrong, the full-size check is not."""
    class SmallGlobal(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = convs(BRIEF)

        def forward(self, x):
            out = self.body(x)
            return out + x.mean() if x.shape[-1] < SIDE else out

    found = rf.measure(probe_of(randomised(SmallGlobal())), side=SIDE, estimate_sides=SMALL)
    assert found.height == found.width == receptive_field(BRIEF)
