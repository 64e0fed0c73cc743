"""What keeps the CPU graders cheap (issue 13.1) without changing a verdict: grading imports no torchvision, a
trusted recomputation written out equals the library's, and the receptive field costs a handful of full images."""
from __future__ import annotations

import collections
import importlib.util
import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cnngrade.config import GRADERS_DIR, PROJECT_ROOT
from cnngrade.graderkit import rf

CPU_GRADERS = ("ex1_output_size", "ex2_feature_maps", "ex3_receptive_fields", "ex4_shape_tracking",
               "ex5_alexnet_analysis", "ex7_retina_design")


def grader_module(exercise: str):
    path = next((GRADERS_DIR / exercise).glob("test_*.py"))
    spec = importlib.util.spec_from_file_location(f"speed_{exercise}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_collecting_the_cpu_graders_imports_no_torchvision():
    """torchvision pulls in torch._dynamo: importing it costs a grading process about as much as torch itself."""
    files = [str(next((GRADERS_DIR / e).glob("test_*.py"))) for e in CPU_GRADERS]
    code = ("import importlib.util, sys\n"
            "from cnngrade.grading.verdicts import register_hypothesis_profile\n"
            "register_hypothesis_profile()\n"
            f"for i, f in enumerate({files!r}):\n"
            "    spec = importlib.util.spec_from_file_location(f'g{i}', f)\n"
            "    sys.modules[spec.name] = module = importlib.util.module_from_spec(spec)\n"
            "    spec.loader.exec_module(module)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(('torchvision', 'torch._dynamo'))}))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr[-2000:]


@pytest.mark.slow
def test_ex2_grey_tensor_is_torchvisions_to_tensor():
    from torchvision.transforms import ToTensor

    ex2 = grader_module("ex2_feature_maps")
    rng = np.random.default_rng(0)
    for mode, formats in ex2.FORMATS.items():
        for fmt in formats:
            for height, width in ((1, 1), (3, 7), (17, 5)):
                raw = ex2.encode(ex2.random_image(mode, height, width, int(rng.integers(1 << 30))), fmt)
                with Image.open(io.BytesIO(raw)) as img:
                    want = ToTensor()(img.convert("L"))[None]
                    got = ex2.grey_tensor(img)
                assert got.dtype == want.dtype and torch.equal(got, want), (mode, fmt, height, width)


def counted(net: nn.Module, counts: collections.Counter):
    def probe(images: torch.Tensor):
        counts[images.shape[-1]] += images.shape[0]
        with torch.no_grad():
            out = net(images)
        h, w = out.shape[-2:]
        return tuple(out.shape[1:]), out[:, :, h // 2, w // 2]
    return probe


def brief_network() -> nn.Module:
    """ex7's pattern (3x3 convs, a 2x2 pool after every second one), narrow, with grader-drawn weights."""
    layers: list[nn.Module] = []
    c = 3
    for i in range(6):
        layers += [nn.Conv2d(c, 4, 3, padding=1), nn.ReLU()] + ([nn.MaxPool2d(2)] if i % 2 else [])
        c = 4
    net = nn.Sequential(*layers).eval()
    with torch.no_grad():
        for p, v in zip(net.parameters(), rf.draw_parameters([p.shape for p in net.parameters()], 3)):
            p.copy_(v)
    return net


def test_receptive_field_is_verified_with_three_full_images():
    """On the full input an equivariant network costs its base image and one batch of three (outside, two corners;
    a corner pixel that does not move the unit costs its two edges one image each); on the smallest input the
    rows are bisected and the columns verified, not bisected (six rounds of two images at 64)."""
    counts: collections.Counter = collections.Counter()
    found = rf.measure(counted(brief_network(), counts), side=128, estimate_sides=(64,))
    assert (found.height, found.width) == (36, 36)
    assert counts[128] <= 1 + 3 + 2, counts
    assert counts[64] <= 1 + 2 * 6 + 3 + 2, counts


def test_the_shared_full_image_is_the_fields_first_probe():
    """ex7's output checks forward rf.base_image; the measurement must probe exactly that image first."""
    seen: list[torch.Tensor] = []

    def probe(images: torch.Tensor):
        seen.append(images)
        return (1, 1, 1), images[:, :1, 0, 0] * 0
    rf.measure(probe, side=64, estimate_sides=())
    assert torch.equal(seen[0], rf.base_image(64, 0))
