"""Training check for exercise 6: the student's MiniAlexNet, trained by the grader's own loop, reaches the profile's accuracy."""
from __future__ import annotations

from cnngrade.profiles import training_settings
from cnngrade.training import recipe_text, record, train_and_evaluate


def test_training_reaches_threshold(submission, profile, exercise_config, metrics, seed):
    settings = training_settings(exercise_config, profile)
    seed %= 2**31
    # The model is built in the worker from the student's class, with a fixed seed, so a regrade starts alike.
    model = submission.helper("call_seeded", submission.value("MiniAlexNet"), seed, [], {})
    run = train_and_evaluate(submission, model, settings, profile, seed=seed, augment=True)
    record(metrics, run, settings, profile, settings.threshold)
    assert run.accuracy >= settings.threshold, (
        f"MiniAlexNet() trained by the grader ({recipe_text(settings, profile)}) reached {run.accuracy:.1%} "
        f"accuracy on held-out images; the reference network reaches at least {settings.threshold:.1%}. Check the "
        f"layers and that forward() returns one logit per class without a softmax or activation at the end.")
