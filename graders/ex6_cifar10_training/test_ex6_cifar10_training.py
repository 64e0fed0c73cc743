"""Grader for exercise 6 (no training here): MiniAlexNet by behaviour, dropout, transforms, the training loop, the plot.

Every expected value is computed on the trusted side: the student's weights go into
cnngrade.reference.MiniAlexNet, transforms are replayed with torchvision under the same
seed, and the training loop is repeated with torch's Adam from the same initial weights.
"""
from __future__ import annotations

import numbers

import pytest
import torch

from cnngrade import reference as ref
from cnngrade.checks import show
from cnngrade.equivalence import (
    assert_equivalent,
    assert_train_mode_deterministic,
    assert_train_mode_dropout,
    load_student_weights,
)
from cnngrade.errors import StudentError

# A small network for the loop checks: a dropout layer makes the train/eval mode visible in the weights.
SMALL = [["Conv2d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": 1}], ["ReLU", {}],
         ["MaxPool2d", {"kernel_size": 2}], ["Flatten", {}], ["Dropout", {"p": 0.5}],
         ["Linear", {"in_features": 64, "out_features": 5}]]
LINEAR = [["Flatten", {}], ["Linear", {"in_features": 192, "out_features": 5}]]
CLASSES = 5


def rng(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(seed: int, n: int, side: int = 32) -> torch.Tensor:
    return torch.randn(n, 3, side, side, generator=rng(seed))


def trusted_copy(spec: list, state: dict) -> torch.nn.Sequential:
    """The grader's own copy of a network the worker built from ``spec``, holding ``state``."""
    layers = [getattr(torch.nn, name)(**kwargs) for name, kwargs in spec]
    model = torch.nn.Sequential(*layers)
    model.load_state_dict(state)
    return model


def batches(seed: int, sizes: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = rng(seed)
    return [(torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, CLASSES, (n,), generator=g)) for n in sizes]


def worker_loader(submission, parts: list[tuple[torch.Tensor, torch.Tensor]]):
    """A DataLoader in the worker yielding exactly ``parts`` (all batches but the last of one size)."""
    size = len(parts[0][1])
    if not (all(len(y) == size for _, y in parts[:-1]) and len(parts[-1][1]) <= size):
        raise ValueError("a DataLoader cannot yield these batch sizes")
    x = torch.cat([p[0] for p in parts])
    y = torch.cat([p[1] for p in parts])
    return submission.helper("tensor_loader", x, y, size)


def number(value: object, call: str) -> float:
    """A returned float (a Python or numpy number, or a one-element tensor)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise AssertionError(f"{call} returned {show(value)}; expected a float")
    return float(value)


def assert_same_state(got: dict, expected: dict, what: str) -> None:
    for name, tensor in expected.items():
        if not torch.allclose(got[name], tensor, atol=1e-5, rtol=1e-4):
            raise AssertionError(f"{what}: parameter {name} differs from the reference loop's by "
                                 f"{(got[name] - tensor).abs().max().item():.3g}")


# -- architecture ---------------------------------------------------------------------------------
@pytest.mark.parametrize("num_classes", [10, 7])
def test_architecture(submission, seed, num_classes):
    model = submission.MiniAlexNet(num_classes=num_classes)
    inputs = [images(seed, 4), images(seed + 1, 2, side=40)]
    assert_equivalent(submission, model, ref.MiniAlexNet(num_classes), inputs,
                      what=f"MiniAlexNet(num_classes={num_classes})")


def test_parameter_count(submission):
    shapes = submission.helper("parameter_shapes", submission.MiniAlexNet())
    got = sum(int(torch.Size(shape).numel()) for _, shape, _ in shapes)
    expected = ref.parameter_count(ref.MiniAlexNet())
    assert got == expected, f"MiniAlexNet() has {got:,} parameters; the specified network has {expected:,}"


def test_dropout_in_train_mode(submission, seed):
    model = submission.MiniAlexNet()
    x = images(seed, 6)
    reference = ref.MiniAlexNet()
    load_student_weights(submission, model, reference, x[:1], "MiniAlexNet()")
    assert_train_mode_dropout(submission, model, reference, [x], [seed % 1000, seed % 1000 + 1],
                              what="MiniAlexNet()")


def test_dropout_argument(submission, seed):
    model = submission.MiniAlexNet(dropout=0.3)
    x = images(seed, 6)
    reference = ref.MiniAlexNet(dropout=0.3)
    load_student_weights(submission, model, reference, x[:1], "MiniAlexNet(dropout=0.3)")
    assert_train_mode_dropout(submission, model, reference, [x], [seed % 1000], what="MiniAlexNet(dropout=0.3)")
    assert_train_mode_deterministic(submission, submission.MiniAlexNet(dropout=0.0), [x], [1, 2],
                                    what="MiniAlexNet(dropout=0.0)")


# -- transforms -----------------------------------------------------------------------------------
def transformed(submission, train: bool, seed: int, n: int = 12):
    """(trusted PIL images, student outputs, seeds): the student's transform applied in the worker."""
    from PIL import Image

    arrays = torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=rng(seed))
    seeds = [seed % 100_000 + i for i in range(n)]
    transform = submission.build_transforms(train)
    outputs = submission.helper("apply_transform", transform, submission.helper("pil_images", list(arrays)), seeds)
    pictures = [Image.fromarray(a.numpy(), mode="RGB") for a in arrays]
    for out in outputs:
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (3, 32, 32):
            raise AssertionError(f"build_transforms({train}) turned a 32x32 RGB PIL image into {show(out)}; "
                                 "expected a float tensor of shape (3, 32, 32)")
    return pictures, [o.float() for o in outputs], seeds


