"""Grader for exercise 6 (no training here): MiniAlexNet by behaviour, dropout, transforms, the training loop, the plot.

Every expected value is computed on the trusted side: weights the grader drew go into the student's
model and into cnngrade.training.networks.MiniAlexNet, transforms are replayed with torchvision under the same
seed, and the training loop is repeated with torch's Adam from the same initial weights, its result
compared through the outputs of the trained model on grader-chosen inputs. What only the worker can
see (the mode during a call, autograd state) is advice: shown, never scored.
"""
from __future__ import annotations

import pytest
import torch

from cnngrade.graderkit import (
    assert_equivalent,
    assert_train_mode_dropout,
    build_sequential,
    images,
    load_grader_weights,
    rng,
    show,
)
from cnngrade.graderkit import reference as ref
from cnngrade.graderkit import values as strict  # strict readers of worker data

# A small network for the loop checks: a dropout layer makes the train/eval mode visible in the weights.
SMALL = [["Conv2d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": 1}], ["ReLU", {}],
         ["MaxPool2d", {"kernel_size": 2}], ["Flatten", {}], ["Dropout", {"p": 0.5}],
         ["Linear", {"in_features": 64, "out_features": 5}]]
LINEAR = [["Flatten", {}], ["Linear", {"in_features": 192, "out_features": 5}]]
CLASSES = 5


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


def assert_same_function(submission, model, expected: torch.nn.Module, seed: int, what: str) -> None:
    """The worker's model computes what ``expected`` computes, on grader-chosen inputs (eval mode).

    The trained weights are judged by what they compute, not by a state_dict the worker reports.
    """
    x = torch.randn(8, 3, 8, 8, generator=rng(seed + 7))
    got = strict.tensor(submission.helper("forward", model, x), "the model after training", shape=(8, CLASSES))
    with torch.no_grad():
        want = expected.eval()(x)
    if not torch.allclose(got.to(want.dtype), want, atol=1e-4, rtol=1e-3):
        raise AssertionError(f"{what}: on random inputs the trained model's outputs differ from the reference "
                             f"loop's by up to {(got - want).abs().max().item():.3g}")


# -- architecture ---------------------------------------------------------------------------------
# Each check writes weights the grader drew (from the test's seed) into the student's model and into
# cnngrade.training.networks.MiniAlexNet, then compares outputs on grader-chosen images: eval mode for the layers,
# train mode under the same torch seeds for the dropout masks.
@pytest.mark.parametrize("num_classes", [10, 7])
def test_architecture(submission, seed, num_classes):
    model = submission.MiniAlexNet(num_classes=num_classes)
    inputs = [images(seed, 4), images(seed + 1, 2, side=40)]
    assert_equivalent(submission, model, ref.MiniAlexNet(num_classes), inputs,
                      what=f"MiniAlexNet(num_classes={num_classes})", seed=seed)


def test_parameter_count(submission):
    # Advice, no points (kind: advice in grader.yaml): a parameter that forward() never uses changes no output,
    # so the count can only be read from the worker's own description of the model, which the student's code
    # controls. The layers that do compute are proven by test_architecture; this only points out extras.
    model = submission.MiniAlexNet()
    submission.helper("forward", model, images(0, 1))  # a dry run: lazy layers create their parameters
    call = "the parameters of MiniAlexNet()"
    got = 0
    for entry in strict.sequence(submission.helper("parameter_shapes", model), call, max_items=10_000):
        _, shape, _ = strict.sequence(entry, call, length=3)
        dims = strict.shape(shape, call)
        assert dims is not None, f"{call}: {show(shape)} is not a shape"
        got += int(torch.Size(dims).numel())
    expected = ref.parameter_count(ref.MiniAlexNet())
    assert got == expected, f"MiniAlexNet() has {got:,} parameters; the specified network has {expected:,}"


def test_dropout_in_train_mode(submission, seed):
    model = submission.MiniAlexNet()
    x = images(seed, 6)
    reference = ref.MiniAlexNet()
    load_grader_weights(submission, model, reference, x, seed=seed, what="MiniAlexNet()")
    assert_train_mode_dropout(submission, model, reference, [x], [seed % 1000, seed % 1000 + 1],
                              what="MiniAlexNet()")


