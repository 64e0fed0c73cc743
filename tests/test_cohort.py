"""The cohort trainer: networks trained together end where each would alone (cpu profile), and its fallbacks."""
from __future__ import annotations

import copy

import pytest
import torch

from cnngrade.config import load_exercise
from cnngrade.training import cohort, profiles, trainer
from cnngrade.training import networks as reference
from cnngrade.training import run_check as training

CPU = profiles.Profile("cpu", "cpu", "synthetic")
# Accuracy on the 1,000 held-out images, cohort against solo, per member. The members start from the solo runs'
# weights and see the same batches, augmentation and dropout masks; only float reassociation differs (a vmapped
# convolution is one grouped convolution), and it grows over training like any rounding-level change: measured on
# this profile (members from seeds 0-2, recipe seed 7), differences -0.002, -0.004, +0.011, first-epoch mean losses
# within 4e-4 relative (bench/README.md, "Cohort training"). 0.04 is about one standard deviation of the
# reference's accuracy over seeds (0.037). A cohort that mixed up members, batches or dropout masks is caught
# exactly by test_one_step_together_is_each_members_step_alone (losses within 1e-5); an untrained member scores 0.1.
ACCURACY_TOLERANCE = 0.04
FIRST_EPOCH_LOSS_TOLERANCE = 5e-3   # relative


def networks(seeds, **kwargs) -> list[torch.nn.Module]:
    out = []
    for seed in seeds:
        torch.manual_seed(seed)
        out.append(reference.MiniAlexNet(**kwargs))
    return out


def tiny_data(n=100, size=16):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.mark.slow
def test_a_cohort_on_the_cpu_profile_scores_as_its_members_alone():
    settings = profiles.training_settings(load_exercise("ex6_cifar10_training"), CPU)
    data, test = training.profile_training_set(CPU), training.profile_held_out(CPU, secret=1234)
    members = networks((0, 1, 2))
    alone = [copy.deepcopy(net) for net in members]
    # The profile's data, recipe and seed handling; one epoch fewer than its checks, to keep this test short.
    recipe = {"epochs": settings.epochs - 1, "batch_size": settings.batch_size, "lr": settings.lr, "seed": 7}
    with trainer.torch_threads(2):
        solo_losses = [trainer.train(net, data.x, data.y, **recipe) for net in alone]
        cohort_losses = cohort.train_cohort(members, data.x, data.y, **recipe, chunk=3)
        solo_acc = [trainer.accuracy(net, test.x, test.y) for net in alone]
        cohort_acc = cohort.accuracy_cohort(members, test.x, test.y)
    assert [round(a, 3) for a in cohort_acc] == [round(trainer.accuracy(n, test.x, test.y), 3) for n in members]
    for mine, theirs, cl, sl in zip(cohort_acc, solo_acc, cohort_losses, solo_losses):
        assert abs(mine - theirs) <= ACCURACY_TOLERANCE, (cohort_acc, solo_acc)
        assert mine >= 0.4   # trained: chance is 0.1
        assert len(cl) == len(sl) == recipe["epochs"] and cl[0] == pytest.approx(sl[0], rel=FIRST_EPOCH_LOSS_TOLERANCE)


@pytest.mark.slow
def test_one_step_together_is_each_members_step_alone():
    x, y = tiny_data(n=32)
    members = networks((0, 1))
    alone = [copy.deepcopy(net) for net in members]
    recipe = {"epochs": 1, "batch_size": 32, "lr": 1e-3, "seed": 3}
    solo = [trainer.train(net, x, y, **recipe) for net in alone]
    together = cohort.train_cohort(members, x, y, **recipe, chunk=2)
    probe = trainer.normalize(trainer.nchw(x))
    for got, want, cl, sl in zip(members, alone, together, solo):
        assert cl == pytest.approx(sl, rel=1e-5)
        with torch.no_grad():   # Adam's first step is lr * sign(gradient): at most a few near-zero gradients flip
            assert torch.allclose(got.eval()(probe), want.eval()(probe), atol=1e-2)


