"""The training checks of ex6 and ex8, entirely on the trusted side: data, the student's initial weights, training, scoring.

The student contributes one thing: the initial weights of a model whose architecture is first
proven by behaviour (``equivalence.assert_equivalent``). Those weights go into the trusted
reference network, which is checked not to be trained already, trained here with the handout's
recipe (``cnngrade.training.trainer``) and scored here on held-out images drawn from a secret of this
grading run. No student code runs between the held-out images and the accuracy, and nothing the
worker says about training is read.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import secrets
import time
from collections.abc import Callable
from typing import Any

import torch

from cnngrade.graderkit.equivalence import assert_equivalent, assert_same_outputs
from cnngrade.graderkit.weights import load_student_weights
from cnngrade.sandbox.submission import Submission
from cnngrade.training import trainer
from cnngrade.training.profiles import SYNTHETIC_SIZE, SYNTHETIC_TEST, SYNTHETIC_TRAIN, Profile, TrainingSettings

# The gpu profile scores on this many of CIFAR-10's 10,000 test images, chosen by the run's secret.
CIFAR_HELD_OUT = 5000
# An untrained network scores about 1/classes; its spread is wider than a binomial's (the outputs of one random
# network are correlated across images: 40 default-initialised MiniAlexNets scored 0.067-0.133 on the cpu
# profile's 1,000 images), so the limit is the larger of six binomial standard deviations and 0.1.
PRETRAINED_MARGIN = 0.1


@dataclasses.dataclass(frozen=True)
class Images:
    """uint8 images (n, 32, 32, 3) and int64 labels, held by the trusted side."""

    x: torch.Tensor
    y: torch.Tensor


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What one training check measured."""

    accuracy: float
    initial_accuracy: float
    seconds: float          # checking, training and scoring, all on the trusted side
    final_loss: float       # mean training loss of the last epoch
    threads: int
    losses: tuple[float, ...] = ()   # mean training loss of every epoch (trainer.train's list), drawn in feedback.html
    cohort: int = 1                  # networks trained together with this one (cohort_service), 1: alone


@functools.lru_cache(maxsize=1)
def run_secret() -> int:
    """A secret drawn once per grading process: it picks the held-out images and their order."""
    return secrets.randbits(62)


@functools.lru_cache(maxsize=1)
def _cifar(data_dir: str | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from pathlib import Path

    from cnngrade.data import cifar

    x, y, tx, ty = cifar.load(Path(data_dir or ""))
    return torch.from_numpy(x), torch.from_numpy(y).to(torch.int64), torch.from_numpy(tx), torch.from_numpy(ty).to(torch.int64)


@functools.lru_cache(maxsize=1)
def training_set(profile_name: str, data_dir: str | None) -> Images:
    """The profile's public training set, read once per grading process (ex6 and ex8 share it)."""
    if profile_name == "gpu":
        return Images(*_cifar(data_dir)[:2])
    from cnngrade.data import synthetic

    x, y = synthetic.generate(SYNTHETIC_TRAIN, synthetic.TRAIN_SEED, SYNTHETIC_SIZE)
    return Images(torch.from_numpy(x), torch.from_numpy(y).to(torch.int64))


@functools.lru_cache(maxsize=2)
def held_out(profile_name: str, data_dir: str | None, secret: int) -> Images:
    """Held-out images drawn from ``secret``: a fresh draw of the generated classes (cpu), or a secret subset of
    CIFAR-10's test batch in a secret order (gpu)."""
    if profile_name == "gpu":
        x, y = _cifar(data_dir)[2:]
        pick = torch.randperm(len(y), generator=torch.Generator().manual_seed(secret))[:CIFAR_HELD_OUT]
        return Images(x[pick], y[pick])
    from cnngrade.data import synthetic

    images, labels = synthetic.generate(SYNTHETIC_TEST, secret, SYNTHETIC_SIZE)
    return Images(torch.from_numpy(images), torch.from_numpy(labels).to(torch.int64))


def profile_held_out(profile: Profile, secret: int | None = None) -> Images:
    return held_out(profile.name, profile.data_dir, run_secret() if secret is None else secret)


def profile_training_set(profile: Profile) -> Images:
    return training_set(profile.name, profile.data_dir)


def chance_limit(classes: int, n: int) -> float:
    """The highest held-out accuracy an untrained network is taken to reach by chance."""
    p = 1.0 / classes
    return p + max(PRETRAINED_MARGIN, 6.0 * math.sqrt(p * (1.0 - p) / max(1, n)))


def worker_threads(submission: Submission) -> int:
    """The torch threads the student's worker was given: its share of the cores, idle while we train."""
    limits = getattr(getattr(submission, "_worker", None), "limits", None)
    return max(1, int(getattr(limits, "threads", 1) or 1))


def probe_images(seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 3, 32, 32, generator=g), torch.randn(2, 3, 40, 40, generator=g)]


