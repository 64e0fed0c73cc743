"""Grading profiles (cpu, gpu): which device and data set the training checks use, and their per-exercise settings.

``cpu`` trains on cnngrade's generated data set for a few epochs; ``gpu`` runs the handout's
full recipe on CIFAR-10 from a local folder. The profile is chosen once per batch, named in
every report, and reaches grader tests through the ``profile`` fixture as a frozen ``Profile``; it crosses into
every grading process as JSON in job.json (``Profile.to_json``/``from_json``, validated strictly), and report.json
names it.
Epochs, thresholds and time limits live under ``profiles:`` in each exercise's grader.yaml; a calibration file
written by `cnngrade calibrate` (``--calibration FILE``) replaces the thresholds, and the profile names it.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import math
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
DEVICES = {"cpu": "cpu", "gpu": "cuda"}   # profile name -> its torch device


@dataclasses.dataclass(frozen=True)
class Profile:
    """The grading profile of a batch: device and data set of the training checks, the isolation, a calibration."""

    name: str                       # "cpu" or "gpu"
    device: str                     # "cpu" or "cuda"
    dataset: str                    # what the training checks train on, as reports name it
    data_dir: str | None = None     # CIFAR-10's folder (gpu)
    isolation: str = "rlimits"
    gpu: str | None = None          # the GPU's name (gpu)
    # load_calibration's entry: file, sha256, how it was calibrated and {exercise: {threshold | margin: number}}.
    calibration: dict[str, Any] | None = dataclasses.field(default=None, hash=False)

    def __post_init__(self) -> None:
        check = _profile_check
        check(self.name in NAMES, f"name {self.name!r} is not one of {', '.join(NAMES)}")
        check(self.device == DEVICES[self.name], f"device {self.device!r}; the {self.name} profile uses "
              f"{DEVICES[self.name]}")
        check(isinstance(self.dataset, str) and bool(self.dataset), f"dataset must be text, got {self.dataset!r}")
        for key in ("data_dir", "gpu"):
            check(getattr(self, key) is None or isinstance(getattr(self, key), str), f"{key} must be text or null")
        check(isinstance(self.isolation, str), f"isolation must be text, got {self.isolation!r}")
        if self.calibration is not None:
            _check_calibration_entry(self.calibration)

    @property
    def uses_gpu(self) -> bool:
        return self.device == "cuda"

    def to_json(self) -> dict[str, Any]:
        """The profile as job.json and report.json hold it (gpu and calibration only when set)."""
        out = {k: getattr(self, k) for k in ("name", "device", "dataset", "data_dir", "isolation")}
        out.update({k: getattr(self, k) for k in ("gpu", "calibration") if getattr(self, k) is not None})
        return out

    @classmethod
    def from_json(cls, data: Any) -> Profile:
        """The profile ``to_json`` wrote; ValueError naming the key for anything else."""
        _profile_check(isinstance(data, dict), f"expected an object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        _profile_check(set(data) <= known, f"unknown key(s) {', '.join(sorted(map(str, set(data) - known)))}")
        missing = {"name", "device", "dataset"} - set(data)
        _profile_check(not missing, f"missing key(s) {', '.join(sorted(missing))}")
        return cls(**data)

    @classmethod
    def from_report(cls, data: Any) -> Profile | None:
        """The profile a report.json names, keys of the report's own (`cnngrade check`'s) left aside; None when it
        names none that validates (a partial report, or one of an older cnngrade)."""
        if not isinstance(data, dict):
            return None
        try:
            return cls.from_json({k: v for k, v in data.items() if k in {f.name for f in dataclasses.fields(cls)}})
        except (ValueError, TypeError):
            return None


def _profile_check(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(f"grading profile: {what}")


def _check_calibration_entry(entry: Any) -> None:
    """A calibration entry as load_calibration makes it: text and seeds for how, numbers in range for thresholds."""
    check = _profile_check
    check(isinstance(entry, dict) and {"file", "sha256", "thresholds"} <= set(entry), "calibration: malformed entry")
    allowed = {"file", "sha256", "thresholds", *CALIBRATION_META}
    check(set(entry) <= allowed, f"calibration: unknown key(s) {sorted(map(str, set(entry) - allowed))}")
    for key, value in entry.items():
        if key == "seeds":
            check(isinstance(value, list) and all(type(s) is int for s in value), "calibration.seeds")
        elif key == "threads":
            check(type(value) is int, "calibration.threads")
        elif key != "thresholds":
            check(isinstance(value, str), f"calibration.{key} must be text")
    thresholds = entry["thresholds"]
    check(isinstance(thresholds, dict) and set(thresholds) <= set(CALIBRATED), "calibration.thresholds")
    for exercise, values in thresholds.items():
        check(isinstance(values, dict) and set(values) <= set(CALIBRATED[exercise])
              and all(type(v) in (int, float) and math.isfinite(v) and 0 <= v <= 1 for v in values.values()),
              f"calibration.thresholds.{exercise}")


def select_profile(name: str | None = None, data: str | os.PathLike | None = None,
                   isolation: str = "rlimits") -> Profile:
    """The profile: name, device, dataset, data_dir, isolation. ``auto``/None: gpu if CUDA works."""
    if name in (None, "auto"):
        import torch

        name = "gpu" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        if data is not None:
            raise UsageError("--data is for the gpu profile (CIFAR-10); the cpu profile uses cnngrade's own data set")
        dataset = f"synthetic-shapes-{SYNTHETIC_TRAIN}/{SYNTHETIC_TEST}-{SYNTHETIC_SIZE}px"
        return Profile("cpu", "cpu", dataset, None, isolation)
    if name != "gpu":
        raise UsageError(f"unknown profile {name!r}; choose from {', '.join(CHOICES)}")
    import torch

    if not torch.cuda.is_available():
        raise UsageError("the gpu profile needs CUDA, and torch sees no GPU here; use --profile cpu")
    from cnngrade.data import cifar

    folder = cifar.locate(data)
    problems = cifar.verify(folder)
    dataset = "cifar10" if not problems else f"cifar10-format, unofficial ({len(problems)} file(s) differ from torchvision's checksums)"
    return Profile("gpu", "cuda", dataset, str(folder), isolation, torch.cuda.get_device_name(0))


def training_settings(cfg: ExerciseConfig, profile: Profile) -> TrainingSettings:
    """The exercise's settings for this profile (validated when grader.yaml was loaded)."""
    where = f"{cfg.directory}/grader.yaml: profiles.{profile.name}"
    raw = cfg.profiles.get(profile.name)
    if not isinstance(raw, dict):
        raise GraderConfigError(f"{where} is missing; the training checks need it")
    calibration = profile.calibration or {}
    override = calibration.get("thresholds", {}).get(cfg.exercise)
    if override:
        raw, where = {**raw, **override}, f"{where} with the thresholds of {calibration['file']}"
    return training_settings_from(where, raw)


