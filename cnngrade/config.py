"""Grader settings: the exercises, and each exercise's YAML (points, visibility, limits), validated at load."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from cnngrade.errors import GraderConfigError, UsageError

EXERCISES = (
    "ex1_output_size", "ex2_feature_maps", "ex3_receptive_fields", "ex4_shape_tracking",
    "ex5_alexnet_analysis", "ex6_cifar10_training", "ex7_retina_design", "ex8_ablation",
)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
GRADERS_DIR = PROJECT_ROOT / "graders"
VISIBILITIES = ("public", "hidden")
# What a test's verdict rests on. behaviour: the student's code run on inputs the grader chose, compared with a
# trusted recomputation; answer: a value the student wrote down (ANSWERS), compared with a trusted computation;
# advice: something only the worker itself can observe (a mode, autograd state): shown, never scored.
KINDS = ("behaviour", "answer", "advice")


@dataclasses.dataclass(frozen=True)
class TestSpec:
    """One automatic test: its points and whether students may see it before grading."""

    name: str
    points: float
    visibility: str = "hidden"
    description: str = ""
    kind: str = "behaviour"


@dataclasses.dataclass(frozen=True)
class ManualSpec:
    """One free-text answer, graded by a person: where it lives in the module and what it is worth."""

    name: str            # e.g. "AVG_VS_MAX" or "EXPLANATIONS.relu"
    points: float
    min_chars: int = 20
    prompt: str = ""


PROFILE_NAMES = ("cpu", "gpu")


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """How one exercise's training check runs under one profile (from grader.yaml ``profiles.<name>``)."""

    epochs: int
    threshold: float            # test accuracy the trained model must reach
    batch_size: int = 128
    lr: float = 1e-3
    margin: float = 0.0         # ex8: how far below the baseline the sigmoid variant must stay
    train_timeout: float = 300.0
    time_limit: float | None = None   # the exercise's total time under this profile (default: the YAML's time_limit)


def training_settings_from(where: str, raw: Any) -> TrainingSettings:
    """One ``profiles.<name>`` entry, validated: unknown, missing or out-of-range keys are a GraderConfigError."""
    fields = {f.name: f for f in dataclasses.fields(TrainingSettings)}
    raw = _check_keys(where, raw, set(fields), {"epochs", "threshold"})
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GraderConfigError(f"{where}.{key}: expected a number, got {value!r}")
    settings = TrainingSettings(**raw)
    if not (settings.epochs >= 1 and int(settings.epochs) == settings.epochs and settings.batch_size >= 1
            and int(settings.batch_size) == settings.batch_size and settings.lr > 0
            and 0 < settings.threshold <= 1 and 0 <= settings.margin < 1 and settings.train_timeout > 0
            and (settings.time_limit is None or settings.time_limit > 0)):
        raise GraderConfigError(f"{where}: epochs and batch_size must be whole numbers >= 1, lr > 0, threshold in "
                                "(0, 1], margin in [0, 1), train_timeout and time_limit > 0")
    return settings


@dataclasses.dataclass(frozen=True)
class ExerciseConfig:
    """Everything the YAML of one exercise declares."""

    exercise: str
    title: str
    directory: Path
    tests: tuple[TestSpec, ...]
    manual: tuple[ManualSpec, ...] = ()
    time_limit: float = 300.0
    call_timeout: float = 30.0
    max_examples: int = 50
    profiles: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def max_score(self) -> float:
        return sum(t.points for t in self.tests) + sum(m.points for m in self.manual)

    @property
    def test_files(self) -> list[Path]:
        return sorted(self.directory.glob("test_*.py"))


def _check_keys(where: str, data: Any, allowed: set[str], required: set[str] = frozenset()) -> dict:
    if not isinstance(data, dict):
        raise GraderConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    unknown = set(data) - allowed
    if unknown:
        raise GraderConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; allowed: {', '.join(sorted(allowed))}")
    missing = required - set(data)
    if missing:
        raise GraderConfigError(f"{where}: missing key(s) {', '.join(sorted(missing))}")
    return data