def test_eval_transform(submission, seed):
    pictures, outputs, _ = transformed(submission, False, seed)
    expected = ref.cifar_transforms(False)
    for i, (picture, out) in enumerate(zip(pictures, outputs)):
        want = expected(picture)
        assert torch.allclose(out, want, atol=1e-5), (
            f"build_transforms(False) differs from ToTensor + Normalize((0.5,)*3, (0.5,)*3) by up to "
            f"{(out - want).abs().max().item():.3g} on a random image (no augmentation at evaluation time)")


def test_train_transform_augments(submission, seed):
    pictures, outputs, _ = transformed(submission, True, seed)
    kinds = set()
    for picture, out in zip(pictures, outputs):
        candidates = ref.augmentations(picture)
        hits = ((candidates - out).abs().flatten(1).amax(1) <= 1e-5).nonzero().flatten().tolist()
        assert hits, ("build_transforms(True) gave an output that is no 32x32 crop (zero padding 4) of the image, "
                      "flipped or not, after ToTensor and Normalize((0.5,)*3, (0.5,)*3)")
        kinds.add(hits[0] // (len(candidates) // 2))
    if len(kinds) < 2:
        did = "flipped every image" if 0 not in kinds else "never flipped an image"
        raise AssertionError(f"over {len(outputs)} random draws build_transforms(True) {did}; "
                             "RandomHorizontalFlip flips half of them")


def test_train_transform_same_seed(submission, seed):
    pictures, outputs, seeds = transformed(submission, True, seed)
    expected = ref.cifar_transforms(True)
    for picture, out, s in zip(pictures, outputs, seeds):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s)
            want = expected(picture)
        assert torch.allclose(out, want, atol=1e-5), (
            f"under torch.manual_seed({s}) build_transforms(True) gives another crop or flip than "
            "Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), ToTensor(), Normalize(...)]): "
            "use torchvision's random transforms in that order")