@pytest.mark.slow
def test_different_architectures_and_a_chunk_of_one_train_alone_bitwise():
    x, y = tiny_data(n=40)
    mixed = networks((0,)) + networks((1,), activation="sigmoid")
    alone = [copy.deepcopy(net) for net in mixed]
    recipe = {"epochs": 1, "batch_size": 20, "lr": 1e-3, "seed": 5}
    assert not cohort.same_architecture(mixed)
    assert cohort.train_cohort(mixed, x, y, **recipe) == [trainer.train(net, x, y, **recipe) for net in alone]
    for got, want in zip(mixed, alone):
        assert all(torch.equal(p, q) for p, q in zip(got.parameters(), want.parameters()))
    same = networks((2, 3))
    again = [copy.deepcopy(net) for net in same]
    assert cohort.train_cohort(same, x, y, **recipe, memory_budget=1) == [trainer.train(n, x, y, **recipe) for n in again]


@pytest.mark.slow
def test_a_chunk_out_of_cuda_memory_is_retried_in_halves(monkeypatch):
    x, y = tiny_data(n=20)
    calls = []
    real = cohort._train_stacked

    def short_of_memory(group, *args, **kwargs):
        calls.append(len(group))
        if len(group) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(group, *args, **kwargs)

    monkeypatch.setattr(cohort, "_train_stacked", short_of_memory)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    losses = cohort.train_cohort(networks(range(5)), x, y, epochs=1, batch_size=10, lr=1e-3, seed=0, chunk=5)
    assert calls == [5, 2, 3, 2] and len(losses) == 5 and all(len(row) == 1 for row in losses)


def test_the_memory_budget_sets_the_chunk():
    net = reference.MiniAlexNet()
    one = cohort.member_bytes(net, 128, (3, 16, 16))
    assert 4 * 4 * reference.parameter_count(net) < one < 10**9
    assert cohort.chunk_size(net, 50, 128, (3, 16, 16), torch.device("cpu"), 3 * one + 1) == 3
    assert cohort.chunk_size(net, 2, 128, (3, 16, 16), torch.device("cpu"), 10**12) == 2
    assert cohort.chunk_size(net, 50, 128, (3, 16, 16), torch.device("cpu"), 1) == 1


# -- the cpu profile's 16x16 images ----------------------------------------------------------------------------------
def test_the_small_images_are_the_drawings_averaged_in_blocks():
    from cnngrade.data import synthetic

    big, labels = synthetic.generate(20, 5)
    small, same = synthetic.generate(20, 5, 16)
    assert small.shape == (20, 16, 16, 3) and small.dtype == big.dtype and (same == labels).all()
    block = big[:, :2, :2].astype(float).mean(axis=(1, 2))
    assert abs(small[:, 0, 0].astype(float) - block).max() <= 0.5
    with pytest.raises(ValueError):
        synthetic.generate(2, 5, 12)


def test_crop_flip_pads_small_images_in_proportion():
    image = (torch.arange(16 * 16).reshape(1, 1, 16, 16) + 1).expand(2000, 1, 16, 16)
    out = trainer.crop_flip(image, torch.Generator().manual_seed(0))
    assert out.shape == image.shape
    # Output (8, 8) comes from source row 6+dy, column 6+dx (5+dx when flipped), dy, dx in 0..4: padding 2.
    expected = {(6 + dy) * 16 + col + 1 for dy in range(5) for col in range(5, 11)}
    assert set(out[:, 0, 8, 8].tolist()) == expected


def test_a_network_vmap_cannot_batch_trains_alone():
    class ItemLayer(torch.nn.Module):   # .item() on a batched tensor is what vmap refuses
        def forward(self, x):
            return x * (1.0 + 0.0 * x.sum().item())

    def net(seed):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), ItemLayer(), torch.nn.AdaptiveAvgPool2d(1),
                                   torch.nn.Flatten(), torch.nn.Linear(4, 10))

    x, y = tiny_data(n=20)
    recipe = {"epochs": 1, "batch_size": 10, "lr": 1e-3, "seed": 1}
    members, alone = [net(0), net(1)], [net(0), net(1)]
    assert cohort.train_cohort(members, x, y, **recipe, chunk=2) == [trainer.train(n, x, y, **recipe) for n in alone]
    with pytest.raises(trainer.TrainingTimeout):
        cohort.train_cohort(networks((0, 1)), x, y, **recipe, chunk=2, time_limit=-1.0)
