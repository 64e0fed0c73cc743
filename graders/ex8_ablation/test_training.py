"""Training checks for exercise 8: the baseline variant reaches the profile's accuracy, the sigmoid variant stays below it."""
from __future__ import annotations

from typing import Any

from cnngrade.profiles import training_settings
from cnngrade.training import RunResult, recipe_text, record, train_and_evaluate

# One seed for both variants: the contract says the same seed gives every variant the same initial weights.
SEED = 42
# Trained variants of this grading process, so that the sigmoid check reuses the baseline's run.
_RUNS: dict[tuple[int, str], tuple[RunResult, bool]] = {}


def trained(submission: Any, name: str, settings: Any, profile: dict, seed: int) -> tuple[RunResult, bool]:
    """Train build_variant(name, seed) with the grader's loop (once per worker) and score it on held-out data."""
    key = (id(submission._worker), name)
    if key not in _RUNS:
        built = submission.helper("call_seeded", submission.value("build_variant"), seed, [name, seed], {})
        if not (isinstance(built, tuple) and len(built) == 2 and isinstance(built[1], bool)):
            raise AssertionError(f"build_variant({name!r}) must return (model, uses_augmentation: bool)")
        model, augment = built
        _RUNS[key] = (train_and_evaluate(submission, model, settings, profile, seed=seed, augment=augment), augment)
    return _RUNS[key]


def test_baseline_reaches_threshold(submission, profile, exercise_config, metrics):
    settings = training_settings(exercise_config, profile)
    run, augment = trained(submission, "baseline", settings, profile, SEED)
    record(metrics, run, settings, profile, settings.threshold, augmentation=augment)
    assert run.accuracy >= settings.threshold, (
        f"build_variant('baseline') trained by the grader ({recipe_text(settings, profile)}) reached "
        f"{run.accuracy:.1%} on held-out images; the reference baseline reaches at least {settings.threshold:.1%}.")


def test_sigmoid_below_baseline(submission, profile, exercise_config, metrics):
    settings = training_settings(exercise_config, profile)
    seed = SEED
    base, _ = trained(submission, "baseline", settings, profile, seed)
    run, augment = trained(submission, "sigmoid", settings, profile, seed)
    limit = base.accuracy - settings.margin
    record(metrics, run, settings, profile, limit, baseline_accuracy=round(base.accuracy, 4), margin=settings.margin,
           augmentation=augment)
    assert run.accuracy <= limit, (
        f"build_variant('sigmoid') reached {run.accuracy:.1%}, but with every ReLU replaced by a sigmoid it should stay "
        f"at least {settings.margin:.0%} below the baseline's {base.accuracy:.1%} under the same training "
        f"({recipe_text(settings, profile)}). Check that every ReLU, in features and classifier, is a Sigmoid.")