# -- training loop --------------------------------------------------------------------------------
def run_epoch(submission, seed: int):
    """The student's train_one_epoch on a small model in the worker, and the same epoch on the trusted side."""
    model = submission.helper("build_sequential", SMALL, seed=seed % 1000)
    submission.helper("set_mode", model, False)  # train_one_epoch must switch to train mode itself
    start = submission.helper("state_dict", model)
    wrapped = submission.helper("spy", model)
    optimizer = submission.helper("make_optimizer", model, "Adam", 0.01)
    loader = batches(seed, [6, 6, 4])
    loss = submission.helper("call_seeded", submission.value("train_one_epoch"), seed % 1000,
                             [wrapped, worker_loader(submission, loader), optimizer, "cpu"])
    mine = trusted_copy(SMALL, start)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed % 1000)
        expected_loss = ref.train_epoch(mine, loader, torch.optim.Adam(mine.parameters(), lr=0.01))
    return {"loss": loss, "expected_loss": expected_loss, "state": submission.helper("state_dict", model),
            "expected_state": mine.state_dict(), "log": submission.helper("spy_log", wrapped),
            "training": submission.helper("is_training", model)}


def test_train_one_epoch_steps(submission, seed):
    run = run_epoch(submission, seed)
    assert_same_state(run["state"], run["expected_state"],
                      "after train_one_epoch over 3 batches with Adam, the weights differ from the reference's "
                      "(zero_grad, cross-entropy loss, backward and one optimizer.step() per batch)")


def test_train_one_epoch_mean_loss(submission, seed):
    run = run_epoch(submission, seed)
    got = number(run["loss"], "train_one_epoch(...)")
    assert abs(got - run["expected_loss"]) <= 1e-4 * max(1.0, abs(run["expected_loss"])), (
        f"train_one_epoch returned {got:.6g}; the mean of the 3 batch losses is {run['expected_loss']:.6g}")


def test_train_one_epoch_train_mode(submission, seed):
    run = run_epoch(submission, seed)
    log = run["log"]
    assert len(log) == 3, f"train_one_epoch called the model {len(log)} times for a loader of 3 batches"
    assert all(entry["training"] for entry in log), "train_one_epoch ran the model in eval mode: call model.train()"
    assert all(entry["grad_enabled"] for entry in log), "train_one_epoch ran the model without autograd"
    assert run["training"], "the model was left in eval mode after train_one_epoch"


def run_evaluate(submission, seed: int):
    """evaluate() on a model whose predictions the grader knows; the known accuracy."""
    spec = [["Flatten", {}], ["Dropout", {"p": 0.5}], ["Linear", {"in_features": 192, "out_features": CLASSES}]]
    model = submission.helper("build_sequential", spec, seed=seed % 1000)
    mine = trusted_copy(spec, submission.helper("state_dict", model)).eval()
    loader, correct = [], 0
    g = rng(seed)
    for n in (7, 7, 3):
        x = torch.randn(n, 3, 8, 8, generator=g)
        with torch.no_grad():
            pred = mine(x).argmax(1)
        right = torch.rand(n, generator=g) < 0.6
        loader.append((x, torch.where(right, pred, (pred + 1) % CLASSES)))
        correct += int(right.sum())
    submission.helper("set_mode", model, True)  # evaluate must switch to eval mode itself
    wrapped = submission.helper("spy", model)
    got = submission.evaluate(wrapped, worker_loader(submission, loader), "cpu")
    return got, correct / 17, submission.helper("spy_log", wrapped), submission.helper("grads_present", model)


def test_evaluate_exact(submission, seed):
    got, expected, _, _ = run_evaluate(submission, seed)
    got = number(got, "evaluate(...)")
    # 1e-6 forgives a float32 mean; two accuracies over 17 samples are at least 1/17 apart.
    assert abs(got - expected) <= 1e-6, (f"evaluate returned {got:.6g}; the model classifies {expected:.6g} of the "
                                         "17 samples (3 batches of unequal size) correctly")


def test_evaluate_eval_mode_no_grad(submission, seed):
    _, _, log, grads = run_evaluate(submission, seed)
    assert log, "evaluate never called the model"
    assert not any(entry["training"] for entry in log), "evaluate ran the model in train mode: call model.eval()"
    assert not any(entry["grad_enabled"] for entry in log), \
        "evaluate ran the model with autograd on: wrap it in torch.no_grad()"
    assert not grads, f"after evaluate, parameters hold gradients: {grads[:3]}"