def test_dropout_argument(submission, seed):
    x = images(seed, 6)
    for rate, seeds in ((0.3, [seed % 1000]), (0.0, [1, 2])):
        # dropout=0.0: train mode must give the specified network's (deterministic) outputs whatever the seed.
        what = f"MiniAlexNet(dropout={rate})"
        model, reference = submission.MiniAlexNet(dropout=rate), ref.MiniAlexNet(dropout=rate)
        load_grader_weights(submission, model, reference, x, seed=seed, what=what)
        assert_train_mode_dropout(submission, model, reference, [x], seeds, what=what)


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
    mine = build_sequential(SMALL, seed=seed % 1000)   # the same weights, built here
    submission.helper("set_mode", model, False)  # train_one_epoch must switch to train mode itself
    wrapped = submission.helper("spy", model)
    optimizer = submission.helper("make_optimizer", model, "Adam", 0.01)
    loader = batches(seed, [6, 6, 4])
    loss = submission.helper("call_seeded", submission.value("train_one_epoch"), seed % 1000,
                             [wrapped, worker_loader(submission, loader), optimizer, "cpu"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed % 1000)
        expected_loss = ref.train_epoch(mine, loader, torch.optim.Adam(mine.parameters(), lr=0.01))
    return {"loss": loss, "expected_loss": expected_loss, "model": model, "expected": mine, "wrapped": wrapped}


def test_train_one_epoch_steps(submission, seed):
    # The model starts in eval mode and holds a dropout layer: a loop that does not call model.train() trains
    # without dropout and ends with other weights, so this behavioural check covers the mode too.
    run = run_epoch(submission, seed)
    assert_same_function(submission, run["model"], run["expected"], seed,
                         "after train_one_epoch over 3 batches with Adam (starting in eval mode)")


def test_train_one_epoch_mean_loss(submission, seed):
    run = run_epoch(submission, seed)
    got = strict.number(run["loss"], "train_one_epoch(...)")
    assert abs(got - run["expected_loss"]) <= 1e-4 * max(1.0, abs(run["expected_loss"])), (
        f"train_one_epoch returned {got:.6g}; the mean of the 3 batch losses is {run['expected_loss']:.6g}")


def test_train_one_epoch_train_mode(submission, seed):
    """Advice (no points): the mode and autograd state during the loop, as the worker reports them."""
    run = run_epoch(submission, seed)
    log = strict.sequence(submission.helper("spy_log", run["wrapped"]), "the model's call log")
    log = [strict.mapping(entry, "a call log entry", keys=("training", "grad_enabled")) for entry in log]
    assert len(log) == 3, f"train_one_epoch called the model {len(log)} times for a loader of 3 batches"
    assert all(entry["training"] for entry in log), "train_one_epoch ran the model in eval mode: call model.train()"
    assert all(entry["grad_enabled"] for entry in log), "train_one_epoch ran the model without autograd"
    assert submission.helper("is_training", run["model"]) is True, \
        "the model was left in eval mode after train_one_epoch"


def run_evaluate(submission, seed: int):
    """evaluate() on a model whose predictions the grader knows; the known accuracy."""
    spec = [["Flatten", {}], ["Dropout", {"p": 0.5}], ["Linear", {"in_features": 192, "out_features": CLASSES}]]
    model = submission.helper("build_sequential", spec, seed=seed % 1000)
    mine = build_sequential(spec, seed=seed % 1000).eval()   # the same weights, built here
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
    return got, correct / 17, wrapped, model


def test_evaluate_exact(submission, seed):
    # The model is left in train mode with a dropout layer: an evaluate that does not call model.eval()
    # classifies through random masks and misses the exact count, so the mode is covered by behaviour.
    got, expected, _, _ = run_evaluate(submission, seed)
    got = strict.number(got, "evaluate(...)")
    # 1e-6 forgives a float32 mean; two accuracies over 17 samples are at least 1/17 apart.
    assert abs(got - expected) <= 1e-6, (f"evaluate returned {got:.6g}; the model classifies {expected:.6g} of the "
                                         "17 samples (3 batches of unequal size) correctly")


def test_evaluate_eval_mode_no_grad(submission, seed):
    """Advice (no points): the mode and autograd state during evaluate, as the worker reports them."""
    _, _, wrapped, model = run_evaluate(submission, seed)
    log = strict.sequence(submission.helper("spy_log", wrapped), "the model's call log")
    log = [strict.mapping(entry, "a call log entry", keys=("training", "grad_enabled")) for entry in log]
    grads = strict.sequence(submission.helper("grads_present", model), "the parameters holding gradients")
    assert log, "evaluate never called the model"
    assert not any(entry["training"] for entry in log), "evaluate ran the model in train mode: call model.eval()"
    assert not any(entry["grad_enabled"] for entry in log), \
        "evaluate ran the model with autograd on: wrap it in torch.no_grad()"
    assert not grads, f"after evaluate, parameters hold gradients: {grads[:3]}"


def read_state(submission, model, call: str, like: dict | None = None) -> dict[str, torch.Tensor]:
    """A model's state_dict read back from the worker, strictly; with ``like``, the same names and shapes."""
    state = strict.mapping(submission.helper("state_dict", model), call)
    out = {str(k): strict.tensor(v, f"{call}: {k}") for k, v in state.items()}
    if like is not None and {k: tuple(v.shape) for k, v in out.items()} != {k: tuple(v.shape) for k, v in like.items()}:
        raise AssertionError(f"{call}: the model's tensors are not the ones it started with (names or shapes)")
    return out


def linear_copy(state: dict[str, torch.Tensor]) -> torch.nn.Sequential:
    try:
        return trusted_copy(LINEAR, state)
    except (RuntimeError, KeyError) as exc:
        raise AssertionError(f"the weights read back from the worker do not fit the model it built: {exc}") from None


def run_fit(submission, seed: int, epochs: int, lr: float) -> dict:
    """fit() on a linear model in the worker, and the same Adam run on the trusted side.

    The validation labels are chosen from the trusted run: after the last epoch the model classifies every
    validation image right, or every one wrong, whichever is at least 1/2 away from its accuracy on the training
    loader, so a fit that "validates" on the training data cannot report the right numbers. Only images whose
    predicted class is clear after every epoch (largest top-two logit gaps) are used, so rounding cannot flip one.
    """
    model = submission.helper("build_sequential", LINEAR, seed=seed % 1000)
    start = read_state(submission, model, "the weights of the model built for fit")
    mine = linear_copy(start)
    g = rng(seed)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, CLASSES, (n,), generator=g)

    train, candidates = [make(8), make(8)], torch.randn(48, 3, 8, 8, generator=g)
    optimizer = torch.optim.Adam(mine.parameters(), lr=lr)
    expected: dict = {"train_loss": [], "train_acc": []}
    logits = []
    for _ in range(epochs):
        expected["train_loss"].append(ref.train_epoch(mine, train, optimizer))
        expected["train_acc"].append(ref.accuracy(mine, train))
        with torch.no_grad():
            logits.append(mine(candidates))
    top2 = torch.stack([out.topk(2, dim=1).values for out in logits])
    keep = (top2[..., 0] - top2[..., 1]).amin(0).argsort(descending=True)[:16].sort().values
    final = logits[-1][keep].argmax(1)
    val_x, val_y = candidates[keep], final if expected["train_acc"][-1] < 0.5 else (final + 1) % CLASSES
    expected["val_acc"] = [float((out[keep].argmax(1) == val_y).float().mean()) for out in logits]
    val = [(val_x[:10], val_y[:10]), (val_x[10:], val_y[10:])]
    history = submission.fit(model, worker_loader(submission, train), worker_loader(submission, val),
                             epochs=epochs, lr=lr, device="cpu")
    state = read_state(submission, model, "the weights after fit", like=start)
    # The weights the worker reports are believed only once they reproduce the model's own outputs.
    assert_same_function(submission, model, linear_copy(state), seed, "the weights reported after fit")
    return {"history": history, "expected": expected, "val": (val_x, val_y), "expected_state": mine.state_dict(),
            "state": state, "model": model, "trained": mine}