def exercise_time_limit(cfg: ExerciseConfig, profile: Profile) -> float:
    """The exercise's total time: the profile's own time_limit where grader.yaml gives one."""
    raw = cfg.profiles.get(profile.name)
    if isinstance(raw, dict) and isinstance(raw.get("time_limit"), (int, float)) and raw["time_limit"] > 0:
        return float(raw["time_limit"])
    return cfg.time_limit


def uses_gpu(profile: Profile) -> bool:
    """Workers of a CUDA profile get the GPU device nodes and no address-space limit (see sandbox/launch.py)."""
    return profile.uses_gpu


# -- calibration files (`cnngrade calibrate` writes them, `cnngrade grade --calibration FILE` reads them) ----------
def with_calibration(profile: Profile, path: str | os.PathLike | None) -> Profile:
    """``profile`` with the thresholds of the calibration file ``path`` as its ``calibration`` (None: unchanged).

    The entry names the file (its name and a digest, never its place on this machine), how and where the
    thresholds were calibrated and the thresholds themselves; it travels in the profile to the graders
    (``training_settings``) and into every report.
    """
    if path is None:
        return profile
    return dataclasses.replace(profile, calibration=load_calibration(Path(path), profile))


def load_calibration(path: Path, profile: Profile) -> dict[str, Any]:
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


def _mapping(path: Path, where: str, value: Any, allowed: set[str], required: frozenset[str] | set[str] = frozenset()
             ) -> dict:
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


def _calibration_meta(path: Path, raw: Any, profile: Profile) -> dict[str, Any]:
    """How the thresholds were calibrated; a file made for another profile or data set is refused."""
    meta = _mapping(path, "calibration", raw, set(CALIBRATION_META), {"profile", "date", "seeds", "device", "torch"})
    if meta["profile"] != profile.name:
        raise UsageError(f"{path}: calibration.profile is {meta['profile']!r}, but this run grades with the "
                         f"{profile.name} profile; calibrate that profile (cnngrade calibrate --profile "
                         f"{profile.name})")
    if "dataset" in meta and meta["dataset"] != profile.dataset:
        raise UsageError(f"{path}: calibration.dataset is {meta['dataset']!r}, but this run trains on "
                         f"{profile.dataset!r}; calibrate on the data set you grade with")
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


def _calibration_thresholds(path: Path, raw: Any, profile: Profile) -> dict[str, dict[str, float]]:
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
