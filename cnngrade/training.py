"""The trusted side of the training checks: the profile's data, the worker's training run, and held-out scoring.

The worker runs the grader's own loop (``worker.helpers.train_recipe``) on the student's model,
because the forward pass is student code. It receives the training images and labels only.
The test images go to it in a secret random order and only predicted classes come back; the
test labels never leave this process, so the accuracy computed here cannot be faked by the
student's code short of really classifying the images.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import secrets
import time
from typing import Any

import torch

from cnngrade.client import Handle, Submission
from cnngrade.profiles import SYNTHETIC_TEST, SYNTHETIC_TRAIN, TrainingSettings

PREDICT_BATCH = 1000


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """uint8 images (n, 32, 32, 3) and int64 labels, as the trusted side holds them."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What one training check measured."""

    accuracy: float
    seconds: float          # training plus evaluation, as seen from here
    train_seconds: float    # the loop alone, as the worker timed it (untrusted; for the report only)
    final_loss: float


@functools.lru_cache(maxsize=1)
def load_data(profile_name: str, data_dir: str | None) -> TrainingData:
    """The profile's data set, read once per grading process (ex6 and ex8 share it)."""
    if profile_name == "gpu":
        from pathlib import Path

        from cnngrade.data import cifar

        arrays = cifar.load(Path(data_dir or ""))
    else:
        from cnngrade.data import synthetic

        arrays = synthetic.train_and_test(SYNTHETIC_TRAIN, SYNTHETIC_TEST)
    return TrainingData(*(torch.from_numpy(a) for a in arrays))


def profile_data(profile: dict[str, Any]) -> TrainingData:
    return load_data(str(profile.get("name")), profile.get("data_dir"))


def accuracy_on_test(submission: Submission, model: Handle, data: TrainingData, *, device: str,
                     timeout: float) -> float:
    """Send the test images in a secret order, get back one class per image, count the correct ones here."""
    n = data.test_x.shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(secrets.randbits(62)))
    predicted = submission.helper("predict", model, data.test_x[order], batch_size=PREDICT_BATCH, device=device,
                                  timeout=timeout)
    if not isinstance(predicted, torch.Tensor) or predicted.dtype != torch.int64 or tuple(predicted.shape) != (n,):
        raise AssertionError(f"the model's predictions could not be read: expected {n} class indices, got "
                             f"{getattr(predicted, 'shape', type(predicted).__name__)}")
    return float((predicted == data.test_y[order]).sum()) / n


def train_and_evaluate(submission: Submission, model: Handle, settings: TrainingSettings, profile: dict[str, Any],
                       *, seed: int, augment: bool) -> RunResult:
    """Train ``model`` in the worker with the grader's loop, then measure its held-out accuracy here."""
    data = profile_data(profile)
    device = str(profile.get("device", "cpu"))
    started = time.monotonic()
    stats = submission.helper("train_recipe", model, data.train_x, data.train_y, epochs=settings.epochs,
                              batch_size=settings.batch_size, lr=settings.lr, seed=seed, augment=augment,
                              device=device, timeout=settings.train_timeout)
    accuracy = accuracy_on_test(submission, model, data, device=device, timeout=settings.train_timeout)
    losses = stats.get("losses") if isinstance(stats, dict) else None
    final = float(losses[-1]) if isinstance(losses, list) and losses and isinstance(losses[-1], float) else float("nan")
    worker_seconds = stats.get("seconds") if isinstance(stats, dict) else None
    return RunResult(accuracy, round(time.monotonic() - started, 2),
                     round(float(worker_seconds), 2) if isinstance(worker_seconds, float) else float("nan"), final)


def record(metrics: dict[str, Any], run: RunResult, settings: TrainingSettings, profile: dict[str, Any],
           threshold: float, **extra: Any) -> None:
    """The figures report.json carries for a training check."""
    def finite(x: float) -> float | None:  # report.json is strict JSON: no NaN
        return round(x, 4) if math.isfinite(x) else None

    metrics.update(accuracy=round(run.accuracy, 4), threshold=round(threshold, 4), epochs=settings.epochs,
                   seconds=run.seconds, train_seconds=finite(run.train_seconds), final_loss=finite(run.final_loss),
                   device=profile.get("device"), dataset=profile.get("dataset"), profile=profile.get("name"), **extra)


def recipe_text(settings: TrainingSettings, profile: dict[str, Any]) -> str:
    return (f"{settings.epochs} epoch(s) of Adam(lr={settings.lr:g}), batch {settings.batch_size}, cross-entropy, "
            f"random crop + flip, on {profile.get('dataset')} ({profile.get('device')})")
