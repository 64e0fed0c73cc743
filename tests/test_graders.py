"""Every grader on correct variants written differently from the reference (full points) and on plausible
mistakes (each loses points), one batch per exercise (tests/submissions/<exercise>/good_*.py, bad_*.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from cnngrade.config import EXERCISES
from cnngrade.records import StudentReport
from tests.harness import ANCHORS, assert_verdict, grade_variants, variants

# The training thresholds of ex6/ex8 have their own harness (tests/test_training.py); here, the other checks.
GRADER_FILES = {"ex6_cifar10_training": ["test_ex6_cifar10_training.py"], "ex8_ablation": ["test_ex8_ablation.py"]}
CASES = [(e, p) for e in EXERCISES for p in variants(e)]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Reports by exercise and variant, each exercise's batch graded the first time a test asks for it."""
    cache: dict[str, dict[str, StudentReport]] = {}

    def reports(exercise: str) -> dict[str, StudentReport]:
        if exercise not in cache:
            cache[exercise] = grade_variants(exercise, tmp_path_factory.mktemp(exercise),
                                             grader_files=GRADER_FILES.get(exercise))
        return cache[exercise]

    return reports


def test_every_exercise_has_good_and_bad_variants():
    for exercise in EXERCISES:
        stems = [p.stem for p in variants(exercise)]
        assert any(s.startswith("good") for s in stems) and sum(s.startswith("bad") for s in stems) >= 3, exercise


@pytest.mark.slow
@pytest.mark.parametrize("exercise, path", CASES, ids=[f"{e.split('_')[0]}-{p.stem}" for e, p in CASES])
def test_variant(graded, exercise: str, path: Path):
    assert_verdict(graded(exercise)[path.stem], exercise, path)


@pytest.mark.slow
def test_free_text_answers_wait_for_a_person(graded):
    """ex5's three explanations: status manual, no points yet, the text carried into the report."""
    tests = {t.name: t for t in graded("ex5_alexnet_analysis")["good_reuse_linear"].exercises["ex5_alexnet_analysis"].tests}
    for key in ("relu", "dropout", "augmentation"):
        item = tests[f"EXPLANATIONS.{key}"]
        assert (item.status, item.score) == ("manual", 0.0)
        assert item.answer and "Awaiting review" in item.output


@pytest.mark.slow
@pytest.mark.parametrize("exercise", EXERCISES)
def test_solution_full_and_stub_zero_in_the_variant_batch(graded, exercise: str):
    """The same batch that grades the variants gives the reference solution every automatic point and the stub none."""
    solution, stub = (graded(exercise)[name].exercises[exercise] for name in ANCHORS)
    auto = [t for t in solution.tests if t.status != "manual"]
    assert auto and all(t.score == t.max_score for t in auto), {t.name: t.output[:300] for t in auto if t.score < t.max_score}
    assert not any(t.grader_error for t in [*auto, *stub.tests]), [t.name for t in [*auto, *stub.tests] if t.grader_error]
    assert stub.score == 0, {t.name: t.status for t in stub.tests if t.score}
