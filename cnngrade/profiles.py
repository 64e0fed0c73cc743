"""Grading profiles (cpu, gpu): which device and data set the training checks use, and their per-exercise settings.

``cpu`` trains on cnngrade's generated data set for a few epochs; ``gpu`` runs the handout's
full recipe on CIFAR-10 from a local folder. The profile is chosen once per batch, named in
every report, and reaches grader tests through the ``profile`` fixture as a plain dict.
Epochs, thresholds and time limits live under ``profiles:`` in each exercise's grader.yaml.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cnngrade.config import ExerciseConfig, TrainingSettings, training_settings_from
from cnngrade.errors import GraderConfigError, UsageError

NAMES = ("cpu", "gpu")
CHOICES = ("auto", *NAMES)
# The cpu profile's generated data set: small enough to train on in seconds, large enough to measure accuracy.
SYNTHETIC_TRAIN, SYNTHETIC_TEST = 2560, 1000


def select_profile(name: str | None = None, data: str | os.PathLike | None = None,
                   isolation: str = "rlimits") -> dict[str, Any]:
    """The profile as a plain dict: name, device, dataset, data_dir, isolation. ``auto``/None: gpu if CUDA works."""
    if name in (None, "auto"):
        import torch

        name = "gpu" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        if data is not None:
            raise UsageError("--data is for the gpu profile (CIFAR-10); the cpu profile uses cnngrade's own data set")
        return {"name": "cpu", "device": "cpu", "dataset": f"synthetic-shapes-{SYNTHETIC_TRAIN}/{SYNTHETIC_TEST}",
                "data_dir": None, "isolation": isolation}
    if name != "gpu":
        raise UsageError(f"unknown profile {name!r}; choose from {', '.join(CHOICES)}")
    import torch

    if not torch.cuda.is_available():
        raise UsageError("the gpu profile needs CUDA, and torch sees no GPU here; use --profile cpu")
    from cnngrade.data import cifar

    folder = cifar.locate(data)
    problems = cifar.verify(folder)
    dataset = "cifar10" if not problems else f"cifar10-format, unofficial ({len(problems)} file(s) differ from torchvision's checksums)"
    return {"name": "gpu", "device": "cuda", "dataset": dataset, "data_dir": str(folder), "isolation": isolation,
            "gpu": torch.cuda.get_device_name(0)}


def training_settings(cfg: ExerciseConfig, profile: dict[str, Any]) -> TrainingSettings:
    """The exercise's settings for this profile (validated when grader.yaml was loaded)."""
    where = f"{cfg.directory}/grader.yaml: profiles.{profile.get('name')}"
    raw = cfg.profiles.get(profile.get("name", ""))
    if not isinstance(raw, dict):
        raise GraderConfigError(f"{where} is missing; the training checks need it")
    return training_settings_from(where, raw)


def exercise_time_limit(cfg: ExerciseConfig, profile: dict[str, Any]) -> float:
    """The exercise's total time: the profile's own time_limit where grader.yaml gives one."""
    raw = cfg.profiles.get(profile.get("name", ""))
    if isinstance(raw, dict) and isinstance(raw.get("time_limit"), (int, float)) and raw["time_limit"] > 0:
        return float(raw["time_limit"])
    return cfg.time_limit


def uses_gpu(profile: dict[str, Any]) -> bool:
    """Workers of a CUDA profile get the GPU device nodes and no address-space limit (see sandbox.py)."""
    return profile.get("device") == "cuda"


def data_dir(profile: dict[str, Any]) -> Path | None:
    return Path(profile["data_dir"]) if profile.get("data_dir") else None