def same_state(got: dict, expected: dict) -> bool:
    return all(torch.allclose(got[name], tensor, atol=1e-5, rtol=1e-4) for name, tensor in expected.items())


def read_history(history, call: str, epochs: int) -> dict[str, list[float]]:
    history = strict.mapping(history, call, keys=("train_loss", "val_acc"))
    out = {key: strict.numbers_list(history[key], f"{call}[{key!r}]", length=epochs)
           for key in ("train_loss", "val_acc")}
    assert all(0.0 <= v <= 1.0 for v in out["val_acc"]), \
        f"{call}['val_acc'] = {show(out['val_acc'])} holds values outside [0, 1]"
    return out


def test_fit_history(submission, seed):
    run = run_fit(submission, seed, epochs=3, lr=1e-3)
    got = read_history(run["history"], "fit(..., epochs=3)", 3)["val_acc"]
    expected = run["expected"]
    if same_state(run["state"], run["expected_state"]):   # trained as specified: every epoch's accuracy is known
        want, train_acc = expected["val_acc"], expected["train_acc"]
    else:   # trained otherwise (test_fit_uses_adam says how): the last epoch, from the weights fit left
        val_x, val_y = run["val"]
        with torch.no_grad():
            want = [float((linear_copy(run["state"]).eval()(val_x).argmax(1) == val_y).float().mean())]
        got, train_acc = got[-1:], None
    seen = f" (on train_loader it is {show([round(a, 4) for a in train_acc])})" if train_acc else ""
    assert all(abs(a - b) <= 1e-6 for a, b in zip(got, want)), (
        f"fit's history['val_acc'] is {show([round(a, 4) for a in got])}; the model's accuracy on val_loader after "
        f"each epoch is {show([round(a, 4) for a in want])}{seen}: measure val_acc on val_loader, after the epoch's "
        "training, with evaluate(model, val_loader, device)")


