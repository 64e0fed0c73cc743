"""Training check for exercise 6, on the trusted side: the reference network, started from the student's initial
weights once their MiniAlexNet is proven to compute it, trained here with the recipe, reaches the profile's accuracy."""
from __future__ import annotations

from cnngrade.graderkit import recipe_text, record, student_network, train_and_score, training_settings, worker_threads
from cnngrade.graderkit import reference as ref


def test_training_reaches_threshold(submission, profile, exercise_config, metrics, seed):
    settings = training_settings(exercise_config, profile)
    seed %= 2**31
    # Built in the worker from the student's class under a fixed seed, so a regrade starts from the same weights.
    model = submission.helper("call_seeded", submission.value("MiniAlexNet"), seed, [], {})
    network = student_network(submission, model, ref.MiniAlexNet, what="MiniAlexNet()", seed=seed)
    run = train_and_score(network, settings, profile, seed=seed, augment=True, threads=worker_threads(submission),
                          what="MiniAlexNet()")
    record(metrics, run, settings, profile, settings.threshold)
    assert run.accuracy >= settings.threshold, (
        f"the specified network, started from the initial weights of your MiniAlexNet() and trained by the grader "
        f"({recipe_text(settings, profile)}), reached {run.accuracy:.1%} on held-out images; from the usual "
        f"initialisation it reaches at least {settings.threshold:.1%}. Check how your model initialises its weights "
        f"(all zeros, or a scale far from PyTorch's default, cannot be trained).")
