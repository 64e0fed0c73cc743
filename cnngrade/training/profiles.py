"""Grading profiles (cpu, gpu): which device and data set the training checks use, and their per-exercise settings.

``cpu`` trains on cnngrade's generated data set for a few epochs; ``gpu`` runs the handout's
full recipe on CIFAR-10 from a local folder. The profile is chosen once per batch, named in
every report, and reaches grader tests through the ``profile`` fixture as a plain dict.
Epochs, thresholds and time limits live under ``profiles:`` in each exercise's grader.yaml; a calibration file
written by `cnngrade calibrate` (``--calibration FILE``) replaces the thresholds, and the profile names it.
"""
from __future__ import annotations

import datetime
import hashlib
import os
from pathlib import Path
from typing import Any

from cnngrade.config import ExerciseConfig, TrainingSettings, training_settings_from
from cnngrade.errors import GraderConfigError, InputError, UsageError

NAMES = ("cpu", "gpu")
CHOICES = ("auto", *NAMES)
# The cpu profile's generated data set: small enough to train on in seconds, large enough to measure accuracy.
# 16x16 images (the 32x32 drawings averaged in 2x2 blocks): MiniAlexNet's adaptive pool takes any size, and a
# training step costs a third of a 32x32 one (bench/README.md, "cpu profile").
SYNTHETIC_TRAIN, SYNTHETIC_TEST, SYNTHETIC_SIZE = 2560, 1000, 16
# The thresholds a calibration file may set, per exercise: what the training checks of ex6 and ex8 compare with
# (ex6 and ex8's baseline: held-out accuracy >= threshold; ex8's sigmoid: accuracy <= baseline - margin).
CALIBRATED = {"ex6_cifar10_training": ("threshold",), "ex8_ablation": ("threshold", "margin")}
CALIBRATION_META = ("profile", "date", "seeds", "device", "torch", "dataset", "threads", "cnngrade", "rule")
CALIBRATION_MAX_BYTES = 1 << 20


def select_profile(name: str | None = None, data: str | os.PathLike | None = None,
                   isolation: str = "rlimits") -> dict[str, Any]:
    """The profile as a plain dict: name, device, dataset, data_dir, isolation. ``auto``/None: gpu if CUDA works."""
    if name in (None, "auto"):
        import torch

        name = "gpu" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        if data is not None:
            raise UsageError("--data is for the gpu profile (CIFAR-10); the cpu profile uses cnngrade's own data set")
        dataset = f"synthetic-shapes-{SYNTHETIC_TRAIN}/{SYNTHETIC_TEST}-{SYNTHETIC_SIZE}px"
        return {"name": "cpu", "device": "cpu", "dataset": dataset, "data_dir": None, "isolation": isolation}
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
    calibration = profile.get("calibration") or {}
    override = (calibration.get("thresholds") or {}).get(cfg.exercise)
    if override:
        raw, where = {**raw, **override}, f"{where} with the thresholds of {calibration.get('file')}"
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


# -- calibration files (`cnngrade calibrate` writes them, `cnngrade grade --calibration FILE` reads them) ----------
def with_calibration(profile: dict[str, Any], path: str | os.PathLike | None) -> dict[str, Any]:
    """``profile`` with the thresholds of the calibration file ``path`` under ``"calibration"`` (None: unchanged).

    The entry names the file (its name and a digest, never its place on this machine), how and where the
    thresholds were calibrated and the thresholds themselves; it travels in the profile to the graders
    (``training_settings``) and into every report.
    """
    if path is None:
        return profile
    return {**profile, "calibration": load_calibration(Path(path), profile)}