def test_fit_uses_adam(submission, seed):
    run = run_fit(submission, seed, epochs=2, lr=0.005)
    assert_same_function(submission, run["model"], run["trained"], seed, "fit(..., epochs=2, lr=0.005) trained "
                         "differently from Adam(lr=0.005) with cross-entropy, one step per batch")
    got = read_history(run["history"], "fit(..., epochs=2)", 2)["train_loss"]
    want = run["expected"]["train_loss"]
    assert all(abs(a - b) <= 1e-4 * max(1, abs(b)) for a, b in zip(got, want)), \
        f"fit's history['train_loss'] is {show(got)}; the mean batch losses per epoch are {show(want)}"


# -- plot and results -----------------------------------------------------------------------------
def test_plot_history(submission, seed, metrics):
    """The figure as drawn (SVG rendered in the worker, read on the trusted side): a curve per series, in any
    units (accuracy in percent, loss on a log scale), larger values higher up."""
    from cnngrade.graderkit import curves, render

    g = rng(seed)
    n = 5 + seed % 4
    history = {"train_loss": (0.05 + torch.rand(n, generator=g) * 2).tolist(),
               "val_acc": torch.rand(n, generator=g).tolist()}
    drawing = render(submission, submission.plot_history(history), f"plot_history(<history of {n} epochs>)", metrics)
    assert curves(drawing, history["train_loss"], log_ok=True), \
        f"no line of the drawn figure shows the {n} training losses, one point per epoch from left to right"
    assert curves(drawing, history["val_acc"]), \
        f"no line of the drawn figure shows the {n} validation accuracies, one point per epoch from left to right"


def test_results_recorded(submission):
    results = strict.answers(submission, "RESULTS")
    for key in ("test_acc_dropout", "test_acc_no_dropout"):
        value = strict.number(results.get(key), f"RESULTS[{key!r}]")
        assert 0.0 < value <= 1.0, f"RESULTS[{key!r}] = {value:g}; expected the test accuracy you measured, in (0, 1]"