def run_fit(submission, seed: int, epochs: int, lr: float):
    model = submission.helper("build_sequential", LINEAR, seed=seed % 1000)
    mine = trusted_copy(LINEAR, submission.helper("state_dict", model))
    g = rng(seed)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, CLASSES, (n,), generator=g)

    train, val = [make(8), make(8)], [make(10), make(6)]
    history = submission.fit(model, worker_loader(submission, train), worker_loader(submission, val),
                             epochs=epochs, lr=lr, device="cpu")
    optimizer = torch.optim.Adam(mine.parameters(), lr=lr)
    expected = {"train_loss": [], "val_acc": []}
    for _ in range(epochs):
        expected["train_loss"].append(ref.train_epoch(mine, train, optimizer))
        expected["val_acc"].append(ref.accuracy(mine, val))
    return history, expected, submission.helper("state_dict", model), mine.state_dict()


def test_fit_history(submission, seed):
    history, _, _, _ = run_fit(submission, seed, epochs=3, lr=1e-3)
    assert isinstance(history, dict) and set(history) >= {"train_loss", "val_acc"}, \
        f"fit returned {show(history)}; expected a dict with keys 'train_loss' and 'val_acc'"
    for key in ("train_loss", "val_acc"):
        values = history[key]
        assert isinstance(values, list) and len(values) == 3, \
            f"fit(..., epochs=3) returned history[{key!r}] = {show(values)}; expected a list of 3 floats"
        [number(v, f"history[{key!r}] entry") for v in values]
    assert all(0.0 <= number(v, "val_acc") <= 1.0 for v in history["val_acc"]), \
        f"history['val_acc'] = {show(history['val_acc'])} holds values outside [0, 1]"


def test_fit_uses_adam(submission, seed):
    history, expected, state, expected_state = run_fit(submission, seed, epochs=2, lr=0.005)
    assert_same_state(state, expected_state, "fit(..., epochs=2, lr=0.005) trained differently from Adam(lr=0.005) "
                                             "with cross-entropy, one step per batch")
    got = [number(v, "history['train_loss'] entry") for v in history["train_loss"]]
    want = expected["train_loss"]
    assert len(got) == 2 and all(abs(a - b) <= 1e-4 * max(1, abs(b)) for a, b in zip(got, want)), \
        f"fit's history['train_loss'] is {show(got)}; the mean batch losses per epoch are {show(want)}"


# -- plot and results -----------------------------------------------------------------------------
def test_plot_history(submission, seed):
    g = rng(seed)
    n = 5 + seed % 4
    history = {"train_loss": (torch.rand(n, generator=g) * 2).tolist(), "val_acc": torch.rand(n, generator=g).tolist()}
    fig = submission.plot_history(history)
    try:
        info = submission.helper("figure_info", fig)
    except StudentError:
        raise AssertionError(f"plot_history returned {show(fig)}; expected a matplotlib Figure") from None
    lines = [line for ax in info["axes"] for line in ax["lines"] if line["y"] is not None]

    def shown(values: list[float]) -> bool:
        want = torch.tensor(values, dtype=torch.float64)
        return any(len(line["y"]) == n and any(torch.allclose(torch.tensor(line["y"], dtype=torch.float64) * k, want,
                                                              atol=1e-6) for k in (1.0, 0.01)) for line in lines)

    assert shown(history["train_loss"]), f"no line of the figure shows the {n} training losses"
    assert shown(history["val_acc"]), f"no line of the figure shows the {n} validation accuracies"


def test_results_recorded(submission):
    results = submission.value("RESULTS")
    assert isinstance(results, dict), f"RESULTS should be a dict, got {show(results)}"
    for key in ("test_acc_dropout", "test_acc_no_dropout"):
        value = results.get(key)
        assert isinstance(value, numbers.Real) and not isinstance(value, bool) and 0.0 < float(value) <= 1.0, \
            f"RESULTS[{key!r}] = {show(value)}; expected the test accuracy you measured, a float in (0, 1]"