def load_calibration(path: Path, profile: dict[str, Any]) -> dict[str, Any]:
    """Read and strictly validate a calibration file for ``profile``: a UsageError names the file and the key."""
    import yaml

    try:
        with path.open("rb") as fh:
            data = fh.read(CALIBRATION_MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read the calibration file {path}: {exc.strerror}") from None
    if len(data) > CALIBRATION_MAX_BYTES:
        raise UsageError(f"{path}: larger than {CALIBRATION_MAX_BYTES} bytes; not a calibration file")
    try:
        top = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: not a YAML calibration file ({str(exc).splitlines()[0]})") from None
    top = _mapping(path, "", top, {"calibration", "thresholds", "measured"}, {"calibration", "thresholds"})
    meta = _calibration_meta(path, top["calibration"], profile)
    thresholds = _calibration_thresholds(path, top["thresholds"], profile)
    if top.get("measured") is not None:
        _mapping(path, "measured", top["measured"], {f"{e}.{k}" for e, keys in CALIBRATED.items() for k in keys})
    return {"file": path.name, "sha256": hashlib.sha256(data).hexdigest()[:16], **meta, "thresholds": thresholds}


def _mapping(path: Path, where: str, value: Any, allowed: set[str], required: set[str] = frozenset()) -> dict:
    at = f"{path}: {where}" if where else str(path)
    if not isinstance(value, dict):
        raise UsageError(f"{at}: expected a mapping, got {type(value).__name__}")
    unknown = sorted(map(str, set(value) - allowed))
    if unknown:
        raise UsageError(f"{at}: unknown key {where + '.' if where else ''}{unknown[0]}; allowed: "
                         f"{', '.join(sorted(allowed))}")
    missing = sorted(required - set(value))
    if missing:
        raise UsageError(f"{at}: missing key {where + '.' if where else ''}{missing[0]}")
    return value


def _calibration_meta(path: Path, raw: Any, profile: dict[str, Any]) -> dict[str, Any]:
    """How the thresholds were calibrated; a file made for another profile or data set is refused."""
    meta = _mapping(path, "calibration", raw, set(CALIBRATION_META), {"profile", "date", "seeds", "device", "torch"})
    if meta["profile"] != profile.get("name"):
        raise UsageError(f"{path}: calibration.profile is {meta['profile']!r}, but this run grades with the "
                         f"{profile.get('name')} profile; calibrate that profile (cnngrade calibrate --profile "
                         f"{profile.get('name')})")
    if "dataset" in meta and meta["dataset"] != profile.get("dataset"):
        raise UsageError(f"{path}: calibration.dataset is {meta['dataset']!r}, but this run trains on "
                         f"{profile.get('dataset')!r}; calibrate on the data set you grade with")
    seeds = meta["seeds"]
    if (not isinstance(seeds, list) or len(seeds) < 2 or len(set(map(repr, seeds))) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise UsageError(f"{path}: calibration.seeds must list two or more distinct whole numbers >= 0, got {seeds!r}")
    out: dict[str, Any] = {"seeds": seeds}
    for key in ("date", "device", "torch", "dataset", "cnngrade", "rule"):
        value = meta.get(key)
        if isinstance(value, (datetime.date, datetime.datetime)):   # YAML reads an unquoted timestamp as a date
            value = value.isoformat()
        if key in meta and (not isinstance(value, str) or not value.strip() or len(value) > 300):
            raise UsageError(f"{path}: calibration.{key} must be a line of text, got {meta.get(key)!r}")
        if value is not None:
            out[key] = value
    if "threads" in meta:
        if isinstance(meta["threads"], bool) or not isinstance(meta["threads"], int) or meta["threads"] < 1:
            raise UsageError(f"{path}: calibration.threads must be a whole number >= 1, got {meta['threads']!r}")
        out["threads"] = meta["threads"]
    return out


def _calibration_thresholds(path: Path, raw: Any, profile: dict[str, Any]) -> dict[str, dict[str, float]]:
    """thresholds: {exercise: {threshold | margin: number}}, only keys that a training check compares with."""
    thresholds = _mapping(path, "thresholds", raw, set(CALIBRATED))
    if not thresholds:
        raise UsageError(f"{path}: thresholds is empty; nothing to calibrate")
    out: dict[str, dict[str, float]] = {}
    for exercise, values in thresholds.items():
        where = f"thresholds.{exercise}"
        values = _mapping(path, where, values, set(CALIBRATED[exercise]))
        if not values:
            raise UsageError(f"{path}: {where} is empty")
        for key, value in values.items():
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            # The ranges training_settings_from accepts: an accuracy threshold in (0, 1], a margin in [0, 1).
            if not number or not (0 < value <= 1 if key == "threshold" else 0 <= value < 1):
                span = "in (0, 1]" if key == "threshold" else "in [0, 1)"
                raise UsageError(f"{path}: {where}.{key} must be a number {span}, got {value!r}")
        out[str(exercise)] = {str(k): float(v) for k, v in values.items()}
    return out
