"""Grader for exercise 8 (no training here): each ablation variant is what its name says, seeds, flags, the plot.

Every variant's weights go into cnngrade.reference.MiniAlexNet with the activation and dropout
its name implies; outputs are compared in eval mode, and in train mode under the same seeds.
"""
from __future__ import annotations

import pytest
import torch

from cnngrade import reference as ref
from cnngrade.checks import show
from cnngrade.equivalence import (
    assert_same_outputs,
    assert_train_mode_deterministic,
    assert_train_mode_dropout,
    load_student_weights,
)
from cnngrade.errors import StudentError

VARIANTS = ("baseline", "no_dropout", "sigmoid", "no_augmentation")
# name -> (activation, dropout rate, uses augmentation), as the contract defines each variant.
SPEC = {"baseline": ("relu", 0.5, True), "no_dropout": ("relu", 0.0, True),
        "sigmoid": ("sigmoid", 0.5, True), "no_augmentation": ("relu", 0.5, False)}


def images(seed: int, n: int, side: int = 32) -> torch.Tensor:
    return torch.randn(n, 3, side, side, generator=torch.Generator().manual_seed(seed))


def variant(submission, name: str, seed: int = 42):
    """The (model handle, augmentation flag) that build_variant(name, seed) returns, checked for its form."""
    built = submission.build_variant(name, seed=seed)
    if not (isinstance(built, tuple) and len(built) == 2):
        raise AssertionError(f"build_variant({name!r}) returned {show(built)}; expected a (model, bool) tuple")
    return built


def weights_in_use_order(submission, model, x: torch.Tensor) -> list[torch.Tensor]:
    names = submission.helper("state_in_use_order", model, x)
    state = submission.helper("state_dict", model)
    return [state[n] for n in names if not n.endswith("num_batches_tracked")]


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_architecture(submission, seed, name):
    activation, rate, _ = SPEC[name]
    model, _ = variant(submission, name, seed % 1000)
    reference = ref.MiniAlexNet(dropout=rate, activation=activation)
    x = images(seed, 4)
    what = f"the model of build_variant({name!r})"
    load_student_weights(submission, model, reference, x[:1], what)
    assert_same_outputs(submission, model, reference, [x, images(seed + 1, 2, side=40)], what=what)


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_dropout(submission, seed, name):
    activation, rate, _ = SPEC[name]
    model, _ = variant(submission, name, seed % 1000)
    x = images(seed, 6)
    what = f"the model of build_variant({name!r})"
    if rate == 0.0:
        assert_train_mode_deterministic(submission, model, [x], [1, 2], what=what)
        return
    reference = ref.MiniAlexNet(dropout=rate, activation=activation)
    load_student_weights(submission, model, reference, x[:1], what)
    assert_train_mode_dropout(submission, model, reference, [x], [seed % 1000, seed % 1000 + 1], what=what)


def test_augmentation_flags(submission):
    for name in VARIANTS:
        _, flag = variant(submission, name)
        assert flag is SPEC[name][2], \
            f"build_variant({name!r}) says augmentation={show(flag)}; expected {SPEC[name][2]}"


def test_same_seed_same_initial_weights(submission, seed):
    x = images(seed, 1)
    runs = {}
    for s in (seed % 1000, seed % 1000 + 1):
        for name in VARIANTS:
            runs[name, s] = weights_in_use_order(submission, variant(submission, name, s)[0], x)
    first, second = seed % 1000, seed % 1000 + 1
    again = weights_in_use_order(submission, variant(submission, "baseline", first)[0], x)
    base = runs["baseline", first]
    assert len(again) == len(base) and all(torch.equal(a, b) for a, b in zip(again, base)), \
        f"build_variant('baseline', seed={first}) gives different weights when called twice"
    for name in VARIANTS[1:]:
        other = runs[name, first]
        assert len(other) == len(base) and all(torch.equal(a, b) for a, b in zip(other, base)), \
            f"with seed={first}, build_variant({name!r}) starts from other weights than 'baseline'"
    assert not all(torch.equal(a, b) for a, b in zip(runs["baseline", second], base)), \
        f"build_variant('baseline') gives the same weights for seed={first} and seed={second}"


@pytest.mark.parametrize("name", ["resnet", "Sigmoid ", ""], ids=["resnet", "near_miss", "empty"])
def test_unknown_variant_raises(submission, name):
    try:
        got = submission.build_variant(name)
    except StudentError as exc:
        if exc.not_implemented:
            raise
        assert exc.is_a("ValueError"), f"build_variant({name!r}) raised {exc.type_name}: {exc.message}; " \
                                       "expected ValueError"
        return
    raise AssertionError(f"build_variant({name!r}) returned {show(got)}; expected it to raise ValueError")


def test_run_ablation_histories(submission, seed):
    g = torch.Generator().manual_seed(seed)
    arrays = torch.randint(0, 256, (12, 32, 32, 3), dtype=torch.uint8, generator=g)
    pictures = submission.helper("pil_images", list(arrays))
    labels = torch.randint(0, 10, (12,), generator=g).tolist()
    train = [(p, y) for p, y in zip(pictures[:8], labels[:8])]
    val = [(p, y) for p, y in zip(pictures[8:], labels[8:])]
    results = submission.run_ablation(train, val, epochs=2, seed=seed % 1000, batch_size=4, timeout=120)
    assert isinstance(results, dict) and set(results) == set(VARIANTS), \
        f"run_ablation returned {show(results)}; expected a dict with one entry per variant {VARIANTS}"
    for name in VARIANTS:
        history = results[name]
        for key in ("train_loss", "val_acc"):
            values = history.get(key) if isinstance(history, dict) else None
            assert isinstance(values, list) and len(values) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values), \
                f"run_ablation(..., epochs=2)[{name!r}][{key!r}] is {show(values)}; expected a list of 2 floats"
        assert all(0.0 <= v <= 1.0 for v in history["val_acc"]), \
            f"run_ablation(...)[{name!r}]['val_acc'] = {show(history['val_acc'])} holds values outside [0, 1]"


def test_plot_ablation(submission, seed):
    g = torch.Generator().manual_seed(seed)
    n = 4 + seed % 5
    results = {name: {"train_loss": (2 * torch.rand(n, generator=g)).tolist(),
                      "val_acc": torch.rand(n, generator=g).tolist()} for name in VARIANTS}
    fig = submission.plot_ablation(results)
    try:
        info = submission.helper("figure_info", fig)
    except StudentError:
        raise AssertionError(f"plot_ablation returned {show(fig)}; expected a matplotlib Figure") from None
    for name in VARIANTS:
        want = torch.tensor(results[name]["val_acc"], dtype=torch.float64)
        match = [(line, ax) for ax in info["axes"] for line in ax["lines"] if line["y"] is not None and line["n"] == n
                 and any(torch.allclose(torch.tensor(line["y"], dtype=torch.float64) * k, want, atol=1e-6)
                         for k in (1.0, 0.01))]
        assert match, f"no line of the figure shows the {n} validation accuracies of {name!r}"
        assert any(labelled(line, ax, name) for line, ax in match), \
            f"the validation-accuracy line of {name!r} is not labelled {name!r} (pass label={name!r} to plot)"


def labelled(line: dict, ax: dict, name: str) -> bool:
    """The line carries the label, or its axes' legend has an entry of that text in the line's colour."""
    if line["label"] == name:
        return True
    entries = zip(ax.get("legend") or [], ax.get("legend_colors") or [])
    return any(text == name and color is not None and color == line["color"] for text, color in entries)