def _number(where: str, value: Any, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise GraderConfigError(f"{where}: expected a number >= {minimum:g}, got {value!r}")
    return float(value)


def load_exercise(exercise: str, graders_dir: Path = GRADERS_DIR) -> ExerciseConfig:
    """Read and validate graders/<exercise>/grader.yaml."""
    directory = graders_dir / exercise
    path = directory / "grader.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GraderConfigError(f"{path}: cannot read the grader settings ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise GraderConfigError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    top = _check_keys(str(path), data, {"title", "tests", "manual", "time_limit", "call_timeout",
                                        "max_examples", "profiles"}, {"title", "tests"})
    tests = []
    for name, spec in _check_keys(f"{path}: tests", top["tests"], set(top["tests"] or {})).items():
        where = f"{path}: tests.{name}"
        spec = _check_keys(where, spec, {"points", "visibility", "description", "kind"}, {"points"})
        visibility = spec.get("visibility", "hidden")
        if visibility not in VISIBILITIES:
            raise GraderConfigError(f"{where}: visibility must be one of {', '.join(VISIBILITIES)}")
        kind = spec.get("kind", "behaviour")
        if kind not in KINDS:
            raise GraderConfigError(f"{where}: kind must be one of {', '.join(KINDS)}")
        points = _number(where, spec["points"])
        if kind == "advice" and points != 0:
            raise GraderConfigError(f"{where}: an advice test scores nothing: set points: 0")
        tests.append(TestSpec(str(name), points, visibility, str(spec.get("description", "")), kind))
    manual = []
    for name, spec in (top.get("manual") or {}).items():
        where = f"{path}: manual.{name}"
        spec = _check_keys(where, spec, {"points", "min_chars", "prompt"}, {"points"})
        manual.append(ManualSpec(str(name), _number(where, spec["points"]),
                                 int(_number(where, spec.get("min_chars", 20))), str(spec.get("prompt", ""))))
    # Validated here, at load, so a typo stops the batch before grading instead of failing every student after.
    profiles = _check_keys(f"{path}: profiles", top.get("profiles") or {}, set(PROFILE_NAMES))
    for name, prof in profiles.items():
        training_settings_from(f"{path}: profiles.{name}", prof)
    return ExerciseConfig(
        exercise=exercise, title=str(top["title"]), directory=directory, tests=tuple(tests), manual=tuple(manual),
        time_limit=_number(f"{path}: time_limit", top.get("time_limit", 300), 1),
        call_timeout=_number(f"{path}: call_timeout", top.get("call_timeout", 30), 0.1),
        max_examples=int(_number(f"{path}: max_examples", top.get("max_examples", 50), 1)),
        profiles=dict(profiles),
    )


def available_exercises(graders_dir: Path = GRADERS_DIR) -> list[str]:
    """Exercises that have a grader, in course order."""
    return [e for e in EXERCISES if (graders_dir / e / "grader.yaml").is_file()]


def resolve_exercises(selection: str | None, graders_dir: Path = GRADERS_DIR) -> list[str]:
    """Turn 'ex1,ex3' (or full module names) into exercise names; None means every graded exercise."""
    available = available_exercises(graders_dir)
    if selection is None:
        return available
    chosen = []
    for item in (s.strip() for s in selection.split(",")):
        if not item:
            continue
        match = [e for e in EXERCISES if e == item or e.split("_")[0] == item]
        if not match:
            raise UsageError(f"unknown exercise {item!r}; choose from {', '.join(e.split('_')[0] for e in EXERCISES)}")
        if match[0] not in available:
            raise UsageError(f"exercise {match[0]} has no grader yet; graded exercises: {', '.join(available)}")
        if match[0] not in chosen:
            chosen.append(match[0])
    if not chosen:
        raise UsageError("--exercises selects no exercise")
    return chosen
