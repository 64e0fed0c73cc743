"""Training checks for exercise 8, on the trusted side: each variant's initial weights, once its model is proven to be
what its name says, go into the reference network, trained and scored here; baseline reaches the profile's accuracy,
sigmoid stays below it."""
from __future__ import annotations

from cnngrade.graderkit import (
    RunResult,
    recipe_text,
    record,
    show,
    student_network,
    train_and_score,
    training_settings,
    worker_threads,
)
from cnngrade.graderkit import reference as ref

# One seed for both variants: the contract says the same seed gives every variant the same initial weights.
SEED = 42
# name -> (activation, dropout rate, augmentation) as the contract defines the variant; the grader trains with these,
# whatever flag build_variant returns (test_augmentation_flags checks the flag).
SPEC = {"baseline": ("relu", 0.5, True), "sigmoid": ("sigmoid", 0.5, True)}


def trained(submission, name: str, settings, profile: dict) -> RunResult:
    """build_variant(name, SEED) proven and trained on the trusted side, once per worker (Submission.memo)."""
    def run() -> RunResult:
        activation, rate, augment = SPEC[name]
        built = submission.helper("call_seeded", submission.value("build_variant"), SEED, [name, SEED], {})
        if isinstance(built, (str, bytes)) or not isinstance(built, (tuple, list)) or len(built) != 2:
            raise AssertionError(f"build_variant({name!r}) returned {show(built)}; expected (model, uses_augmentation)")
        what = f"the model of build_variant({name!r})"
        network = student_network(submission, built[0], lambda: ref.MiniAlexNet(dropout=rate, activation=activation),
                                  what=what, seed=SEED)
        return train_and_score(network, settings, profile, seed=SEED, augment=augment,
                               threads=worker_threads(submission), what=what)

    return submission.memo(f"trusted-training:{name}", run)


def test_baseline_reaches_threshold(submission, profile, exercise_config, metrics):
    settings = training_settings(exercise_config, profile)
    run = trained(submission, "baseline", settings, profile)
    record(metrics, run, settings, profile, settings.threshold, augmentation=True)
    assert run.accuracy >= settings.threshold, (
        f"the specified network, started from the initial weights of build_variant('baseline') and trained by the "
        f"grader ({recipe_text(settings, profile)}), reached {run.accuracy:.1%} on held-out images; from the usual "
        f"initialisation it reaches at least {settings.threshold:.1%}. Check how the model initialises its weights.")


def test_sigmoid_below_baseline(submission, profile, exercise_config, metrics):
    settings = training_settings(exercise_config, profile)
    # The sigmoid variant is proven first: a point for "stays below" needs the sigmoid network, not any weak model.
    run = trained(submission, "sigmoid", settings, profile)
    try:
        base = trained(submission, "baseline", settings, profile)
    except AssertionError as exc:
        raise AssertionError(f"the sigmoid variant is compared with the baseline, which could not be trained: "
                             f"{exc}") from None
    limit = base.accuracy - settings.margin
    record(metrics, run, settings, profile, limit, baseline_accuracy=round(base.accuracy, 4), margin=settings.margin,
           augmentation=True, direction="at most")
    assert run.accuracy <= limit, (
        f"the sigmoid network, started from the initial weights of build_variant('sigmoid') and trained by the "
        f"grader ({recipe_text(settings, profile)}), reached {run.accuracy:.1%}, not {settings.margin:.0%} below the "
        f"baseline's {base.accuracy:.1%} under the same training. Check how the model initialises its weights.")