def student_network(submission: Submission, model: Any, make_reference: Callable[[], torch.nn.Module], *,
                    what: str, seed: int) -> torch.nn.Module:
    """The trusted reference network holding the student's *initial* weights, once their model is proven to
    compute it.

    The weights the worker reports are confirmed by behaviour (holding them, the reference gives the model's own
    outputs), then the architecture is proven with weights the grader draws, which overwrite the model's.
    """
    inputs = probe_images(seed)
    # A seeded dry run first: lazy layers (nn.LazyLinear) draw their weights at the first forward pass, so that a
    # regrade starts from the same ones.
    submission.helper("forward", model, inputs[0][:1], seed=seed % 2**31)
    network = make_reference()
    load_student_weights(submission, model, network, inputs[0][:1], what)
    assert_same_outputs(submission, model, network, inputs, what=what)
    assert_equivalent(submission, model, make_reference(), inputs, what=what, seed=seed)
    return network


def train_and_score(network: torch.nn.Module, settings: TrainingSettings, profile: Profile, *, seed: int,
                    augment: bool, threads: int = 1, what: str = "your model", secret: int | None = None) -> RunResult:
    """Refuse trained initial weights, train ``network`` here with the recipe, score it on the secret held-out set.

    ``secret`` picks the held-out draw (default: this process's ``run_secret``); `cnngrade calibrate` fixes one per seed.
    """
    from cnngrade.training import cohort_service

    endpoint = cohort_service.current()
    if endpoint is not None and secret is None:   # `cnngrade grade --cohort`: trained with others by the service
        try:
            return cohort_service.request(endpoint, network, settings, profile, seed=seed, augment=augment,
                                          threads=threads, what=what)
        except cohort_service.Unavailable:
            pass   # a lost or failing service is never the student's failure: train here as without one
    started = time.monotonic()
    device = profile.device
    data, test = profile_training_set(profile), profile_held_out(profile, secret)
    classes = int(torch.cat([data.y, test.y]).max()) + 1
    with trainer.torch_threads(threads):
        initial = trainer.accuracy(network, test.x, test.y, device=device)
        limit = chance_limit(classes, len(test.y))
        if initial > limit:
            raise AssertionError(refusal(what, initial, classes, limit))
        losses = trainer.train(network, data.x, data.y, epochs=settings.epochs, batch_size=settings.batch_size,
                               lr=settings.lr, seed=seed, augment=augment, device=device,
                               time_limit=settings.train_timeout)
        accuracy = trainer.accuracy(network, test.x, test.y, device=device)
    return RunResult(accuracy, initial, round(time.monotonic() - started, 2), losses[-1], threads, tuple(losses))


def refusal(what: str, initial: float, classes: int, limit: float) -> str:
    """The message of a training check refused because the initial weights are already trained."""
    return (f"{what} starts already trained: with its initial weights it classifies {initial:.1%} of the held-out "
            f"images correctly, where an untrained network scores about {1 / classes:.0%} (at most {limit:.1%}). "
            "The training check starts from freshly initialised weights: build the model without loading "
            "or setting trained weights.")


def record(metrics: dict[str, Any], run: RunResult, settings: TrainingSettings, profile: Profile,
           threshold: float, **extra: Any) -> None:
    """The figures report.json carries for a training check; ``train_loss`` (one mean loss per epoch) is drawn as a
    curve in feedback.html. A check that requires the accuracy to stay below ``threshold`` says
    ``direction="at most"`` in ``extra``, so that the page states the requirement the right way round."""
    def finite(x: float) -> float | None:  # report.json is strict JSON: no NaN
        return round(x, 4) if math.isfinite(x) else None

    metrics.update(accuracy=round(run.accuracy, 4), threshold=round(threshold, 4), epochs=settings.epochs,
                   initial_accuracy=round(run.initial_accuracy, 4), seconds=run.seconds,
                   final_loss=finite(run.final_loss), threads=run.threads, trained_by="grader (trusted side)" + (f", cohort of {run.cohort}" if run.cohort > 1 else ""),
                   device=profile.device, dataset=profile.dataset, profile=profile.name,
                   train_loss=[finite(float(x)) for x in run.losses], **extra)


def recipe_text(settings: TrainingSettings, profile: Profile, augment: bool = True) -> str:
    steps = "random crop + flip, " if augment else "no augmentation, "
    return (f"{settings.epochs} epoch(s) of Adam(lr={settings.lr:g}), batch {settings.batch_size}, cross-entropy, "
            f"{steps}on {profile.dataset} ({profile.device})")
